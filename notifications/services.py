"""Delivering every outgoing message (docs/architecture.md, "Notifications").

Two steps, each safe to run twice at once:

1. *Plan*: what another app records as owed (an alert's `notified_at` NULL, an invitation
   not yet sent, a missed-log reminder's `sent_at` NULL) becomes one `Delivery` row per
   address, inserted with `ON CONFLICT DO NOTHING` on an idempotency key that names the
   message: two sweeps, two beats or a redelivered task plan it once.
2. *Send*: a due row is claimed with `SELECT ... FOR UPDATE SKIP LOCKED` and leased
   (`status` sending, `sending_until`); the message is composed from the row it is about
   and handed to its channel outside any transaction, with the delivery's id as the
   provider's idempotency key; the outcome is recorded, together with the owning row's
   mark (`alert_notified`, `invitation_sent`...), in one transaction. A worker killed
   mid-send leaves the lease to run out, and the row is claimed again.

Failures are retried 1, 2, 4 ... minutes apart (at most 30, at least the provider's
Retry-After) up to `MAX_ATTEMPTS`, then given up; a dead address or a refused request is
failed at once. Both show on /health/ (notifications/health.py) and in the admin.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from config.db import insert_unless_conflict
from config.enqueue import SWEEP_GRACE, SWEEP_TIME_BUDGET, publish_on_commit
from notifications import messages, reminders
from notifications.channels.base import Outcome, OutgoingMessage, SendResult
from notifications.channels.registry import channel_configured, channel_get, email_channel_name
from notifications.devices import device_forget_dead
from notifications.models import (
    CONSOLE_PUSH_CHANNEL,
    Delivery,
    Device,
    FeedItem,
    SafetyFollowUp,
)
from patients import services as patient_services
from patients.models import Invitation, Patient
from rehab.models import Alert, MissedLogReminder
from rehab.services import delivery as alert_delivery
from rehab.services import review as review_services

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = alert_delivery.MAX_DELIVERY_ATTEMPTS
BACKOFF_MAX = alert_delivery.DELIVERY_BACKOFF_MAX
# How long a claimed delivery is a worker's: past the email tasks' hard time limit, so a
# live worker never loses its lease mid-send; a dead one's row is claimable after it.
LEASE = timedelta(seconds=120)

Kind = Delivery.Kind
Status = Delivery.Status
SAFETY_KINDS = (Kind.ALERT, Kind.ESCALATION)
# The per-delivery task (by name: tasks import this module).
DELIVERY_SEND_TASK = "notifications.tasks.delivery_send_task"
# Retried: the provider may answer later, or an operator may fix our credentials.
RETRIED = (Outcome.RETRY, Outcome.AUTH_FAILED)
# The channels that reach a registered device (`Device.platform`); the others reach an
# email address.
PUSH_CHANNELS = frozenset({*Device.CHANNELS.values(), CONSOLE_PUSH_CHANNEL})


def backoff_until(attempts: int, now: datetime, retry_after: float | None = None) -> datetime:
    wait = min(timedelta(minutes=2 ** (attempts - 1)), BACKOFF_MAX)
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    return now + wait


# --------------------------------------------------------------------------- plan


def delivery_plan(
    *,
    kind: str,
    key: str,
    address: str,
    channel: str | None = None,
    recipient_id: int | None = None,
    alert_id: UUID | None = None,
    invitation_id: UUID | None = None,
    patient_id: UUID | None = None,
    object_id: int | None = None,
    feed_item_id: UUID | None = None,
    due_at: datetime | None = None,
) -> UUID | None:
    """Record one message owed to one address, unless a row with `key` exists; returns
    the new row's id, None when it was already planned."""
    due_at = due_at or timezone.now()
    delivery = Delivery(
        kind=kind,
        channel=channel or email_channel_name(),
        recipient_id=recipient_id,
        address=address,
        alert_id=alert_id,
        invitation_id=invitation_id,
        patient_id=patient_id,
        object_id=object_id,
        feed_item_id=feed_item_id,
        idempotency_key=key,
        due_at=due_at,
        next_attempt_at=due_at,
    )
    return delivery.pk if insert_unless_conflict(delivery) else None


def _address_digest(address: str) -> str:
    """A device's address in a key: tokens and Web Push subscriptions are long, and a key
    names the address without spelling it out."""
    return hashlib.sha256(address.encode()).hexdigest()[:32]


def devices_plan(*, kind: str, key: str, user_ids: list[int], **about: Any) -> list[UUID]:
    """Plan the message `key` to every registered device of `user_ids` whose channel is
    configured here: one delivery per device, keyed by message and address (the channel
    and a digest of the address), so a second planner finds each there. Returns the
    deliveries planned now."""
    planned = []
    devices = Device.objects.filter(user_id__in=user_ids).order_by("user_id", "created_at")
    for device in devices:
        if not channel_configured(device.channel):
            continue  # the feed, the email and the dashboard still have it
        address = device.address
        delivery_id = delivery_plan(
            kind=kind,
            key=f"{key}:{device.channel}:{_address_digest(address)}",
            address=address,
            channel=device.channel,
            recipient_id=device.user_id,
            **about,
        )
        if delivery_id is not None:
            planned.append(delivery_id)
    return planned


def patient_message_plan(
    *,
    kind: str,
    key: str,
    patient_id: UUID,
    user_id: int | None,
    email: str = "",
    alert_id: UUID | None = None,
    follow_up_id: UUID | None = None,
    object_id: int | None = None,
    due_at: datetime | None = None,
) -> tuple[UUID, list[UUID]]:
    """One message to a patient: its item in the patient's feed (whatever the channels),
    an email when `email` is given, and one push per registered device. Planned once per
    `key`, however often it is called; returns the feed item's id and the deliveries
    planned by this call."""
    created = due_at or timezone.now()
    insert_unless_conflict(
        FeedItem(
            patient_id=patient_id,
            kind=kind,
            alert_id=alert_id,
            follow_up_id=follow_up_id,
            object_id=object_id,
            idempotency_key=key,
            created_at=created,
        )
    )
    feed_item_id: UUID = (
        FeedItem.objects.filter(idempotency_key=key).values_list("pk", flat=True).get()
    )
    about: dict[str, Any] = {
        "patient_id": patient_id,
        "alert_id": alert_id,
        "object_id": object_id,
        "feed_item_id": feed_item_id,
        "due_at": due_at,
    }
    planned = []
    if email:
        emailed = delivery_plan(kind=kind, key=key, address=email, recipient_id=user_id, **about)
        planned += [emailed] if emailed is not None else []
    if user_id is not None:
        planned += devices_plan(kind=kind, key=key, user_ids=[user_id], **about)
    return feed_item_id, planned


def _alert_plan(alert_id: UUID | str, *, kind: str, now: datetime) -> bool:
    """Plan the care team's (or the escalation contacts') deliveries of one owed alert;
    False when it is not owed, held by another sweep, or has nobody to go to. Without an
    email recipient the failure is counted on the alert, and its pushes (planned once)
    are sent all the same: True when there are any."""
    prefix = "notify" if kind == Kind.ALERT else "escalation"
    owed = (
        alert_delivery.alerts_owed_notification(now)
        if kind == Kind.ALERT
        else alert_delivery.alerts_owed_escalation(now)
    )
    with transaction.atomic():
        alert = (
            owed.select_for_update(skip_locked=True, of=("self",))
            .select_related("patient", "patient__clinic")
            .filter(pk=alert_id)
            .first()
        )
        if alert is None:
            return False
        if kind == Kind.ALERT:
            recipients = alert_delivery.alert_notify_recipients(alert)
            round_ = alert_delivery.alert_notify_round(alert)
        else:
            recipients = alert_delivery.alert_escalation_recipients(alert)
            round_ = alert_delivery.alert_escalation_round(alert)
        # Besides the email, a push to each signed-in phone and dashboard browser of the
        # care team, whether or not its clinician has an email address (the push reaches
        # the person, the email an address), and of the email's recipients with an
        # account; an escalation reaches the care team's devices too (RF-META-01 is about
        # them not having seen it).
        users = {r.user_id for r in recipients if r.user_id is not None}
        users.update(
            alert.patient.care_team.filter(user__is_active=True).values_list("user_id", flat=True)
        )
        pushed = devices_plan(
            kind=kind,
            key=f"{kind}:{alert.pk}:{round_}",
            user_ids=sorted(users),
            alert_id=alert.pk,
            patient_id=alert.patient_id,
        )
        if not recipients:
            # Never recorded as delivered (the email is the alert's record): counted,
            # retried after a back-off, on /health/. The pushes planned above still go.
            alert_delivery.alert_delivery_failed(
                alert_id=alert.pk, prefix=prefix, error=alert_delivery.NO_RECIPIENTS, now=now
            )
            return bool(pushed)
        for recipient in recipients:
            delivery_plan(
                kind=kind,
                key=f"{kind}:{alert.pk}:{round_}:{recipient.email.lower()}",
                address=recipient.email,
                recipient_id=recipient.user_id,
                alert_id=alert.pk,
                patient_id=alert.patient_id,
            )
    return True


def _alert_deliver(alert_id: UUID | str, *, kind: str) -> bool:
    """Plan and send one alert's owed deliveries; True when this call marked the alert
    notified (or escalated)."""
    if not _alert_plan(alert_id, kind=kind, now=timezone.now()):
        return False
    # The due rows are listed first and claimed one by one, so that nothing runs after
    # the last send's commit: once the alert shows notified, its task is done.
    owed = Delivery.objects.filter(_claimable(timezone.now()), alert_id=alert_id, kind=kind)
    # The emails first: they are the alert's record, and a slow push provider must not
    # hold them up (docs/architecture.md, "Push fan-out").
    rows = list(owed.order_by("next_attempt_at", "pk").values_list("pk", "channel"))
    rows.sort(key=lambda row: row[1] in PUSH_CHANNELS)
    marked = False
    for delivery_id, _channel in rows:
        for delivery in _claim(Delivery.objects.filter(pk=delivery_id), limit=1):
            marked = _send(delivery).marked or marked
    return marked


def alert_notify(*, alert_id: UUID | str) -> bool:
    """Email the care team about a new emergency or urgent alert, exactly once per
    address; True when this call recorded the alert as notified. A failed send (or
    nobody to send to) is counted on the alert and tried again after a back-off; it is
    never recorded as notified."""
    return _alert_deliver(alert_id, kind=Kind.ALERT)


def _alerts_sweep(
    owed: QuerySet[Alert], *, kind: str, order: str, limit: int, budget: float
) -> int:
    started = time.monotonic()
    ids = list(owed.order_by(order).values_list("pk", flat=True)[:limit])
    marked = 0
    for alert_id in ids:
        try:
            marked += _alert_deliver(alert_id, kind=kind)
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            # A database error, say: the alert stays owed for the next sweep.
            logger.exception("could not deliver %s of alert %s", kind, alert_id)
        if time.monotonic() - started > budget:
            break  # at least one per run, whatever the budget
    return marked


def alert_notifications_sweep(*, limit: int = 200, budget: float = SWEEP_TIME_BUDGET) -> int:
    """Send every care-team email still owed (a lost message, an SMTP outage); returns the
    alerts recorded as notified. Alerts waiting out a back-off are not picked, so a
    failing one cannot take the place of the others run after run."""
    owed = alert_delivery.alerts_owed_notification(timezone.now())
    return _alerts_sweep(owed, kind=Kind.ALERT, order="created_at", limit=limit, budget=budget)


def escalations_sweep(*, limit: int = 200, budget: float = SWEEP_TIME_BUDGET) -> int:
    """RF-META-01: escalate every open alert past its deadline, once each; returns the
    alerts escalated. A failed escalation is counted and put back with a back-off, and the
    sweep goes on with the others: one bad alert must not stall RF-META-01 for every
    clinic."""
    owed = alert_delivery.alerts_owed_escalation(timezone.now())
    return _alerts_sweep(
        owed, kind=Kind.ESCALATION, order="escalation_due_at", limit=limit, budget=budget
    )


def invitation_send(*, invitation_id: UUID | str) -> bool:
    """Email an invitation's code once; True when it was sent by this call."""
    message = patient_services.invitation_message(invitation_id=invitation_id)
    if message is None:
        return False
    invitation = message.invitation
    delivery_plan(
        kind=Kind.INVITATION,
        key=f"invitation:{invitation.pk}",
        address=invitation.email,
        invitation_id=invitation.pk,
        patient_id=invitation.patient_id,
    )
    claimed = _claim(Delivery.objects.filter(invitation_id=invitation.pk), limit=1)
    return any([_send(delivery).marked for delivery in claimed])


def missed_log_reminder_send(*, reminder_id: int | str) -> bool:
    """Email one NR-LOG-01 reminder once; True when it was sent by this call."""
    reminder = review_services.missed_log_reminder_owed(reminder_id=reminder_id)
    if reminder is None:
        return False
    patient_message_plan(
        kind=Kind.MISSED_LOG_REMINDER,
        key=f"missed_log_reminder:{reminder.pk}",
        patient_id=reminder.patient_id,
        user_id=reminder.patient.user_id,
        email=reminder.patient.email,
        object_id=reminder.pk,
    )
    owned = Delivery.objects.filter(kind=Kind.MISSED_LOG_REMINDER, object_id=reminder.pk)
    return any([_send(delivery).marked for delivery in _claimed_one_by_one(owned)])


# --------------------------------------------------------------------------- send


def _claimable(now: datetime) -> Q:
    waiting = Q(status__in=(Status.QUEUED, Status.RETRYING), next_attempt_at__lte=now)
    # A worker that died mid-send: its lease ran out.
    abandoned = Q(status=Status.SENDING, sending_until__lte=now)
    return waiting | abandoned


def _claimed_one_by_one(deliveries: QuerySet[Delivery]) -> Iterator[Delivery]:
    """Each due delivery of `deliveries`, claimed just before it is sent: a batch claimed
    at once would hold later rows' leases while earlier sends are slow."""
    while claimed := _claim(deliveries, limit=1):
        yield claimed[0]


def _claim(deliveries: QuerySet[Delivery], *, limit: int) -> list[Delivery]:
    """Lease up to `limit` due deliveries to this worker. SKIP LOCKED: a row another
    worker is claiming is left to it, never waited for or taken twice."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            deliveries.filter(_claimable(now))
            .select_for_update(skip_locked=True)
            .order_by("next_attempt_at", "pk")[:limit]
        )
        claimed = []
        for row in rows:
            if row.status == Status.SENDING and row.attempts >= MAX_ATTEMPTS:
                # Its last attempt died with its worker.
                _failed(row, SendResult(Outcome.RETRY, detail="worker lost mid-send"), now=now)
                continue
            row.status = Status.SENDING
            row.attempts += 1
            row.sending_until = now + LEASE
            row.save(update_fields=["status", "attempts", "sending_until", "updated_at"])
            claimed.append(row)
    return claimed


def _compose(delivery: Delivery) -> tuple[messages.Text, dict[str, str]] | None:
    """The message of a claimed delivery, from the row it is about; None when it is no
    longer owed."""
    kind = delivery.kind
    if kind in SAFETY_KINDS:
        assert delivery.alert_id is not None
        if kind == Kind.ESCALATION and not alert_delivery.alert_escalation_owed(
            alert_id=delivery.alert_id
        ):
            return None  # acknowledged meanwhile
        alert = Alert.objects.select_related("patient").get(pk=delivery.alert_id)
        escalation = kind == Kind.ESCALATION
        if delivery.channel in PUSH_CHANNELS:
            text = messages.alert_push_text(
                severity=alert.severity, rule=alert.rule, escalation=escalation
            )
        else:
            facts = alert_delivery.alert_email_facts(alert)
            text = messages.alert_text(**facts, escalation=escalation)
        return text, {"kind": str(kind), "alert": str(alert.pk)}
    if kind == Kind.INVITATION:
        assert delivery.invitation_id is not None
        message = patient_services.invitation_message(invitation_id=delivery.invitation_id)
        if message is None:
            return None
        text = messages.invitation_text(
            clinic=message.clinic,
            first_name=message.first_name,
            email=message.invitation.email,
            code=message.code,
            expires_at=message.invitation.expires_at,
            language=message.language,
        )
        return text, {"kind": str(kind)}
    if kind == Kind.MISSED_LOG_REMINDER:
        assert delivery.object_id is not None
        # Each channel's copy is owed until it is sent, whichever went out first.
        reminder = (
            MissedLogReminder.objects.select_related("patient")
            .filter(pk=delivery.object_id)
            .first()
        )
        if reminder is None:
            return None
        if delivery.channel in PUSH_CHANNELS:
            text = messages.missed_log_reminder_push_text(
                missed_days=reminder.missed_days, language=patient_language(reminder.patient)
            )
        else:
            if not reminders.missed_log_email_wanted(patient=reminder.patient):
                return None
            link = reminders.unsubscribe_url(
                patient_id=reminder.patient_id, what="missed_log_email"
            )
            text = messages.missed_log_reminder_text(
                first_name=reminder.patient.first_name,
                missed_days=reminder.missed_days,
                language=patient_language(reminder.patient),
                unsubscribe_link=link,
            )
            text = messages.Text(text.subject, text.body, reminders.unsubscribe_headers(link))
        return text, _feed_data(delivery)
    if kind == Kind.SAFETY_FOLLOW_UP:
        follow_up = _follow_up_of(delivery)
        if follow_up is None:
            return None
        compose = (
            messages.follow_up_text
            if delivery.channel in PUSH_CHANNELS
            else messages.follow_up_email_text
        )
        text = compose(
            first_name=follow_up.patient.first_name,
            severity=follow_up.severity,
            language=patient_language(follow_up.patient),
        )
        return text, {**_feed_data(delivery), "follow_up": str(follow_up.pk)}
    if kind == Kind.REMINDER:
        return reminders.reminder_compose(delivery)
    raise ValueError(f"unknown delivery kind {kind!r}")


def _follow_up_of(delivery: Delivery) -> SafetyFollowUp | None:
    """The follow-up a delivery asks, while it may still be asked: never of a patient
    whose record was restricted meanwhile."""
    if delivery.feed_item_id is None:
        return None
    return (
        SafetyFollowUp.objects.select_related("patient")
        .filter(
            pk__in=FeedItem.objects.filter(pk=delivery.feed_item_id).values("follow_up_id"),
            status__in=(SafetyFollowUp.Status.ASKED, SafetyFollowUp.Status.ANSWERED),
            patient__in=Patient.objects.active(),
        )
        .first()
    )


def patient_language(patient: Patient) -> str:
    """The language the patient chose in their profile, "" while they chose none (the
    texts then fall back to English; the feed to the request's language)."""
    return patient.language


def _feed_data(delivery: Delivery) -> dict[str, str]:
    data = {"kind": str(delivery.kind)}
    if delivery.feed_item_id is not None:
        data["feed_item"] = str(delivery.feed_item_id)
    return data


def _addresses(delivery: Delivery) -> list[str]:
    """Every email address of the same message (an alert's round): the alert's event
    names whom the care team's email went to (never a device's token)."""
    prefix = delivery.idempotency_key.rpartition(":")[0] + ":"
    rows = Delivery.objects.filter(
        kind=delivery.kind, idempotency_key__startswith=prefix, channel=delivery.channel
    ).values_list("address", flat=True)
    return sorted(set(rows))


def _owner_sent(delivery: Delivery) -> bool:
    """Mark the owning row, in the delivery's transaction; True when this marked it.
    An alert is marked notified (or escalated) by its email: the push to a phone is
    besides it, and the alert's record names whom the care team's email reached."""
    kind = delivery.kind
    if kind in SAFETY_KINDS and delivery.channel in PUSH_CHANNELS:
        return False
    if kind == Kind.ALERT:
        assert delivery.alert_id is not None
        return alert_delivery.alert_notified(
            alert_id=delivery.alert_id, recipients=_addresses(delivery)
        )
    if kind == Kind.ESCALATION:
        assert delivery.alert_id is not None
        return alert_delivery.alert_escalated(
            alert_id=delivery.alert_id, recipients=_addresses(delivery)
        )
    if kind == Kind.INVITATION:
        assert delivery.invitation_id is not None
        return patient_services.invitation_sent(invitation_id=delivery.invitation_id)
    if kind == Kind.MISSED_LOG_REMINDER:
        assert delivery.object_id is not None
        return review_services.missed_log_reminder_sent(reminder_id=delivery.object_id)
    return True


@dataclass(frozen=True)
class Sent:
    sent: bool = False
    # The owning row was marked by this send (the alert notified, the invitation sent).
    marked: bool = False


def channel_hand_over(
    delivery: Delivery, *, text: messages.Text, data: Mapping[str, str]
) -> SendResult:
    """Hand one composed message to the delivery's channel (`channel_send`)."""
    return channel_send(
        channel=delivery.channel,
        delivery_id=delivery.pk,
        address=delivery.address,
        urgent=delivery.kind in SAFETY_KINDS,
        text=text,
        data=data,
    )


def channel_send(
    *,
    channel: str,
    delivery_id: UUID,
    address: str,
    urgent: bool,
    text: messages.Text,
    data: Mapping[str, str],
) -> SendResult:
    """Hand one composed message to `channel`, from a delivery's fields (a batch sender
    need not build a model instance per message). A channel that raises (its own bug, or
    a network error it did not map) is a retry, never a lost message; the task's time
    limit is let through (the lease runs out; the next sweep has it)."""
    if channel == reminders.FEED_CHANNEL:
        # A feed-only reminder: its feed item is its delivery (`reminders.FEED_CHANNEL`),
        # written before any hand-over; checked here, not in `channel_hand_over`, because
        # the reminders' batch sender calls `channel_send` directly.
        return SendResult(Outcome.SENT, provider_id=reminders.FEED_CHANNEL)
    message = OutgoingMessage(
        delivery_id=delivery_id,
        address=address,
        subject=text.subject,
        body=text.body,
        data=data,
        urgent=urgent,
        headers=text.headers,
    )
    try:
        return channel_get(channel).send(message)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        logger.exception("channel %s raised for delivery %s", channel, delivery_id)
        return SendResult(Outcome.RETRY, detail=f"{type(exc).__name__} in the channel")


def _send(delivery: Delivery) -> Sent:
    """Send one claimed delivery and record the outcome."""
    composed = _compose(delivery)
    if composed is None:
        if delivery.kind == Kind.REMINDER:
            # Handed back after its feed item was written: no longer in the feed either.
            reminders.reminder_deliveries_cancel([delivery.pk])
        else:
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Status.CANCELLED, sending_until=None, updated_at=timezone.now()
            )
        return Sent()
    text, data = composed
    if delivery.kind == Kind.REMINDER:
        # In the feed before the hand-over, as the batch sender does.
        reminders.reminders_feed(reminders.reminders_owed([delivery], {delivery.pk: composed}))
    result = channel_hand_over(delivery, text=text, data=data)
    now = timezone.now()
    # The owning row is written first, then the delivery, in every transaction that
    # writes both: a planner holds the alert's lock while it inserts deliveries, and would
    # wait on a delivery updated here while this waited on its alert (a deadlock).
    with transaction.atomic():
        if result.outcome == Outcome.SENT:
            marked = _owner_sent(delivery)
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Status.SENT,
                sent_at=now,
                sending_until=None,
                provider_id=result.provider_id[:200],
                last_outcome="",
                last_error="",
                updated_at=now,
            )
            return Sent(sent=True, marked=marked)
        _failed(delivery, result, now=now)
    if result.outcome == Outcome.DEAD_ADDRESS and delivery.channel in PUSH_CHANNELS:
        _forget_address(delivery, result)
    return Sent()


def _forget_address(delivery: Delivery, result: SendResult) -> None:
    """The provider says the device is gone (uninstalled, token expired, subscription
    ended): drop it, and the other messages still queued for it. A patient reminder
    queued for it becomes a feed-only delivery (`reminders.FEED_CHANNEL`) rather than
    cancelled: when its turn comes it is checked as any reminder is (today logged, the
    kind switched off) and, if still owed, put in the feed, so a reminder whose only
    channel was this device is not lost to the patient."""
    device_forget_dead(channel=delivery.channel, address=delivery.address, detail=result.detail)
    now = timezone.now()
    queued = Delivery.objects.filter(
        channel=delivery.channel,
        address=delivery.address,
        status__in=(Status.QUEUED, Status.RETRYING),
    )
    queued.filter(kind=Delivery.Kind.REMINDER).update(
        channel=reminders.FEED_CHANNEL, address="", updated_at=now
    )
    queued.update(status=Status.CANCELLED, last_outcome=result.outcome.value, updated_at=now)


def _failed(delivery: Delivery, result: SendResult, *, now: datetime) -> None:
    """Record a failed attempt: retried after a back-off, given up after the last, or
    failed for good; a safety delivery's failure is counted on its alert too."""
    if result.outcome in RETRIED:
        status = Status.RETRYING if delivery.attempts < MAX_ATTEMPTS else Status.GIVEN_UP
    else:
        status = Status.FAILED
    detail = result.detail[:1000]
    push = delivery.channel in PUSH_CHANNELS
    if delivery.kind in SAFETY_KINDS and delivery.alert_id is not None and not push:
        # A phone's push failing is no failure to tell the care team: their email is.
        # First the alert, then the delivery (see `_send`).
        alert_delivery.alert_delivery_failed(
            alert_id=delivery.alert_id,
            prefix="notify" if delivery.kind == Kind.ALERT else "escalation",
            error=f"{result.outcome.value}: {detail}",
            now=now,
        )
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status,
        sending_until=None,
        next_attempt_at=backoff_until(delivery.attempts, now, result.retry_after),
        last_outcome=result.outcome.value,
        last_error=detail,
        updated_at=now,
    )
    log = (
        logger.error
        if (delivery.kind in SAFETY_KINDS and not push) or result.outcome == Outcome.AUTH_FAILED
        else logger.warning
    )
    # Ids, kind, channel and the provider's reason: never the address or the text.
    log(
        "delivery %s (%s via %s) %s, attempt %s of %s, now %s: %s",
        delivery.pk,
        delivery.kind,
        delivery.channel,
        result.outcome.value,
        delivery.attempts,
        MAX_ATTEMPTS,
        status,
        detail,
    )


def delivery_send(*, delivery_id: UUID | str) -> bool:
    """Send one delivery if it is due and nobody else holds it (the per-delivery task)."""
    claimed = _claim(Delivery.objects.filter(pk=delivery_id), limit=1)
    return any([_send(delivery).sent for delivery in claimed])


def _invitations_plan(*, now: datetime, limit: int) -> list[UUID]:
    """Invitations whose message was lost (not sent, still usable, older than the grace a
    direct message gets): plan each; returns the deliveries planned now."""
    owed = (
        Invitation.objects.filter(
            last_sent_at__isnull=True,
            used_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=now,
            created_at__lt=now - SWEEP_GRACE,
        )
        .order_by("created_at")
        .values_list("pk", "email", "patient_id")[:limit]
    )
    planned = []
    for invitation_id, email, patient_id in owed:
        delivery_id = delivery_plan(
            kind=Kind.INVITATION,
            key=f"invitation:{invitation_id}",
            address=email,
            invitation_id=invitation_id,
            patient_id=patient_id,
        )
        if delivery_id is not None:
            planned.append(delivery_id)
    return planned


def deliveries_sweep(*, limit: int = 500, budget: float = SWEEP_TIME_BUDGET) -> int:
    """Beat's sweep: plan the invitations a lost message left owed, then send every due
    delivery but the patient reminders (new, waiting out a back-off, or abandoned by a
    dead worker), each claimed with SKIP LOCKED, until none is left or `budget` seconds
    are spent. Returns how many were sent."""
    started = time.monotonic()
    now = timezone.now()
    for delivery_id in _invitations_plan(now=now, limit=limit):
        publish_on_commit(DELIVERY_SEND_TASK, str(delivery_id))
    sent = 0
    # Not the patient reminders: beat's reminder sweep sends them in batches on the
    # default queue (notifications/reminders_sweep.py). Claimed here, a burst of them would
    # be sent one at a time by the safety queue's workers, in front of the alert emails
    # this sweep retries.
    owed = Delivery.objects.exclude(kind=Kind.REMINDER)
    for handled, delivery in enumerate(_claimed_one_by_one(owed), start=1):
        try:
            sent += _send(delivery).sent
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            # Its lease runs out and a later sweep tries again.
            logger.exception("could not send delivery %s", delivery.pk)
        if handled >= limit or time.monotonic() - started > budget:
            break  # at least one per run, whatever the budget
    return sent


def deliveries_failing() -> dict[str, Any]:
    """What /health/ shows of deliveries: being retried, failed or given up in the last
    day, refused credentials, and safety emails owed longer than they should be."""
    now = timezone.now()
    day = now - timedelta(days=1)
    recent_failures = Delivery.objects.filter(
        status__in=(Status.FAILED, Status.GIVEN_UP), updated_at__gte=day
    ).exclude(
        # An uninstalled app's token: the device is forgotten, nothing for an operator.
        channel__in=PUSH_CHANNELS,
        last_outcome=Outcome.DEAD_ADDRESS.value,
    )
    auth = Delivery.objects.filter(
        last_outcome=Outcome.AUTH_FAILED.value, updated_at__gte=day
    ).exclude(status__in=(Status.SENT, Status.CANCELLED))
    late = now - 2 * SWEEP_GRACE - timedelta(minutes=1)
    owed_safety = (
        Alert.objects.filter(notify_due=True, notified_at__isnull=True, opened_at__lt=late).count()
        + Alert.objects.filter(
            status=Alert.Status.OPEN, escalated_at__isnull=True, escalation_due_at__lt=late
        ).count()
    )
    return {
        "retrying_deliveries": Delivery.objects.filter(status=Status.RETRYING).count(),
        "failed_deliveries": recent_failures.filter(status=Status.FAILED).count(),
        "given_up_deliveries": recent_failures.filter(status=Status.GIVEN_UP).count(),
        "auth_failed_deliveries": auth.count(),
        "owed_safety_deliveries": owed_safety,
        # "Were you seen?" questions due longer than a sweep takes and not asked (beat
        # down, the sweep failing): docs/safety-path.md, "Safety follow-up".
        "overdue_follow_ups": SafetyFollowUp.objects.filter(
            status=SafetyFollowUp.Status.DUE, due_at__lt=late
        ).count(),
    }
