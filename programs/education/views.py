"""HTTP for education cards (docs/app-developers.md § Education cards): the patient's own
cards and read receipts, and the clinician's library, editing and assignment."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.utils import translation
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.pagination import PageNumberPagination, paginate
from config.serializers import StrictSerializer
from patients import selectors as patient_selectors
from patients.models import AuditEvent, Clinician, Patient, User
from patients.permissions import IsClinician, IsPatient
from patients.restriction import RECORD_RESTRICTED_RESPONSE
from patients.services import audit_reads, audit_record
from programs.education import selectors, services
from programs.education.render import render_markdown
from programs.models import CARD_BODY_MAX, EducationCardVersion, Language

TAG_PATIENT = "patient: education"
TAG_CLINICIAN = "clinician: education"


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _clinician(request: Request) -> Clinician:
    clinician: Clinician = _user(request).clinician
    return clinician


def _me(request: Request) -> Patient:
    return patient_selectors.patient_for_user(user=_user(request))


def _language() -> str:
    # The request's active language (the patient's language setting, once there is one),
    # else English: docs/app-developers.md § Education cards.
    return selectors.language_of(translation.get_language())


def _audit_read(request: Request, *, object_id: object, patient_id: UUID) -> None:
    audit_record(
        actor=_user(request),
        action=AuditEvent.Action.READ,
        object_type="education_card",
        object_id=object_id,
        patient_id=patient_id,
        context=audit_context(request),
    )


# --------------------------------------------------------------------------- patient


class MyCardSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(source="card.id", help_text="The card; stable across versions.")
    title = serializers.CharField(source="version.title")
    condition = serializers.CharField(source="card.condition")
    language = serializers.ChoiceField(
        choices=Language.choices,
        source="version.language",
        help_text="Your language when the card has it, else English.",
    )
    version_id = serializers.UUIDField(source="version.id", help_text="The text shown.")
    version = serializers.IntegerField(source="version.number")
    assigned_at = serializers.DateTimeField(source="assignment.assigned_at")
    with_program = serializers.SerializerMethodField(help_text="Given with your program.")
    read = serializers.SerializerMethodField(help_text="You marked this version read.")
    read_at = serializers.DateTimeField(allow_null=True)
    updated_since_read = serializers.BooleanField(
        help_text="You read an earlier version (or another language) but not this one."
    )

    def get_read(self, item: selectors.PatientCard) -> bool:
        return item.read_at is not None

    def get_with_program(self, item: selectors.PatientCard) -> bool:
        return item.assignment.program_phase_id is not None


class MyCardDetailSerializer(MyCardSerializer):
    body_markdown = serializers.CharField(source="version.body", help_text="The source text.")
    html = serializers.CharField(
        help_text="The text as sanitised HTML (no scripts, styles or event handlers; links "
        "only http(s), mailto and tel, with rel=noopener)."
    )


class MyCardListApi(APIView):
    permission_classes = [IsPatient]
    pagination_class = PageNumberPagination  # documents the page

    @extend_schema(
        responses={200: MyCardSerializer(many=True)},
        tags=[TAG_PATIENT],
        description=(
            "The education cards given to you (with your program or by your clinician), "
            "oldest first, each in your language when it has it, with whether you have "
            "read the version shown."
        ),
    )
    def get(self, request: Request) -> Response:
        patient = _me(request)
        cards = selectors.patient_cards(user=_user(request), patient=patient, language=_language())
        response, _ = paginate(
            request=request, view=self, items=cards, serializer_class=MyCardSerializer
        )
        audit_reads(
            actor=_user(request),
            object_type="education_card",
            patient_ids=[patient.pk],
            context=audit_context(request),
        )
        return response


class MyCardDetailApi(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        responses={200: MyCardDetailSerializer},
        tags=[TAG_PATIENT],
        description="One of your cards: its Markdown and the same text as safe HTML.",
    )
    def get(self, request: Request, card_id: UUID) -> Response:
        patient = _me(request)
        item = selectors.patient_card_get(
            user=_user(request), patient=patient, card_id=card_id, language=_language()
        )
        _audit_read(request, object_id=item.card.pk, patient_id=patient.pk)
        return Response(MyCardDetailSerializer(item).data)


class CardReadSerializer(serializers.Serializer[Any]):
    card_id = serializers.UUIDField(source="version.card_id")
    version_id = serializers.UUIDField()
    version = serializers.IntegerField(source="version.number")
    language = serializers.CharField(source="version.language")
    read_at = serializers.DateTimeField()


class MyCardReadApi(APIView):
    permission_classes = [IsPatient]
    # A patient's write: rate-limited per patient like their logs (docs/app-developers.md).
    throttle_scope = "logs"

    def get_throttles(self) -> list[Any]:
        from patients.throttling import ScopedThrottle

        return [ScopedThrottle()]

    @extend_schema_serializer(component_name="CardReadInput")
    class InputSerializer(StrictSerializer):
        version_id = serializers.UUIDField(
            required=False,
            help_text="The version you read (`version_id` of the card); default the one "
            "the card shows now.",
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            201: CardReadSerializer,
            200: OpenApiResponse(CardReadSerializer, description="Already marked read"),
            400: OpenApiResponse(description="Bad input, naming each field"),
        },
        tags=[TAG_PATIENT],
        description=(
            "Mark a card read. Idempotent: marking the same version again answers the "
            "first receipt (200). A later version of the card is unread until marked."
        ),
    )
    def post(self, request: Request, card_id: UUID) -> Response:
        patient = _me(request)
        item = selectors.patient_card_get(
            user=_user(request), patient=patient, card_id=card_id, language=_language()
        )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version: EducationCardVersion = item.version
        wanted = serializer.validated_data.get("version_id")
        if wanted is not None:
            found = EducationCardVersion.objects.filter(card_id=item.card.pk, pk=wanted).first()
            if found is None:
                raise serializers.ValidationError(
                    {"version_id": [gettext("Not a version of this card.")]}
                )
            version = found
        read, created = services.card_mark_read(
            patient=patient, version=version, context=audit_context(request)
        )
        read.version = version
        return Response(
            CardReadSerializer(read).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


# --------------------------------------------------------------------------- clinician


class VersionBriefSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    language = serializers.ChoiceField(choices=Language.choices)
    number = serializers.IntegerField()
    title = serializers.CharField()
    created_at = serializers.DateTimeField()


class LibraryCardSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(source="card.id")
    slug = serializers.CharField(source="card.slug")
    condition = serializers.CharField(source="card.condition")
    clinic_id = serializers.UUIDField(
        source="card.clinic_id", allow_null=True, help_text="Null for a seeded card."
    )
    title = serializers.CharField(help_text="The English title (else any).")
    latest = VersionBriefSerializer(
        many=True, source="latest_list", help_text="The latest version per language."
    )


class VersionTextSerializer(VersionBriefSerializer):
    body_markdown = serializers.CharField(source="body")
    html = serializers.SerializerMethodField(help_text="The Markdown as sanitised HTML.")

    def get_html(self, version: EducationCardVersion) -> str:
        return render_markdown(version.body)


class LibraryCardDetailSerializer(LibraryCardSerializer):
    texts = VersionTextSerializer(
        many=True, source="latest_list", help_text="The latest version per language, in full."
    )


class CardTextInputSerializer(StrictSerializer):
    language = serializers.ChoiceField(choices=Language.choices)
    title = serializers.CharField(max_length=services.TITLE_MAX)
    body = serializers.CharField(max_length=CARD_BODY_MAX, help_text="Markdown.")


class CardListCreateApi(APIView):
    permission_classes = [IsClinician]
    pagination_class = PageNumberPagination

    @extend_schema_serializer(component_name="EducationCardCreateInput")
    class InputSerializer(CardTextInputSerializer):
        condition = serializers.CharField(
            max_length=services.CONDITION_MAX, required=False, allow_blank=True
        )

    @extend_schema(
        responses={200: LibraryCardSerializer(many=True)},
        tags=[TAG_CLINICIAN],
        description="The education cards you can give: the seeded ones and your clinic's.",
    )
    def get(self, request: Request) -> Response:
        cards = selectors.card_list(user=_user(request))
        response, _ = paginate(
            request=request, view=self, items=cards, serializer_class=LibraryCardSerializer
        )
        return response

    @extend_schema(
        request=InputSerializer,
        responses={
            201: LibraryCardDetailSerializer,
            400: OpenApiResponse(description="Bad input, naming each field"),
        },
        tags=[TAG_CLINICIAN],
        description="A card of your clinic's own, with its first version.",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        card = services.card_create(
            clinician=_clinician(request),
            context=audit_context(request),
            **serializer.validated_data,
        )
        item = selectors.library_card_get(user=_user(request), card_id=card.pk)
        return Response(LibraryCardDetailSerializer(item).data, status=status.HTTP_201_CREATED)


class CardDetailApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(responses={200: LibraryCardDetailSerializer}, tags=[TAG_CLINICIAN])
    def get(self, request: Request, card_id: UUID) -> Response:
        item = selectors.library_card_get(user=_user(request), card_id=card_id)
        return Response(LibraryCardDetailSerializer(item).data)


class CardVersionCreateApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        request=CardTextInputSerializer,
        responses={
            201: LibraryCardDetailSerializer,
            400: OpenApiResponse(description="Bad input, or a seeded card"),
        },
        tags=[TAG_CLINICIAN],
        description=(
            "Edit one of your clinic's cards in one language: a new version. Earlier "
            "versions, and the read receipts that name them, stay as they were."
        ),
    )
    def post(self, request: Request, card_id: UUID) -> Response:
        card = selectors.card_get(user=_user(request), card_id=card_id)
        serializer = CardTextInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.card_version_create(
            card=card,
            clinician=_clinician(request),
            context=audit_context(request),
            **serializer.validated_data,
        )
        item = selectors.library_card_get(user=_user(request), card_id=card.pk)
        return Response(LibraryCardDetailSerializer(item).data, status=status.HTTP_201_CREATED)


class ReceiptSerializer(serializers.Serializer[Any]):
    version_id = serializers.UUIDField(source="version.id")
    version = serializers.IntegerField(source="version.number")
    language = serializers.CharField(source="version.language")
    title = serializers.CharField(source="version.title")
    read_at = serializers.DateTimeField()


class PatientCardSerializer(serializers.Serializer[Any]):
    card_id = serializers.UUIDField(source="assignment.card_id")
    title = serializers.CharField()
    assigned_at = serializers.DateTimeField(source="assignment.assigned_at")
    assigned_by_id = serializers.UUIDField(source="assignment.assigned_by_id", allow_null=True)
    with_program = serializers.SerializerMethodField()
    latest = VersionBriefSerializer(
        many=True, source="latest_list", help_text="The latest version per language."
    )
    read_latest = serializers.BooleanField(help_text="Read in a latest version.")
    reads = ReceiptSerializer(many=True, help_text="Every version read, and when.")

    def get_with_program(self, item: selectors.CardReceipts) -> bool:
        return item.assignment.program_phase_id is not None


class PatientCardsApi(APIView):
    permission_classes = [IsClinician]
    pagination_class = PageNumberPagination

    @extend_schema_serializer(component_name="CardAssignInput")
    class InputSerializer(StrictSerializer):
        card_id = serializers.UUIDField()

    @extend_schema(
        responses={200: PatientCardSerializer(many=True)},
        tags=[TAG_CLINICIAN],
        description="The cards given to the patient and their read receipts.",
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = patient_selectors.patient_get(user=_user(request), patient_id=patient_id)
        items = selectors.patient_receipts(user=_user(request), patient=patient)
        response, _ = paginate(
            request=request, view=self, items=items, serializer_class=PatientCardSerializer
        )
        audit_reads(
            actor=_user(request),
            object_type="card_receipts",
            patient_ids=[patient.pk],
            context=audit_context(request),
        )
        return response

    @extend_schema(
        request=InputSerializer,
        responses={
            201: PatientCardSerializer,
            200: OpenApiResponse(PatientCardSerializer, description="Already given"),
            400: OpenApiResponse(description="Bad input, naming each field"),
            409: RECORD_RESTRICTED_RESPONSE,
        },
        tags=[TAG_CLINICIAN],
        description="Give the patient a card. Giving it again changes nothing (200).",
    )
    def post(self, request: Request, patient_id: UUID) -> Response:
        patient = patient_selectors.patient_get(user=_user(request), patient_id=patient_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        card = (
            selectors.assignable_cards(user=_user(request))
            .filter(pk=serializer.validated_data["card_id"])
            .first()
        )
        if card is None:
            raise serializers.ValidationError({"card_id": ["Unknown card."]})
        _, created = services.card_assign(
            patient=patient, card=card, by=_clinician(request), context=audit_context(request)
        )
        item = next(
            r
            for r in selectors.patient_receipts(user=_user(request), patient=patient)
            if r.assignment.card_id == card.pk
        )
        return Response(
            PatientCardSerializer(item).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
