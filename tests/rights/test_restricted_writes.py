"""A restricted record is kept, not worked on (docs/data-rights.md § Restriction): every
clinician- or operator-facing write on it is refused with 409 `record_restricted`, changes
nothing and is audited as denied; the same write on an unrestricted record still works;
what the documentation keeps (the safety path, exports, the erasure workflow) still runs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from patients.models import AuditEvent, Clinician, Invitation, Patient
from patients.restriction import RECORD_RESTRICTED, RecordRestricted
from programs import services as program_services
from programs.education import services as education_services
from programs.models import ProgramAssignment, ProgressionProposal
from rehab.models import Alert, Diagnosis
from rehab.services import record as record_services
from rights import erasure
from rights.models import Erasure
from rights.selectors import patient_data_get
from tests.factories import PatientFactory, UserFactory
from tests.programs.conftest import START, exercises_of
from tests.programs.factories import make_template
from tests.rehab.factories_record import AssessedMarkFactory, DiagnosisFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)  # START, noon UTC


@pytest.fixture(autouse=True)
def _frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timezone, "now", lambda: NOW)


@pytest.fixture
def objects(patient: Patient, clinician: Clinician) -> dict[str, Any]:
    """One of each thing a write names: a program (with a pending proposal), a card, a
    current diagnosis, a mark in force."""
    template = make_template(
        clinic=patient.clinic, name="Clinic program", phases=[(2, [7, 3]), (1, [7])]
    )
    assignment = program_services.assignment_create(
        patient=patient, template=template, by=clinician, start_date=START, today=START
    )
    p1, p2 = assignment.phases.order_by("position")[:2]
    card = education_services.card_create(
        clinician=clinician, language="en", title="Sleeping", body="A *pillow* helps."
    )
    return {
        "patient": patient,
        "assignment": assignment,
        "exercise": exercises_of(assignment, 1)[0],
        "template": make_template(clinic=patient.clinic, name="Another", phases=[(1, [7])]),
        "proposal": ProgressionProposal.objects.create(
            assignment=assignment, from_phase=p1, to_phase=p2, evaluated_on=START
        ),
        "card": card,
        "diagnosis": DiagnosisFactory.create(patient=patient, date_from=dt.date(2026, 1, 1)),
        "mark": AssessedMarkFactory.create(patient=patient),
    }


def _exam() -> dict[str, Any]:
    return {
        "performed_at": (NOW - dt.timedelta(hours=1)).isoformat(),
        "tests": [{"test": "slr", "side": "right", "result": "negative", "angle_deg": 80}],
    }


def _end_program(objects: dict[str, Any], clinician: Clinician) -> None:
    # A new program needs the current one ended.
    program_services.assignment_end(assignment=objects["assignment"], by=clinician)


@dataclass(frozen=True)
class Write:
    method: str
    path: str
    body: Callable[[dict[str, Any]], dict[str, Any] | None]
    served: int
    prepare: Callable[[dict[str, Any], Clinician], None] | None = None


R = "/api/v1/clinician/patients/{patient.pk}/"
# Every clinician endpoint of the API that writes a patient's data.
API_WRITES: dict[str, Write] = {
    "patient_update": Write("patch", R, lambda o: {"condition": "Changed"}, 200),
    "card_assign": Write("post", R + "education/", lambda o: {"card_id": str(o["card"].pk)}, 201),
    "assignment_create": Write(
        "post",
        R + "assignments/",
        lambda o: {"template_id": str(o["template"].pk)},
        201,
        prepare=_end_program,
    ),
    "assignment_update": Write(
        "patch",
        "/api/v1/clinician/assignments/{assignment.pk}/",
        lambda o: {"pain_ceiling": 5},
        200,
    ),
    "assignment_end": Write(
        "post", "/api/v1/clinician/assignments/{assignment.pk}/end/", lambda o: {}, 200
    ),
    "dosage_change": Write(
        "post",
        "/api/v1/clinician/assigned-exercises/{exercise.pk}/dosage/",
        lambda o: {"sets": 4, "effective_from": START.isoformat()},
        200,
    ),
    "proposal_accept": Write(
        "post",
        "/api/v1/clinician/progression-proposals/{proposal.pk}/accept/",
        lambda o: {"on": "2026-03-16"},
        200,
    ),
    "proposal_decline": Write(
        "post", "/api/v1/clinician/progression-proposals/{proposal.pk}/decline/", lambda o: {}, 200
    ),
    "intervention_create": Write(
        "post", R + "interventions/", lambda o: {"date": "2026-01-01", "kind": "other"}, 201
    ),
    "provocative_tests_record": Write("post", R + "provocative-tests/", lambda o: _exam(), 201),
    "imaging_finding_create": Write(
        "post",
        R + "imaging-findings/",
        lambda o: {"modality": "ct", "date": "2026-01-01", "body_region": "x", "finding": "y"},
        201,
    ),
    "diagnosis_create": Write(
        "post", R + "diagnoses/", lambda o: {"name": "x", "date_from": "2026-01-01"}, 201
    ),
    "diagnosis_end": Write(
        "post", R + "diagnoses/{diagnosis.pk}/end/", lambda o: {"date_to": "2026-01-02"}, 200
    ),
    "assessed_mark_create": Write(
        "post",
        R + "assessed-marks/",
        lambda o: {"symptom": "both_legs", "until": START.isoformat()},
        201,
    ),
    "assessed_mark_revoke": Write("delete", R + "assessed-marks/{mark.pk}/", lambda o: None, 204),
}


def _send(client: Any, write: Write, objects: dict[str, Any]) -> Any:
    url = write.path.format(**objects)
    body = write.body(objects)
    call = getattr(client, write.method)
    return call(url, body, format="json") if body is not None else call(url)


def _snapshot(patient: Patient, clinician: Clinician) -> Any:
    """Everything held about the patient (the export's sections), plus what the export
    leaves out: progression proposals, invitations, the care team."""
    fresh = Patient.objects.get(pk=patient.pk)
    data = patient_data_get(user=clinician.user, patient=fresh).sections
    proposals = list(
        ProgressionProposal.objects.filter(assignment__patient=fresh).order_by("id").values()
    )
    invitations = list(fresh.invitations.order_by("id").values())
    team = sorted(str(pk) for pk in fresh.care_team.values_list("pk", flat=True))
    return data, proposals, invitations, team


def _restrict(patient: Patient) -> None:
    # As an approved erasure does (the account closed, the record restricted).
    erasure.account_close(patient=patient)
    patient.refresh_from_db()
    assert patient.restricted_at is not None


def _denied(patient: Patient) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.DENIED, patient_id=patient.pk))


@pytest.mark.parametrize("name", sorted(API_WRITES))
def test_it_refuses_a_write_on_a_restricted_record_and_changes_nothing(
    name, patient, clinician, clinician_client, objects
):
    write = API_WRITES[name]
    if write.prepare is not None:
        write.prepare(objects, clinician)
    _restrict(patient)
    before = _snapshot(patient, clinician)
    writes_before = AuditEvent.objects.exclude(action__in=("read", "denied")).count()

    response = _send(clinician_client, write, objects)

    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == RECORD_RESTRICTED
    assert "restricted" in body["detail"]
    assert body["errors"] == []
    assert _snapshot(patient, clinician) == before
    assert AuditEvent.objects.exclude(action__in=("read", "denied")).count() == writes_before
    # Audited as denied, like a 403 or 404, with the patient it was about.
    (event,) = _denied(patient)
    assert event.changes == {"status": 409}
    assert event.actor_id == clinician.user_id


@pytest.mark.parametrize("name", sorted(API_WRITES))
def test_the_same_write_on_an_unrestricted_record_still_works(
    name, patient, clinician, clinician_client, objects
):
    write = API_WRITES[name]
    if write.prepare is not None:
        write.prepare(objects, clinician)
    before = _snapshot(patient, clinician)

    response = _send(clinician_client, write, objects)

    assert response.status_code == write.served, response.content
    assert _snapshot(patient, clinician) != before
    assert _denied(patient) == []


def test_every_clinician_write_on_a_patients_data_is_in_the_list():
    """A new clinician endpoint that writes under a patient must be added above."""
    from django.urls import get_resolver
    from rest_framework.views import APIView

    found: set[tuple[str, Any]] = set()
    for pattern in get_resolver().url_patterns:
        _collect(pattern, "", found)
    writes = {
        route
        for route, view in found
        if route.startswith("api/v1/clinician/")
        and any(m in view.http_method_names and hasattr(view, m) for m in WRITE_METHODS)
        and issubclass(view, APIView)
    }
    listed = {w.path.replace("/api/v1/", "api/v1/") for w in API_WRITES.values()}
    # Writes that are not on a patient's data, or that the documentation keeps.
    assert {_shape(route) for route in writes} - {_shape(p) for p in listed} == NOT_GUARDED


WRITE_METHODS = ("post", "put", "patch", "delete")
NOT_GUARDED = {
    # Clinic-wide, no patient's data: the library, templates, consent documents; an
    # invitation names no patient (refreshing a restricted one is refused, tested below).
    "api/v1/clinician/education-cards/",
    "api/v1/clinician/education-cards/*/versions/",
    "api/v1/clinician/program-templates/",
    "api/v1/clinician/invitations/",
    "api/v1/clinician/consent-documents/",
    "api/v1/clinician/consent-documents/*/publish/",
    # The clinician's own notification inbox.
    "api/v1/clinician/notifications/*/read/",
    # Kept by the documentation: the safety path, exports, the erasure workflow.
    "api/v1/clinician/alerts/*/acknowledge/",
    "api/v1/clinician/alerts/*/resolve/",
    "api/v1/clinician/patients/*/exports/",
    "api/v1/clinician/erasure-requests/*/decide/",
    "api/v1/clinician/retention/",
}


def _shape(route: str) -> str:
    import re

    return re.sub(r"<[^>]+>|\{[^}]+\}", "*", route)


def _collect(pattern: Any, prefix: str, found: set[tuple[str, Any]]) -> None:
    if hasattr(pattern, "url_patterns"):
        for inner in pattern.url_patterns:
            _collect(inner, prefix + str(pattern.pattern), found)
        return
    view = getattr(pattern.callback, "view_class", None)
    if view is not None:
        found.add((prefix + str(pattern.pattern), view))


# --------------------------------------------------------------------------- invitations

INVITATIONS = "/api/v1/clinician/invitations/"


def test_it_refreshes_no_restricted_record_by_a_new_invitation(clinician, clinician_client):
    invited = PatientFactory.create(
        clinic=clinician.clinic,
        user=None,
        email="new@example.com",
        first_name="Nia",
        last_name="New",
    )
    _restrict(invited)
    response = clinician_client.post(
        INVITATIONS,
        {
            "email": "new@example.com",
            "first_name": "Changed",
            "last_name": "Name",
            "date_of_birth": "1980-01-01",
            "timezone": "Europe/London",
        },
        format="json",
    )
    assert response.status_code == 409, response.content
    assert response.json()["code"] == RECORD_RESTRICTED
    invited.refresh_from_db()
    assert invited.first_name != "Changed"
    assert not invited.invitations.exists()


# --------------------------------------------------------------------------- schema


def test_the_schema_declares_the_409_of_every_operation_a_restricted_record_refuses(client):
    """Every operation refused above (the API writes and a new invitation) declares the 409
    `record_restricted` in the OpenAPI document, with the error shape; no other does."""
    refusing = {(w.method, _shape(w.path)) for w in API_WRITES.values()} | {("post", INVITATIONS)}
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    declared: set[tuple[str, str]] = set()
    for path, operations in response.json()["paths"].items():
        for method, operation in operations.items():
            conflict = operation.get("responses", {}).get("409")
            if conflict is not None and RECORD_RESTRICTED in conflict["description"]:
                declared.add((method, _shape(path)))
                assert "application/json" in conflict["content"], (method, path)
    assert declared == refusing


# --------------------------------------------------------------------------- dashboard


@pytest.fixture
def web(clinician: Clinician) -> Client:
    client = Client()
    client.force_login(clinician.user)
    return client


def _plan_data(assignment: ProgramAssignment, sets: int, ceiling: int) -> dict[str, Any]:
    exercises = exercises_of(assignment, 1) + exercises_of(assignment, 2)
    data: dict[str, Any] = {
        "action": "save",
        "ceiling-pain_ceiling": str(ceiling),
        "dosage-TOTAL_FORMS": str(len(exercises)),
        "dosage-INITIAL_FORMS": str(len(exercises)),
        "dosage-MIN_NUM_FORMS": "0",
        "dosage-MAX_NUM_FORMS": "1000",
    }
    for i, exercise in enumerate(exercises):
        version = exercise.dosage_versions.order_by("-effective_from").first()
        assert version is not None
        values = {**version.dosage_dict(), **({"sets": sets} if i == 0 else {})}
        for key, value in values.items():
            data[f"dosage-{i}-{key}"] = "" if value is None else str(value)
    return data


DASHBOARD_WRITES: dict[str, Write] = {
    "plan_save": Write(
        "post",
        "/dashboard/patients/{patient.pk}/plan/",
        lambda o: _plan_data(o["assignment"], sets=5, ceiling=6),
        302,
    ),
    "plan_assign": Write(
        "post",
        "/dashboard/patients/{patient.pk}/plan/",
        lambda o: {"action": "assign", "template": str(o["template"].pk)},
        302,
        prepare=_end_program,
    ),
    "card_assign": Write(
        "post",
        "/dashboard/patients/{patient.pk}/education/",
        lambda o: {"card": str(o["card"].pk)},
        302,
    ),
}


def _post_page(web: Client, write: Write, objects: dict[str, Any]) -> Any:
    return web.post(write.path.format(**objects), write.body(objects))


@pytest.mark.parametrize("name", sorted(DASHBOARD_WRITES))
def test_the_dashboard_refuses_a_write_on_a_restricted_record_and_says_why(
    name, patient, clinician, web, objects
):
    write = DASHBOARD_WRITES[name]
    if write.prepare is not None:
        write.prepare(objects, clinician)
    _restrict(patient)
    before = _snapshot(patient, clinician)

    response = _post_page(web, write, objects)

    assert response.status_code == 409
    assert "record is restricted" in response.content.decode()
    # And the page says so before anyone tries.
    page = web.get(write.path.format(**objects))
    assert page.status_code == 200
    assert 'id="record-restricted"' in page.content.decode()
    assert _snapshot(patient, clinician) == before
    (event,) = _denied(patient)
    assert event.changes == {"status": 409}


@pytest.mark.parametrize("name", sorted(DASHBOARD_WRITES))
def test_the_dashboard_still_writes_an_unrestricted_record(name, patient, clinician, web, objects):
    write = DASHBOARD_WRITES[name]
    if write.prepare is not None:
        write.prepare(objects, clinician)
    before = _snapshot(patient, clinician)
    assert 'id="record-restricted"' not in web.get(write.path.format(**objects)).content.decode()
    response = _post_page(web, write, objects)
    assert response.status_code == write.served, response.content.decode()[:2000]
    assert _snapshot(patient, clinician) != before


# --------------------------------------------------------------------------- admin


@pytest.fixture
def operator_client() -> Client:
    operator = UserFactory.create(email="ops@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    return client


def test_the_admin_shows_a_restricted_record_read_only(operator_client, patient, clinician):
    _restrict(patient)
    newcomer = Clinician.objects.create(
        clinic=patient.clinic, user=UserFactory.create(email="new@riverside.example")
    )
    url = reverse("admin:patients_patient_change", args=[patient.pk])
    page = operator_client.get(url)
    assert page.status_code == 200
    assert 'name="Patient_care_team-0-clinician"' not in page.content.decode()
    prefix = "Patient_care_team-"
    response = operator_client.post(
        url,
        {
            f"{prefix}TOTAL_FORMS": 1,
            f"{prefix}INITIAL_FORMS": 0,
            f"{prefix}MIN_NUM_FORMS": 0,
            f"{prefix}MAX_NUM_FORMS": 1000,
            f"{prefix}0-clinician": newcomer.pk,
            f"{prefix}0-patient": patient.pk,
        },
    )
    assert response.status_code == 403
    assert set(patient.care_team.all()) == {clinician}

    # Nor can the closed account be opened again from the user admin.
    assert patient.user is not None
    user_url = reverse("admin:patients_user_change", args=[patient.user.pk])
    assert operator_client.get(user_url).status_code == 200
    refused = operator_client.post(
        user_url, {"email": patient.user.email, "is_active": "on", "first_name": "X"}
    )
    assert refused.status_code == 403
    patient.user.refresh_from_db()
    assert patient.user.is_active is False


def test_the_admin_refuses_to_revoke_a_restricted_records_code_and_says_why(
    operator_client, clinician
):
    kept, free = (
        PatientFactory.create(
            clinic=clinician.clinic,
            user=None,
            email=f"{name}@example.com",
            first_name=name,
            last_name="Invited",
        )
        for name in ("kept", "free")
    )
    codes = {
        p.pk: Invitation.objects.create(
            patient=p,
            code_hash=uuid.uuid4().hex,
            email=p.email,
            created_by=clinician,
            expires_at=NOW + dt.timedelta(days=3),
        )
        for p in (kept, free)
    }
    _restrict(kept)

    response = operator_client.post(
        reverse("admin:patients_invitation_changelist"),
        {"action": "revoke", "_selected_action": [str(i.pk) for i in codes.values()]},
        follow=True,
    )

    assert response.status_code == 200
    page = response.content.decode().lower()  # the admin capitalises its messages
    assert "kept@example.com: this patient&#x27;s record is restricted" in page
    assert "revoked 1 code(s)." in page
    codes[kept.pk].refresh_from_db()
    codes[free.pk].refresh_from_db()
    assert codes[kept.pk].revoked_at is None
    assert codes[free.pk].revoked_at is not None
    revocations = AuditEvent.objects.filter(object_type="invitation")
    assert list(revocations.values_list("patient_id", flat=True)) == [free.pk]


def test_the_admin_still_changes_an_unrestricted_record(operator_client, patient):
    url = reverse("admin:patients_patient_change", args=[patient.pk])
    assert 'name="Patient_care_team-0-clinician"' in operator_client.get(url).content.decode()


# --------------------------------------------------------------------------- what is kept


def test_a_clinician_still_closes_a_restricted_patients_alert(patient, clinician, clinician_client):
    now = timezone.now()
    alert = Alert.objects.create(
        patient=patient,
        rule="RF-CES-01",
        rule_version=1,
        severity="emergency",
        title="Possible cauda equina",
        last_fired_at=now,
        opened_at=now,
    )
    _restrict(patient)
    url = f"/api/v1/clinician/alerts/{alert.pk}/"
    assert clinician_client.post(url + "acknowledge/", {}, format="json").status_code == 200
    resolved = clinician_client.post(
        url + "resolve/",
        {"disposition": "seen_in_clinic", "note": "Seen in clinic, stable."},
        format="json",
    )
    assert resolved.status_code == 200, resolved.content
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    assert _denied(patient) == []


def test_a_log_already_submitted_is_still_evaluated(patient):
    from rehab.services import safety
    from tests.rehab.factories_record import DailyLogFactory

    log = DailyLogFactory.create(
        patient=patient, date=patient.local_today(), safety={"fever": True}
    )
    _restrict(patient)
    assert safety.log_evaluate(log_id=log.pk).status == "evaluated"
    log.refresh_from_db()
    assert log.evaluated_at is not None


def test_a_restricted_record_is_still_exported_and_pseudonymised(
    patient, clinician, clinician_client, objects
):
    _restrict(patient)
    assert clinician_client.get(f"{R.format(patient=patient)}export/json/").status_code == 200
    job = clinician_client.post(f"{R.format(patient=patient)}exports/", {"format": "json"})
    assert job.status_code in (201, 202), job.content
    assert erasure.patient_pseudonymise(patient_id=patient.pk, reason=Erasure.Reason.RETENTION)
    patient.refresh_from_db()
    assert patient.first_name != "Pat"


def test_the_service_check_refuses_without_the_api(patient, clinician):
    _restrict(patient)
    with pytest.raises(RecordRestricted):
        record_services.diagnosis_create(
            patient=patient, clinician=clinician, name="x", date_from=dt.date(2026, 1, 1)
        )
    assert not Diagnosis.objects.filter(patient=patient).exists()
