"""Scoped exactly like the API: another clinic's patient or alert does not exist."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from rehab.models import Alert

pytestmark = pytest.mark.django_db


def test_it_answers_404_for_another_clinics_patient(web, other_patient):
    elsewhere = web.get(f"/dashboard/patients/{other_patient.pk}/")
    nobody = web.get(f"/dashboard/patients/{uuid.uuid4()}/")
    assert (elsewhere.status_code, nobody.status_code) == (404, 404)
    # The same page either way: nothing tells "another clinic's" from "no such patient"
    # (but the sign-out form's CSRF token, masked afresh on every page).
    assert _unmasked(elsewhere.content) == _unmasked(nobody.content)
    assert b"<h1>Not found</h1>" in elsewhere.content


def _unmasked(content: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def test_it_keeps_the_navigation_and_sign_out_on_the_404_page(web, other_patient, alert):
    content = web.get(f"/dashboard/patients/{other_patient.pk}/").content.decode()
    assert '<nav aria-label="Main">' in content
    assert 'aria-label="1 open">1</span>' in content  # the clinician's open alert
    assert 'action="/dashboard/logout/"' in content
    assert "Alice Physio" in content
    # Signed out, an unknown dashboard page is a 404 with no navigation to offer.
    anonymous = Client().get("/dashboard/no-such-page/")
    assert anonymous.status_code == 404
    assert b'<nav aria-label="Main">' not in anonymous.content


def test_it_answers_404_for_another_clinics_alert_and_changes_nothing(web, other_alert):
    assert web.get(f"/dashboard/alerts/{other_alert.pk}/").status_code == 404
    acknowledge = web.post(f"/dashboard/alerts/{other_alert.pk}/acknowledge/", {"note": "mine"})
    resolve = web.post(
        f"/dashboard/alerts/{other_alert.pk}/resolve/", {"disposition": "no_action_needed"}
    )
    assert (acknowledge.status_code, resolve.status_code) == (404, 404)
    other_alert.refresh_from_db()
    assert other_alert.status == Alert.Status.OPEN


def test_it_lists_only_the_clinics_own_patients_and_alerts(
    web, patient, alert, other_patient, other_alert
):
    caseload = web.get("/dashboard/").content.decode()
    assert str(patient.pk) in caseload
    assert str(other_patient.pk) not in caseload
    inbox = web.get("/dashboard/alerts/").content.decode()
    assert str(alert.pk) in inbox
    assert str(other_alert.pk) not in inbox
    assert 'Alerts <span class="count" aria-label="1 open">1</span>' in inbox


def test_the_other_clinic_sees_its_own_patient_but_not_ours(other_web, patient, other_patient):
    assert other_web.get(f"/dashboard/patients/{other_patient.pk}/").status_code == 200
    assert other_web.get(f"/dashboard/patients/{patient.pk}/").status_code == 404
