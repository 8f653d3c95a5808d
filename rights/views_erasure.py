"""Erasure requests and the clinic's retention period (docs/data-rights.md)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
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
from config.serializers import StrictSerializer
from patients import selectors as patient_selectors
from patients.permissions import IsClinician, IsPatientAnyConsent
from rights import erasure
from rights.models import ErasureRequest
from rights.views_consent import PAGE_PARAMETERS, request_clinician, request_user


@extend_schema_serializer(component_name="ErasureRequest")
class ErasureRequestSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=ErasureRequest.Status.choices)
    requested_at = serializers.DateTimeField()
    reason = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField()
    hold_until = serializers.DateField(
        allow_null=True, help_text="Restricted: the day the records may be erased."
    )


class MyErasureRequestApi(APIView):
    permission_classes = [IsPatientAnyConsent]

    @extend_schema_serializer(component_name="ErasureRequestCreate")
    class InputSerializer(StrictSerializer):
        reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: ErasureRequestSerializer,
            409: OpenApiResponse(description="A request is already pending"),
        },
        tags=["patient: data rights"],
        description="Ask the clinic to erase your data. A clinic admin decides; records "
        "under the clinic's retention hold are kept (your account is closed) until it ends.",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        patient = patient_selectors.patient_for_user(user=request_user(request))
        created = erasure.erasure_request_create(
            patient=patient,
            actor=request_user(request),
            reason=serializer.validated_data.get("reason", ""),
            context=audit_context(request),
        )
        return Response(ErasureRequestSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={200: ErasureRequestSerializer, 404: OpenApiResponse(description="None")},
        tags=["patient: data rights"],
        description="Your latest erasure request.",
    )
    def get(self, request: Request) -> Response:
        patient = patient_selectors.patient_for_user(user=request_user(request))
        latest = get_object_or_404(
            ErasureRequest.objects.visible_to(request_user(request))
            .filter(patient=patient)
            .order_by("-requested_at")[:1]
        )
        return Response(ErasureRequestSerializer(latest).data)


@extend_schema_serializer(component_name="ClinicErasureRequest")
class ClinicErasureRequestSerializer(ErasureRequestSerializer):
    patient_id = serializers.UUIDField()


class ErasureRequestListApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_schema(
                "PaginatedClinicErasureRequestList", ClinicErasureRequestSerializer(many=True)
            )
        },
        tags=["clinician: clinic"],
        description="The clinic's erasure requests, newest first.",
    )
    def get(self, request: Request) -> Response:
        response, _ = paginate(
            request=request,
            view=self,
            items=ErasureRequest.objects.visible_to(request_user(request)).order_by(
                "-requested_at"
            ),
            serializer_class=ClinicErasureRequestSerializer,
        )
        return response


class ErasureRequestDecideApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="ErasureDecision")
    class InputSerializer(StrictSerializer):
        decision = serializers.ChoiceField(choices=["approve", "reject"])
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: ClinicErasureRequestSerializer,
            400: OpenApiResponse(description="Bad input, or already decided"),
            403: OpenApiResponse(description="Not a clinic admin"),
            404: OpenApiResponse(description="Not your clinic's"),
        },
        tags=["clinician: clinic"],
        description="Approve (the account is closed and its tokens revoked; the records "
        "are pseudonymised now, or kept until the retention hold ends) or reject.",
    )
    def post(self, request: Request, request_id: UUID) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        found = get_object_or_404(
            ErasureRequest.objects.visible_to(request_user(request)).select_related("patient"),
            pk=request_id,
        )
        decided = erasure.erasure_request_decide(
            clinician=request_clinician(request),
            erasure_request=found,
            approve=serializer.validated_data["decision"] == "approve",
            note=serializer.validated_data.get("note", ""),
            context=audit_context(request),
        )
        return Response(ClinicErasureRequestSerializer(decided).data)


class RetentionApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="Retention")
    class InputSerializer(StrictSerializer):
        years_after_last_contact = serializers.IntegerField(min_value=1, max_value=100)

    @extend_schema(
        responses={200: InputSerializer},
        tags=["clinician: clinic"],
        description="How many years the clinic keeps a record after the last contact.",
    )
    def get(self, request: Request) -> Response:
        years = erasure.retention_years(clinic_id=request_clinician(request).clinic_id)
        return Response({"years_after_last_contact": years})

    @extend_schema(
        request=InputSerializer,
        responses={200: InputSerializer, 403: OpenApiResponse(description="Not a clinic admin")},
        tags=["clinician: clinic"],
    )
    def put(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = erasure.retention_set(
            clinician=request_clinician(request),
            years=serializer.validated_data["years_after_last_contact"],
            context=audit_context(request),
        )
        return Response({"years_after_last_contact": row.years_after_last_contact})
