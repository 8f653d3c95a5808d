"""HTTP for programs: parse, validate, call a selector or service, serialize, audit reads.

One module, though over 500 lines: one thin view per operation of the programs API, each
a parse-call-serialize of a service or selector; the length is their number, not their
weight, and they share the scoping helpers and serializers at the top.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.conditional import CONDITIONAL_GET_PARAMETERS, NOT_MODIFIED
from config.pagination import PageNumberPagination, paginate
from config.serializers import StrictBooleanField, StrictIntegerField, StrictSerializer
from patients import selectors as patient_selectors
from patients.models import AuditEvent, Clinician, Patient, User
from patients.permissions import IsClinician, IsPatient
from patients.restriction import RECORD_RESTRICTED_RESPONSE, record_restricted_or
from patients.services import audit_reads, audit_record
from programs import selectors, services
from programs.media import selectors as media_selectors
from programs.media.selectors import MediaView
from programs.models import (
    MAX_DURATION_MINUTES,
    MAX_HOLD_SECONDS,
    MAX_REPS,
    MAX_SETS,
    AssignedExercise,
    BodyRegion,
    Category,
    Exercise,
    ExerciseMedia,
    ProgramTemplate,
    ProgressionProposal,
)

MAX_ADHERENCE_WEEKS = 26
MAX_PHASES = 12
MAX_EXERCISES_PER_PHASE = 30

# --------------------------------------------------------------------------- helpers


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _clinician(request: Request) -> Clinician:
    clinician: Clinician = _user(request).clinician
    return clinician


def _me(request: Request) -> Patient:
    return patient_selectors.patient_for_user(user=_user(request))


def _audit_read(
    request: Request, *, object_type: str, object_id: object, patient_id: UUID | str | None
) -> None:
    audit_record(
        actor=_user(request),
        action=AuditEvent.Action.READ,
        object_type=object_type,
        object_id=object_id,
        patient_id=patient_id,
        context=audit_context(request),
    )


class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField[Any]):
    """A UUID naming an object the caller may see; anything else is the same 400, so the
    answer does not tell which ids exist elsewhere."""

    def __init__(self, *, scope: Callable[[User], QuerySet[Any]], **kwargs: Any) -> None:
        self.scope = scope
        kwargs.setdefault("pk_field", serializers.UUIDField())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        return self.scope(self.context["request"].user)


def _visible_exercises(user: User) -> QuerySet[Exercise]:
    return Exercise.objects.visible_to(user)


def _visible_templates(user: User) -> QuerySet[ProgramTemplate]:
    return ProgramTemplate.objects.visible_to(user)


def _own_assigned_exercises(user: User) -> QuerySet[AssignedExercise]:
    return AssignedExercise.objects.visible_to(user).select_related("phase__assignment")


class DosageSerializer(serializers.Serializer[Any]):
    sets = serializers.IntegerField()
    reps = serializers.IntegerField(allow_null=True)
    hold_seconds = serializers.IntegerField(allow_null=True)
    duration_minutes = serializers.IntegerField(allow_null=True)
    sessions_per_week = serializers.IntegerField()
    notes = serializers.CharField()


class DosageVersionSerializer(DosageSerializer):
    effective_from = serializers.DateField()


class DosageInputSerializer(StrictSerializer):
    sets = StrictIntegerField(min_value=1, max_value=MAX_SETS)
    reps = StrictIntegerField(min_value=1, max_value=MAX_REPS, required=False, allow_null=True)
    hold_seconds = StrictIntegerField(
        min_value=1, max_value=MAX_HOLD_SECONDS, required=False, allow_null=True
    )
    duration_minutes = StrictIntegerField(
        min_value=1, max_value=MAX_DURATION_MINUTES, required=False, allow_null=True
    )
    sessions_per_week = StrictIntegerField(min_value=1, max_value=7)
    notes = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not self.partial and (errors := services.dosage_errors(attrs)):
            raise serializers.ValidationError(errors)
        return attrs


class DateRangeSerializer(serializers.Serializer[Any]):
    """`?from=&to=` on list endpoints (other query parameters, e.g. page, pass through)."""

    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)

    def to_internal_value(self, data: Any) -> Any:
        renamed = {}
        for name, target in (("from", "date_from"), ("to", "date_to")):
            if name in data:
                renamed[target] = data[name]
        try:
            return super().to_internal_value(renamed)
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {}
            raise serializers.ValidationError(
                {k.removeprefix("date_"): v for k, v in detail.items()}
            ) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("date_from"), attrs.get("date_to")
        if start and end and start > end:
            raise serializers.ValidationError({"from": gettext("Must not be after `to`.")})
        return attrs


DATE_RANGE_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First date, included"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last date, included"),
]


# The dates a program day can be asked about or changed on: anything else is a typo or a
# probe, and near year 1 or 9999 the week arithmetic overflows (a 500, not an answer).
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DAYS_AHEAD = 366


class BoundedDateField(serializers.DateField):
    """A date from 2000-01-01 to a year after the server's today."""

    def to_internal_value(self, value: Any) -> date:
        day: date = super().to_internal_value(value)
        latest = timezone.localdate() + timedelta(days=LATEST_DAYS_AHEAD)
        if not EARLIEST_DATE <= day <= latest:
            raise serializers.ValidationError(
                gettext("Must be from %(first)s to %(last)s.")
                % {"first": EARLIEST_DATE.isoformat(), "last": latest.isoformat()}
            )
        return day


class DayQuerySerializer(serializers.Serializer[Any]):
    date = BoundedDateField(required=False)


class WeeksQuerySerializer(serializers.Serializer[Any]):
    weeks = serializers.IntegerField(min_value=1, max_value=MAX_ADHERENCE_WEEKS, default=4)


# --------------------------------------------------------------------------- library


class MediaOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ExerciseMedia.Kind.choices)
    content_type = serializers.CharField(
        help_text="`image/jpeg`, `image/png`, `video/mp4`, `video/webm`."
    )
    url = serializers.SerializerMethodField(help_text="Signed link to the file; no token needed.")
    poster_url = serializers.SerializerMethodField(
        help_text="Videos: signed link to a still (JPEG) to show before playing; else null."
    )
    expires_at = serializers.DateTimeField(help_text="When `url` and `poster_url` stop working.")
    width = serializers.IntegerField(source="media.width", allow_null=True)
    height = serializers.IntegerField(source="media.height", allow_null=True)
    size_bytes = serializers.IntegerField(source="media.size_bytes")
    alt_text = serializers.CharField(source="media.alt_text", help_text="For screen readers.")

    @extend_schema_field(serializers.URLField())
    def get_url(self, view: MediaView) -> str:
        return str(self.context["request"].build_absolute_uri(view.url))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_poster_url(self, view: MediaView) -> str | None:
        if view.poster_url is None:
            return None
        return str(self.context["request"].build_absolute_uri(view.poster_url))


class ExerciseOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()
    instructions = serializers.CharField()
    body_region = serializers.ChoiceField(choices=BodyRegion.choices)
    category = serializers.ChoiceField(choices=Category.choices)
    media_url = serializers.CharField()
    clinic_id = serializers.UUIDField(allow_null=True, help_text="Null for the global library.")
    default_dosage = DosageSerializer(source="*")
    media = serializers.SerializerMethodField(
        help_text="Images and videos your clinic's patients see with it, in order."
    )

    @extend_schema_field(MediaOutputSerializer(many=True))
    def get_media(self, exercise: Exercise) -> list[dict[str, Any]]:
        views = [media_selectors.media_view(media) for media in exercise.media.all()]
        return list(MediaOutputSerializer(views, many=True, context=self.context).data)


class ExerciseListApi(APIView):
    permission_classes = [IsClinician]
    # Tells drf-spectacular the 200 is a page of results with page/page_size; the
    # `paginate` helper builds the same shape.
    pagination_class = PageNumberPagination

    @extend_schema_serializer(component_name="ExerciseListFilter")
    class FilterSerializer(serializers.Serializer[Any]):
        category = serializers.ChoiceField(choices=Category.choices, required=False)
        body_region = serializers.ChoiceField(choices=BodyRegion.choices, required=False)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: ExerciseOutputSerializer(many=True)},
        tags=["clinician: programs"],
        description="The exercise library: the global entries and your clinic's own.",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = media_selectors.with_media(
            selectors.exercise_list(user=_user(request), **filters.validated_data),
            clinic_id=_clinician(request).clinic_id,
        )
        response, _ = paginate(
            request=request,
            view=self,
            items=qs,
            serializer_class=ExerciseOutputSerializer,
            context={"request": request},
        )
        return response


class TemplateExerciseSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    position = serializers.IntegerField()
    exercise_id = serializers.UUIDField()
    name = serializers.CharField(source="exercise.name")
    category = serializers.CharField(source="exercise.category")
    body_region = serializers.CharField(source="exercise.body_region")
    dosage = DosageSerializer(source="*")


class TemplatePhaseSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    index = serializers.IntegerField(source="position")
    name = serializers.CharField()
    goals = serializers.CharField()
    length_weeks = serializers.IntegerField()
    exercises = TemplateExerciseSerializer(many=True, source="exercises.all")
    education_card_ids = serializers.SerializerMethodField(
        help_text="The education cards a patient is given with this phase."
    )

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_education_card_ids(self, phase: Any) -> list[str]:
        return [str(card.pk) for card in phase.education_cards.all()]


class TemplateListOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    condition = serializers.CharField()
    description = serializers.CharField()
    clinic_id = serializers.UUIDField(allow_null=True, help_text="Null for a global template.")
    phase_count = serializers.IntegerField()
    total_weeks = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class TemplateDetailOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    condition = serializers.CharField()
    description = serializers.CharField()
    citation = serializers.CharField(source="source", help_text="Where the shape comes from.")
    clinic_id = serializers.UUIDField(allow_null=True)
    pain_ceiling = serializers.IntegerField(
        help_text="The progression pain ceiling (0-10) a patient's copy starts with."
    )
    phases = TemplatePhaseSerializer(many=True, source="phases.all")
    created_at = serializers.DateTimeField()


class PrescribedInputSerializer(DosageInputSerializer):
    exercise_id = ScopedPrimaryKeyField(
        scope=_visible_exercises, error_messages={"does_not_exist": "Unknown exercise."}
    )


class PhaseInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120)
    goals = serializers.CharField(required=False, allow_blank=True)
    length_weeks = StrictIntegerField(min_value=1, max_value=52)
    exercises = PrescribedInputSerializer(many=True, allow_empty=False)

    def validate_exercises(self, value: list[Any]) -> list[Any]:
        if len(value) > MAX_EXERCISES_PER_PHASE:
            raise serializers.ValidationError(f"At most {MAX_EXERCISES_PER_PHASE} exercises.")
        return value


class TemplateInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    condition = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    pain_ceiling = StrictIntegerField(
        min_value=0,
        max_value=10,
        required=False,
        help_text="Progression pain ceiling (0-10) for patients' copies; default 3.",
    )
    phases = PhaseInputSerializer(many=True, allow_empty=False)

    def validate_phases(self, value: list[Any]) -> list[Any]:
        if len(value) > MAX_PHASES:
            raise serializers.ValidationError(f"At most {MAX_PHASES} phases.")
        return value


class TemplateListCreateApi(APIView):
    permission_classes = [IsClinician]
    pagination_class = PageNumberPagination  # documents the page (see ExerciseListApi)

    @extend_schema(
        responses={200: TemplateListOutputSerializer(many=True)},
        tags=["clinician: programs"],
        description="Program templates: the global (seeded) ones and your clinic's own.",
    )
    def get(self, request: Request) -> Response:
        qs = selectors.template_list(user=_user(request))
        response, _ = paginate(
            request=request, view=self, items=qs, serializer_class=TemplateListOutputSerializer
        )
        return response

    @extend_schema(
        request=TemplateInputSerializer,
        responses={
            201: TemplateDetailOutputSerializer,
            400: OpenApiResponse(description="Bad input, naming each field"),
            409: OpenApiResponse(description="A template with this name exists: existing_id"),
        },
        tags=["clinician: programs"],
        description="Build a clinic template: ordered phases, each with prescribed exercises.",
    )
    def post(self, request: Request) -> Response:
        data = _validated_template(request)
        template = services.template_create(
            clinician=_clinician(request), context=audit_context(request), **data
        )
        template = selectors.template_get(user=_user(request), template_id=template.pk)
        return Response(
            TemplateDetailOutputSerializer(template).data, status=status.HTTP_201_CREATED
        )


def _without(data: Any, key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def _validated_template(request: Request) -> dict[str, Any]:
    serializer = TemplateInputSerializer(data=request.data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    data["phases"] = [
        {
            **phase,
            "exercises": [
                {**_without(item, "exercise_id"), "exercise": item["exercise_id"]}
                for item in phase["exercises"]
            ],
        }
        for phase in data["phases"]
    ]
    return data


class TemplateDetailApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(responses={200: TemplateDetailOutputSerializer}, tags=["clinician: programs"])
    def get(self, request: Request, template_id: UUID) -> Response:
        template = selectors.template_get(user=_user(request), template_id=template_id)
        return Response(TemplateDetailOutputSerializer(template).data)


# --------------------------------------------------------------------------- patient: plan


class PlanAssignmentSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    start_date = serializers.DateField()


class PlanPhaseSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    index = serializers.IntegerField(source="position")
    name = serializers.CharField()
    goals = serializers.CharField()
    length_weeks = serializers.IntegerField()
    started_on = serializers.DateField()


class PlanExerciseSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(
        source="exercise.id", help_text="Send this as `exercise` in an exercise log."
    )
    name = serializers.CharField(source="exercise.name")
    instructions = serializers.CharField(source="exercise.instructions")
    category = serializers.ChoiceField(choices=Category.choices, source="exercise.category")
    body_region = serializers.ChoiceField(choices=BodyRegion.choices, source="exercise.body_region")
    media_url = serializers.SerializerMethodField(
        help_text=(
            "A link to the first demonstration image (signed, expires like `media[].url`), "
            "else a link the clinic gave, else empty."
        )
    )
    media = serializers.SerializerMethodField(
        help_text="Demonstration images and videos, in order (docs/app-developers.md)."
    )
    dosage = DosageVersionSerializer(help_text="The dosage in force that day.")
    due = serializers.BooleanField(help_text="Scheduled that day (see the due-day rule).")
    done = serializers.BooleanField(help_text="At least one exercise log that day.")
    log_ids = serializers.ListField(child=serializers.UUIDField())

    def _media(self, item: Any) -> list[MediaView]:
        media: dict[UUID, list[MediaView]] = self.context.get("media", {})
        return media.get(item.exercise.exercise_id, [])

    def get_media_url(self, item: Any) -> str:
        for view in self._media(item):
            if view.kind == ExerciseMedia.Kind.IMAGE:
                return str(self.context["request"].build_absolute_uri(view.url))
        return str(item.exercise.media_url)

    @extend_schema_field(MediaOutputSerializer(many=True))
    def get_media(self, item: Any) -> list[dict[str, Any]]:
        return list(MediaOutputSerializer(self._media(item), many=True, context=self.context).data)


class PlanOutputSerializer(serializers.Serializer[Any]):
    date = serializers.DateField(source="day")
    assignment = PlanAssignmentSerializer(allow_null=True)
    phase = PlanPhaseSerializer(allow_null=True)
    week = serializers.IntegerField(allow_null=True, help_text="Week within the phase, from 1.")
    planned_phase_end = serializers.DateField(allow_null=True, source="planned_end")
    exercises = PlanExerciseSerializer(many=True, source="items")


class MyPlanApi(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        parameters=[DayQuerySerializer, *CONDITIONAL_GET_PARAMETERS],
        responses={200: PlanOutputSerializer, 304: NOT_MODIFIED},
        tags=["patient: programs"],
        description=(
            "The phase in force on `date` (default: your local today) and the exercises due "
            "that day, each with the dosage in force that day and whether it is done. An "
            "exercise logged on a day it was not due is listed too, with `due: false`. An "
            "exercise with n sessions a week is due on days spread evenly through each 7 "
            "days counted from the phase's start (7 = daily; 3 = days 1, 3, 5)."
        ),
    )
    def get(self, request: Request) -> Response:
        query = DayQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        patient = _me(request)
        day = query.validated_data.get("date") or patient.local_today()
        plan = selectors.day_plan(patient=patient, day=day)
        media = media_selectors.media_for_patient_plan(
            patient=patient, exercise_ids=[item.exercise.exercise_id for item in plan.items]
        )
        _audit_read(
            request,
            object_type="program_plan",
            object_id=plan.assignment.pk if plan.assignment else "",
            patient_id=patient.pk,
        )
        return Response(
            PlanOutputSerializer(plan, context={"request": request, "media": media}).data
        )


# --------------------------------------------------------------------------- adherence


class WeekAdherenceSerializer(serializers.Serializer[Any]):
    start = serializers.DateField()
    end = serializers.DateField()
    prescribed = serializers.IntegerField(help_text="Sessions prescribed in these 7 days.")
    done = serializers.IntegerField(help_text="Sessions done, capped per exercise.")
    adherence = serializers.FloatField(allow_null=True, help_text="done / prescribed, 0-1.")


class AdherenceOutputSerializer(serializers.Serializer[Any]):
    today = serializers.DateField()
    adherence_7d = serializers.FloatField(allow_null=True)
    weeks = WeekAdherenceSerializer(many=True)


ADHERENCE_DESCRIPTION = (
    "Share of prescribed exercise sessions done, per 7-day window of complete days ending "
    "yesterday (most recent first). A session is one exercise on one day; sessions done "
    "count at most the sessions prescribed for each exercise in the window."
)


def _adherence_response(patient: Patient, weeks: int) -> Response:
    today = patient.local_today()
    result = selectors.adherence_weeks_for_patients(
        [patient.pk], weeks=weeks, today_by_patient={patient.pk: today}
    )[patient.pk]
    data = {"today": today, "adherence_7d": result[0].adherence, "weeks": result}
    return Response(AdherenceOutputSerializer(data).data)


class MyAdherenceApi(APIView):
    permission_classes = [IsPatient]

    @extend_schema(
        parameters=[WeeksQuerySerializer],
        responses={200: AdherenceOutputSerializer},
        tags=["patient: programs"],
        description=ADHERENCE_DESCRIPTION,
    )
    def get(self, request: Request) -> Response:
        query = WeeksQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        patient = _me(request)
        _audit_read(request, object_type="adherence", object_id="", patient_id=patient.pk)
        return _adherence_response(patient, query.validated_data["weeks"])


class PatientAdherenceApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        parameters=[WeeksQuerySerializer],
        responses={200: AdherenceOutputSerializer},
        tags=["clinician: programs"],
        description=ADHERENCE_DESCRIPTION,
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = patient_selectors.patient_get(user=_user(request), patient_id=patient_id)
        query = WeeksQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        _audit_read(request, object_type="adherence", object_id="", patient_id=patient.pk)
        return _adherence_response(patient, query.validated_data["weeks"])


# --------------------------------------------------------------------------- exercise logs


class ExerciseLogOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    exercise = serializers.UUIDField(source="assigned_exercise_id")
    exercise_name = serializers.CharField(source="assigned_exercise.name")
    date = serializers.DateField()
    sets_done = serializers.IntegerField()
    reps_done = serializers.IntegerField(allow_null=True)
    hold_seconds_done = serializers.IntegerField(allow_null=True)
    duration_minutes_done = serializers.IntegerField(allow_null=True)
    pain_during = serializers.IntegerField()
    difficulty = serializers.IntegerField()
    stopped_for_pain = serializers.BooleanField()
    notes = serializers.CharField()
    created_at = serializers.DateTimeField()


class ExerciseLogInputSerializer(StrictSerializer):
    id = serializers.UUIDField(
        required=False, allow_null=True, help_text="Generated by the app; makes retries safe."
    )
    exercise = ScopedPrimaryKeyField(
        scope=_own_assigned_exercises,
        error_messages={"does_not_exist": "Unknown exercise."},
        help_text="The `id` of an exercise in your plan.",
    )
    date = serializers.DateField(help_text="Your local date of the session.")
    sets_done = StrictIntegerField(min_value=0, max_value=50)
    reps_done = StrictIntegerField(min_value=0, max_value=500, required=False, allow_null=True)
    hold_seconds_done = StrictIntegerField(
        min_value=0, max_value=3600, required=False, allow_null=True
    )
    duration_minutes_done = StrictIntegerField(
        min_value=0, max_value=600, required=False, allow_null=True
    )
    pain_during = StrictIntegerField(min_value=0, max_value=10)
    difficulty = StrictIntegerField(min_value=0, max_value=10)
    stopped_for_pain = StrictBooleanField(required=False)
    notes = serializers.CharField(max_length=500, required=False, allow_blank=True, allow_null=True)


class ExerciseLogListCreateApi(APIView):
    permission_classes = [IsPatient]
    pagination_class = PageNumberPagination  # documents the page (see ExerciseListApi)
    throttle_scope = "logs"

    def get_throttles(self) -> list[Any]:
        from patients.throttling import ScopedThrottle

        # Writes are rate-limited per patient, like daily logs; reads are not.
        return [ScopedThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        parameters=DATE_RANGE_PARAMETERS,
        responses={200: ExerciseLogOutputSerializer(many=True)},
        tags=["patient: programs"],
    )
    def get(self, request: Request) -> Response:
        query = DateRangeSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        patient = _me(request)
        qs = selectors.exercise_log_list(
            user=_user(request), patient=patient, **query.validated_data
        )
        response, _ = paginate(
            request=request, view=self, items=qs, serializer_class=ExerciseLogOutputSerializer
        )
        audit_reads(
            actor=_user(request),
            object_type="exercise_log",
            patient_ids=[patient.pk],
            context=audit_context(request),
        )
        return response

    @extend_schema(
        request=ExerciseLogInputSerializer,
        responses={
            201: ExerciseLogOutputSerializer,
            200: OpenApiResponse(
                ExerciseLogOutputSerializer, description="A retry: already stored, unchanged"
            ),
            400: OpenApiResponse(description="Bad input, naming each field"),
            409: OpenApiResponse(description="This id exists with another body: existing_id"),
        },
        tags=["patient: programs"],
        description=(
            "Log one session of an exercise. The same `id` with the same body again answers "
            "the stored log and stores nothing new; with a different body, 409."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = ExerciseLogInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        patient = _me(request)
        log, created = services.exercise_log_create(
            patient=patient,
            assigned_exercise=data.pop("exercise"),
            day=data.pop("date"),
            log_id=data.pop("id", None),
            data=data,
            context=audit_context(request),
        )
        if not created:
            # A retry stores nothing, but it does show the stored log again.
            _audit_read(
                request, object_type="exercise_log", object_id=log.pk, patient_id=patient.pk
            )
        log = selectors.exercise_log_get(user=_user(request), log_id=log.pk)
        return Response(
            ExerciseLogOutputSerializer(log).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ExerciseLogDetailApi(APIView):
    permission_classes = [IsPatient]

    @extend_schema(responses={200: ExerciseLogOutputSerializer}, tags=["patient: programs"])
    def get(self, request: Request, log_id: UUID) -> Response:
        log = selectors.exercise_log_get(user=_user(request), log_id=log_id)
        _audit_read(
            request, object_type="exercise_log", object_id=log.pk, patient_id=log.patient_id
        )
        return Response(ExerciseLogOutputSerializer(log).data)


class PatientExerciseLogListApi(APIView):
    permission_classes = [IsClinician]
    pagination_class = PageNumberPagination  # documents the page (see ExerciseListApi)

    @extend_schema(
        parameters=DATE_RANGE_PARAMETERS,
        responses={200: ExerciseLogOutputSerializer(many=True)},
        tags=["clinician: programs"],
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = patient_selectors.patient_get(user=_user(request), patient_id=patient_id)
        query = DateRangeSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        qs = selectors.exercise_log_list(
            user=_user(request), patient=patient, **query.validated_data
        )
        response, _ = paginate(
            request=request, view=self, items=qs, serializer_class=ExerciseLogOutputSerializer
        )
        audit_reads(
            actor=_user(request),
            object_type="exercise_log",
            patient_ids=[patient.pk],
            context=audit_context(request),
        )
        return response


# --------------------------------------------------------------------------- clinician: program


class CurrentPhaseSerializer(serializers.Serializer[Any]):
    assignment_id = serializers.UUIDField()
    phase_id = serializers.UUIDField()
    phase_index = serializers.IntegerField()
    phase_name = serializers.CharField()
    week = serializers.IntegerField(help_text="Week within the phase, from 1.")
    length_weeks = serializers.IntegerField(help_text="Planned length of the phase.")
    started_on = serializers.DateField()


class ProgramExerciseSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(source="exercise.id")
    exercise_id = serializers.UUIDField(
        source="exercise.exercise_id", help_text="The library entry it was copied from."
    )
    name = serializers.CharField(source="exercise.name")
    instructions = serializers.CharField(source="exercise.instructions")
    category = serializers.CharField(source="exercise.category")
    body_region = serializers.CharField(source="exercise.body_region")
    dosage = DosageVersionSerializer(allow_null=True, help_text="In force on `date`.")
    dosage_history = DosageVersionSerializer(many=True)


class ProgramPhaseSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(source="phase.id")
    index = serializers.IntegerField(source="phase.position")
    name = serializers.CharField(source="phase.name")
    goals = serializers.CharField(source="phase.goals")
    length_weeks = serializers.IntegerField(source="phase.length_weeks")
    started_on = serializers.DateField(
        source="phase.started_on", allow_null=True, help_text="Null until moved to."
    )
    planned_end = serializers.DateField(allow_null=True)
    exercises = ProgramExerciseSerializer(many=True)


class ProgramOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(source="assignment.id")
    patient_id = serializers.UUIDField(source="assignment.patient_id")
    template_id = serializers.UUIDField(source="assignment.template_id", allow_null=True)
    name = serializers.CharField(source="assignment.name")
    condition = serializers.CharField(source="assignment.condition")
    start_date = serializers.DateField(source="assignment.start_date")
    ended_on = serializers.DateField(source="assignment.ended_on", allow_null=True)
    status = serializers.ChoiceField(choices=["active", "ended"], source="assignment.status")
    pain_ceiling = serializers.IntegerField(source="assignment.pain_ceiling")
    date = serializers.DateField(help_text="The day dosage and current phase are shown for.")
    current_phase = CurrentPhaseSerializer(allow_null=True)
    adherence_7d = serializers.FloatField(allow_null=True)
    phases = ProgramPhaseSerializer(many=True)


class PatientProgramOutputSerializer(serializers.Serializer[Any]):
    patient_id = serializers.UUIDField()
    date = serializers.DateField()
    program = ProgramOutputSerializer(allow_null=True)


def _program_response(
    request: Request, assignment_id: UUID, status_code: int = status.HTTP_200_OK
) -> Response:
    assignment = selectors.assignment_get(user=_user(request), assignment_id=assignment_id)
    view = selectors.program_view(assignment=assignment, on=assignment.patient.local_today())
    return Response(ProgramOutputSerializer(view).data, status=status_code)


class PatientProgramApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        parameters=[DayQuerySerializer],
        responses={200: PatientProgramOutputSerializer},
        tags=["clinician: programs"],
        description=(
            "The patient's active program (else their latest), with the dosage in force on "
            "`date` (default: the patient's local today). `program` is null if none."
        ),
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = patient_selectors.patient_get(user=_user(request), patient_id=patient_id)
        query = DayQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        day = query.validated_data.get("date") or patient.local_today()
        view = selectors.program_for_patient(patient=patient, on=day)
        _audit_read(
            request,
            object_type="program_assignment",
            object_id=view.assignment.pk if view else "",
            patient_id=patient.pk,
        )
        data = {"patient_id": patient.pk, "date": day, "program": view}
        return Response(PatientProgramOutputSerializer(data).data)


class AssignmentCreateApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="AssignmentCreateInput")
    class InputSerializer(StrictSerializer):
        template_id = ScopedPrimaryKeyField(
            scope=_visible_templates, error_messages={"does_not_exist": "Unknown template."}
        )
        start_date = serializers.DateField(
            required=False, help_text="Default: the patient's local today."
        )
        pain_ceiling = StrictIntegerField(min_value=0, max_value=10, required=False)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: ProgramOutputSerializer,
            400: OpenApiResponse(description="Bad input, naming each field"),
            409: record_restricted_or("An active program exists: existing_id"),
        },
        tags=["clinician: programs"],
        description=(
            "Give the patient their own copy of a template from `start_date`. Later edits "
            "of the template never change it. One active program per patient."
        ),
    )
    def post(self, request: Request, patient_id: UUID) -> Response:
        patient = patient_selectors.patient_get(user=_user(request), patient_id=patient_id)
        serializer = self.InputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        assignment = services.assignment_create(
            patient=patient,
            template=data["template_id"],
            by=_clinician(request),
            start_date=data.get("start_date"),
            pain_ceiling=data.get("pain_ceiling"),
            context=audit_context(request),
        )
        return _program_response(request, assignment.pk, status.HTTP_201_CREATED)


class AssignmentDetailApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="AssignmentDetailInput")
    class InputSerializer(StrictSerializer):
        pain_ceiling = StrictIntegerField(
            min_value=0,
            max_value=10,
            help_text="Highest pain during exercise that still counts towards progression.",
        )

    @extend_schema(responses={200: ProgramOutputSerializer}, tags=["clinician: programs"])
    def get(self, request: Request, assignment_id: UUID) -> Response:
        response = _program_response(request, assignment_id)
        _audit_read(
            request,
            object_type="program_assignment",
            object_id=assignment_id,
            patient_id=response.data["patient_id"],
        )
        return response

    @extend_schema(
        request=InputSerializer,
        responses={200: ProgramOutputSerializer, 409: RECORD_RESTRICTED_RESPONSE},
        tags=["clinician: programs"],
    )
    def patch(self, request: Request, assignment_id: UUID) -> Response:
        assignment = selectors.assignment_get(user=_user(request), assignment_id=assignment_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.assignment_update(
            assignment=assignment,
            by=_clinician(request),
            pain_ceiling=serializer.validated_data["pain_ceiling"],
            context=audit_context(request),
        )
        return _program_response(request, assignment_id)


class AssignmentEndApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="AssignmentEndInput")
    class InputSerializer(StrictSerializer):
        on = BoundedDateField(
            required=False, help_text="First day off the program; default the patient's today."
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: ProgramOutputSerializer, 409: RECORD_RESTRICTED_RESPONSE},
        tags=["clinician: programs"],
        description="End the program (so another can be assigned). Pending proposals close.",
    )
    def post(self, request: Request, assignment_id: UUID) -> Response:
        assignment = selectors.assignment_get(user=_user(request), assignment_id=assignment_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.assignment_end(
            assignment=assignment,
            by=_clinician(request),
            on=serializer.validated_data.get("on"),
            context=audit_context(request),
        )
        return _program_response(request, assignment_id)


class DosageChangeApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="DosageChangeInput")
    class InputSerializer(DosageInputSerializer):
        effective_from = BoundedDateField(
            help_text="First day of the new dosage; earlier days keep theirs."
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: ProgramExerciseSerializer, 409: RECORD_RESTRICTED_RESPONSE},
        tags=["clinician: programs"],
        description=(
            "Change this patient's dosage of one exercise from `effective_from` (today or "
            "later). Fields not sent keep the value in force on that day."
        ),
    )
    def post(self, request: Request, assigned_exercise_id: UUID) -> Response:
        exercise = selectors.assigned_exercise_get(
            user=_user(request), assigned_exercise_id=assigned_exercise_id
        )
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        effective_from = changes.pop("effective_from", None)
        if effective_from is None:
            raise serializers.ValidationError({"effective_from": ["This field is required."]})
        if not changes:
            raise serializers.ValidationError(
                {"non_field_errors": ["Send at least one dosage field to change."]}
            )
        services.dosage_change(
            assigned_exercise=exercise,
            by=_clinician(request),
            effective_from=effective_from,
            changes=changes,
            context=audit_context(request),
        )
        view = selectors.assigned_exercise_view(
            user=_user(request), assigned_exercise_id=exercise.pk, on=effective_from
        )
        return Response(ProgramExerciseSerializer(view).data)


# --------------------------------------------------------------------------- proposals


class PhaseBriefSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    index = serializers.IntegerField(source="position")
    name = serializers.CharField()


class ProposalOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    patient_id = serializers.UUIDField(source="assignment.patient_id")
    patient_name = serializers.CharField(source="assignment.patient.full_name")
    assignment_id = serializers.UUIDField()
    from_phase = PhaseBriefSerializer()
    to_phase = PhaseBriefSerializer()
    status = serializers.ChoiceField(choices=ProgressionProposal.Status.choices)
    evaluated_on = serializers.DateField()
    basis = serializers.JSONField(help_text="The inputs that made the rule fire.")
    created_at = serializers.DateTimeField()
    effective_from = serializers.DateField(allow_null=True)
    decided_by_id = serializers.UUIDField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    note = serializers.CharField()


class ProposalListApi(APIView):
    permission_classes = [IsClinician]
    pagination_class = PageNumberPagination  # documents the page (see ExerciseListApi)

    @extend_schema_serializer(component_name="ProposalListFilter")
    class FilterSerializer(serializers.Serializer[Any]):
        patient = serializers.UUIDField(required=False)
        status = serializers.ChoiceField(
            choices=[*ProgressionProposal.Status.values, "all"], default="pending"
        )

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: ProposalOutputSerializer(many=True)},
        tags=["clinician: programs"],
        description=(
            "Phase progression proposals for your clinic's patients, oldest first. A "
            "proposal to move to the next phase is made (never applied: a clinician accepts "
            "or declines) when, on the day evaluated: the phase has run its planned length "
            "(`length_weeks`) and has a next phase; every session prescribed in the 7 days "
            "before was done; every one was done with pain during at or under the "
            "program's `pain_ceiling` (default 3/10) and none was stopped for pain "
            "(`stopped_for_pain` blocks the move); and the daily pain the day after the "
            "last session was not above the patient's 7-day mean. A declined proposal is "
            "not raised again for the same phase for 7 days. `basis` holds the figures."
        ),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data["status"]
        qs = selectors.proposal_list(
            user=_user(request),
            patient_id=filters.validated_data.get("patient"),
            status=None if wanted == "all" else wanted,
        )
        response, page = paginate(
            request=request, view=self, items=qs, serializer_class=ProposalOutputSerializer
        )
        audit_reads(
            actor=_user(request),
            object_type="progression_proposal",
            patient_ids=[proposal.assignment.patient_id for proposal in page],
            context=audit_context(request),
        )
        return response


class ProposalDetailApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(responses={200: ProposalOutputSerializer}, tags=["clinician: programs"])
    def get(self, request: Request, proposal_id: UUID) -> Response:
        proposal = selectors.proposal_get(user=_user(request), proposal_id=proposal_id)
        _audit_read(
            request,
            object_type="progression_proposal",
            object_id=proposal.pk,
            patient_id=proposal.assignment.patient_id,
        )
        return Response(ProposalOutputSerializer(proposal).data)


class ProposalAcceptApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="ProposalAcceptInput")
    class InputSerializer(StrictSerializer):
        on = serializers.DateField(
            required=False, help_text="First day of the next phase; default the patient's today."
        )
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: ProposalOutputSerializer,
            409: record_restricted_or("Already declined, or the program moved on"),
        },
        tags=["clinician: programs"],
        description="Move the program to the proposed phase from `on`.",
    )
    def post(self, request: Request, proposal_id: UUID) -> Response:
        proposal = selectors.proposal_get(user=_user(request), proposal_id=proposal_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.proposal_accept(
            proposal=proposal,
            by=_clinician(request),
            on=serializer.validated_data.get("on"),
            note=serializer.validated_data.get("note", ""),
            context=audit_context(request),
        )
        proposal = selectors.proposal_get(user=_user(request), proposal_id=proposal_id)
        return Response(ProposalOutputSerializer(proposal).data)


class ProposalDeclineApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="ProposalDeclineInput")
    class InputSerializer(StrictSerializer):
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: ProposalOutputSerializer,
            409: record_restricted_or("Already accepted"),
        },
        tags=["clinician: programs"],
        description="Keep the patient in their phase.",
    )
    def post(self, request: Request, proposal_id: UUID) -> Response:
        proposal = selectors.proposal_get(user=_user(request), proposal_id=proposal_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.proposal_decline(
            proposal=proposal,
            by=_clinician(request),
            note=serializer.validated_data.get("note", ""),
            context=audit_context(request),
        )
        proposal = selectors.proposal_get(user=_user(request), proposal_id=proposal_id)
        return Response(ProposalOutputSerializer(proposal).data)
