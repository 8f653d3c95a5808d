from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patients.models import AuditEvent, Clinician, Patient
from rehab.models import Alert, AlertEvent
from rehab.services import alerts as alert_services
from tests.dashboard.conftest import make_alert
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def _csrf_token(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert match is not None
    return match.group(1).decode()


def test_it_acknowledges_an_alert_through_the_form_with_a_csrf_token(
    clinician: Clinician, patient: Patient, alert: Alert
):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician.user)
    page = f"/dashboard/patients/{patient.pk}/"
    token = _csrf_token(client, page)

    response = client.post(
        f"/dashboard/alerts/{alert.pk}/acknowledge/",
        {"csrfmiddlewaretoken": token, "note": "Phoned, seeing her today.", "next": page},
    )
    assert response.status_code == 302
    assert response["Location"] == page
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    assert alert.acknowledged_by == clinician.user
    assert alert.acknowledged_note == "Phoned, seeing her today."
    assert AlertEvent.objects.filter(alert=alert, kind="acknowledged").count() == 1
    assert AuditEvent.objects.filter(
        action="update", object_type="alert", object_id=str(alert.pk), patient=patient
    ).exists()

    followed = client.get(page)
    assert b"Acknowledged RF-NEU-01 for" in followed.content
    assert b'data-status="acknowledged"' in followed.content


def test_it_refuses_a_form_post_without_a_csrf_token(clinician, alert):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician.user)
    for action, data in (("acknowledge", {"note": "x"}), ("resolve", {"disposition": "referred"})):
        response = client.post(f"/dashboard/alerts/{alert.pk}/{action}/", data)
        assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.status == "open"


def test_it_resolves_an_alert_with_a_disposition_and_a_note(web, clinician, patient, alert):
    response = web.post(
        f"/dashboard/alerts/{alert.pk}/resolve/",
        {
            "disposition": "referred",
            "note": "Urgent spinal referral.",
            "next": "/dashboard/alerts/",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/alerts/"
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert alert.disposition == "referred"
    assert alert.resolved_note == "Urgent spinal referral."
    assert alert.resolved_by == clinician.user
    # Resolving an open alert acknowledges it on the way (the service's rule).
    assert alert.acknowledged_at is not None
    inbox = web.get("/dashboard/alerts/")
    assert b"Resolved RF-NEU-01" in inbox.content
    assert str(alert.pk).encode() not in inbox.content


def test_it_shows_a_form_error_and_changes_nothing_without_a_disposition(web, alert):
    response = web.post(
        f"/dashboard/alerts/{alert.pk}/resolve/", {"note": "forgot the outcome", "next": "/x/"}
    )
    assert response.status_code == 400
    assert b"Choose what was done before resolving the alert." in response.content
    assert b'aria-invalid="true"' in response.content
    # The note typed is kept for the second try.
    assert b"forgot the outcome" in response.content
    alert.refresh_from_db()
    assert alert.status == "open"
    assert not AlertEvent.objects.filter(alert=alert).exists()


def test_it_refuses_the_systems_own_disposition(web, alert):
    response = web.post(
        f"/dashboard/alerts/{alert.pk}/resolve/", {"disposition": "trigger_cleared"}
    )
    assert response.status_code == 400
    alert.refresh_from_db()
    assert alert.status == "open"


def test_it_refuses_a_note_over_2000_characters(web, alert):
    response = web.post(f"/dashboard/alerts/{alert.pk}/acknowledge/", {"note": "x" * 2001})
    assert response.status_code == 400
    alert.refresh_from_db()
    assert alert.status == "open"


def test_it_says_so_when_the_alert_is_already_resolved(web, alert, clinician):
    Alert.objects.filter(pk=alert.pk).update(status="resolved", disposition="referred")
    response = web.post(f"/dashboard/alerts/{alert.pk}/acknowledge/", {}, follow=True)
    assert b"This alert is already resolved." in response.content
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_it_never_redirects_to_another_site_after_an_action(web, alert):
    response = web.post(
        f"/dashboard/alerts/{alert.pk}/acknowledge/", {"next": "https://evil.example/"}
    )
    assert response["Location"] == f"/dashboard/alerts/{alert.pk}/"


def test_it_lists_unresolved_alerts_by_severity_then_age(web, clinician, patient):
    routine = make_alert(patient, severity="routine", rule="NR-PAIN-01", waited=timedelta(days=3))
    urgent = make_alert(patient, severity="urgent", rule="RF-NEU-01", waited=timedelta(hours=2))
    emergency = make_alert(patient, severity="emergency", rule="RF-CES-01")
    acked = make_alert(patient, severity="urgent", rule="RF-TH-01", status="acknowledged")
    done = make_alert(patient, severity="emergency", rule="RF-CES-02", status="resolved")

    content = web.get("/dashboard/alerts/").content.decode()
    shown = re.findall(r'<li class="card alert-card[^"]*" id="alert-([0-9a-f-]+)"', content)
    # Open and acknowledged alerts share the severity order; resolved ones are elsewhere.
    assert shown == [str(a.pk) for a in (emergency, urgent, acked, routine)]
    assert str(done.pk) not in content

    resolved = web.get("/dashboard/alerts/?status=resolved").content.decode()
    assert str(done.pk) in resolved
    assert str(routine.pk) not in resolved
    only_urgent = web.get("/dashboard/alerts/?severity=urgent").content.decode()
    assert str(urgent.pk) in only_urgent
    assert str(emergency.pk) not in only_urgent


def test_it_audits_the_patients_shown_in_the_inbox(web, clinician, patient, alert):
    web.get("/dashboard/alerts/")
    assert AuditEvent.objects.filter(
        actor=clinician.user, action="read", object_type="alert_list", patient=patient
    ).exists()


def test_it_shows_an_alerts_basis_occurrences_and_history(web, clinician, alert):
    web.post(f"/dashboard/alerts/{alert.pk}/acknowledge/", {"note": "on it"})
    response = web.get(f"/dashboard/alerts/{alert.pk}/")
    assert response.status_code == 200
    assert b"safety.weakness" in response.content
    assert b"foot_drop" in response.content
    assert b"Acknowledged by Alice Physio" in response.content
    assert AuditEvent.objects.filter(
        action="read", object_type="alert", object_id=str(alert.pk)
    ).exists()


def _inbox_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/dashboard/alerts/")
    assert response.status_code == 200
    return len(queries)


def _alerts_for_new_patients(clinician: Clinician, n: int) -> list[Alert]:
    """`n` alerts, each of its own patient, of every severity, some acknowledged."""
    made = []
    for i in range(n):
        patient = PatientFactory.create(clinic=clinician.clinic, care_team=[clinician])
        severity = ("emergency", "urgent", "routine")[i % 3]
        alert = make_alert(patient, severity=severity, waited=timedelta(hours=i + 1))
        if i % 2:
            alert_services.alert_acknowledge(alert=alert, actor=clinician.user, note="Seen")
        made.append(alert)
    return made


def test_the_inbox_costs_the_same_queries_for_2_or_10_alerts(web, clinician):
    _alerts_for_new_patients(clinician, 2)
    _inbox_queries(web)  # warm the session and content-type caches
    few = _inbox_queries(web)
    _alerts_for_new_patients(clinician, 8)
    content = web.get("/dashboard/alerts/").content.decode()
    assert content.count('<li class="card alert-card') == 10
    assert _inbox_queries(web) == few
