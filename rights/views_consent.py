"""Consent endpoints (docs/data-rights.md). The records and rules are in
`patients.consent`; every patient endpoint but these answers 403 `consent_required`
while an acceptance is owed."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.pagination import page_schema, paginate
from config.serializers import StrictBooleanField, StrictSerializer
from patients import consent
from patients import selectors as patient_selectors
from patients.models import (
    AuditEvent,
    Clinician,
    ConsentDecision,
    ConsentDocument,
    ConsentKind,
    Patient,
    User,
)
from patients.permissions import IsClinician, IsPatientAnyConsent
from patients.services import audit_record

PAGE_PARAMETERS = [
    OpenApiParameter("page", type=int, required=False),
    OpenApiParameter("page_size", type=int, required=False, description="1 to 200"),
]


def _with_required_field(fields: Any, **kwargs: Any) -> Any:
    # `required` is also an attribute of every DRF field (a serializer is one): declared as
    # a class attribute it would shadow it, so it is added to the fields instead.
    fields["required"] = serializers.BooleanField(**kwargs)
    return fields


def request_user(request: Request) -> User:
    """The signed-in user of a request the permission classes let through."""
    user = request.user
    assert isinstance(user, User)
    return user


def request_clinician(request: Request) -> Clinician:
    clinician = request_user(request).clinician
    assert isinstance(clinician, Clinician)
    return clinician


@extend_schema_serializer(component_name="ConsentDocument")
class ConsentDocumentSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ConsentKind.choices)
    version = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField()

    def get_fields(self) -> Any:
        return _with_required_field(super().get_fields())

    published_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="ConsentState")
class ConsentStateSerializer(serializers.Serializer[Any]):
    document = ConsentDocumentSerializer()
    state = serializers.ChoiceField(choices=[*ConsentDecision.Decision.values, "pending"])
    decided_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="Consents")
class ConsentsSerializer(serializers.Serializer[Any]):
    owed = serializers.BooleanField(
        help_text="True while a required document waits for acceptance: other patient "
        'endpoints answer 403 {"code": "consent_required"}.'
    )
    documents = ConsentStateSerializer(many=True)


def _consents_data(patient: Patient) -> Any:
    states = consent.consent_state_list(patient=patient)
    owed = any(s.document.required and s.state != "accepted" for s in states)
    return ConsentsSerializer({"owed": owed, "documents": states}).data


class MyConsentsApi(APIView):
    permission_classes = [IsPatientAnyConsent]

    @extend_schema(
        responses={200: ConsentsSerializer},
        tags=["patient: data rights"],
        description="The current version of each of the clinic's consent documents and the "
        "caller's decision on it (`pending` until decided).",
    )
    def get(self, request: Request) -> Response:
        patient = patient_selectors.patient_for_user(user=request_user(request))
        audit_record(
            actor=request_user(request),
            action=AuditEvent.Action.READ,
            object_type="consents",
            patient=patient,
            context=audit_context(request),
        )
        return Response(_consents_data(patient))


class MyConsentDecideApi(APIView):
    permission_classes = [IsPatientAnyConsent]

    @extend_schema_serializer(component_name="ConsentDecide")
    class InputSerializer(StrictSerializer):
        decision = serializers.ChoiceField(choices=ConsentDecision.Decision.choices)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: ConsentStateSerializer,
            400: OpenApiResponse(
                description="Not the current version (`consent_document_superseded`), "
                "declining or withdrawing a required document (`consent_required_document`), "
                "withdrawing what was not given (`consent_not_given`)"
            ),
            404: OpenApiResponse(description="Not a document of your clinic"),
        },
        tags=["patient: data rights"],
        description="Accept, decline (optional documents) or withdraw (an optional consent "
        "given) one document. Each decision is kept; the latest is the state.",
    )
    def post(self, request: Request, document_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        patient = patient_selectors.patient_for_user(user=request_user(request))
        document = consent.consent_document_get(user=request_user(request), document_id=document_id)
        state = consent.consent_decide(
            patient=patient,
            document=document,
            decision=serializer.validated_data["decision"],
            actor=request_user(request),
            context=audit_context(request),
        )
        return Response(ConsentStateSerializer(state).data)


@extend_schema_serializer(component_name="ConsentDecision")
class ConsentDecisionSerializer(serializers.Serializer[Any]):
    document = ConsentDocumentSerializer()
    decision = serializers.ChoiceField(choices=ConsentDecision.Decision.choices)
    at = serializers.DateTimeField()


class MyConsentHistoryApi(APIView):
    permission_classes = [IsPatientAnyConsent]

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_schema("PaginatedConsentDecisionList", ConsentDecisionSerializer(many=True))
        },
        tags=["patient: data rights"],
        description="Every consent decision the caller made, newest first.",
    )
    def get(self, request: Request) -> Response:
        patient = patient_selectors.patient_for_user(user=request_user(request))
        response, _ = paginate(
            request=request,
            view=self,
            items=consent.consent_history(user=request_user(request), patient=patient),
            serializer_class=ConsentDecisionSerializer,
        )
        audit_record(
            actor=request_user(request),
            action=AuditEvent.Action.READ,
            object_type="consent_history",
            patient=patient,
            context=audit_context(request),
        )
        return response


# --------------------------------------------------------------------------- clinicians


class PatientConsentsApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        responses={200: ConsentsSerializer, 404: OpenApiResponse(description="Not found")},
        tags=["clinician: patients"],
        description="The patient's consent state, as the patient sees it.",
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = patient_selectors.patient_get(user=request_user(request), patient_id=patient_id)
        audit_record(
            actor=request_user(request),
            action=AuditEvent.Action.READ,
            object_type="consents",
            patient=patient,
            context=audit_context(request),
        )
        return Response(_consents_data(patient))


class ConsentDocumentListCreateApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="ConsentDocumentCreate")
    class InputSerializer(StrictSerializer):
        kind = serializers.ChoiceField(choices=ConsentKind.choices)
        title = serializers.CharField(max_length=200)
        body = serializers.CharField(max_length=100_000)

        def get_fields(self) -> Any:
            fields = super().get_fields()
            fields["required"] = StrictBooleanField()
            return fields

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_schema("PaginatedConsentDocumentList", ConsentDocumentSerializer(many=True))
        },
        tags=["clinician: consent documents"],
        description="Every version of the clinic's consent documents, drafts included.",
    )
    def get(self, request: Request) -> Response:
        response, _ = paginate(
            request=request,
            view=self,
            items=ConsentDocument.objects.visible_to(request_user(request)).order_by(
                "kind", "-version"
            ),
            serializer_class=ConsentDocumentSerializer,
        )
        return response

    @extend_schema(
        request=InputSerializer,
        responses={
            201: ConsentDocumentSerializer,
            400: OpenApiResponse(description="Bad input"),
            403: OpenApiResponse(description="Not a clinic admin"),
        },
        tags=["clinician: consent documents"],
        description="A draft of the next version of a document (clinic admins only).",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = consent.consent_document_create(
            clinician=request_clinician(request), **serializer.validated_data
        )
        return Response(ConsentDocumentSerializer(document).data, status=status.HTTP_201_CREATED)


class ConsentDocumentPublishApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        request=None,
        responses={
            200: ConsentDocumentSerializer,
            400: OpenApiResponse(description="Already published, or a later version is"),
            403: OpenApiResponse(description="Not a clinic admin"),
            404: OpenApiResponse(description="Not your clinic's"),
        },
        tags=["clinician: consent documents"],
        description="Publish a draft: it becomes the current version. A required document "
        "makes every patient of the clinic accept it before their next use of the app.",
    )
    def post(self, request: Request, document_id: UUID) -> Response:
        document = consent.consent_document_get(user=request_user(request), document_id=document_id)
        document = consent.consent_document_publish(
            clinician=request_clinician(request), document=document, context=audit_context(request)
        )
        return Response(ConsentDocumentSerializer(document).data)
