"""Daily logs, progress, the patient's profile and the clinician's caseload."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.conditional import (
    CONDITIONAL_GET_PARAMETERS,
    EDITED_ETAG_HEADER,
    IF_MATCH,
    NOT_MODIFIED,
    PRECONDITION_FAILED,
    check_if_match,
    version_etag,
)
from config.pagination import PageNumberPagination, paginate
from config.replica import replica_reads
from config.schema import ConflictErrorSerializer
from config.serializers import (
    FieldsOnceMixin,
    StrictBooleanField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
)
from patients import selectors as patient_selectors
from patients.consent import consent_allows
from patients.models import AuditEvent, ConsentKind, Patient, User
from patients.permissions import IsClinician, IsPatient
from patients.services import audit_record
from patients.throttling import ScopedThrottle
from rehab.models import DailyLog
from rehab.safety import vocab
from rehab.selectors import logs as selectors
from rehab.services import logs as services
from rehab.views.plain_logs import PlainInput, PlainOutput


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _score(**kwargs: Any) -> StrictIntegerField:
    return StrictIntegerField(min_value=0, max_value=10, **kwargs)


def _choice(choices: tuple[str, ...]) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=list(choices), required=False, allow_null=True)


class SafetySerializer(StrictSerializer):
    """The daily safety check; every answer optional, absent meaning "no"."""

    saddle_numbness = _choice(vocab.SYMPTOM_ANSWERS)
    bladder_change = _choice(vocab.SYMPTOM_ANSWERS)
    bowel_change = _choice(vocab.SYMPTOM_ANSWERS)
    sexual_function_change = _choice(vocab.SEXUAL_FUNCTION_ANSWERS)
    both_legs = _choice(vocab.SYMPTOM_ANSWERS)
    weakness = _choice(vocab.WEAKNESS_ANSWERS)
    numbness_spread = _choice(vocab.NUMBNESS_SPREAD_ANSWERS)
    walking_unsteady_new = StrictBooleanField(required=False, allow_null=True)
    fever = StrictBooleanField(required=False, allow_null=True)
    temperature_c = StrictFloatField(
        required=False,
        allow_null=True,
        min_value=vocab.TEMPERATURE_MIN_C,
        max_value=vocab.TEMPERATURE_MAX_C,
    )
    feel_very_unwell = StrictBooleanField(required=False, allow_null=True)
    injury = _choice(vocab.INJURY_ANSWERS)
    pain_new_or_rapidly_worse = StrictBooleanField(required=False, allow_null=True)
    unexplained_weight_loss = StrictBooleanField(required=False, allow_null=True)
    thoracic_or_band_pain = StrictBooleanField(required=False, allow_null=True)


class LogInputSerializer(FieldsOnceMixin, StrictSerializer):
    id = serializers.UUIDField(required=False)
    date = serializers.DateField()
    pain = _score()
    leg_pain = _score(required=False, allow_null=True)
    back_pain = _score(required=False, allow_null=True)
    worst_pain = _score(required=False, allow_null=True)
    leg_pain_side = serializers.ChoiceField(
        choices=DailyLog.LegPainSide.choices, required=False, allow_null=True
    )
    function = _score(required=False, allow_null=True)
    sleep = serializers.ChoiceField(choices=DailyLog.Sleep.choices, required=False, allow_null=True)
    notes = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, allow_null=True, trim_whitespace=False
    )
    safety = SafetySerializer(required=False, allow_null=True)


class LogPatchSerializer(LogInputSerializer):
    id = None  # type: ignore[assignment]
    date = serializers.DateField(required=False)
    pain = _score(required=False)


class SafetyAdviceSerializer(serializers.Serializer[Any]):
    severity = serializers.ChoiceField(choices=["emergency", "urgent", "routine"])
    rules = serializers.ListField(child=serializers.CharField())
    message = serializers.CharField()
    note = serializers.CharField(required=False)
    # The key of the message shown and its language: what alerts record the patient was
    # told, and what an app may look up in its own copy of the rule catalogue.
    message_key = serializers.CharField(required=False)
    language = serializers.CharField(required=False)
    # The English of `message` (and `note`) when their translation is not reviewed yet by a
    # clinician: the app shows it beside (docs/app-developers.md § Languages).
    message_en = serializers.CharField(required=False)
    note_en = serializers.CharField(required=False)


class LogConflictSerializer(ConflictErrorSerializer):
    existing_id = serializers.UUIDField()
    # What this body would have told the patient (docs/safety-path.md, "Refused
    # submissions"): its urgent and emergency red flags raise alerts on the existing log.
    safety_advice = SafetyAdviceSerializer(allow_null=True, required=False)
    safety_reminder = serializers.CharField(allow_null=True, required=False)


class LogOutputSerializer(FieldsOnceMixin, serializers.ModelSerializer[DailyLog]):
    safety = SafetySerializer()
    safety_advice = SafetyAdviceSerializer(allow_null=True)
    # Our addition (extra fields are allowed; docs/app-developers.md): the "if this gets
    # worse, go to the Emergency Department now" reminders (a mark applied, a fall).
    safety_reminder = serializers.CharField(allow_null=True, read_only=True)

    class Meta:
        model = DailyLog
        fields = (
            "id",
            "date",
            "pain",
            "leg_pain",
            "back_pain",
            "worst_pain",
            "leg_pain_side",
            "function",
            "sleep",
            "notes",
            "safety",
            "safety_advice",
            "safety_reminder",
            "version",
            "created_at",
            "updated_at",
        )


class DateRangeSerializer(serializers.Serializer[Any]):
    """`?from=&to=` (inclusive ISO dates)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # `from` is a Python keyword, so the fields are added by name.
        self.fields["from"] = serializers.DateField(required=False)
        self.fields["to"] = serializers.DateField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start and end and start > end:
            raise serializers.ValidationError({"from": gettext("Must be on or before `to`.")})
        return attrs


# The everyday body and log without DRF's per-field machinery (plain_logs.py).
plain_input = PlainInput(LogInputSerializer)
plain_output = PlainOutput(LogOutputSerializer)


def log_data(log: DailyLog) -> dict[str, Any]:
    """`LogOutputSerializer(log).data`, built directly for a log of the usual types."""
    data = plain_output(log)
    return LogOutputSerializer(log).data if data is None else data


DATE_RANGE_PARAMETERS = [
    OpenApiParameter("from", type=str, description="first date, YYYY-MM-DD (inclusive)"),
    OpenApiParameter("to", type=str, description="last date, YYYY-MM-DD (inclusive)"),
]


def _date_range(request: Request) -> dict[str, Any]:
    params = DateRangeSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    return {
        "date_from": params.validated_data.get("from"),
        "date_to": params.validated_data.get("to"),
    }


# --------------------------------------------------------------------------- patient


class LogListCreateApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsPatient]
    throttle_scope = "logs"

    def get_throttles(self) -> list[Any]:
        # Writes are rate-limited per patient; reading one's own list is not.
        return [ScopedThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        request=LogInputSerializer,
        responses={
            201: LogOutputSerializer,
            200: OpenApiResponse(LogOutputSerializer, description="A retry: nothing new stored"),
            400: OpenApiResponse(description="Invalid input, named per field"),
            409: OpenApiResponse(
                LogConflictSerializer,
                description=(
                    "Conflict: the id exists with another body, or another log exists for "
                    "the date. The body names `existing_id` and still carries this body's "
                    "`safety_advice`: its urgent and emergency red flags raise alerts on "
                    "the existing log."
                ),
            ),
        },
        tags=["patient: daily logs"],
        description=(
            "Store today's (or a recent day's) log. Send a client-generated `id` to make "
            "retries safe. `safety_advice` in the answer tells the patient what to do now."
        ),
    )
    def post(self, request: Request) -> Response:
        patient = patient_selectors.patient_own_get(user=_user(request))
        # The everyday body skips DRF's field machinery; any other goes through the
        # serializer, which validates it or names every problem (plain_logs.py).
        data = plain_input(request.data)
        if data is None:
            serializer = LogInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = dict(serializer.validated_data)
        log_id = data.pop("id", None)
        result = services.log_create(
            patient=patient,
            actor=_user(request),
            data=data,
            log_id=log_id,
            context=audit_context(request),
        )
        return Response(
            log_data(result.log),
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(
        parameters=DATE_RANGE_PARAMETERS,
        responses={200: LogOutputSerializer(many=True)},
        tags=["patient: daily logs"],
    )
    def get(self, request: Request) -> Response:
        patient = patient_selectors.patient_for_user(user=_user(request))
        logs = selectors.log_list(user=_user(request), patient=patient, **_date_range(request))
        response, _ = paginate(
            request=request, view=self, items=logs, serializer_class=LogOutputSerializer
        )
        audit_record(
            actor=_user(request),
            action=AuditEvent.Action.READ,
            object_type="daily_log_list",
            patient=patient,
            context=audit_context(request),
        )
        return response


class LogDetailApi(APIView):
    permission_classes = [IsPatient]
    throttle_scope = "logs"

    def get_throttles(self) -> list[Any]:
        return [ScopedThrottle()] if self.request.method == "PATCH" else []

    @extend_schema(
        parameters=[EDITED_ETAG_HEADER],
        responses={200: LogOutputSerializer},
        tags=["patient: daily logs"],
    )
    def get(self, request: Request, log_id: UUID) -> Response:
        log = selectors.log_get(user=_user(request), log_id=log_id)
        audit_record(
            actor=_user(request),
            action=AuditEvent.Action.READ,
            object_type="daily_log",
            object_id=log.pk,
            patient=log.patient,
            context=audit_context(request),
        )
        return Response(log_data(log), headers={"ETag": version_etag(log.version)})

    @extend_schema(
        request=LogPatchSerializer,
        parameters=[IF_MATCH, EDITED_ETAG_HEADER],
        responses={
            200: LogOutputSerializer,
            409: OpenApiResponse(LogConflictSerializer, description="Date taken"),
            412: OpenApiResponse(description=PRECONDITION_FAILED),
        },
        tags=["patient: daily logs"],
        description="Edit a log. The previous version is kept and the safety rules run again.",
    )
    def patch(self, request: Request, log_id: UUID) -> Response:
        log = selectors.log_get(user=_user(request), log_id=log_id)
        serializer = LogPatchSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            # Locked until the edit is written: no other edit between the check and it.
            current = DailyLog.objects.select_for_update(of=("self",)).get_by_id(log.pk)
            check_if_match(request, version=current.version)
            log = services.log_update(
                log=log,
                actor=_user(request),
                data=serializer.validated_data,
                context=audit_context(request),
            )
        return Response(log_data(log), headers={"ETag": version_etag(log.version)})


class CareTeamNameSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField(source="user.get_full_name")
    role = serializers.CharField()


class MeApi(APIView):
    permission_classes = [IsPatient]

    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.UUIDField()
        email = serializers.EmailField()
        first_name = serializers.CharField()
        last_name = serializers.CharField()
        date_of_birth = serializers.DateField()
        timezone = serializers.CharField()
        language = serializers.CharField(
            help_text="The patient's language setting (`/me/settings/`); blank: the phone's."
        )
        local_today = serializers.DateField()
        condition = serializers.CharField()
        affected_side = serializers.CharField()
        clinic = serializers.CharField(source="clinic.name")
        care_team = CareTeamNameSerializer(many=True, source="care_team.all")
        sensitive_questions = serializers.SerializerMethodField(
            help_text=(
                "Whether the app asks the daily log's optional sensitive questions "
                "(`safety.sexual_function_change`): false while the clinic asks for the "
                "`sensitive_questions` consent and the patient has not given it."
            )
        )

        def get_sensitive_questions(self, patient: Patient) -> bool:
            return consent_allows(patient=patient, kind=ConsentKind.SENSITIVE_QUESTIONS)

    @extend_schema(responses={200: OutputSerializer}, tags=["patient: profile"])
    def get(self, request: Request) -> Response:
        patient = patient_selectors.patient_for_user(user=_user(request))
        audit_record(
            actor=_user(request),
            action=AuditEvent.Action.READ,
            object_type="profile",
            patient=patient,
            context=audit_context(request),
        )
        return Response(self.OutputSerializer(patient).data)


class ProgressOutputSerializer(serializers.Serializer[Any]):
    class PointSerializer(serializers.Serializer[Any]):
        date = serializers.DateField()
        pain = serializers.IntegerField()
        leg_pain = serializers.IntegerField(allow_null=True)
        back_pain = serializers.IntegerField(allow_null=True)
        function = serializers.IntegerField(allow_null=True)

    baseline_pain = serializers.FloatField(allow_null=True, source="figures.baseline_pain")
    current_pain_7d = serializers.FloatField(allow_null=True, source="figures.current_pain_7d")
    change = serializers.FloatField(allow_null=True, source="figures.change")
    percent_change = serializers.FloatField(allow_null=True, source="figures.percent_change")
    mcid_reached = serializers.BooleanField(source="figures.mcid_reached")
    days_logged = serializers.IntegerField(source="figures.days_logged")
    series = PointSerializer(many=True)


def _progress_response(request: Request, patient: Patient, **window: Any) -> Response:
    summary = selectors.progress_get(patient=patient, **window)
    audit_record(
        actor=_user(request),
        action=AuditEvent.Action.READ,
        object_type="progress",
        patient=patient,
        context=audit_context(request),
    )
    return Response(ProgressOutputSerializer(summary).data)


class MeProgressApi(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        parameters=CONDITIONAL_GET_PARAMETERS,
        responses={200: ProgressOutputSerializer, 304: NOT_MODIFIED},
        tags=["patient: profile"],
    )
    @replica_reads
    def get(self, request: Request) -> Response:
        patient = patient_selectors.patient_for_user(user=_user(request))
        return _progress_response(request, patient)


# --------------------------------------------------------------------------- clinician


class PatientLogListApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    @extend_schema(
        parameters=DATE_RANGE_PARAMETERS,
        responses={200: LogOutputSerializer(many=True)},
        tags=["clinician: patients"],
    )
    @replica_reads
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = patient_selectors.patient_get(user=_user(request), patient_id=patient_id)
        logs = selectors.log_list(user=_user(request), patient=patient, **_date_range(request))
        response, _ = paginate(
            request=request, view=self, items=logs, serializer_class=LogOutputSerializer
        )
        audit_record(
            actor=_user(request),
            action=AuditEvent.Action.READ,
            object_type="daily_log_list",
            patient=patient,
            context=audit_context(request),
        )
        return response


class PatientProgressApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        parameters=DATE_RANGE_PARAMETERS,
        responses={200: ProgressOutputSerializer},
        tags=["clinician: patients"],
        description="As /me/progress/; `from`/`to` window the series (figures use all logs).",
    )
    @replica_reads
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = patient_selectors.patient_get(user=_user(request), patient_id=patient_id)
        window = _date_range(request)
        return _progress_response(
            request, patient, series_from=window["date_from"], series_to=window["date_to"]
        )
