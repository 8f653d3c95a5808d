"""Clinical record API: clinician endpoints under /clinician/patients/{id}/, and the
patient's own questionnaires under /me/questionnaires/.

Every view reads the patient through `patient_get` (404 outside the caller's clinic),
audits what it shows, and leaves writes (and their audit events) to the services.

One module, though over 500 lines: one thin view per operation of the clinical record
API (interventions, tests, imaging, diagnoses, marks, questionnaires, timeline), sharing
the patient look-up and the audit of reads.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.audit import audit_context
from config.conditional import CONDITIONAL_GET_PARAMETERS, NOT_MODIFIED
from config.pagination import PageNumberPagination, paginate
from config.serializers import StrictBooleanField, StrictIntegerField, StrictSerializer
from patients.models import AuditEvent, Clinician, Patient, User
from patients.permissions import IsClinician, IsPatient
from patients.restriction import RECORD_RESTRICTED_RESPONSE, record_restricted_or
from patients.selectors import patient_for_user, patient_get
from patients.services import audit_record
from rehab.models import (
    AssessedMark,
    Diagnosis,
    ImagingFinding,
    Intervention,
    ProvocativeTest,
    QuestionnaireDue,
)
from rehab.selectors import record as selectors
from rehab.services import record as services

CLINICIAN_TAG = "clinician: clinical record"
PATIENT_TAG = "patient: questionnaires"

# --------------------------------------------------------------------------- plumbing


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # IsClinician / IsPatient let only signed-in users through
    return user


def _clinician_patient(request: Request, patient_id: UUID) -> Patient:
    return patient_get(user=_user(request), patient_id=patient_id)


def _audit_read(request: Request, patient: Patient, object_type: str) -> None:
    audit_record(
        actor=_user(request),
        action=AuditEvent.Action.READ,
        object_type=object_type,
        patient=patient,
        context=audit_context(request),
    )


def _clinician(request: Request) -> Clinician:
    return _user(request).clinician


class OptionalChoiceField(serializers.ChoiceField):
    """An optional choice where null and absent both mean "not recorded" (stored as "")."""

    def __init__(self, choices: Any, **kwargs: Any) -> None:
        super().__init__(choices, required=False, allow_null=True, **kwargs)


def _text(max_length: int, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        max_length=max_length, required=False, allow_blank=True, default="", **kwargs
    )


class ClinicianNameField(serializers.CharField):
    """A clinician foreign key shown as their name (null if the account is gone)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value: Any) -> str:
        return str(value.user.get_full_name())


# --------------------------------------------------------------------------- interventions


class InterventionOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    patient_id = serializers.UUIDField()
    date = serializers.DateField()
    kind = serializers.CharField()
    description = serializers.CharField()
    agent = serializers.CharField()
    target = serializers.CharField()
    side = serializers.CharField(help_text="left, right, bilateral, midline or empty")
    guidance = serializers.CharField(help_text="ultrasound, fluoroscopy, ct, landmark or empty")
    performed_by = serializers.CharField()
    course_id = serializers.UUIDField()
    session_number = serializers.IntegerField()
    created_by = ClinicianNameField()
    created_at = serializers.DateTimeField()


class InterventionsApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="InterventionInput")
    class InputSerializer(StrictSerializer):
        date = serializers.DateField()
        kind = serializers.ChoiceField(choices=Intervention.Kind.choices)
        description = _text(2000)
        agent = _text(200)
        target = _text(200)
        side = OptionalChoiceField(Intervention.Side.choices)
        guidance = OptionalChoiceField(Intervention.Guidance.choices)
        performed_by = _text(200)
        course_id = serializers.UUIDField(
            required=False,
            allow_null=True,
            help_text="Join the course of an earlier session (its `course_id`).",
        )
        session_number = StrictIntegerField(
            required=False, allow_null=True, min_value=1, max_value=100
        )

    OutputSerializer = InterventionOutputSerializer

    @extend_schema(
        responses={200: InterventionOutputSerializer(many=True)},
        tags=[CLINICIAN_TAG],
        summary="List the patient's interventions, newest first",
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        _audit_read(request, patient, "intervention")
        items = selectors.intervention_list(user=_user(request), patient=patient)
        return paginate(
            request=request, view=self, items=items, serializer_class=self.OutputSerializer
        )[0]

    @extend_schema(
        request=InputSerializer,
        responses={
            201: InterventionOutputSerializer,
            400: OpenApiResponse(description="Bad input"),
            409: record_restricted_or("The course's session was recorded a moment ago"),
        },
        tags=[CLINICIAN_TAG],
        summary="Record an intervention (and schedule its questionnaires)",
    )
    def post(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        intervention = services.intervention_create(
            patient=patient,
            clinician=_clinician(request),
            date=data["date"],
            kind=data["kind"],
            description=data["description"],
            agent=data["agent"],
            target=data["target"],
            side=data.get("side") or "",
            guidance=data.get("guidance") or "",
            performed_by=data["performed_by"],
            course_id=data.get("course_id"),
            session_number=data.get("session_number"),
            context=audit_context(request),
        )
        return Response(self.OutputSerializer(intervention).data, status=status.HTTP_201_CREATED)


# --------------------------------------------------------------------------- provocative tests


class ProvocativeTestOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    test = serializers.CharField()
    side = serializers.CharField()
    result = serializers.CharField()
    concordant = serializers.BooleanField(allow_null=True)
    symptom_location = serializers.CharField()
    provoked_pain = serializers.IntegerField(allow_null=True)
    angle_deg = serializers.IntegerField(allow_null=True)
    notes = serializers.CharField()
    examiner = ClinicianNameField()
    performed_at = serializers.DateTimeField()


class ProvocativeTestInputSerializer(StrictSerializer):
    test = serializers.ChoiceField(choices=ProvocativeTest.Test.choices)
    side = serializers.ChoiceField(choices=ProvocativeTest.Side.choices)
    result = serializers.ChoiceField(choices=ProvocativeTest.Result.choices)
    concordant = StrictBooleanField(
        required=False,
        allow_null=True,
        help_text="Reproduced the patient's familiar pain; null if not applicable.",
    )
    symptom_location = _text(200)
    provoked_pain = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=10)
    angle_deg = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=120,
        help_text="Straight leg raise tests only (slr, crossed_slr).",
    )
    notes = _text(2000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("angle_deg") is not None and attrs["test"] not in ProvocativeTest.ANGLE_TESTS:
            raise serializers.ValidationError(
                {"angle_deg": ["Only a straight leg raise (slr, crossed_slr) has an angle."]}
            )
        return attrs


class ProvocativeTestsApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="ProvocativeTestsInput")
    class InputSerializer(StrictSerializer):
        performed_at = serializers.DateTimeField()
        examiner_id = serializers.UUIDField(
            required=False, allow_null=True, help_text="Defaults to the caller."
        )
        tests: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=ProvocativeTestInputSerializer(),
            allow_empty=False,
            max_length=len(ProvocativeTest.Test) * len(ProvocativeTest.Side),
        )

        def validate_tests(self, tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
            pairs = [(t["test"], t["side"]) for t in tests]
            twice = sorted(
                {f"{test} {side}" for test, side in pairs if pairs.count((test, side)) > 1}
            )
            if twice:
                raise serializers.ValidationError(
                    f"One entry per test per side; listed twice: {', '.join(twice)}."
                )
            return tests

    OutputSerializer = ProvocativeTestOutputSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("test", str, enum=ProvocativeTest.Test.values, required=False)
        ],
        responses={200: ProvocativeTestOutputSerializer(many=True)},
        tags=[CLINICIAN_TAG],
        summary="List provocative tests, newest examination first",
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        test = request.query_params.get("test") or None
        if test is not None and test not in ProvocativeTest.Test.values:
            raise serializers.ValidationError({"test": [f'"{test}" is not a known test.']})
        _audit_read(request, patient, "provocativetest")
        items = selectors.provocative_test_list(user=_user(request), patient=patient, test=test)
        return paginate(
            request=request, view=self, items=items, serializer_class=self.OutputSerializer
        )[0]

    @extend_schema(
        request=InputSerializer,
        responses={
            201: inline_serializer(
                "ProvocativeTestsCreated", {"tests": ProvocativeTestOutputSerializer(many=True)}
            ),
            400: OpenApiResponse(description="Bad input"),
            409: record_restricted_or("A test is already recorded for that side and time"),
        },
        tags=[CLINICIAN_TAG],
        summary="Record one examination: one entry per test per side (send both sides as two)",
    )
    def post(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rows = services.provocative_tests_record(
            patient=patient,
            clinician=_clinician(request),
            performed_at=data["performed_at"],
            tests=data["tests"],
            examiner_id=data.get("examiner_id"),
            context=audit_context(request),
        )
        out = self.OutputSerializer(rows, many=True).data
        return Response({"tests": out}, status=status.HTTP_201_CREATED)


# --------------------------------------------------------------------------- imaging


class ImagingFindingOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    modality = serializers.CharField()
    date = serializers.DateField()
    body_region = serializers.CharField()
    finding = serializers.CharField()
    created_at = serializers.DateTimeField()


class ImagingFindingsApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="ImagingFindingInput")
    class InputSerializer(StrictSerializer):
        modality = serializers.ChoiceField(choices=ImagingFinding.Modality.choices)
        date = serializers.DateField()
        body_region = serializers.CharField(max_length=200)
        finding = serializers.CharField(max_length=4000)

    OutputSerializer = ImagingFindingOutputSerializer

    @extend_schema(
        responses={200: ImagingFindingOutputSerializer(many=True)},
        tags=[CLINICIAN_TAG],
        summary="List imaging findings, newest first",
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        _audit_read(request, patient, "imagingfinding")
        items = selectors.imaging_finding_list(user=_user(request), patient=patient)
        return paginate(
            request=request, view=self, items=items, serializer_class=self.OutputSerializer
        )[0]

    @extend_schema(
        request=InputSerializer,
        responses={
            201: ImagingFindingOutputSerializer,
            400: OpenApiResponse(description="Bad input"),
            409: RECORD_RESTRICTED_RESPONSE,
        },
        tags=[CLINICIAN_TAG],
        summary="Record an imaging finding",
    )
    def post(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        imaging = services.imaging_finding_create(
            patient=patient,
            clinician=_clinician(request),
            **serializer.validated_data,
            context=audit_context(request),
        )
        return Response(self.OutputSerializer(imaging).data, status=status.HTTP_201_CREATED)


# --------------------------------------------------------------------------- diagnoses


class DiagnosisOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    date_from = serializers.DateField()
    date_to = serializers.DateField(allow_null=True)
    current = serializers.SerializerMethodField()
    notes = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_current(self, diagnosis: Diagnosis) -> bool:
        return diagnosis.date_to is None


class DiagnosesApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    class FilterSerializer(StrictSerializer):
        current = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema_serializer(component_name="DiagnosisInput")
    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=200)
        date_from = serializers.DateField()
        date_to = serializers.DateField(required=False, allow_null=True, default=None)
        notes = _text(4000)

    OutputSerializer = DiagnosisOutputSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "current", bool, required=False, description="true: not ended; false: ended"
            )
        ],
        responses={200: DiagnosisOutputSerializer(many=True)},
        tags=[CLINICIAN_TAG],
        summary="List working diagnoses, latest first",
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        filters = self.FilterSerializer(data={"current": request.query_params.get("current")})
        filters.is_valid(raise_exception=True)
        _audit_read(request, patient, "diagnosis")
        items = selectors.diagnosis_list(
            user=_user(request), patient=patient, current=filters.validated_data["current"]
        )
        return paginate(
            request=request, view=self, items=items, serializer_class=self.OutputSerializer
        )[0]

    @extend_schema(
        request=InputSerializer,
        responses={
            201: DiagnosisOutputSerializer,
            400: OpenApiResponse(description="Bad input"),
            409: RECORD_RESTRICTED_RESPONSE,
        },
        tags=[CLINICIAN_TAG],
        summary="Record a working diagnosis",
    )
    def post(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        diagnosis = services.diagnosis_create(
            patient=patient,
            clinician=_clinician(request),
            **serializer.validated_data,
            context=audit_context(request),
        )
        return Response(self.OutputSerializer(diagnosis).data, status=status.HTTP_201_CREATED)


class DiagnosisEndApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="DiagnosisEndInput")
    class InputSerializer(StrictSerializer):
        date_to = serializers.DateField()
        notes = _text(2000, help_text="Appended to the diagnosis notes, e.g. why it was excluded.")

    @extend_schema(
        request=InputSerializer,
        responses={
            200: DiagnosisOutputSerializer,
            400: OpenApiResponse(description="Bad input"),
            409: record_restricted_or("Already ended"),
        },
        tags=[CLINICIAN_TAG],
        summary="End a working diagnosis (resolved or excluded)",
    )
    def post(self, request: Request, patient_id: UUID, diagnosis_id: UUID) -> Response:
        diagnosis = selectors.diagnosis_get(
            user=_user(request), patient_id=patient_id, diagnosis_id=diagnosis_id
        )
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        diagnosis = services.diagnosis_end(
            diagnosis=diagnosis,
            clinician=_clinician(request),
            date_to=serializer.validated_data["date_to"],
            notes=serializer.validated_data["notes"],
            context=audit_context(request),
        )
        return Response(DiagnosisOutputSerializer(diagnosis).data)


# --------------------------------------------------------------------------- assessed marks


class AssessedMarkOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    symptom = serializers.CharField()
    until = serializers.DateField()
    note = serializers.CharField()
    created_by = ClinicianNameField()
    created_at = serializers.DateTimeField()


class AssessedMarksApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="AssessedMarkInput")
    class InputSerializer(StrictSerializer):
        symptom = serializers.ChoiceField(choices=AssessedMark.Symptom.choices)
        until = serializers.DateField(
            help_text=f"The patient's local date; at most {AssessedMark.MAX_DAYS_AHEAD} days ahead."
        )
        note = _text(2000)

    OutputSerializer = AssessedMarkOutputSerializer

    @extend_schema(
        responses={200: AssessedMarkOutputSerializer(many=True)},
        tags=[CLINICIAN_TAG],
        summary="List the assessed-and-stable marks in force today",
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        _audit_read(request, patient, "assessedmark")
        items = selectors.assessed_mark_list(user=_user(request), patient=patient)
        return paginate(
            request=request, view=self, items=items, serializer_class=self.OutputSerializer
        )[0]

    @extend_schema(
        request=InputSerializer,
        responses={
            201: AssessedMarkOutputSerializer,
            400: OpenApiResponse(description="Bad input"),
            409: record_restricted_or("The symptom was marked by someone a moment ago"),
        },
        tags=[CLINICIAN_TAG],
        summary="Mark a safety symptom assessed and stable until a date (replaces any earlier)",
    )
    def post(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        mark = services.assessed_mark_create(
            patient=patient,
            clinician=_clinician(request),
            **serializer.validated_data,
            context=audit_context(request),
        )
        return Response(self.OutputSerializer(mark).data, status=status.HTTP_201_CREATED)


class AssessedMarkDetailApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema(
        responses={
            204: None,
            404: OpenApiResponse(description="Unknown or already revoked"),
            409: RECORD_RESTRICTED_RESPONSE,
        },
        tags=[CLINICIAN_TAG],
        summary="Revoke a mark (kept, with who revoked it and when)",
    )
    def delete(self, request: Request, patient_id: UUID, mark_id: UUID) -> Response:
        mark = selectors.assessed_mark_get(
            user=_user(request), patient_id=patient_id, mark_id=mark_id
        )
        if not services.assessed_mark_revoke(
            mark=mark, clinician=_clinician(request), context=audit_context(request)
        ):
            raise NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- scores, schedule


def _decimal(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=6, decimal_places=2, coerce_to_string=False, **kwargs
    )


class ThresholdsSerializer(serializers.Serializer[Any]):
    """Meaningful-change thresholds (docs/clinical-record.md § Questionnaires; null: none)."""

    higher_is_better = serializers.BooleanField()
    points = _decimal(allow_null=True)
    percent = _decimal(allow_null=True)
    single_item_points = _decimal(allow_null=True)
    recovered_at_or_below = _decimal(allow_null=True)
    success_at_or_below = _decimal(allow_null=True)
    success_after_months = serializers.IntegerField(
        allow_null=True, help_text="Success is judged only this long after the baseline."
    )
    reference = serializers.CharField(source="source", help_text="Where the thresholds come from")


class ScorePointSerializer(serializers.Serializer[Any]):
    response_id = serializers.UUIDField(source="response.pk")
    date = serializers.DateField(source="response.date")
    submitted_at = serializers.DateTimeField(source="response.submitted_at")
    score = _decimal(source="response.score")
    items_missing = serializers.IntegerField(source="response.items_missing")
    instrument_version = serializers.CharField(source="response.instrument_version")
    scoring_version = serializers.CharField(source="response.scoring_version")
    answers = serializers.JSONField(source="response.answers")
    is_baseline = serializers.SerializerMethodField()
    change = _decimal(source="change.points", allow_null=True, default=None)
    percent_change = _decimal(source="change.percent", allow_null=True, default=None)
    direction = serializers.CharField(source="change.direction", allow_null=True, default=None)
    meaningful_change = serializers.BooleanField(
        source="change.meaningful",
        allow_null=True,
        default=None,
        help_text="A §5 threshold reached since baseline (either way); null: no threshold.",
    )
    criteria = serializers.ListField(
        child=serializers.CharField(), source="change.criteria", default=list
    )
    recovered = serializers.BooleanField(allow_null=True, help_text="RMDQ <= 2")
    success = serializers.BooleanField(
        allow_null=True,
        help_text=(
            "SBI <= 6.5 at least 12 months after the first SBI; null "
            "before then, since the threshold was validated at 12 months."
        ),
    )

    def get_is_baseline(self, point: selectors.ScorePoint) -> bool:
        return point.change is None


class InstrumentScoresSerializer(serializers.Serializer[Any]):
    instrument = serializers.CharField(source="instrument.code")
    name = serializers.CharField(source="instrument.name")
    version = serializers.CharField(source="instrument.version")
    scoring_version = serializers.CharField(source="instrument.scoring_version")
    score_min = _decimal(source="instrument.score_min")
    score_max = _decimal(source="instrument.score_max")
    thresholds = ThresholdsSerializer(source="instrument.thresholds")
    series = ScorePointSerializer(many=True)


class QuestionnaireScoresApi(APIView):
    permission_classes = [IsClinician]

    @extend_schema_serializer(component_name="QuestionnaireScores")
    class OutputSerializer(serializers.Serializer[Any]):
        instruments = InstrumentScoresSerializer(many=True)

    @extend_schema(
        responses={200: OutputSerializer},
        tags=[CLINICIAN_TAG],
        summary="Questionnaire scores over time, against baseline and the §5 thresholds",
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        _audit_read(request, patient, "questionnaireresponse")
        scores = selectors.questionnaire_scores(user=_user(request), patient=patient)
        return Response(self.OutputSerializer({"instruments": scores}).data)


class QuestionnaireDueOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    instrument = serializers.CharField()
    reason = serializers.CharField()
    intervention_id = serializers.UUIDField(allow_null=True)
    due_from = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    state = serializers.SerializerMethodField(help_text="upcoming, open, completed or expired")
    response_id = serializers.UUIDField(allow_null=True)

    def get_state(self, due: QuestionnaireDue) -> str:
        return due.state()


class QuestionnaireScheduleApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    @extend_schema(
        responses={200: QuestionnaireDueOutputSerializer(many=True)},
        tags=[CLINICIAN_TAG],
        summary="The patient's questionnaire schedule: what is upcoming, open, done or missed",
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        _audit_read(request, patient, "questionnairedue")
        items = selectors.questionnaire_due_schedule(user=_user(request), patient=patient)
        return paginate(
            request=request,
            view=self,
            items=items,
            serializer_class=QuestionnaireDueOutputSerializer,
        )[0]


# --------------------------------------------------------------------------- timeline


class TimelineEntrySerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=selectors.TIMELINE_KINDS)
    date = serializers.DateField()
    id = serializers.CharField()
    title = serializers.CharField()
    details = serializers.DictField(source="data", help_text="Fields of the entry's kind.")


class TimelineApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsClinician]

    @extend_schema(
        responses={200: TimelineEntrySerializer(many=True)},
        tags=[CLINICIAN_TAG],
        summary="The patient's timeline, newest first",
        description=(
            "Weekly log summaries, interventions, examinations (provocative tests), imaging, "
            "diagnoses (start and end), questionnaire scores, program phases and alerts, "
            "merged in date order."
        ),
    )
    def get(self, request: Request, patient_id: UUID) -> Response:
        patient = _clinician_patient(request, patient_id)
        _audit_read(request, patient, "timeline")
        entries = selectors.timeline_list(user=_user(request), patient=patient)
        return paginate(
            request=request, view=self, items=entries, serializer_class=TimelineEntrySerializer
        )[0]


# --------------------------------------------------------------------------- the patient's own


class DueQuestionnaireSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(help_text="Submit answers to /me/questionnaires/{id}/responses/.")
    instrument = serializers.CharField()
    name = serializers.CharField()
    instrument_version = serializers.CharField()
    due_from = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    reasons = serializers.ListField(child=serializers.CharField())
    covers = serializers.ListField(
        child=serializers.UUIDField(), help_text="Every due item this one answer completes."
    )
    definition = serializers.DictField(help_text="What to render and the `answers` format.")
    previous_activities = serializers.ListField(
        child=serializers.CharField(), help_text="PSFS: the activities named last time."
    )


class QuestionnaireResponseOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    instrument = serializers.CharField()
    instrument_version = serializers.CharField()
    scoring_version = serializers.CharField()
    answers = serializers.JSONField()
    score = _decimal()
    items_missing = serializers.IntegerField()
    date = serializers.DateField()
    submitted_at = serializers.DateTimeField()


class MyQuestionnairesApi(APIView):
    pagination_class = PageNumberPagination  # the schema documents the page
    permission_classes = [IsPatient]

    @extend_schema(
        parameters=CONDITIONAL_GET_PARAMETERS,
        responses={200: DueQuestionnaireSerializer(many=True), 304: NOT_MODIFIED},
        tags=[PATIENT_TAG],
        summary="The questionnaires due now, with what the app needs to render them",
    )
    def get(self, request: Request) -> Response:
        user = _user(request)
        patient = patient_for_user(user=user)
        # The first thing a newly registered app asks is what is due, so this is where the
        # baseline is scheduled, and a program assigned a moment ago is picked up (both
        # INSERT ... ON CONFLICT DO NOTHING: safe to repeat on every look).
        services.questionnaires_schedule_baseline(patient=patient, start=patient.local_today())
        services.questionnaires_schedule_programs(patient=patient)
        _audit_read(request, patient, "questionnairedue")
        items = selectors.questionnaire_due_list(user=user, patient=patient)
        return paginate(
            request=request, view=self, items=items, serializer_class=DueQuestionnaireSerializer
        )[0]


class QuestionnaireResponseSubmitApi(APIView):
    permission_classes = [IsPatient]

    @extend_schema_serializer(component_name="QuestionnaireAnswersInput")
    class InputSerializer(StrictSerializer):
        answers = serializers.JSONField(
            help_text="As the instrument's `definition.answers_format`; validated per instrument."
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            201: QuestionnaireResponseOutputSerializer,
            200: OpenApiResponse(
                QuestionnaireResponseOutputSerializer, description="A retry: already stored"
            ),
            400: OpenApiResponse(description="Bad answers, or the window is not open"),
            409: OpenApiResponse(description="Already answered with different answers"),
        },
        tags=[PATIENT_TAG],
        summary="Answer a due questionnaire; scored on the server",
    )
    def post(self, request: Request, due_id: UUID) -> Response:
        due = selectors.questionnaire_due_get(user=_user(request), due_id=due_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        response, created = services.questionnaire_response_submit(
            due=due,
            answers=serializer.validated_data["answers"],
            user=_user(request),
            context=audit_context(request),
        )
        return Response(
            QuestionnaireResponseOutputSerializer(response).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
