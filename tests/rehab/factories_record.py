"""factory_boy factories for the clinical record (the fixed cast is in tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from rehab.models import (
    AssessedMark,
    DailyLog,
    Diagnosis,
    ImagingFinding,
    Intervention,
    ProvocativeTest,
    QuestionnaireDue,
    QuestionnaireResponse,
)
from tests.factories import PatientFactory


class InterventionFactory(DjangoModelFactory[Intervention]):
    class Meta:
        model = Intervention

    id = factory.LazyFunction(uuid.uuid4)
    patient = factory.SubFactory(PatientFactory)
    date = factory.LazyFunction(lambda: timezone.now().date())
    kind = Intervention.Kind.PROLOTHERAPY
    agent = "dextrose 10% + lidocaine"
    target = "sacrospinous ligament"
    side = Intervention.Side.RIGHT
    guidance = Intervention.Guidance.ULTRASOUND
    course_id = factory.SelfAttribute("id")
    session_number = 1


class ProvocativeTestFactory(DjangoModelFactory[ProvocativeTest]):
    class Meta:
        model = ProvocativeTest

    patient = factory.SubFactory(PatientFactory)
    test = ProvocativeTest.Test.FAIR
    side = ProvocativeTest.Side.RIGHT
    result = ProvocativeTest.Result.POSITIVE
    concordant = True
    performed_at = factory.LazyFunction(timezone.now)


class ImagingFindingFactory(DjangoModelFactory[ImagingFinding]):
    class Meta:
        model = ImagingFinding

    patient = factory.SubFactory(PatientFactory)
    modality = ImagingFinding.Modality.ULTRASOUND
    date = factory.LazyFunction(lambda: timezone.now().date())
    body_region = "Right buttock"
    finding = "Calcified sacrospinous ligament."


class DiagnosisFactory(DjangoModelFactory[Diagnosis]):
    class Meta:
        model = Diagnosis

    patient = factory.SubFactory(PatientFactory)
    name = "Deep gluteal syndrome"
    date_from = factory.LazyFunction(lambda: timezone.now().date())


class AssessedMarkFactory(DjangoModelFactory[AssessedMark]):
    class Meta:
        model = AssessedMark

    patient = factory.SubFactory(PatientFactory)
    symptom = AssessedMark.Symptom.BOTH_LEGS
    until = factory.LazyFunction(lambda: timezone.now().date() + dt.timedelta(days=30))


class QuestionnaireResponseFactory(DjangoModelFactory[QuestionnaireResponse]):
    class Meta:
        model = QuestionnaireResponse

    patient = factory.SubFactory(PatientFactory)
    instrument = "rmdq"
    instrument_version = "1"
    scoring_version = "1"
    answers = factory.LazyAttribute(
        lambda o: {"ticked": list(range(1, int(o.score) + 1)), "unanswered": []}
    )
    score = Decimal(10)
    date = factory.LazyFunction(lambda: timezone.now().date())
    submitted_at = factory.LazyFunction(timezone.now)


class QuestionnaireDueFactory(DjangoModelFactory[QuestionnaireDue]):
    class Meta:
        model = QuestionnaireDue

    patient = factory.SubFactory(PatientFactory)
    instrument = "sbi"
    reason = QuestionnaireDue.Reason.BASELINE
    due_from = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=6))


class DailyLogFactory(DjangoModelFactory[DailyLog]):
    class Meta:
        model = DailyLog

    patient = factory.SubFactory(PatientFactory)
    date = factory.LazyFunction(lambda: timezone.now().date())
    pain = 5
    leg_pain = 6
    back_pain = 3
