"""Push fan-out: a message owed to a person becomes one delivery per address, their email
and each registered device, sent through the channel of the device's platform (against
local FCM and Web Push servers), with a dead token forgetting its device."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.conf import settings as settings_module
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django.utils import timezone

from notifications import services
from notifications.models import CONSOLE_PUSH_CHANNEL, Delivery, Device, FeedItem
from patients.models import AuditEvent, AuthToken, Clinician, Patient, User
from rehab.models import Alert, AlertEvent, DailyLog, MissedLogReminder
from rehab.safety import Firing
from rehab.services import alerts as alert_services
from tests.factories import ClinicianFactory, PatientFactory
from tests.notifications.conftest import PushProviders

pytestmark = pytest.mark.django_db

ANDROID_TOKEN = "fcm-token:APA91b" + "q" * 140


def android(user: User, token: str = ANDROID_TOKEN) -> Device:
    auth_token, _ = AuthToken.objects.create(user=user)
    return Device.objects.create(user=user, auth_token=auth_token, platform="android", token=token)


def dashboard_browser(user: User, push: PushProviders) -> Device:
    """A clinician's browser that pressed "Notify this browser" on the dashboard."""
    session = SessionStore()
    session.create()
    subscription = push.browser()
    keys, endpoint = subscription["keys"], subscription["endpoint"]
    assert isinstance(keys, dict)
    assert isinstance(endpoint, str)
    return Device.objects.create(
        user=user,
        session_id=session.session_key,
        platform="web",
        token=endpoint,
        p256dh=keys["p256dh"],
        auth=keys["auth"],
    )


def emergency(patient: Patient) -> Alert:
    log = DailyLog.objects.create(patient=patient, date=date(2026, 11, 20), pain=5)
    firing = Firing(
        rule_id="RF-CES-01", version=1, severity="emergency", basis={}, message_key="rf_ces"
    )
    return alert_services.alert_raise(
        patient=patient, firing=firing, log=log, fired_on=log.date
    ).alert


def test_an_emergency_alert_pushes_to_the_care_teams_phone_and_browser_besides_email(
    push_providers, clinician, patient
):
    browser = dashboard_browser(clinician.user, push_providers)
    phone = android(clinician.user)
    alert = emergency(patient)

    assert services.alert_notify(alert_id=alert.pk)

    deliveries = Delivery.objects.filter(alert=alert, kind="alert")
    assert sorted(deliveries.values_list("channel", "address", "status")) == [
        ("email", clinician.user.email, "sent"),
        ("fcm", phone.address, "sent"),
        ("webpush", browser.address, "sent"),
    ]
    assert all(d.recipient_id == clinician.user_id for d in deliveries)
    # The email, the alert's record, went first: a slow push provider cannot hold it up.
    by_time = sorted(deliveries, key=lambda d: d.sent_at or timezone.now())
    assert by_time[0].channel == "email"
    assert [m.to for m in mail.outbox] == [[clinician.user.email]]
    # The browser's service worker is handed the alert's id, urgently; a lock screen
    # shows the rule, never the patient's name.
    ((payload, headers),) = push_providers.webpush.delivered
    assert payload["data"] == {"kind": "alert", "alert": str(alert.pk)}
    assert payload["urgent"] is True
    assert headers["urgency"] == "high"
    assert "RF-CES-01" in payload["title"]
    assert patient.first_name not in payload["title"] + payload["body"]
    # The alert's record names whom the care team's email reached, never a device.
    event = AlertEvent.objects.get(alert=alert, kind="notified")
    assert event.data["recipients"] == [clinician.user.email]


def test_each_device_is_planned_once_per_message_and_address(push_providers, clinician, patient):
    android(clinician.user)
    android(clinician.user, token=ANDROID_TOKEN + "2")
    dashboard_browser(clinician.user, push_providers)
    alert = emergency(patient)
    now = timezone.now()

    assert services._alert_plan(alert.pk, kind="alert", now=now)
    assert services._alert_plan(alert.pk, kind="alert", now=now)

    keys = list(Delivery.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys)) == 4
    assert all(len(key) <= 200 for key in keys)
    # No token is spelt out in a key.
    assert not any(ANDROID_TOKEN in key for key in keys)


def test_a_dead_token_forgets_the_device_and_leaves_the_alert_told(
    push_providers, clinician, patient
):
    phone = android(clinician.user)
    push_providers.fcm.unregistered.add(ANDROID_TOKEN)
    alert = emergency(patient)

    assert services.alert_notify(alert_id=alert.pk)

    pushed = Delivery.objects.get(alert=alert, channel="fcm")
    assert (pushed.status, pushed.last_outcome) == ("failed", "dead_address")
    assert not Device.objects.filter(pk=phone.pk).exists()
    forgotten = AuditEvent.objects.get(object_type="push_device", object_id=str(phone.pk))
    assert forgotten.action == "delete"
    assert ANDROID_TOKEN not in str(forgotten.changes)
    # The email reached the care team: a phone's dead token is no undelivered alert.
    alert.refresh_from_db()
    assert alert.notified_at is not None
    assert (alert.notify_attempts, alert.delivery_error) == (0, "")
    # An uninstalled app is routine: nothing for an operator on /health/.
    assert services.deliveries_failing()["failed_deliveries"] == 0


def test_a_push_channel_without_credentials_plans_no_push(clinician, patient):
    android(clinician.user)
    alert = emergency(patient)

    assert services.alert_notify(alert_id=alert.pk)

    assert list(Delivery.objects.values_list("channel", flat=True)) == ["email"]


def test_an_escalation_pushes_to_the_care_teams_devices(
    push_providers, clinician, patient, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    patient.clinic.escalation_email = "oncall@riverside.example"
    patient.clinic.save(update_fields=["escalation_email"])
    phone = android(clinician.user)
    alert = emergency(patient)
    Alert.objects.filter(pk=alert.pk).update(
        notify_due=False, escalation_due_at=timezone.now() - timedelta(minutes=1)
    )

    assert services.escalations_sweep() == 1

    escalation = Delivery.objects.filter(alert=alert, kind="escalation")
    assert sorted(escalation.values_list("channel", "address", "status")) == [
        ("email", "oncall@riverside.example", "sent"),
        ("fcm", phone.address, "sent"),
    ]


def test_a_missed_log_reminder_reaches_the_feed_the_email_and_the_phone(push_providers, patient):
    phone = android(patient.user)
    reminder = MissedLogReminder.objects.create(
        patient=patient, streak_from=date(2026, 11, 17), missed_days=3
    )

    assert services.missed_log_reminder_send(reminder_id=reminder.pk)

    item = FeedItem.objects.get(patient=patient)
    assert item.kind == "missed_log_reminder"
    assert sorted(
        Delivery.objects.filter(feed_item=item).values_list("channel", "address", "status")
    ) == [("email", patient.email, "sent"), ("fcm", phone.address, "sent")]
    reminder.refresh_from_db()
    assert reminder.sent_at is not None


def test_a_patient_with_push_off_and_no_email_still_has_the_message_in_the_feed(patient):
    Patient.objects.filter(pk=patient.pk).update(email="")
    patient.user.email = ""
    patient.user.save(update_fields=["email"])
    reminder = MissedLogReminder.objects.create(
        patient=patient, streak_from=date(2026, 11, 17), missed_days=3
    )

    services.missed_log_reminder_send(reminder_id=reminder.pk)

    assert FeedItem.objects.filter(patient=patient, kind="missed_log_reminder").exists()
    assert not Delivery.objects.exists()


def test_the_alert_page_shows_delivery_per_recipient_and_channel(
    push_providers, clinician, patient, client
):
    android(clinician.user)
    push_providers.fcm.unregistered.add(ANDROID_TOKEN)
    alert = emergency(patient)
    services.alert_notify(alert_id=alert.pk)
    client.force_login(clinician.user)

    page = client.get(f"/dashboard/alerts/{alert.pk}/").content.decode()

    table = page[page.index('aria-label="Delivery per recipient and channel"') :]
    table = table[: table.index("</table>")]
    name = clinician.user.get_full_name()
    assert table.count(f'<th scope="row">{name}</th>') == 2
    assert '<tr data-status="sent"><td>Alert to the care team</td>' in table
    assert "<td>email</td><td>Sent</td><td>1</td>" in table
    assert "<td>fcm</td><td>Failed</td><td>1</td><td>dead_address</td>" in table
    assert ANDROID_TOKEN not in page


def test_the_alert_page_shows_no_other_clinics_alert(other_clinic_clinician, patient, client):
    alert = emergency(patient)
    client.force_login(other_clinic_clinician.user)

    assert client.get(f"/dashboard/alerts/{alert.pk}/").status_code == 404


def test_an_expired_browser_subscription_is_forgotten_with_what_was_queued_for_it(
    push_providers, clinician, patient
):
    browser = dashboard_browser(clinician.user, push_providers)
    first, second = (
        emergency(patient),
        emergency(PatientFactory.create(clinic=patient.clinic, care_team=[clinician])),
    )
    now = timezone.now()
    services._alert_plan(first.pk, kind="alert", now=now)
    services._alert_plan(second.pk, kind="alert", now=now)
    push_providers.webpush.gone.update(push_providers.webpush.browsers)

    pushed = Delivery.objects.get(alert=first, channel="webpush")
    assert services.delivery_send(delivery_id=pushed.pk) is False

    assert not Device.objects.filter(pk=browser.pk).exists()
    pushed.refresh_from_db()
    assert (pushed.status, pushed.last_outcome) == ("failed", "dead_address")
    queued = Delivery.objects.get(alert=second, channel="webpush")
    assert queued.status == "cancelled"
    # The emails are untouched.
    assert set(Delivery.objects.filter(channel="email").values_list("status", flat=True)) == {
        "queued"
    }


def no_email(clinician: Clinician) -> None:
    """A clinician whose account has no email address (signs in another way)."""
    User.objects.filter(pk=clinician.user_id).update(email="")
    clinician.user.refresh_from_db()


def test_a_care_team_clinician_without_an_email_address_gets_the_push(
    push_providers, clinician, patient
):
    colleague = ClinicianFactory.create(clinic=patient.clinic)
    patient.care_team.add(colleague)
    no_email(clinician)
    phone = android(clinician.user)
    alert = emergency(patient)

    assert services.alert_notify(alert_id=alert.pk)

    deliveries = Delivery.objects.filter(alert=alert, kind="alert")
    assert sorted(deliveries.values_list("channel", "address", "recipient_id", "status")) == [
        ("email", colleague.user.email, colleague.user_id, "sent"),
        ("fcm", phone.address, clinician.user_id, "sent"),
    ]


def test_a_care_team_without_email_addresses_is_pushed_beside_the_clinics_contact(
    push_providers, clinician, patient
):
    no_email(clinician)
    phone = android(clinician.user)
    alert = emergency(patient)

    assert services.alert_notify(alert_id=alert.pk)

    # The email falls back to whoever answers for the clinic; the phone still rings.
    assert sorted(
        Delivery.objects.filter(alert=alert).values_list("channel", "address", "status")
    ) == [("email", "oncall@riverside.example", "sent"), ("fcm", phone.address, "sent")]


def test_an_alert_with_no_email_recipient_at_all_is_still_pushed_and_stays_owed(
    push_providers, clinician, patient
):
    patient.clinic.escalation_email = ""
    patient.clinic.save(update_fields=["escalation_email"])
    no_email(clinician)
    phone = android(clinician.user)
    alert = emergency(patient)

    assert services.alert_notify(alert_id=alert.pk) is False

    pushed = Delivery.objects.get(alert=alert)
    assert (pushed.channel, pushed.address, pushed.status) == ("fcm", phone.address, "sent")
    # The email is the alert's record: nobody was emailed, so it is not notified, the
    # failure is counted, and the alert is tried again (without a second push).
    alert.refresh_from_db()
    assert alert.notified_at is None
    assert alert.notify_attempts == 1
    Alert.objects.filter(pk=alert.pk).update(notify_retry_at=None)
    services.alert_notify(alert_id=alert.pk)
    assert Delivery.objects.filter(alert=alert).count() == 1


def test_a_push_goes_to_the_console_with_push_console_on(settings, clinician, patient, capsys):
    settings.PUSH_CONSOLE = True
    settings.NOTIFICATION_CHANNELS = {
        **settings.NOTIFICATION_CHANNELS,
        CONSOLE_PUSH_CHANNEL: "notifications.channels.console.ConsolePushChannel",
    }
    phone = android(clinician.user)
    alert = emergency(patient)

    assert services.alert_notify(alert_id=alert.pk)

    pushed = Delivery.objects.get(alert=alert, channel="console_push")
    assert (pushed.address, pushed.status, pushed.recipient_id) == (
        phone.address,
        "sent",
        clinician.user_id,
    )
    printed = capsys.readouterr().out
    assert f"--- push {pushed.pk}" in printed
    assert "[EMERGENCY] RF-CES-01" in printed
    assert f"alert={alert.pk}" in printed
    # Still a push: the email alone marks the alert notified and names its recipients.
    event = AlertEvent.objects.get(alert=alert, kind="notified")
    assert event.data["recipients"] == [clinician.user.email]


def test_a_push_never_goes_to_the_console_with_production_settings(clinician, patient):
    # The test settings are production's: PUSH_CONSOLE is off, and no console_push exists.
    assert settings_module.PUSH_CONSOLE is False
    assert CONSOLE_PUSH_CHANNEL not in settings_module.NOTIFICATION_CHANNELS
    phone = android(clinician.user)
    assert phone.channel == "fcm"
    alert = emergency(patient)

    assert services.alert_notify(alert_id=alert.pk)

    assert list(Delivery.objects.values_list("channel", flat=True)) == ["email"]
