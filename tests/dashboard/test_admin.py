"""Every model in the Django admin opens, and its list costs the same queries at any size.

The test walks `admin.site._registry`, so a model registered later is checked too: give it
rows in `populate` (below) so that its changelist is also checked for queries that grow
with rows; a model without rows is still opened (changelist, add page).
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from django.apps import apps
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
    PeriodicTasks,
    SolarSchedule,
)
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from notifications.models import Delivery
from patients.models import AuditEvent, AuthToken, Clinic, Invitation, Patient, SignInFailure
from patients.services import audit_record
from programs import services as program_services
from programs.models import AssignedExercise, ExerciseLog, ExerciseMedia, ProgressionProposal
from rehab.models import (
    Alert,
    AlertEvent,
    AlertOccurrence,
    AssessedMark,
    DailyLog,
    DailyLogId,
    DailyLogRevision,
    Diagnosis,
    ImagingFinding,
    Intervention,
    Notification,
    PatientAlertTriage,
    PatientLogRollup,
    ProvocativeTest,
    QuestionnaireDue,
    QuestionnaireResponse,
)
from rehab.services import alerts as alert_services
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
        SignInFailure.objects.create(email=patient.email, ip=f"10.0.{k % 250}.{i % 250}")
        audit_record(actor=clinician.user, action="read", object_type="patient", patient=patient)
        log = DailyLog.objects.create(
            patient=patient, date=patient.local_today() - timedelta(days=i), pain=5
        )
        DailyLogRevision.objects.create(log=log, version=1, data={}, changed_by=patient.user)
        alert = make_alert(patient)
        AlertOccurrence.objects.create(alert=alert, log=log, fired_on=log.date, rule_version=1)
        AlertEvent.objects.create(alert=alert, kind="created", actor=clinician.user)
        Notification.objects.create(clinician=clinician, alert=alert, kind="alert", message="x")
        Delivery.objects.create(
            kind="alert",
            channel="email",
            recipient=clinician.user,
            address=clinician.user.email,
            alert=alert,
            patient=patient,
            idempotency_key=f"alert:{alert.pk}:{k}-{i}",
            due_at=now,
            next_attempt_at=now,
        )
        interval = IntervalSchedule.objects.create(every=100 * k + i + 1, period="minutes")
        PeriodicTask.objects.create(
            name=f"task {k}-{i}",
            task="notifications.tasks.alert_notifications_sweep_task",
            interval=interval,
        )
        CrontabSchedule.objects.create(minute=str(i % 60), hour=str(k % 24))
        SolarSchedule.objects.create(event="sunrise", latitude=51 + i, longitude=k % 180)
        ClockedSchedule.objects.create(clocked_time=now + timedelta(days=i, hours=k))
        Group.objects.create(name=f"Group {k}-{i}")
        TOTPDevice.objects.create(user=clinician.user, name="app")
        StaticDevice.objects.create(user=clinician.user, name="codes").token_set.create(
            token=f"code{k}x{i}"
        )
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
    ExerciseMedia.objects.create(
        exercise=AssignedExercise.objects.filter(phase=one)[0].exercise,
        clinic=patient.clinic,
        kind="image",
        file_name="exercise-media/admin-test.png",
        content_type="image/png",
        size_bytes=1,
        sha256="0" * 64,
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
        "notifications.Delivery",
        "rehab.DailyLog",
        "django_celery_beat.PeriodicTask",
        "programs.ProgramAssignment",
        "programs.ExerciseLog",
        "programs.ProgressionProposal",
        "programs.DosageVersion",
        "programs.ExerciseMedia",
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


# --------------------------------------------------------------------------- read-only records

CLINICAL_MODELS = [
    DailyLog,
    Alert,
    Intervention,
    ProvocativeTest,
    ImagingFinding,
    Diagnosis,
    AssessedMark,
    QuestionnaireResponse,
    QuestionnaireDue,
]
_CONTROL = re.compile(r"<(?:input|select|textarea)\b[^>]*>")
_NAME = re.compile(r'\bname="([^"]+)"')


def _editable_names(html: str) -> set[str]:
    """Every form control that holds a value a person can change (hidden inputs and the
    save buttons are the admin's own)."""
    names = set()
    for tag in _CONTROL.findall(html):
        name = _NAME.search(tag)
        if name and 'type="hidden"' not in tag and 'type="submit"' not in tag:
            names.add(name.group(1))
    return names


@pytest.mark.parametrize("model", CLINICAL_MODELS, ids=lambda m: m._meta.label)
def test_it_shows_clinical_records_without_an_editable_field(operator_client, model):
    populate(rows=1)
    obj = model._default_manager.first()
    response = operator_client.get(_url(model, "change", obj.pk))
    assert response.status_code == 200
    assert response.context["adminform"].form.fields == {}
    assert _editable_names(response.content.decode()) == set()
    assert operator_client.get(_url(model, "add")).status_code == 403
    assert operator_client.get(_url(model, "delete", obj.pk)).status_code == 403


def test_it_refuses_a_posted_edit_of_a_daily_log(operator_client):
    populate(rows=1)
    log = DailyLog.objects.get()
    response = operator_client.post(
        _url(DailyLog, "change", log.pk),
        {"patient": log.patient_id, "date": log.date, "pain": 9, "safety": '{"fever": true}'},
    )
    assert response.status_code == 403
    log.refresh_from_db()
    assert (log.pain, log.safety, log.version) == (5, {}, 1)
    assert DailyLogRevision.objects.filter(log=log).count() == 1


def test_it_refuses_a_posted_edit_of_an_alert(operator_client):
    populate(rows=1)
    alert = Alert.objects.get()
    events = AlertEvent.objects.filter(alert=alert).count()
    response = operator_client.post(
        _url(Alert, "change", alert.pk),
        {"status": "resolved", "disposition": "referred", "resolved_note": "x"},
    )
    assert response.status_code == 403
    alert.refresh_from_db()
    assert (alert.status, alert.disposition, alert.resolved_at) == ("open", "", None)
    assert AlertEvent.objects.filter(alert=alert).count() == events


def _care_team_form(patient: Patient, clinician_ids: list[Any]) -> dict[str, Any]:
    prefix = "Patient_care_team-"
    rows = list(Patient.care_team.through.objects.filter(patient=patient))
    data: dict[str, Any] = {
        f"{prefix}TOTAL_FORMS": len(clinician_ids),
        f"{prefix}INITIAL_FORMS": len(rows),
        f"{prefix}MIN_NUM_FORMS": 0,
        f"{prefix}MAX_NUM_FORMS": 1000,
    }
    for i, clinician_id in enumerate(clinician_ids):
        data[f"{prefix}{i}-clinician"] = clinician_id
        data[f"{prefix}{i}-patient"] = patient.pk
        if i < len(rows):
            data[f"{prefix}{i}-id"] = rows[i].pk
    return data


def test_it_keeps_the_patient_read_only_and_audits_a_care_team_change(operator_client):
    populate(rows=1)
    patient = Patient.objects.get()
    member = patient.care_team.get()
    newcomer = ClinicianFactory.create(clinic=patient.clinic)
    page = operator_client.get(_url(Patient, "change", patient.pk)).content.decode()
    assert {n for n in _editable_names(page) if not n.startswith("Patient_care_team-")} == set()
    assert operator_client.get(_url(Patient, "add")).status_code == 403

    response = operator_client.post(
        _url(Patient, "change", patient.pk),
        {
            "first_name": "Changed",
            "history_cancer": "on",
            "condition": "changed",
            **_care_team_form(patient, [member.pk, newcomer.pk]),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    after = Patient.objects.get(pk=patient.pk)
    assert (after.first_name, after.history_cancer, after.condition) == (
        patient.first_name,
        patient.history_cancer,
        patient.condition,
    )
    assert set(after.care_team.all()) == {member, newcomer}
    event = AuditEvent.objects.get(object_type="care_team")
    assert event.patient_id == patient.pk
    assert event.changes == {"added": [str(newcomer.pk)], "removed": []}


def test_it_refuses_a_care_team_member_of_another_clinic(operator_client, other_clinic):
    populate(rows=1)
    patient = Patient.objects.get()
    member = patient.care_team.get()
    stranger = ClinicianFactory.create(clinic=other_clinic)

    response = operator_client.post(
        _url(Patient, "change", patient.pk), _care_team_form(patient, [member.pk, stranger.pk])
    )

    assert response.status_code == 200  # the form again, with the error
    assert "works at another clinic" in response.content.decode()
    assert set(Patient.objects.get(pk=patient.pk).care_team.all()) == {member}
    assert not AuditEvent.objects.filter(object_type="care_team").exists()


# --------------------------------------------------------------------------- log evaluation


def _logs_by_evaluation(patient: Patient) -> dict[str, DailyLog]:
    today = patient.local_today()
    now = timezone.now()
    failed = DailyLog.objects.create(
        patient=patient,
        date=today,
        pain=5,
        safety={"saddle_numbness": "new_or_worse"},
        evaluation_attempts=6,
        evaluation_failed_at=now,
        evaluation_error="RuntimeError('rule crashed')",
    )
    waiting = DailyLog.objects.create(patient=patient, date=today - timedelta(days=1), pain=4)
    done = DailyLog.objects.create(
        patient=patient,
        date=today - timedelta(days=2),
        pain=3,
        evaluated_at=now,
        evaluated_version=1,
        evaluation_attempts=1,
    )
    return {"failed": failed, "unevaluated": waiting, "evaluated": done}


def _log_rows(client: Client, query: str) -> set[str]:
    content = client.get(_url(DailyLog, "changelist") + query).content.decode()
    return set(re.findall(r'name="_selected_action" value="([0-9a-f-]+)"', content))


def test_it_shows_and_filters_the_logs_evaluation_state(operator_client, patient):
    logs = _logs_by_evaluation(patient)
    content = operator_client.get(_url(DailyLog, "changelist")).content.decode()
    assert "RuntimeError(&#x27;rule crashed&#x27;)" in content
    for header in ("Evaluation attempts", "Evaluation failed at", "Evaluation error"):
        assert header in content
    for state, log in logs.items():
        assert _log_rows(operator_client, f"?evaluation={state}") == {str(log.pk)}, state
    assert len(_log_rows(operator_client, "")) == 3


def test_it_reevaluates_a_failed_log_through_the_service(
    operator_client, patient, django_capture_on_commit_callbacks, monkeypatch
):
    from rehab import tasks

    logs = _logs_by_evaluation(patient)
    sent: list[str] = []
    monkeypatch.setattr(tasks.log_evaluate_task, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(
            _url(DailyLog, "changelist"),
            {
                "action": "reevaluate",
                "_selected_action": [str(log.pk) for log in logs.values()],
            },
            follow=True,
        )
    assert response.status_code == 200
    assert "Queued 2 log(s) for evaluation; 1 already evaluated" in response.content.decode()
    assert sent == []  # only once the transaction commits
    for callback in callbacks:
        callback()
    assert sorted(sent) == sorted([str(logs["failed"].pk), str(logs["unevaluated"].pk)])

    failed = DailyLog.objects.get(pk=logs["failed"].pk)
    assert (failed.evaluation_failed_at, failed.evaluation_attempts, failed.evaluation_error) == (
        None,
        0,
        "",
    )
    done = DailyLog.objects.get(pk=logs["evaluated"].pk)
    assert done.evaluation_attempts == 1
    audited = set(
        AuditEvent.objects.filter(object_type="daily_log_evaluation").values_list(
            "object_id", flat=True
        )
    )
    assert audited == {str(logs["failed"].pk), str(logs["unevaluated"].pk)}

    # The worker now claims the log again, and its red flag finally raises the alert.
    tasks.log_evaluate_task(str(logs["failed"].pk))
    failed.refresh_from_db()
    assert failed.evaluated_at is not None
    assert Alert.objects.filter(patient=patient, rule="RF-CES-01", status="open").exists()


# --------------------------------------------------------------------------- bulk actions


def test_it_resolves_alerts_in_bulk_and_skips_one_resolved_meanwhile(
    operator_client, patient, clinician, monkeypatch
):

    first = make_alert(patient, waited=timedelta(hours=3))
    raced = make_alert(patient, severity="routine", rule="NR-PAIN-01", waited=timedelta(hours=2))
    last = make_alert(patient, severity="emergency", rule="RF-CES-01")
    real_resolve = alert_services.alert_resolve

    def a_clinician_resolves_one_meanwhile(**kwargs: Any) -> Alert:
        if not Alert.objects.filter(pk=raced.pk, status="resolved").exists():
            real_resolve(alert=raced, actor=clinician.user, disposition="phoned_patient")
        return real_resolve(**kwargs)

    monkeypatch.setattr(alert_services, "alert_resolve", a_clinician_resolves_one_meanwhile)
    response = operator_client.post(
        _url(Alert, "changelist"),
        {
            "action": "resolve_no_action",
            "_selected_action": [str(a.pk) for a in (first, raced, last)],
        },
        follow=True,
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "Resolved 2 alert(s)." in content
    assert "Not resolved: NR-PAIN-01" in content
    assert "This alert is already resolved." in content
    dispositions = dict(Alert.objects.values_list("pk", "disposition"))
    assert dispositions == {
        first.pk: "no_action_needed",
        raced.pk: "phoned_patient",
        last.pk: "no_action_needed",
    }
    events = AuditEvent.objects.filter(object_type="alert", action="update")
    assert sorted((e.object_id, e.patient_id, e.actor_email) for e in events) == sorted(
        (str(a.pk), patient.pk, "ops@example.com") for a in (first, last)
    )
    assert all(
        e.changes == {"status": "resolved", "disposition": "no_action_needed"} for e in events
    )


def test_it_resends_one_code_per_patient_however_many_invitations_are_selected(
    operator_client, clinician, mailoutbox, django_capture_on_commit_callbacks, enqueued
):
    now = timezone.now()
    twice, once = (
        PatientFactory.create(
            clinic=clinician.clinic,
            user=None,
            email=f"{name}@example.com",
            first_name=name,
            last_name="Invited",
        )
        for name in ("twice", "once")
    )
    registered = PatientFactory.create(clinic=clinician.clinic)
    invitations = [
        Invitation.objects.create(
            patient=p,
            code_hash=uuid.uuid4().hex,
            email=p.email,
            created_by=clinician,
            expires_at=now + timedelta(days=3),
        )
        for p in (twice, twice, once, registered)
    ]
    with django_capture_on_commit_callbacks(execute=True):  # the emails go on commit
        response = operator_client.post(
            _url(Invitation, "changelist"),
            {"action": "resend", "_selected_action": [str(i.pk) for i in invitations]},
            follow=True,
        )
    assert response.status_code == 200
    assert "Sent 2 new code(s)." in response.content.decode()
    assert sorted(m.to[0] for m in mailoutbox) == ["once@example.com", "twice@example.com"]
    usable = Invitation.objects.filter(used_at__isnull=True, revoked_at__isnull=True)
    assert sorted(usable.values_list("email", flat=True)) == sorted(
        ["once@example.com", "twice@example.com", registered.email]
    )


# --------------------------------------------------------------------------- registry

ADMIN_APPS = ("patients", "programs", "rehab", "rights", "django_celery_beat")
# Shown only inside their parent's page (append-only history of the parent).
INLINE_ONLY = {DailyLogRevision, AlertOccurrence, AlertEvent}
# django-celery-beat's own "schedules changed" marker: one row, written by its signals.
# The daily logs' ids in use: written by the log table's triggers alone, nothing to see.
# The caseload's log rollup and alert triage: derived rows the database writes from the
# logs and the alerts.
NOT_IN_ADMIN = {PeriodicTasks, DailyLogId, PatientLogRollup, PatientAlertTriage}


def test_every_model_of_our_apps_is_in_the_admin_or_an_inline():
    ours = {m for label in ADMIN_APPS for m in apps.get_app_config(label).get_models()}
    registered = set(admin.site._registry)
    assert ours - registered == INLINE_ONLY | NOT_IN_ADMIN
    inlined = {i.model for m in admin.site._registry.values() for i in m.inlines}
    assert inlined >= INLINE_ONLY


def test_it_has_the_list_tools_an_operator_needs():
    assert admin.site._registry[Invitation].date_hierarchy == "created_at"
    assert admin.site._registry[Notification].search_fields


def test_it_lifts_a_sign_in_lock_out_by_deleting_the_failures(operator_client):
    from patients import throttling

    for _ in range(10):
        throttling.sign_in_failed(email="locked@example.com", ip="10.1.1.1")
    assert throttling.sign_in_blocked(email="locked@example.com", ip="10.1.1.1") is not None
    failure = SignInFailure.objects.first()
    assert failure is not None
    assert operator_client.get(_url(SignInFailure, "add")).status_code == 403
    response = operator_client.post(
        _url(SignInFailure, "change", failure.pk), {"email": "x@example.com", "ip": "10.2.2.2"}
    )
    assert response.status_code == 403
    listing = operator_client.get(_url(SignInFailure, "changelist") + "?q=locked")
    assert listing.content.decode().count('name="_selected_action"') == 10

    response = operator_client.post(
        _url(SignInFailure, "changelist"),
        {
            "action": "delete_selected",
            "post": "yes",
            "_selected_action": list(SignInFailure.objects.values_list("pk", flat=True)),
        },
    )
    assert response.status_code == 302
    assert not SignInFailure.objects.exists()
    assert throttling.sign_in_blocked(email="locked@example.com", ip="10.1.1.1") is None


# --------------------------------------------------------------------------- no deletes

# What an operator may still delete: sign-ins and lock-outs, the exercise library, empty
# clinics (patients and clinicians PROTECT theirs), and the schedule. A user's delete is
# refused as a whole when it would cascade into a row the admin will not delete.
DELETABLE = {
    "patients.User",
    "patients.AuthToken",
    "patients.SignInFailure",
    "patients.Clinic",
    "programs.Exercise",
    # Its images and videos: removed through `media_delete` (audited, files too).
    "programs.ExerciseMedia",
    "programs.ProgramTemplate",
    "programs.TemplatePhase",
    "programs.PrescribedExercise",
    "auth.Group",
    "django_celery_beat.PeriodicTask",
    "django_celery_beat.IntervalSchedule",
    "django_celery_beat.CrontabSchedule",
    "django_celery_beat.SolarSchedule",
    "django_celery_beat.ClockedSchedule",
    # A clinician who lost both their phone and their recovery codes: an operator removes
    # their two-factor devices so that they can set it up again.
    "otp_totp.TOTPDevice",
    "otp_static.StaticDevice",
}


def test_it_deletes_nothing_clinical_from_the_admin(operator_client):
    request = _request_for(operator_client)
    deletable = {
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if model_admin.has_delete_permission(request)
    }
    assert deletable == DELETABLE
    # Nor in an inline of a row it will not delete (a care team change is audited).
    inline_deletable = {
        inline.model._meta.label
        for model, model_admin in admin.site._registry.items()
        if model._meta.label not in DELETABLE
        for inline in model_admin.get_inline_instances(request)
        if inline.can_delete and inline.has_delete_permission(request)
    }
    assert inline_deletable == {"patients.Patient_care_team"}
    clinic_page = admin.site._registry[Clinic]
    assert not any(
        i.has_delete_permission(request) for i in clinic_page.get_inline_instances(request)
    )


def test_it_refuses_a_posted_delete_of_a_patient_and_their_record(operator_client, patient):
    # No program, which would PROTECT the patient: the delete would cascade freely.
    DailyLog.objects.create(patient=patient, date=patient.local_today(), pain=5)
    make_alert(patient)
    InterventionFactory.create(patient=patient)
    assert operator_client.get(_url(Patient, "delete", patient.pk)).status_code == 403
    response = operator_client.post(_url(Patient, "delete", patient.pk), {"post": "yes"})
    assert response.status_code == 403
    operator_client.post(
        _url(Patient, "changelist"),
        {"action": "delete_selected", "post": "yes", "_selected_action": [patient.pk]},
    )
    assert Patient.objects.filter(pk=patient.pk).exists()
    assert DailyLog.objects.filter(patient=patient).exists()
    assert Alert.objects.filter(patient=patient).exists()
    assert Intervention.objects.filter(patient=patient).exists()


@pytest.mark.parametrize(
    "model",
    [Invitation, Notification, ExerciseLog, AuditEvent],
    ids=lambda m: m._meta.label,
)
def test_it_refuses_a_posted_delete_of_other_clinical_rows(operator_client, model):
    populate(rows=1)
    obj = model._default_manager.first()
    response = operator_client.post(_url(model, "delete", obj.pk), {"post": "yes"})
    assert response.status_code == 403
    operator_client.post(
        _url(model, "changelist"),
        {"action": "delete_selected", "post": "yes", "_selected_action": [obj.pk]},
    )
    assert model._default_manager.filter(pk=obj.pk).exists()


def test_it_refuses_to_delete_a_clinician_also_through_their_user(operator_client):
    from patients.models import Clinician, User

    populate(rows=1)
    clinician = Clinician.objects.get()
    patient = Patient.objects.get()
    response = operator_client.post(_url(Clinician, "delete", clinician.pk), {"post": "yes"})
    assert response.status_code == 403
    # The user's delete would cascade to the clinician: the admin asks for a permission
    # no one has, and deletes nothing.
    response = operator_client.post(_url(User, "delete", clinician.user_id), {"post": "yes"})
    assert response.status_code == 403
    assert Clinician.objects.filter(pk=clinician.pk).exists()
    assert set(patient.care_team.all()) == {clinician}
    assert Notification.objects.filter(clinician=clinician).exists()


# --------------------------------------------------------------------------- invitations


def test_it_refuses_a_posted_edit_or_add_of_an_invitation(operator_client):
    populate(rows=1)
    invitation = Invitation.objects.get()
    before = (invitation.email, invitation.expires_at, invitation.revoked_at, invitation.code_hash)
    page = operator_client.get(_url(Invitation, "change", invitation.pk))
    assert page.status_code == 200
    assert _editable_names(page.content.decode()) == set()
    assert invitation.code_hash not in page.content.decode()
    response = operator_client.post(
        _url(Invitation, "change", invitation.pk),
        {
            "patient": invitation.patient_id,
            "email": "someone.else@example.com",
            "expires_at_0": "2099-01-01",
            "expires_at_1": "00:00:00",
        },
    )
    assert response.status_code == 403
    response = operator_client.post(
        _url(Invitation, "add"),
        {
            "patient": invitation.patient_id,
            "email": "someone.else@example.com",
            "code_hash": "0" * 64,
            "expires_at_0": "2099-01-01",
            "expires_at_1": "00:00:00",
        },
    )
    assert response.status_code == 403
    invitation.refresh_from_db()
    assert (
        invitation.email,
        invitation.expires_at,
        invitation.revoked_at,
        invitation.code_hash,
    ) == before
    assert Invitation.objects.count() == 1


def test_it_revokes_codes_through_the_service_and_audits_each(operator_client, clinician):
    now = timezone.now()
    invited = PatientFactory.create(
        clinic=clinician.clinic,
        user=None,
        email="new@example.com",
        first_name="New",
        last_name="Invited",
    )
    usable, used = (
        Invitation.objects.create(
            patient=invited,
            code_hash=uuid.uuid4().hex,
            email=invited.email,
            created_by=clinician,
            expires_at=now + timedelta(days=3),
            used_at=used_at,
        )
        for used_at in (None, now)
    )
    response = operator_client.post(
        _url(Invitation, "changelist"),
        {"action": "revoke", "_selected_action": [str(usable.pk), str(used.pk)]},
        follow=True,
    )
    assert "Revoked 1 code(s)." in response.content.decode()
    usable.refresh_from_db()
    used.refresh_from_db()
    assert usable.revoked_at is not None
    assert used.revoked_at is None
    event = AuditEvent.objects.get(object_type="invitation")
    assert (event.object_id, event.patient_id, event.actor_email, event.changes) == (
        str(usable.pk),
        invited.pk,
        "ops@example.com",
        {"revoked": True},
    )


# --------------------------------------------------------------------------- notifications


def test_it_refuses_a_posted_edit_of_a_notification(operator_client):
    populate(rows=1)
    notification = Notification.objects.get()
    page = operator_client.get(_url(Notification, "change", notification.pk))
    assert page.status_code == 200
    assert _editable_names(page.content.decode()) == set()
    response = operator_client.post(
        _url(Notification, "change", notification.pk),
        {
            "clinician": notification.clinician_id,
            "alert": notification.alert_id,
            "kind": "escalation",
            "message": "nothing to see",
            "read_at_0": "2020-01-01",
            "read_at_1": "00:00:00",
        },
    )
    assert response.status_code == 403
    assert operator_client.get(_url(Notification, "add")).status_code == 403
    notification.refresh_from_db()
    assert (notification.kind, notification.message, notification.read_at) == ("alert", "x", None)


# --------------------------------------------------------------------------- clinicians


def test_it_keeps_a_clinicians_clinic_and_user_and_audits_a_role_change(
    operator_client, clinician, other_clinic
):
    from patients.models import Clinician

    someone = UserFactory.create(email="someone@example.com")
    page = operator_client.get(_url(Clinician, "change", clinician.pk)).content.decode()
    assert _editable_names(page) == {"role"}
    response = operator_client.post(
        _url(Clinician, "change", clinician.pk),
        {"user": someone.pk, "clinic": other_clinic.pk, "role": "clinic_admin"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    after = Clinician.objects.get(pk=clinician.pk)
    assert (after.user_id, after.clinic_id, after.role) == (
        clinician.user_id,
        clinician.clinic_id,
        "clinic_admin",
    )
    event = AuditEvent.objects.get(object_type="clinician")
    assert (event.object_id, event.actor_email, event.changes) == (
        str(clinician.pk),
        "ops@example.com",
        {"role": {"from": "physiotherapist", "to": "clinic_admin"}},
    )


def test_it_adds_a_clinician_with_a_clinic_but_does_not_audit_an_unchanged_role(
    operator_client, clinic
):
    from patients.models import Clinician

    newcomer = UserFactory.create(email="newcomer@example.com")
    page = operator_client.get(_url(Clinician, "add")).content.decode()
    assert {"user", "clinic", "role"} <= _editable_names(page)
    response = operator_client.post(
        _url(Clinician, "add"),
        {"user": newcomer.pk, "clinic": clinic.pk, "role": "physiotherapist"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    clinician = Clinician.objects.get(user=newcomer)
    assert clinician.clinic == clinic
    response = operator_client.post(
        _url(Clinician, "change", clinician.pk), {"role": "physiotherapist"}
    )
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(object_type="clinician").exists()


def test_it_shows_a_clinics_clinicians_read_only_in_its_page(
    operator_client, clinician, other_clinic_clinician
):
    from patients.models import Clinic, Clinician

    clinic = clinician.clinic
    prefix = "clinicians-"
    response = operator_client.post(
        _url(Clinic, "change", clinic.pk),
        {
            "name": clinic.name,
            "escalation_email": clinic.escalation_email,
            f"{prefix}TOTAL_FORMS": 1,
            f"{prefix}INITIAL_FORMS": 1,
            f"{prefix}MIN_NUM_FORMS": 0,
            f"{prefix}MAX_NUM_FORMS": 1000,
            f"{prefix}0-id": clinician.pk,
            f"{prefix}0-clinic": clinic.pk,
            f"{prefix}0-user": other_clinic_clinician.user_id,
            f"{prefix}0-role": "clinic_admin",
            f"{prefix}0-DELETE": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    after = Clinician.objects.get(pk=clinician.pk)
    assert (after.user_id, after.role) == (clinician.user_id, "physiotherapist")


def test_it_refuses_a_clinic_whose_name_differs_only_in_case_with_a_message(
    operator_client, clinic
):
    response = operator_client.post(
        _url(Clinic, "add"),
        {"name": "RIVERSIDE physio", "clinicians-TOTAL_FORMS": 0, "clinicians-INITIAL_FORMS": 0},
    )
    assert response.status_code == 200
    assert "A clinic with this name exists (whatever its case)." in response.content.decode()
    assert Clinic.objects.count() == 1


def test_it_refuses_an_admin_password_over_1024_characters_before_hashing_it(client, monkeypatch):
    from tests.patients.hashing import hashed_lengths

    UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    hashed = hashed_lengths(monkeypatch)
    response = client.post(
        reverse("admin:login"), {"username": "ops@example.com", "password": "x" * 1025}
    )
    assert response.status_code == 200
    assert b"at most 1024 characters" in response.content
    assert "_auth_user_id" not in client.session
    assert hashed == []


def test_it_throttles_the_admin_sign_in_like_the_api(client):
    from tests.factories import PASSWORD

    UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    for _ in range(10):
        response = client.post(
            reverse("admin:login"), {"username": "ops@example.com", "password": "guess"}
        )
        assert b"Too many failed sign-ins" not in response.content
    assert SignInFailure.objects.filter(email="ops@example.com").count() == 10
    # The right password no longer opens the door once the limit is reached.
    response = client.post(
        reverse("admin:login"), {"username": "ops@example.com", "password": PASSWORD}
    )
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session
