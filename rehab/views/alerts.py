"""Clinician alerts, in-app notifications, and the published safety rules."""

from __future__ import annotations

import functools
import hashlib
from typing import Any
from uuid import UUID

import django_filters
from django.conf import settings
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.conditional import CONDITIONAL_GET_PARAMETERS, NOT_MODIFIED
from config.i18n import current_language
from config.pagination import PageNumberPagination
from config.serializers import StrictSerializer
from patients.models import AuditEvent, User
from patients.permissions import IsClinician
from patients.services import audit_reads, audit_record
from rehab.models import Alert, Notification, Severity
from rehab.safety import canonical_json, catalogue
from rehab.selectors import alerts as selectors
from rehab.services import alerts as services
from rehab.translations import SAFETY_TEXTS, localized_catalogue_texts, unreviewed_keys


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


class AlertFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Alert.Status.choices)
    severity = django_filters.ChoiceFilter(choices=Severity.choices)
    patient = django_filters.UUIDFilter(field_name="patient_id")

    class Meta:
        model = Alert
        fields = ("status", "severity", "patient")


class PatientToldSerializer(serializers.Serializer[Any]):
    """What the patient was told for the answers that fired (empty key: nothing)."""

    message_key = serializers.CharField(source="advice_message_key")
    language = serializers.CharField(source="advice_language")


class OccurrenceSerializer(serializers.Serializer[Any]):
    log_id = serializers.UUIDField(allow_null=True)
    fired_on = serializers.DateField()
    fired_at = serializers.DateTimeField()
    rule_version = serializers.IntegerField()
    basis = serializers.JSONField()
    # A field named `source` is fine for DRF; the stubs see Field's own attribute.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["log", "superseded", "refused", "review"],
        help_text=(
            "Which answers fired: the log as stored, a version of it replaced by an edit "
            "before evaluation, a submission answered 409 naming it (`basis.submission` "
            "holds the answers sent), or a review rule."
        ),
    )
    log_version = serializers.IntegerField(allow_null=True)
    patient_told = PatientToldSerializer(source="*")


class AlertEventSerializer(serializers.Serializer[Any]):
    kind = serializers.CharField()
    at = serializers.DateTimeField()
    actor = serializers.SerializerMethodField()
    note = serializers.CharField()

    def get_actor(self, event: Any) -> str | None:
        return event.actor.get_full_name() if event.actor_id else None


class AlertSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    patient_id = serializers.UUIDField()
    patient_name = serializers.CharField(source="patient.full_name")
    severity = serializers.CharField()
    rule = serializers.CharField()
    rule_version = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    opened_at = serializers.DateTimeField()
    last_fired_at = serializers.DateTimeField()
    occurrence_count = serializers.IntegerField()
    log_id = serializers.UUIDField(allow_null=True)
    basis = serializers.JSONField()
    patient_told = PatientToldSerializer(source="*")
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_note = serializers.CharField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    disposition = serializers.CharField()
    resolved_note = serializers.CharField()
    escalation_due_at = serializers.DateTimeField(allow_null=True)
    escalated_at = serializers.DateTimeField(allow_null=True)


class AlertDetailSerializer(AlertSerializer):
    occurrences = OccurrenceSerializer(many=True, source="occurrences.all")
    events = AlertEventSerializer(many=True, source="events.all")


def _audit_alert(request: Request, alert: Alert, action: str, **changes: Any) -> None:
    audit_record(
        actor=_user(request),
        action=action,
        object_type="alert",
        object_id=alert.pk,
        patient_id=alert.patient_id,
        changes=changes,
        context=audit_context(request),
    )


def _detail(request: Request, alert_id: UUID) -> Response:
    alert = selectors.alert_get(user=_user(request), alert_id=alert_id)
    return Response(AlertDetailSerializer(alert).data)


class AlertListApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    @extend_schema(
        parameters=[
            OpenApiParameter("status", enum=Alert.Status.values),
            OpenApiParameter("severity", enum=Severity.values),
            OpenApiParameter("patient", type=OpenApiTypes.UUID),
        ],
        responses={200: AlertSerializer(many=True)},
        tags=["clinician: alerts"],
        description="Alerts of the clinic's patients, most severe first, then oldest first.",
    )
    def get(self, request: Request) -> Response:
        filters = AlertFilter(request.query_params, queryset=Alert.objects.none())
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        alerts = selectors.alert_list(
            user=_user(request),
            status=filters.form.cleaned_data.get("status") or None,
            severity=filters.form.cleaned_data.get("severity") or None,
            patient_id=filters.form.cleaned_data.get("patient"),
        )
        paginator = PageNumberPagination()
        page = list(paginator.paginate_queryset(alerts, request, view=self) or [])
        audit_reads(
            actor=_user(request),
            object_type="alert_list",
            patient_ids=(a.patient_id for a in page),
            context=audit_context(request),
        )
        return paginator.get_paginated_response(AlertSerializer(page, many=True).data)


class AlertDetailApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(responses={200: AlertDetailSerializer}, tags=["clinician: alerts"])
    def get(self, request: Request, alert_id: UUID) -> Response:
        alert = selectors.alert_get(user=_user(request), alert_id=alert_id)
        _audit_alert(request, alert, AuditEvent.Action.READ)
        return Response(AlertDetailSerializer(alert).data)


class AlertAcknowledgeApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="AlertAcknowledge")
    class InputSerializer(StrictSerializer):
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses={200: AlertDetailSerializer, 400: OpenApiResponse(description="Resolved")},
        tags=["clinician: alerts"],
    )
    def post(self, request: Request, alert_id: UUID) -> Response:
        alert = selectors.alert_get(user=_user(request), alert_id=alert_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = serializer.validated_data.get("note", "")
        alert = services.alert_acknowledge(alert=alert, actor=_user(request), note=note)
        _audit_alert(request, alert, AuditEvent.Action.UPDATE, status="acknowledged")
        return _detail(request, alert.pk)


class AlertResolveApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="AlertResolve")
    class InputSerializer(StrictSerializer):
        disposition = serializers.ChoiceField(
            choices=[c for c in Alert.Disposition.values if c != "trigger_cleared"]
        )
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses={200: AlertDetailSerializer, 400: OpenApiResponse(description="Bad input")},
        tags=["clinician: alerts"],
    )
    def post(self, request: Request, alert_id: UUID) -> Response:
        alert = selectors.alert_get(user=_user(request), alert_id=alert_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alert = services.alert_resolve(
            alert=alert,
            actor=_user(request),
            disposition=serializer.validated_data["disposition"],
            note=serializer.validated_data.get("note", ""),
        )
        _audit_alert(
            request,
            alert,
            AuditEvent.Action.UPDATE,
            status="resolved",
            disposition=alert.disposition,
        )
        return _detail(request, alert.pk)


# --------------------------------------------------------------------------- notifications


class NotificationSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    message = serializers.CharField()
    alert_id = serializers.UUIDField()
    severity = serializers.CharField(source="alert.severity")
    patient_id = serializers.UUIDField(source="alert.patient_id")
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationListApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    class QuerySerializer(serializers.Serializer[Any]):
        unread = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(
        parameters=[QuerySerializer],
        responses={200: NotificationSerializer(many=True)},
        tags=["clinician: alerts"],
        description="The caller's in-app notifications, newest first.",
    )
    def get(self, request: Request) -> Response:
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        notifications = selectors.notification_list(
            user=_user(request), unread=query.validated_data.get("unread")
        )
        paginator = PageNumberPagination()
        page = list(paginator.paginate_queryset(notifications, request, view=self) or [])
        return paginator.get_paginated_response(NotificationSerializer(page, many=True).data)


class NotificationReadApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        request=None, responses={200: NotificationSerializer}, tags=["clinician: alerts"]
    )
    def post(self, request: Request, notification_id: UUID) -> Response:
        notification = selectors.notification_get(
            user=_user(request), notification_id=notification_id
        )
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=timezone.now()
        )
        notification.refresh_from_db()
        return Response(NotificationSerializer(notification).data)


# --------------------------------------------------------------------------- rules


@functools.lru_cache(maxsize=16)
def _catalogue(language: str, unreviewed: frozenset[str]) -> tuple[dict[str, Any], str]:
    """The catalogue in `language` and its ETag. Keyed by which translations are still
    unreviewed too, as that changes the body (`english_beside`) while the process runs;
    the translations themselves are fixed for the life of the process."""
    messages, reminders = localized_catalogue_texts(language)
    body = catalogue(
        messages=messages,
        reminders=reminders,
        language=language,
        english_beside={key: SAFETY_TEXTS[key] for key in unreviewed},
    )
    etag = '"' + hashlib.sha256(canonical_json(body).encode()).hexdigest()[:32] + '"'
    return body, etag


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match per RFC 9110 §13.1.2: a list of tags or `*`, compared weakly (a proxy
    that compresses the body may hand the app back W/"...")."""
    tags = parse_etags(header)
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


class _CatalogueTemperatureSerializer(serializers.Serializer[Any]):
    min = serializers.FloatField()
    max = serializers.FloatField()


class _CatalogueVocabularySerializer(serializers.Serializer[Any]):
    choices = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Each multiple-choice answer of the safety check and its values.",
    )
    booleans = serializers.ListField(child=serializers.CharField())
    temperature_c = _CatalogueTemperatureSerializer()


class _CatalogueMessageVariantSerializer(serializers.Serializer[Any]):
    when = serializers.DictField(help_text="A condition, as in `condition`.")
    message = serializers.CharField(help_text="Key into `messages`.")


class _CatalogueRuleSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    version = serializers.IntegerField()
    severity = serializers.ChoiceField(choices=["emergency", "urgent", "routine"])
    title = serializers.CharField()
    # Popped off the class by DRF: it does not shadow `Field.source`.
    source = serializers.CharField()  # type: ignore[assignment]
    condition = serializers.DictField(
        help_text=(
            "An expression tree: `all`/`any` (lists), `not`, and leaves on the answers "
            "(`answer` with `is`, `in` or `not_in`, ...); `conventions` defines each."
        )
    )
    unless_fired = serializers.ListField(child=serializers.CharField())
    message = serializers.CharField(help_text="Key into `messages`.")
    message_variants = _CatalogueMessageVariantSerializer(many=True)
    history_branches_omitted = serializers.BooleanField()


class SafetyCatalogueSerializer(serializers.Serializer[Any]):
    version = serializers.CharField(help_text="`sha256:` of the rest; changes with any rule.")
    schema = serializers.IntegerField(help_text="Version of this document's layout.")
    severities = serializers.ListField(
        child=serializers.ChoiceField(choices=["emergency", "urgent", "routine"])
    )
    conventions = serializers.DictField(child=serializers.CharField())
    vocabulary = _CatalogueVocabularySerializer()
    rules = _CatalogueRuleSerializer(many=True)
    language = serializers.ChoiceField(
        choices=settings.LANGUAGES,
        help_text="The language of `messages` and the reminders.",
    )
    messages = serializers.DictField(child=serializers.CharField())
    reminder = serializers.CharField()
    fall_reminder = serializers.CharField()
    english_beside = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text=(
            "By key, the English of each message or reminder whose translation no "
            "clinician has reviewed yet: show it beside the translation."
        ),
    )


class _CatalogueQuerySerializer(serializers.Serializer[Any]):
    lang = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)


class SafetyRulesApi(APIView):
    """The inline rules and their messages, for the app to show advice even offline."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        parameters=[
            *CONDITIONAL_GET_PARAMETERS,
            OpenApiParameter(
                "lang",
                type=str,
                enum=[code for code, _name in settings.LANGUAGES],
                description="The language of the texts; without it, `Accept-Language`, "
                "else English.",
            ),
        ],
        responses={
            200: OpenApiResponse(SafetyCatalogueSerializer, description="The rule catalogue"),
            304: NOT_MODIFIED,
        },
        tags=["safety"],
        description=(
            "The red-flag rules the server evaluates in the request, as declarative data with "
            "their patient messages and a `version`, per language (each with its own "
            "`version` and ETag). Send `If-None-Match` with the ETag to get 304 when nothing "
            "changed."
        ),
    )
    def get(self, request: Request) -> Response:
        query = _CatalogueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        # Without `lang`, the Accept-Language the middleware activated (English if none).
        language = query.validated_data.get("lang") or current_language()
        unreviewed = frozenset(unreviewed_keys(language, SAFETY_TEXTS))
        body, etag = _catalogue(language, unreviewed)
        if _etag_matches(request.headers.get("If-None-Match", ""), etag):
            response = Response(status=304)
        else:
            response = Response(body)
        response["ETag"] = etag
        response["Cache-Control"] = "public, max-age=300"
        response["Content-Language"] = language
        patch_vary_headers(response, ("Accept-Language",))
        return response
