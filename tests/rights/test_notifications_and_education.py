"""The tables added after the data-rights work: outgoing messages (`Delivery`), push devices,
education assignments and read receipts, the patient's language. Each is in the export
(and only the patient's own rows), follows the record at restriction and erasure, and
clinicians' reads of it show in the patient's access log (docs/data-rights.md)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from fhir.resources.R4B.patient import Patient as FhirPatient

from notifications.models import Delivery, Device, FeedItem, SafetyFollowUp
from notifications.patient_data import patient_pseudonymise
from notifications.services import delivery_plan
from patients.models import AuthToken, Patient, User
from programs.education import services as education_services
from programs.models import CardAssignment, CardRead, EducationCard
from rehab.models import Alert
from rights import erasure
from rights.fhir import bcp47
from rights.models import Erasure

pytestmark = pytest.mark.django_db

APNS_TOKEN = "a1" * 32
OTHER_TOKEN = "b2" * 32
OTHER_ADDRESS = "olly-private@hilltop.example"
CARE_TEAM_ADDRESS = "alice@riverside.example"


def _device(user: User | None, token: str, **extra: Any) -> Device:
    assert user is not None
    instance, _ = AuthToken.objects.create(user=user, device="RehabApp/3.0")
    return Device.objects.create(
        user=user, auth_token=instance, platform="ios", token=token, **extra
    )


def _deliveries(patient: Patient, *, address: str, status: str = "sent") -> Delivery:
    """A reminder sent to the patient, and the care team's alert about them."""
    reminder_id = delivery_plan(
        kind=Delivery.Kind.MISSED_LOG_REMINDER,
        key=f"missed_log_reminder:{patient.pk}",
        address=address,
        recipient_id=patient.user_id,
        patient_id=patient.pk,
        object_id=1,
    )
    assert reminder_id is not None
    Delivery.objects.filter(pk=reminder_id).update(status=status, provider_id="<msg-1@smtp>")
    alert = Alert.objects.create(
        patient=patient,
        rule="RF-CES-01",
        rule_version=1,
        severity="emergency",
        title="Possible cauda equina",
        last_fired_at=patient.created_at,
        opened_at=patient.created_at,
    )
    clinician = patient.care_team.first() or patient.clinic.clinicians.first()
    assert clinician is not None
    delivery_plan(
        kind=Delivery.Kind.ALERT,
        key=f"notify:{alert.pk}:0:{clinician.user.email}",
        address=clinician.user.email,
        recipient_id=clinician.user_id,
        alert_id=alert.pk,
        patient_id=patient.pk,
    )
    return Delivery.objects.get(pk=reminder_id)


def _card(clinician: Any, title: str) -> EducationCard:
    return education_services.card_create(
        clinician=clinician, language="en", title=title, body="A **pillow** helps."
    )


@pytest.fixture
def held(patient: Patient, clinician: Any) -> Patient:
    """The patient's rows in every new table."""
    Patient.objects.filter(pk=patient.pk).update(language="es")
    patient.refresh_from_db()
    _device(patient.user, APNS_TOKEN, app_version="3.0.1", locale="es-ES", time_zone="UTC")
    _deliveries(patient, address=patient.email)
    card = _card(clinician, "Sleeping positions")
    education_services.card_assign(patient=patient, card=card, by=clinician)
    education_services.card_mark_read(patient=patient, version=card.versions.get())
    return patient


@pytest.fixture
def others(other_patient: Patient, other_clinic_clinician: Any) -> Patient:
    """Another clinic's patient with rows in the same tables, carrying markers."""
    _device(other_patient.user, OTHER_TOKEN, app_version="olly-app")
    _deliveries(other_patient, address=OTHER_ADDRESS)
    card = _card(other_clinic_clinician, "Hilltop olly card")
    education_services.card_assign(patient=other_patient, card=card, by=other_clinic_clinician)
    education_services.card_mark_read(patient=other_patient, version=card.versions.get())
    return other_patient


# --------------------------------------------------------------------------- export


def test_the_json_export_holds_the_new_tables_and_nothing_of_another_patient(
    patient_client, held, others
):
    response = patient_client.get("/api/v1/me/export/json/")
    assert response.status_code == 200
    data = json.loads(response.content)
    assert data["patient"][0]["language"] == "es"

    (sent,) = data["notification_deliveries"]
    assert sent["kind"] == "missed_log_reminder"
    assert sent["address"] == held.email
    assert sent["status"] == "sent"
    assert {"channel", "due_at", "sent_at", "created_at"} <= set(sent)
    # The sending machinery's bookkeeping is not about the patient.
    assert "provider_id" not in sent
    assert "idempotency_key" not in sent

    (device,) = data["push_devices"]
    assert device == {**device, "platform": "ios", "app_version": "3.0.1", "locale": "es-ES"}
    assert device["time_zone"] == "UTC"

    (assignment,) = data["education_assignments"]
    (receipt,) = data["education_reads"]
    assert receipt["card_id"] == assignment["card_id"]
    assert receipt["version_number"] == 1
    assert receipt["version_title"] == "Sleeping positions"

    text = response.content.decode()
    # Never a push token (the patient's own included), nor another patient's rows, nor
    # the care team's addresses from the alert deliveries about the patient.
    for absent in (APNS_TOKEN, OTHER_TOKEN, OTHER_ADDRESS, "olly", CARE_TEAM_ADDRESS):
        assert absent not in text.lower(), absent


def test_the_csv_export_holds_the_new_tables_and_nothing_of_another_patient(
    patient_client, held, others
):
    response = patient_client.get("/api/v1/me/export/csv/")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode() if response.streaming else None
    text = text or response.content.decode()
    rows = list(csv.reader(io.StringIO(text)))
    sections = {row[0] for row in rows[1:]}
    assert {
        "notification_deliveries",
        "push_devices",
        "education_assignments",
        "education_reads",
    } <= sections
    assert ["patient", str(held.pk), "language", "es"] in [r[:4] for r in rows]
    for absent in (APNS_TOKEN, OTHER_TOKEN, OTHER_ADDRESS, "olly", CARE_TEAM_ADDRESS):
        assert absent not in text.lower(), absent


def test_a_clinicians_export_of_the_patient_holds_them_too(clinician_client, held, others):
    url = f"/api/v1/clinician/patients/{held.pk}/export/json/"
    data = json.loads(clinician_client.get(url).content)
    assert len(data["notification_deliveries"]) == 1
    assert [d["platform"] for d in data["push_devices"]] == ["ios"]
    assert len(data["education_reads"]) == 1
    assert APNS_TOKEN not in json.dumps(data)


def test_another_clinics_clinician_cannot_export_them(other_clinic_clinician_client, held):
    url = f"/api/v1/clinician/patients/{held.pk}/export/json/"
    assert other_clinic_clinician_client.get(url).status_code == 404


def test_the_fhir_patient_carries_the_preferred_language(patient_client, held):
    response = patient_client.get("/api/v1/me/export/fhir/")
    assert response.status_code == 200
    bundle = json.loads(response.content)
    (resource,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    FhirPatient.model_validate(resource)
    (communication,) = resource["communication"]
    assert communication["preferred"] is True
    (coding,) = communication["language"]["coding"]
    assert (coding["system"], coding["code"]) == ("urn:ietf:bcp:47", "es")


def test_the_fhir_patient_has_no_language_when_none_was_chosen(patient_client, patient):
    bundle = json.loads(patient_client.get("/api/v1/me/export/fhir/").content)
    (resource,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    FhirPatient.model_validate(resource)
    assert "communication" not in resource


@pytest.mark.parametrize(
    ("django", "tag"),
    [
        ("en", "en"),
        ("es", "es"),
        ("pt-br", "pt-BR"),
        ("zh-hans", "zh-Hans"),
        ("sr-latn-rs", "sr-Latn-RS"),
    ],
)
def test_a_django_language_code_becomes_a_bcp47_tag(django, tag):
    assert bcp47(django) == tag


# --------------------------------------------------------------------------- devices


def test_revoking_the_tokens_deletes_their_devices(patient):
    """The foreign key cascades: the account close relies on it."""
    device = _device(patient.user, APNS_TOKEN)
    AuthToken.objects.filter(user=patient.user).delete()
    assert not Device.objects.filter(pk=device.pk).exists()


def test_closing_the_account_removes_every_device_and_keeps_the_receipts(
    held, others, other_patient
):
    session = SessionStore()
    session.create()
    Device.objects.create(
        user=held.user,
        session=Session.objects.get(pk=session.session_key),
        platform="web",
        token="https://fcm.googleapis.com/fcm/send/pat",
        p256dh="k" * 20,
        auth="a" * 16,
    )
    assert erasure.account_close(patient=held) == 1  # the app's sign-in
    assert not Device.objects.filter(user=held.user).exists()
    # Restricted, not erased: the record (receipts, the delivery's address) is kept.
    held.refresh_from_db()
    assert held.is_restricted
    assert CardRead.objects.filter(patient=held).count() == 1
    assert Delivery.objects.filter(patient=held, address=held.email).count() == 1
    # Nobody else's device went.
    assert Device.objects.filter(user=other_patient.user).count() == 1


# --------------------------------------------------------------------------- erasure


def test_pseudonymising_erases_the_addresses_and_cancels_what_is_owed(held, others, clinician):
    email = held.email
    owed = delivery_plan(
        kind=Delivery.Kind.MISSED_LOG_REMINDER,
        key="missed_log_reminder:owed",
        address=email,
        recipient_id=held.user_id,
        patient_id=held.pk,
        object_id=2,
    )
    assert owed is not None
    assert erasure.patient_pseudonymise(patient_id=held.pk, reason=Erasure.Reason.REQUEST)

    mine = Delivery.objects.filter(patient=held, recipient=held.user)
    assert mine.count() == 2  # the record that messages went out stays
    assert set(mine.values_list("address", "provider_id", "last_error")) == {("", "", "")}
    assert Delivery.objects.get(pk=owed).status == Delivery.Status.CANCELLED
    # No column of any delivery about the patient holds their address.
    for row in Delivery.objects.filter(patient=held).values():
        assert email.lower() not in json.dumps(row, default=str).lower(), row
    # The care team's delivery about the alert keeps the clinician's own address.
    assert Delivery.objects.get(patient=held, kind="alert").address == CARE_TEAM_ADDRESS
    assert not Device.objects.filter(user=held.user).exists()
    # Education: which card, which version, when; no free text, kept like exercise logs.
    assert CardAssignment.objects.filter(patient=held).count() == 1
    assert CardRead.objects.filter(patient=held).count() == 1
    # Another patient's rows are untouched.
    assert Delivery.objects.filter(address=OTHER_ADDRESS).count() == 1
    assert Device.objects.filter(token=OTHER_TOKEN).exists()


def test_the_retention_job_erases_the_addresses_too(held, others, settings):
    settings.RETENTION_YEARS_DEFAULT = 0
    email = held.email
    assert erasure.retention_sweep() == 2
    assert not Delivery.objects.filter(address__iexact=email).exists()
    assert not Delivery.objects.filter(address=OTHER_ADDRESS).exists()
    assert not Device.objects.exists()


def test_an_erasure_that_fails_leaves_no_half_erased_record(held, monkeypatch):
    """The notifications tables are erased in the erasure's own transaction: when any step
    fails, nothing is committed, and the retention job tries the whole again next day."""
    from notifications import patient_data

    def broken(*, patient: Patient) -> None:
        Delivery.objects.filter(patient=patient).update(address="")
        raise RuntimeError("disk full")

    monkeypatch.setattr(patient_data, "patient_pseudonymise", broken)
    with pytest.raises(RuntimeError):
        erasure.patient_pseudonymise(patient_id=held.pk, reason=Erasure.Reason.RETENTION)
    held.refresh_from_db()
    assert held.first_name == "Pat"
    assert not Erasure.objects.exists()
    assert Delivery.objects.filter(patient=held, address=held.email).count() == 1


# --------------------------------------------------------------------------- access log


def test_a_clinicians_reads_of_the_receipts_show_in_the_access_log(
    patient_client, clinician_client, clinician, held
):
    api = clinician_client.get(f"/api/v1/clinician/patients/{held.pk}/education/")
    assert api.status_code == 200
    web = Client()
    web.force_login(clinician.user)
    assert web.get(f"/dashboard/patients/{held.pk}/education/").status_code == 200
    entries = patient_client.get("/api/v1/me/access-log/").json()["results"]
    reads = [e for e in entries if e["what"] == "card_receipts"]
    assert {e["via"] for e in reads} == {"api", "dashboard"}
    assert all(e["who"]["name"] == "Alice Physio" for e in reads)


def _follow_up(patient: Patient) -> SafetyFollowUp:
    alert = Alert.objects.create(
        patient=patient,
        rule="RF-CES-01",
        rule_version=1,
        severity="emergency",
        title="Possible cauda equina",
        last_fired_at=patient.created_at,
        opened_at=patient.created_at,
    )
    follow_up = SafetyFollowUp.objects.create(
        alert=alert,
        patient=patient,
        opened_at=alert.opened_at,
        severity="emergency",
        advice_message_key="ces",
        advised_at=alert.opened_at,
        due_at=alert.opened_at,
    )
    FeedItem.objects.create(
        patient=patient,
        kind=Delivery.Kind.SAFETY_FOLLOW_UP,
        alert=alert,
        follow_up=follow_up,
        idempotency_key=f"follow_up:{follow_up.pk}",
    )
    return follow_up


def test_the_export_holds_the_feed_and_the_follow_ups_of_the_patient_only(
    patient_client, patient, other_patient
):
    mine = _follow_up(patient)
    _follow_up(other_patient)
    data = json.loads(patient_client.get("/api/v1/me/export/json/").content)
    assert [row["id"] for row in data["safety_follow_ups"]] == [str(mine.pk)]
    assert [row["kind"] for row in data["notification_feed"]] == ["safety_follow_up"]
    assert len(data["notification_feed"]) == 1


def test_pseudonymising_skips_a_follow_up_not_yet_asked(patient, other_patient):
    mine, theirs = _follow_up(patient), _follow_up(other_patient)
    patient_pseudonymise(patient=patient)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("skipped", "due")
