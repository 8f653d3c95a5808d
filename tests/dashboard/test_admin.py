"""Every model in the Django admin opens, and its list costs the same queries at any size.

The test walks `admin.site._registry`, so a model registered later is checked too: give it
rows in `populate` (below) so that its changelist is also checked for queries that grow
with rows; a model without rows is still opened (changelist, add page).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from patients.models import AuthToken, Invitation
from patients.services import audit_record
from programs import services as program_services
from programs.models import AssignedExercise, ExerciseLog, ProgressionProposal
from rehab.models import AlertEvent, AlertOccurrence, DailyLog, DailyLogRevision, Notification
from tests.dashboard.conftest import make_alert
from tests.factories import ClinicFactory, ClinicianFactory, PatientFactory, UserFactory
from tests.programs.factories import make_template
from tests.rehab.factories_record import (
    AssessedMarkFactory,
    DiagnosisFactory,
    ImagingFindingFactory,
    InterventionFactory,
    ProvocativeTestFactory,
    QuestionnaireDueFactory,
    QuestionnaireResponseFactory,
)

pytestmark = pytest.mark.django_db

# Session, user, count(s), the page, a filter's choices, the date hierarchy: a handful,
# whatever the number of rows.
MAX_QUERIES = 15
_batch = count()


def populate(rows: int) -> None:
    """`rows` more rows of every model registered in the admin (one new clinic)."""
    k = next(_batch)
    clinic = ClinicFactory.create(name=f"Admin test clinic {k}")
    now = timezone.now()
    for i in range(rows):
        clinician = ClinicianFactory.create(clinic=clinic)
        patient = PatientFactory.create(clinic=clinic, care_team=[clinician])
        assert patient.user is not None
        Invitation.objects.create(
            patient=patient,
            code_hash=uuid.uuid4().hex,
            email=patient.email,
            created_by=clinician,
            expires_at=now + timedelta(days=3),
        )
        AuthToken.objects.create(user=patient.user)
        audit_record(actor=clinician.user, action="read", object_type="patient", patient=patient)
        log = DailyLog.objects.create(
            patient=patient, date=patient.local_today() - timedelta(days=i), pain=5
        )
        DailyLogRevision.objects.create(log=log, version=1, data={}, changed_by=patient.user)
        alert = make_alert(patient)
        AlertOccurrence.objects.create(alert=alert, log=log, fired_on=log.date, rule_version=1)
        AlertEvent.objects.create(alert=alert, kind="created", actor=clinician.user)
        Notification.objects.create(clinician=clinician, alert=alert, kind="alert", message="x")
        interval = IntervalSchedule.objects.create(every=100 * k + i + 1, period="minutes")
        PeriodicTask.objects.create(
            name=f"task {k}-{i}", task="rehab.tasks.notifications_sweep_task", interval=interval
        )
        CrontabSchedule.objects.create(minute=str(i % 60), hour=str(k % 24))
        SolarSchedule.objects.create(event="sunrise", latitude=51 + i, longitude=k % 180)
        ClockedSchedule.objects.create(clocked_time=now + timedelta(days=i, hours=k))
        Group.objects.create(name=f"Group {k}-{i}")
        _programs_and_record(patient, clinician)


def _programs_and_record(patient: Any, clinician: Any) -> None:
    """A program (template, assignment, phases, exercises, dosage, a log, a proposal) and
    one row of each clinical-record model, for one patient."""
    template = make_template(clinic=patient.clinic, phases=[(1, [7]), (1, [3])])
    today = patient.local_today()
    assignment = program_services.assignment_create(
        patient=patient, template=template, by=clinician, start_date=today, today=today
    )
    one, two = assignment.phases.order_by("position")
    ExerciseLog.objects.create(
        patient=patient,
        assigned_exercise=AssignedExercise.objects.filter(phase=one)[0],
        date=today,
        sets_done=3,
        reps_done=10,
        pain_during=2,
        difficulty=3,
    )
    ProgressionProposal.objects.create(
        assignment=assignment, from_phase=one, to_phase=two, evaluated_on=today
    )
    intervention = InterventionFactory.create(patient=patient, created_by=clinician)
    ProvocativeTestFactory.create(patient=patient, examiner=clinician, created_by=clinician)
    ImagingFindingFactory.create(patient=patient, created_by=clinician)
    DiagnosisFactory.create(patient=patient, created_by=clinician)
    AssessedMarkFactory.create(patient=patient, created_by=clinician)
    response = QuestionnaireResponseFactory.create(patient=patient, submitted_by=patient.user)
    QuestionnaireDueFactory.create(patient=patient, response=response)
    QuestionnaireDueFactory.create(
        patient=patient, instrument="rmdq", reason="post_intervention_1w", intervention=intervention
    )


def _url(model: type[Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _changelist_queries(client: Client) -> dict[str, int]:
    counts = {}
    for model in admin.site._registry:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(_url(model, "changelist"))
        assert response.status_code == 200, model
        counts[model._meta.label] = len(queries)
    return counts


@pytest.fixture
def operator_client() -> Client:
    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    return client


def test_every_changelist_opens_in_the_same_queries_with_more_rows(operator_client):
    populate(rows=2)
    _changelist_queries(operator_client)  # warm caches (content types, permissions)
    few = _changelist_queries(operator_client)
    populate(rows=8)
    many = _changelist_queries(operator_client)

    with_rows = {
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if model_admin.get_queryset(None).exists()  # type: ignore[arg-type]
    }
    assert {
        "patients.User",
        "patients.Patient",
        "rehab.Alert",
        "rehab.DailyLog",
        "django_celery_beat.PeriodicTask",
        "programs.ProgramAssignment",
        "programs.ExerciseLog",
        "programs.ProgressionProposal",
        "programs.DosageVersion",
        "rehab.Intervention",
        "rehab.ProvocativeTest",
        "rehab.QuestionnaireResponse",
        "rehab.QuestionnaireDue",
        "rehab.AssessedMark",
    } <= with_rows
    grew = {label: (few[label], many[label]) for label in with_rows if many[label] != few[label]}
    assert grew == {}
    too_many = {label: n for label, n in many.items() if n > MAX_QUERIES}
    assert too_many == {}


def test_every_add_page_and_a_change_page_of_each_model_open(operator_client):
    populate(rows=2)
    for model, model_admin in admin.site._registry.items():
        add = operator_client.get(_url(model, "add"))
        can_add = model_admin.has_add_permission(_request_for(operator_client))
        assert add.status_code == (200 if can_add else 403), model
        obj = model_admin.get_queryset(_request_for(operator_client)).first()
        if obj is not None:
            change = operator_client.get(_url(model, "change", obj.pk))
            assert change.status_code == 200, model


def test_the_periodic_task_schedules_are_in_the_admin(operator_client):
    populate(rows=1)
    task = PeriodicTask.objects.get()
    response = operator_client.get(_url(PeriodicTask, "changelist"))
    assert response.status_code == 200
    assert task.name.encode() in response.content
    assert operator_client.get(_url(PeriodicTask, "change", task.pk)).status_code == 200


def test_the_audit_trail_is_read_only_in_the_admin(operator_client):
    from patients.models import AuditEvent

    populate(rows=1)
    event = AuditEvent.objects.first()
    assert event is not None
    assert operator_client.get(_url(AuditEvent, "add")).status_code == 403
    response = operator_client.post(_url(AuditEvent, "delete", event.pk), {"post": "yes"})
    assert response.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def _request_for(client: Client) -> Any:
    from django.test import RequestFactory

    from patients.models import User

    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(email="ops@example.com")
    return request
