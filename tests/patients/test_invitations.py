from __future__ import annotations

import json
import re
import smtplib
from datetime import date, timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db.models import QuerySet
from django.test import override_settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from config.celery import app as celery_app
from notifications import services as notification_services
from notifications import tasks
from notifications.models import Delivery
from patients import tasks as patient_tasks
from patients.models import AuditEvent, Invitation, Patient, User
from tests.patients.hashing import hashed_lengths

pytestmark = pytest.mark.django_db

INVITE = "/api/v1/clinician/invitations/"
REGISTER = "/api/v1/auth/register/"
STRONG_PASSWORD = "sciatic-nerve-glides-42"


class FailingEmailBackend(BaseEmailBackend):
    """A mail server that is down."""

    attempts = 0

    def send_messages(self, email_messages: Any) -> int:
        FailingEmailBackend.attempts += 1
        raise smtplib.SMTPServerDisconnected("mail server down")


@pytest.fixture(autouse=True)
def _emails_run_in_process(enqueued: list[tuple[Any, ...]]) -> None:
    """Every invitation email of this module is sent as a worker would (conftest)."""


def _invite_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": "sam.new@example.com",
        "first_name": "Sam",
        "last_name": "New",
        "date_of_birth": "1980-03-14",
        "timezone": "Europe/London",
        "condition": "Sciatica, right L5",
        "affected_side": "right",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def _invite(client: APIClient, capture: Any, **overrides: Any) -> Any:
    with capture(execute=True):
        return client.post(INVITE, _invite_body(**overrides))


def _register(
    client: APIClient,
    code: str,
    email: str = "sam.new@example.com",
    password: str = STRONG_PASSWORD,
) -> Any:
    return client.post(REGISTER, {"code": code, "email": email, "password": password})


# --------------------------------------------------------------------------- invite


def test_it_invites_a_patient(clinician_client, clinician, django_capture_on_commit_callbacks):
    response = _invite(clinician_client, django_capture_on_commit_callbacks)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"code", "patient_id", "expires_at"}

    patient = Patient.objects.get(pk=body["patient_id"])
    assert patient.clinic == clinician.clinic
    assert list(patient.care_team.all()) == [clinician]
    assert patient.user is None
    assert patient.email == "sam.new@example.com"
    assert patient.date_of_birth == date(1980, 3, 14)
    assert patient.timezone == "Europe/London"
    assert patient.condition == "Sciatica, right L5"
    assert patient.affected_side == "right"


def test_it_emails_the_code_after_commit(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = clinician_client.post(INVITE, _invite_body())
    assert response.status_code == 201
    # Nothing leaves before the transaction commits: a rolled-back invite sends nothing.
    assert mail.outbox == []
    for callback in callbacks:
        callback()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["sam.new@example.com"]
    assert "Riverside Physio" in message.subject
    assert response.json()["code"] in message.body
    assert Invitation.objects.get().last_sent_at is not None


def test_it_enqueues_the_email_task_on_commit_with_json_arguments(
    clinician_client, clinician, django_capture_on_commit_callbacks, enqueued
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = clinician_client.post(INVITE, _invite_body())
    assert response.status_code == 201
    assert enqueued == []
    for callback in callbacks:
        callback()
    invitation = Invitation.objects.get()
    # The id only: the code is a secret, and a queue message is no place for one.
    assert enqueued == [(str(invitation.pk),)]
    assert json.loads(json.dumps(enqueued[0])) == list(enqueued[0])
    code = response.json()["code"]
    assert code not in json.dumps(enqueued)
    assert re.sub(r"\W", "", code) not in json.dumps(enqueued)


def test_it_puts_no_code_in_the_celery_message(
    clinician_client, clinician, django_capture_on_commit_callbacks, monkeypatch
):
    # Published for real to the broker (Redis), and read back from its queue as it waits
    # for a worker: what anyone with access to Redis (or its dump) would see.
    import base64

    import redis
    from django.conf import settings

    monkeypatch.delattr(celery_app, "send_task")  # this module's stand-in
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = "default"  # invitations travel on the default queue (config/celery.py)
    before = broker.llen(queue)
    with django_capture_on_commit_callbacks(execute=True):
        code = clinician_client.post(INVITE, _invite_body()).json()["code"]
    raw: list[Any] = list(broker.lrange(queue, 0, broker.llen(queue) - before - 1))
    try:
        (message,) = raw
        envelope = json.loads(message)
        body = base64.b64decode(envelope["body"]).decode()
        invitation = Invitation.objects.get()
        assert json.loads(body)[0] == [str(invitation.pk)]
        for text in (message.decode(), body):
            assert code not in text
            assert re.sub(r"\W", "", code) not in text
    finally:
        for message in raw:
            broker.lrem(queue, 1, message)


def test_it_emails_the_code_it_answered_from_the_id_alone_and_it_registers(
    clinician_client, clinician, django_capture_on_commit_callbacks, anon_client
):
    with django_capture_on_commit_callbacks(execute=False):
        code = clinician_client.post(INVITE, _invite_body()).json()["code"]
    invitation = Invitation.objects.get()
    assert tasks.invitation_send_task(str(invitation.pk)) is True
    emailed = re.search(r"enter:\s+(\S+)", str(mail.outbox[0].body))
    assert emailed is not None
    assert emailed.group(1) == code
    assert _register(anon_client, emailed.group(1)).status_code == 201


def test_it_derives_no_working_code_without_the_secret_key(
    clinician_client, clinician, django_capture_on_commit_callbacks, settings
):
    with django_capture_on_commit_callbacks(execute=False):
        code = clinician_client.post(INVITE, _invite_body()).json()["code"]
    invitation = Invitation.objects.get()
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert tasks.invitation_send_task(str(invitation.pk)) is False
    assert mail.outbox == []
    # A rotation that keeps the old key as a fallback still sends the same code.
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert tasks.invitation_send_task(str(invitation.pk)) is True
    assert code in mail.outbox[0].body


def test_it_ignores_a_code_in_a_message_queued_before_the_upgrade(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        code = clinician_client.post(INVITE, _invite_body()).json()["code"]
    invitation = Invitation.objects.get()
    # The old task hands the id alone on to the notifications app's (run in-process here).
    assert patient_tasks.invitation_send_task(str(invitation.pk), "WRONG-CODE-0000") is True
    assert code in mail.outbox[0].body


def test_it_sends_the_email_from_the_task_once(
    clinician_client, clinician, django_capture_on_commit_callbacks, enqueued
):
    with django_capture_on_commit_callbacks(execute=False):
        code = clinician_client.post(INVITE, _invite_body()).json()["code"]
    invitation = Invitation.objects.get()
    assert tasks.invitation_send_task(str(invitation.pk)) is True
    assert len(mail.outbox) == 1
    assert code in mail.outbox[0].body
    # A redelivered message (acks_late) sends nothing more.
    assert tasks.invitation_send_task(str(invitation.pk)) is False
    assert len(mail.outbox) == 1


def test_it_does_not_email_a_code_that_was_replaced_before_it_was_sent(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        clinician_client.post(INVITE, _invite_body())
    old = Invitation.objects.get()
    _invite(clinician_client, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    assert tasks.invitation_send_task(str(old.pk)) is False
    assert mail.outbox == []


@override_settings(EMAIL_BACKEND="tests.patients.test_invitations.FailingEmailBackend")
def test_it_retries_a_failing_email_a_bounded_number_of_times(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    FailingEmailBackend.attempts = 0
    with django_capture_on_commit_callbacks(execute=False):
        clinician_client.post(INVITE, _invite_body())
    invitation = Invitation.objects.get()
    assert tasks.invitation_send_task(str(invitation.pk)) is False
    # Retried by the deliveries sweep after each back-off, then given up.
    for hours in range(1, 12):
        with time_machine.travel(timezone.now() + timedelta(hours=hours), tick=False):
            notification_services.deliveries_sweep()
    delivery = Delivery.objects.get(invitation=invitation)
    assert delivery.status == Delivery.Status.GIVEN_UP
    assert delivery.attempts == notification_services.MAX_ATTEMPTS
    assert FailingEmailBackend.attempts == notification_services.MAX_ATTEMPTS
    assert delivery.last_error == "SMTPServerDisconnected"
    assert Invitation.objects.get().last_sent_at is None


@pytest.mark.django_db(transaction=True)
@override_settings(EMAIL_BACKEND="tests.patients.test_invitations.FailingEmailBackend")
def test_it_answers_201_with_the_audit_row_when_the_mail_server_is_down(
    clinician_client, clinician
):
    # A real commit, so that on-commit work runs inside the request as in production.
    response = clinician_client.post(INVITE, _invite_body())
    assert response.status_code == 201
    invitation = Invitation.objects.get()
    assert str(invitation.patient_id) == response.json()["patient_id"]
    assert invitation.last_sent_at is None
    event = AuditEvent.objects.get(object_type="invitation")
    assert event.object_id == str(invitation.pk)
    assert event.actor == clinician.user


def test_it_answers_201_when_the_broker_is_down(
    clinician_client, clinician, django_capture_on_commit_callbacks, monkeypatch
):
    def broker_down(*args: Any) -> None:
        raise ConnectionError("redis down")

    monkeypatch.setattr(celery_app, "send_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_client.post(INVITE, _invite_body())
    assert response.status_code == 201
    assert AuditEvent.objects.filter(object_type="invitation").count() == 1


def test_it_audits_a_resent_invitation_inside_the_service(
    clinician, django_capture_on_commit_callbacks
):
    from patients import services

    with django_capture_on_commit_callbacks(execute=True):
        issued = services.invitation_create(
            clinician=clinician,
            email="sam.new@example.com",
            first_name="Sam",
            last_name="New",
            date_of_birth=date(1980, 3, 14),
            timezone_name="Europe/London",
        )
    with django_capture_on_commit_callbacks(execute=True):
        again = services.invitation_resend(invitation=issued.invitation, by=clinician)
    events = AuditEvent.objects.filter(object_type="invitation").order_by("id")
    assert [e.object_id for e in events] == [str(issued.invitation.pk), str(again.invitation.pk)]
    assert {e.actor_id for e in events} == {clinician.user.pk}
    assert len(mail.outbox) == 2
    assert again.code in mail.outbox[1].body


def test_it_expires_the_code_after_fourteen_days_by_default(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    before = timezone.now()
    response = _invite(clinician_client, django_capture_on_commit_callbacks)
    expires_at = parse_datetime(response.json()["expires_at"])
    assert expires_at is not None
    assert before + timedelta(days=14) <= expires_at <= timezone.now() + timedelta(days=14)


@override_settings(INVITATION_TTL_DAYS=3)
def test_it_takes_the_invitation_lifetime_from_settings(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    now = timezone.now().replace(microsecond=0)
    with time_machine.travel(now, tick=False):
        response = _invite(clinician_client, django_capture_on_commit_callbacks)
    expires_at = parse_datetime(response.json()["expires_at"])
    assert expires_at == now + timedelta(days=3)
    assert Invitation.objects.get().expires_at == now + timedelta(days=3)


def test_it_stores_only_a_hash_of_the_code(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    code = _invite(clinician_client, django_capture_on_commit_callbacks).json()["code"]
    invitation = Invitation.objects.get()
    assert code not in invitation.code_hash
    assert re.sub(r"\W", "", code) not in invitation.code_hash


def test_it_accepts_an_invitation_without_the_optional_fields(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    response = _invite(
        clinician_client, django_capture_on_commit_callbacks, condition=..., affected_side=...
    )
    assert response.status_code == 201
    patient = Patient.objects.get(pk=response.json()["patient_id"])
    assert patient.condition == ""
    assert patient.affected_side == ""


def test_it_audits_the_invitation(clinician_client, clinician, django_capture_on_commit_callbacks):
    response = _invite(clinician_client, django_capture_on_commit_callbacks)
    event = AuditEvent.objects.get(object_type="invitation")
    assert event.action == "create"
    assert event.actor == clinician.user
    assert str(event.patient_id) == response.json()["patient_id"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "europe/london"}, "timezone"),
        ({"affected_side": "middle"}, "affected_side"),
        ({"affected_side": "bilateral"}, "affected_side"),
        ({"condition": "x" * 201}, "condition"),
        ({"email": ...}, "email"),
        ({"first_name": ...}, "first_name"),
        ({"last_name": ...}, "last_name"),
        ({"date_of_birth": ...}, "date_of_birth"),
        ({"timezone": ...}, "timezone"),
        ({"nickname": "Sammy"}, "nickname"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"date_of_birth": "14/03/1980"}, "date_of_birth"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "sam@"}, "email"),
        ({"email": "a" * 190 + "@" + "d" * 60 + ".example"}, "email"),
        ({"email": "a" * 240 + "@" + "d" * 60 + ".example"}, "email"),
    ],
)
def test_it_rejects_bad_invitations_with_400(
    clinician_client, clinician, django_capture_on_commit_callbacks, overrides, field
):
    response = _invite(clinician_client, django_capture_on_commit_callbacks, **overrides)
    assert response.status_code == 400
    assert field in response.json()
    assert not Patient.objects.exists()
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_it_rejects_a_date_of_birth_of_today(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    today = timezone.now().date().isoformat()
    response = _invite(clinician_client, django_capture_on_commit_callbacks, date_of_birth=today)
    assert response.status_code == 400
    assert "date_of_birth" in response.json()


def test_it_accepts_a_condition_of_exactly_200_characters(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    response = _invite(clinician_client, django_capture_on_commit_callbacks, condition="x" * 200)
    assert response.status_code == 201


def test_it_refuses_patients_with_403(patient_client, django_capture_on_commit_callbacks):
    response = _invite(patient_client, django_capture_on_commit_callbacks)
    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_it_refuses_anonymous_callers_with_401(anon_client, db, django_capture_on_commit_callbacks):
    response = _invite(anon_client, django_capture_on_commit_callbacks)
    assert response.status_code == 401
    assert not Patient.objects.exists()


def test_it_refreshes_the_code_when_reinviting_an_unregistered_patient(
    clinician_client, anon_client, clinician, django_capture_on_commit_callbacks
):
    first = _invite(clinician_client, django_capture_on_commit_callbacks).json()
    second_response = _invite(
        clinician_client, django_capture_on_commit_callbacks, email="SAM.NEW@example.com"
    )
    assert second_response.status_code == 201
    second = second_response.json()

    # The same patient record, a new code, and a second email.
    assert second["patient_id"] == first["patient_id"]
    assert second["code"] != first["code"]
    assert Patient.objects.count() == 1
    assert len(mail.outbox) == 2

    # Only the latest code works.
    assert _register(anon_client, first["code"]).status_code == 400
    assert _register(anon_client, second["code"]).status_code == 201


def test_it_survives_two_invitations_of_a_new_email_at_once(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    first = _invite(clinician_client, django_capture_on_commit_callbacks).json()
    # The second request looks before the first has committed and finds no record, as a
    # concurrent request would; its insert then meets the first one's row.
    real_first = QuerySet.first
    missed: list[bool] = []

    def first_missing_once(self: QuerySet[Any]) -> Any:
        if self.model is Patient and not missed:
            missed.append(True)
            return None
        return real_first(self)

    with mock.patch.object(QuerySet, "first", first_missing_once):
        response = _invite(clinician_client, django_capture_on_commit_callbacks, last_name="Two")
    assert missed
    assert response.status_code == 201
    assert response.json()["patient_id"] == first["patient_id"]
    assert Patient.objects.get().last_name == "Two"


def test_it_updates_the_details_of_a_reinvited_patient(
    clinician_client, clinician, django_capture_on_commit_callbacks
):
    _invite(clinician_client, django_capture_on_commit_callbacks)
    _invite(clinician_client, django_capture_on_commit_callbacks, last_name="Newer")
    assert Patient.objects.get().last_name == "Newer"


def test_it_refuses_to_invite_a_registered_patient(
    clinician_client, patient, django_capture_on_commit_callbacks
):
    response = _invite(clinician_client, django_capture_on_commit_callbacks, email=patient.email)
    assert response.status_code == 400
    assert "email" in response.json()
    assert not Invitation.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize("who", ["other_patient", "other_clinic_clinician", "clinician"])
def test_it_answers_an_email_with_an_account_elsewhere_as_any_new_email(
    clinician_client,
    clinician,
    other_patient,
    other_clinic_clinician,
    anon_client,
    django_capture_on_commit_callbacks,
    who,
):
    email = {
        "other_patient": "olly@example.com",
        "other_clinic_clinician": "BOB@hilltop.example",
        "clinician": "alice@riverside.example",
    }[who]
    fresh = _invite(clinician_client, django_capture_on_commit_callbacks)
    taken = _invite(clinician_client, django_capture_on_commit_callbacks, email=email)

    # Nothing in the answer tells the clinician that the address has an account.
    assert (taken.status_code, sorted(taken.json())) == (201, sorted(fresh.json()))
    assert len(taken.json()["code"]) == len(fresh.json()["code"])
    # The address's owner is told, without a code that could never work.
    message = mail.outbox[-1]
    assert message.to == [email.lower()]
    assert "already has an account" in message.body
    assert taken.json()["code"] not in message.body
    # Nor does registering with the code tell the clinician more than a spent code would.
    response = _register(anon_client, taken.json()["code"], email=email.lower())
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "code",
            "code": "invalid",
            "message": "This code is unknown, expired or already used.",
        }
    ]
    assert User.objects.filter(email__iexact=email).count() == 1


def test_it_keeps_invitations_within_the_inviting_clinic(
    clinician_client,
    other_clinic_clinician_client,
    clinician,
    other_clinic_clinician,
    django_capture_on_commit_callbacks,
):
    ours = _invite(clinician_client, django_capture_on_commit_callbacks).json()
    theirs = _invite(other_clinic_clinician_client, django_capture_on_commit_callbacks).json()
    # The same person invited by two clinics is two patient records, one per clinic.
    assert ours["patient_id"] != theirs["patient_id"]
    assert Patient.objects.get(pk=ours["patient_id"]).clinic == clinician.clinic
    assert Patient.objects.get(pk=theirs["patient_id"]).clinic == other_clinic_clinician.clinic


# --------------------------------------------------------------------------- register


@pytest.fixture
def invitation_code(clinician_client, clinician, django_capture_on_commit_callbacks) -> str:
    response = _invite(clinician_client, django_capture_on_commit_callbacks)
    assert response.status_code == 201
    code: str = response.json()["code"]
    return code


def test_it_registers_an_invited_patient(anon_client, invitation_code):
    response = _register(anon_client, invitation_code)
    assert response.status_code == 201
    body = response.json()
    assert body["role"] == "patient"
    assert body["token"]
    assert body["expires_at"]

    patient = Patient.objects.get(email="sam.new@example.com")
    assert patient.user is not None
    assert patient.user.email == "sam.new@example.com"
    assert patient.user.check_password(STRONG_PASSWORD)
    assert Invitation.objects.get().used_at is not None


def test_it_issues_a_token_that_works(anon_client, invitation_code):
    token = _register(anon_client, invitation_code).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.post("/api/v1/auth/logout/").status_code == 204
    assert client.post("/api/v1/auth/logout/").status_code == 401


def test_it_lets_the_new_patient_sign_in_with_their_password(anon_client, invitation_code):
    _register(anon_client, invitation_code)
    response = anon_client.post(
        "/api/v1/auth/login/", {"email": "sam.new@example.com", "password": STRONG_PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["role"] == "patient"


def test_it_accepts_the_code_typed_loosely(anon_client, invitation_code):
    # Read from an email and typed on a phone: lower case, without the dashes.
    typed = invitation_code.replace("-", "").lower()
    assert _register(anon_client, typed, email="Sam.New@Example.com").status_code == 201


def test_it_rejects_an_unknown_code(anon_client, invitation_code):
    response = _register(anon_client, "AAAA-BBBB-CCCC")
    assert response.status_code == 400
    assert "code" in response.json()
    assert Patient.objects.get().user is None


def test_it_rejects_an_expired_code(anon_client, invitation_code):
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _register(anon_client, invitation_code)
    assert response.status_code == 400
    assert "code" in response.json()
    assert Patient.objects.get().user is None


def test_it_accepts_a_code_just_before_it_expires(anon_client, invitation_code):
    Invitation.objects.update(expires_at=timezone.now() + timedelta(minutes=1))
    assert _register(anon_client, invitation_code).status_code == 201


def test_it_rejects_a_used_code(anon_client, invitation_code):
    assert _register(anon_client, invitation_code).status_code == 201
    again = _register(anon_client, invitation_code, password="another-long-passphrase-9")
    assert again.status_code == 400
    assert "code" in again.json()


@pytest.mark.parametrize(
    "password",
    ["short1", "password123", "12345678901", "sam.new@example.com", " " * 12, " \t " * 4],
)
def test_it_rejects_a_weak_password(anon_client, invitation_code, password):
    response = _register(anon_client, invitation_code, password=password)
    assert response.status_code == 400
    assert "password" in response.json()
    # The code is not spent on a failed attempt.
    assert Invitation.objects.get().used_at is None
    assert _register(anon_client, invitation_code).status_code == 201


def test_it_rejects_a_password_over_200_characters_before_hashing_it(
    anon_client, invitation_code, monkeypatch
):
    hashed = hashed_lengths(monkeypatch)
    response = _register(anon_client, invitation_code, password="a-long-passphrase-" * 12)
    assert response.status_code == 400
    assert "password" in response.json()
    assert hashed == []
    assert Invitation.objects.get().used_at is None
    assert not User.objects.filter(email="sam.new@example.com").exists()


def test_it_rejects_an_email_that_is_not_the_invited_one(anon_client, invitation_code):
    response = _register(anon_client, invitation_code, email="someone.else@example.com")
    assert response.status_code == 400
    assert "email" in response.json()
    assert Invitation.objects.get().used_at is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "sam.new@example.com", "password": STRONG_PASSWORD}, "code"),
        ({"code": "AAAA-BBBB-CCCC", "password": STRONG_PASSWORD}, "email"),
        ({"code": "AAAA-BBBB-CCCC", "email": "sam.new@example.com"}, "password"),
        (
            {
                "code": "AAAA-BBBB-CCCC",
                "email": "sam.new@example.com",
                "password": STRONG_PASSWORD,
                "invite": "x",
            },
            "invite",
        ),
    ],
)
def test_it_rejects_incomplete_registrations(anon_client, db, body, field):
    response = anon_client.post(REGISTER, body)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("length", [255, 320])
def test_it_rejects_a_registration_email_longer_than_254_characters(
    anon_client, invitation_code, length
):
    domain = "@" + ".".join(["d" * 60] * 3) + ".example"
    email = "a" * (length - len(domain)) + domain
    response = _register(anon_client, invitation_code, email=email)
    assert response.status_code == 400
    assert "email" in response.json()
    assert Invitation.objects.get().used_at is None
    assert not AuditEvent.objects.filter(object_type="account").exists()


def test_it_audits_the_registration(anon_client, invitation_code):
    _register(anon_client, invitation_code)
    patient = Patient.objects.get()
    event = AuditEvent.objects.get(object_type="account")
    assert event.action == "create"
    assert event.actor == patient.user
    assert event.patient_id == patient.pk


def test_it_records_where_a_registration_came_from(anon_client, invitation_code):
    anon_client.post(
        REGISTER,
        {"code": invitation_code, "email": "sam.new@example.com", "password": STRONG_PASSWORD},
        REMOTE_ADDR="10.4.5.6",
        HTTP_USER_AGENT="RehabApp/2.1 (iPhone)",
    )
    event = AuditEvent.objects.get(object_type="account")
    assert event.ip == "10.4.5.0"  # a patient's address, cut to its network
    assert event.path == REGISTER
    assert event.method == "POST"
    assert event.user_agent == "RehabApp/2.1 (iPhone)"


@override_settings(THROTTLE_RATES={"login": "10/15min", "register": "3/hour", "logs": "600/hour"})
def test_it_throttles_registration_attempts(anon_client, db):
    for _ in range(3):
        assert _register(anon_client, "AAAA-BBBB-CCCC").status_code == 400
    response = _register(anon_client, "AAAA-BBBB-CCCC")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


@override_settings(THROTTLE_RATES={"login": "10/15min", "register": "2/hour", "logs": "600/hour"})
def test_it_throttles_registration_per_client(anon_client, db):
    for _ in range(2):
        _register(anon_client, "AAAA-BBBB-CCCC")
    assert _register(anon_client, "AAAA-BBBB-CCCC").status_code == 429
    other = anon_client.post(
        REGISTER,
        {"code": "AAAA-BBBB-CCCC", "email": "x@example.com", "password": STRONG_PASSWORD},
        REMOTE_ADDR="10.20.30.40",
    )
    assert other.status_code == 400
