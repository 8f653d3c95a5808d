"""Patient reminders (docs/architecture.md, "Patient reminders").

1. *Plan*, set-based, a little ahead: for each distinct schedule (time zone, reminder
   time, quiet hours) of the active patients, the instant of each local date's reminder is
   computed once (notifications/schedule.py, DST-safe); when it falls due within
   `PLAN_AHEAD` (or was missed by less than `CATCH_UP`), one statement inserts the
   `Reminder` rows of every patient on that schedule who is owed that kind that day,
   `ON CONFLICT DO NOTHING` on (patient, kind, local date), and in the same statement the
   `Delivery` rows (email, and one per push device) with their `due_at`. Two beats, or a
   schedule edited after planning, never make a second reminder.
2. *Send*: deliveries of kind `reminder` are claimed in batches with `SKIP LOCKED`
   (notifications/reminders_sweep.py; the generic sweep leaves them alone), and composed
   at send time: a reminder no longer owed (today already logged, the kind switched off,
   the channel no longer chosen, the record restricted) is cancelled, never sent. Each
   reminder still owed is put in the patient's feed, once, before its first hand-over
   (`reminders_feed`, one statement per batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any, NamedTuple
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from config.audit import AuditContext
from notifications import messages
from notifications.channels.registry import channel_configured, email_channel_name
from notifications.models import Delivery, Device, FeedItem, Reminder, ReminderSettings
from notifications.schedule import reminder_due
from patients.audit import audit_record
from patients.models import AuditEvent, Patient, User
from programs.models import ProgramAssignment
from rehab.models import DailyLog, QuestionnaireDue

DEFAULT_REMIND_AT = time(19, 0)
# Planned this far ahead, so a beat a little late still hands each reminder over on time.
PLAN_AHEAD = timedelta(minutes=10)
# A reminder whose instant passed while no beat ran is still sent this late, not later.
CATCH_UP = timedelta(hours=1)

# What a patient may switch off, by the name the API and the unsubscribe link use: the
# settings field of each.
OPT_OUTS: dict[str, str] = {
    "daily_log": "daily_log",
    "questionnaire_due": "questionnaire_due",
    "exercise_days": "exercise_days",
    "missed_log_email": "missed_log_email",
}
KIND_OPT_OUT: dict[str, str] = {
    Reminder.Kind.DAILY_LOG: "daily_log",
    Reminder.Kind.QUESTIONNAIRE_DUE: "questionnaire_due",
    Reminder.Kind.EXERCISE_DAY: "exercise_days",
}
# The delivery of a reminder to a patient with neither an email nor a device it may go
# to: no adapter, it is recorded sent when its turn comes, and the reminder's feed item is
# written then, as for any reminder handed over (`reminders_feed`). It carries the
# send-time checks (today logged, the kind switched off) to the feed-only patient.
FEED_CHANNEL = "feed"
# A reminder's feed item has an id derived from the reminder's, so a push can name it
# before the batch writes it (`feed_item` in its data) and every writer agrees on it.
FEED_NAMESPACE = UUID("4b0c7a52-63a4-4f0c-9a55-1d1f2b8e7c31")
UNSUBSCRIBE_SALT = "notifications.unsubscribe"
# An unsubscribe link keeps working this long after its email was sent.
UNSUBSCRIBE_MAX_AGE = timedelta(days=90)


# --------------------------------------------------------------------------- settings


def reminder_settings_get(*, patient: Patient) -> ReminderSettings:
    """The patient's settings, the defaults (unsaved) when they never chose."""
    found = ReminderSettings.objects.filter(patient=patient).first()
    return found or ReminderSettings(patient=patient)


def reminder_settings_update(
    *,
    patient: Patient,
    actor: User | None,
    data: Mapping[str, Any],
    context: AuditContext | None = None,
) -> ReminderSettings:
    """Change the patient's reminder settings (fields not given keep their values) and
    withdraw the reminders planned under the old ones that no worker has claimed yet;
    they are planned again under the new ones. Audited; invalid data changes nothing."""
    with transaction.atomic():
        ReminderSettings.objects.get_or_create(patient=patient)
        current = ReminderSettings.objects.select_for_update().get(patient=patient)
        changes: dict[str, Any] = {}
        for name, value in data.items():
            before = getattr(current, name)
            if before != value:
                changes[name] = {"from": _plain(before), "to": _plain(value)}
                setattr(current, name, value)
        if (current.quiet_start is None) != (current.quiet_end is None):
            raise ValidationError(
                {"quiet_start": ["Quiet hours need both a start and an end, or neither."]}
            )
        if current.quiet_start is not None and current.quiet_start == current.quiet_end:
            raise ValidationError({"quiet_end": ["Quiet hours must not start and end together."]})
        if changes:
            current.save()
            _withdraw_planned(patient_id=patient.pk)
        audit_record(
            actor=actor,
            action=AuditEvent.Action.UPDATE if changes else AuditEvent.Action.READ,
            object_type="reminder_settings",
            object_id=patient.pk,
            patient=patient,
            changes=changes,
            context=context,
        )
    return current


def _plain(value: Any) -> Any:
    return value.isoformat(timespec="minutes") if isinstance(value, time) else value


def _withdraw_planned(*, patient_id: UUID) -> int:
    """Cancel the patient's planned reminders no worker has claimed and forget them, so
    the next plan follows the new settings (the delivery rows are locked first: a claim
    running now either got them, and the reminder stays, or finds them cancelled). A
    reminder already sent or being sent stays: its key keeps today's from being planned
    twice."""
    now = timezone.now()
    planned = Reminder.objects.filter(patient_id=patient_id, due_at__gt=now - CATCH_UP)
    withdrawn = 0
    for reminder_id in planned.values_list("pk", flat=True):
        deliveries = list(
            Delivery.objects.select_for_update()
            .filter(kind=Delivery.Kind.REMINDER, object_id=reminder_id)
            .values_list("pk", "status")
        )
        if any(status != Delivery.Status.QUEUED for _, status in deliveries):
            continue
        # A row handed back at a sender's deadline is queued again with its feed item:
        # the item goes with the cancellation.
        reminder_deliveries_cancel([pk for pk, _ in deliveries])
        Reminder.objects.filter(pk=reminder_id).delete()
        withdrawn += 1
    return withdrawn


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Schedule:
    timezone: str
    remind_at: time
    quiet_start: time | None
    quiet_end: time | None


def _patients() -> QuerySet[Patient]:
    """Who may get reminders: active records with a sign-in."""
    patients: QuerySet[Patient] = (
        Patient.objects.active()
        .filter(user__isnull=False)
        .annotate(
            remind_at_=Coalesce("reminder_settings__remind_at", Value(DEFAULT_REMIND_AT)),
        )
    )
    return patients


# The annotation `_patients` adds (a name the type checker's plugin cannot see).
REMIND_AT = "remind_at_"


def _schedules() -> list[Schedule]:
    fields = (
        "timezone",
        REMIND_AT,
        "reminder_settings__quiet_start",
        "reminder_settings__quiet_end",
    )
    # No ordering: the model's default would make every patient a distinct row.
    rows = _patients().order_by().values_list(*fields).distinct()
    return [Schedule(*row) for row in rows]


def _on_schedule(schedule: Schedule) -> QuerySet[Patient]:
    quiet = (
        Q(reminder_settings__quiet_start__isnull=True)
        if schedule.quiet_start is None
        else Q(
            reminder_settings__quiet_start=schedule.quiet_start,
            reminder_settings__quiet_end=schedule.quiet_end,
        )
    )
    return _patients().filter(quiet, Q(remind_at_=schedule.remind_at), timezone=schedule.timezone)


def _owed(kind: str, *, day: date, tz: ZoneInfo) -> Q:
    """Patients owed `kind` on their local date `day` (all of them in `tz`)."""
    field = KIND_OPT_OUT[kind]
    wanted = Q(**{f"reminder_settings__{field}": True}) | Q(reminder_settings__isnull=True)
    if kind == Reminder.Kind.DAILY_LOG:
        logged = DailyLog.objects.filter(patient=OuterRef("pk"), date=day)
        return wanted & Q(~Exists(logged))
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    if kind == Reminder.Kind.QUESTIONNAIRE_DUE:
        # The day its window opens, and the last day of its window.
        edge = QuestionnaireDue.objects.waiting().filter(
            Q(due_from__gte=start, due_from__lt=end) | Q(expires_at__gt=start, expires_at__lte=end),
            patient=OuterRef("pk"),
        )
        return wanted & Q(Exists(edge))
    # A day of the patient's program with a started phase that prescribes exercises.
    program = ProgramAssignment.objects.filter(
        Q(ended_on__isnull=True) | Q(ended_on__gt=day),
        patient=OuterRef("pk"),
        start_date__lte=day,
        phases__started_on__lte=day,
        phases__exercises__isnull=False,
    )
    return wanted & Q(Exists(program))


_DELIVERY_COLUMNS = (
    "id, kind, channel, recipient_id, address, patient_id, object_id, idempotency_key, "
    "due_at, status, attempts, next_attempt_at, last_outcome, last_error, provider_id, "
    "created_at, updated_at"
)


def _plan_one(kind: str, *, schedule: Schedule, day: date, due_at: datetime) -> int:
    """One statement: the reminders of `kind` for everyone on `schedule` owed one on
    `day`, and their deliveries. Returns the reminders made."""
    tz = ZoneInfo(schedule.timezone)
    # Not `NOT EXISTS` on the reminders to skip those already planned: on tables whose
    # statistics are stale, PostgreSQL ran it as a scan of the reminders this very
    # statement was inserting, once per patient (100,000 patients: minutes).
    owed = _on_schedule(schedule).filter(_owed(kind, day=day, tz=tz)).order_by().values("pk")
    owed_sql, owed_params = owed.query.sql_with_params()
    reminder = Reminder._meta.db_table
    delivery = Delivery._meta.db_table
    patient = Patient._meta.db_table
    prefs = ReminderSettings._meta.db_table
    device = Device._meta.db_table
    sql = f"""
    WITH new AS (
        INSERT INTO {reminder} (patient_id, kind, local_date, due_at, created_at)
        SELECT owed.pk, %s, %s, %s, now() FROM ({owed_sql}) AS owed
        ON CONFLICT (patient_id, kind, local_date) DO NOTHING
        RETURNING id, patient_id
    ), target AS (
        SELECT new.id AS reminder_id, p.id AS patient_id, p.user_id, p.email,
               COALESCE(s.channels, 'both') AS channels
        FROM new JOIN {patient} p ON p.id = new.patient_id
        LEFT JOIN {prefs} s ON s.patient_id = p.id
    ), email AS (
        INSERT INTO {delivery} ({_DELIVERY_COLUMNS})
        SELECT gen_random_uuid(), 'reminder', %s, t.user_id, t.email, t.patient_id,
               t.reminder_id, 'reminder:' || t.reminder_id || ':email', %s, 'queued', 0,
               %s, '', '', '', now(), now()
        FROM target t WHERE t.channels IN ('email', 'both') AND t.email <> ''
        ON CONFLICT (idempotency_key) DO NOTHING
    ), push AS (
    INSERT INTO {delivery} ({_DELIVERY_COLUMNS})
    SELECT gen_random_uuid(), 'reminder',
           CASE d.platform WHEN 'ios' THEN %s WHEN 'android' THEN %s ELSE %s END,
           t.user_id,
           CASE WHEN d.platform = 'web' THEN json_build_object(
               'endpoint', d.token, 'keys', json_build_object('p256dh', d.p256dh, 'auth', d.auth)
           )::text ELSE d.token END,
           t.patient_id, t.reminder_id, 'reminder:' || t.reminder_id || ':device:' || d.id,
           %s, 'queued', 0, %s, '', '', '', now(), now()
    FROM target t JOIN {device} d ON d.user_id = t.user_id
    WHERE t.channels IN ('push', 'both') AND d.platform = ANY(%s)
    ON CONFLICT (idempotency_key) DO NOTHING
    ), feed AS (
    -- Neither an email nor a device: the feed alone carries it (see FEED_CHANNEL).
    INSERT INTO {delivery} ({_DELIVERY_COLUMNS})
    SELECT gen_random_uuid(), 'reminder', %s, t.user_id, '', t.patient_id, t.reminder_id,
           'reminder:' || t.reminder_id || ':feed', %s, 'queued', 0, %s, '', '', '', now(), now()
    FROM target t
    WHERE NOT (t.channels IN ('email', 'both') AND t.email <> '')
      AND NOT (t.channels IN ('push', 'both') AND EXISTS (
          SELECT 1 FROM {device} d WHERE d.user_id = t.user_id AND d.platform = ANY(%s)))
    ON CONFLICT (idempotency_key) DO NOTHING
    )
    SELECT count(*) FROM new
    """  # noqa: S608 - identifiers from the models, values as parameters
    # A device whose channel is not configured here is skipped, as `devices_plan` does.
    channels = {platform: Device.channel_of(platform) for platform in Device.Platform.values}
    reached = [platform for platform, name in channels.items() if channel_configured(name)]
    params = [
        str(kind),
        day,
        due_at,
        *owed_params,
        email_channel_name(),
        due_at,
        due_at,
        channels[Device.Platform.IOS],
        channels[Device.Platform.ANDROID],
        channels[Device.Platform.WEB],
        due_at,
        due_at,
        reached,
        FEED_CHANNEL,
        due_at,
        due_at,
        reached,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def reminders_plan(*, now: datetime | None = None) -> int:
    """Plan every reminder falling due within `PLAN_AHEAD` (or missed by less than
    `CATCH_UP`); safe to run twice at once. Returns the reminders this call made."""
    now = now or timezone.now()
    planned = 0
    for schedule in _schedules():
        tz = ZoneInfo(schedule.timezone)
        today = now.astimezone(tz).date()
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            due_at = reminder_due(
                day,
                schedule.remind_at,
                tz,
                quiet_start=schedule.quiet_start,
                quiet_end=schedule.quiet_end,
            )
            if due_at is None or not (now - CATCH_UP <= due_at <= now + PLAN_AHEAD):
                continue
            for kind in Reminder.Kind.values:
                planned += _plan_one(kind, schedule=schedule, day=day, due_at=due_at)
    return planned


# --------------------------------------------------------------------------- compose


def unsubscribe_token(*, patient_id: UUID | str, what: str) -> str:
    """A signed, dated token that switches `what` (one of `OPT_OUTS`) off for one patient."""
    return UnsubscribeSigner().sign_object({"p": str(patient_id), "k": what})


class UnsubscribeSigner(signing.TimestampSigner):
    """Django's dated signer for the unsubscribe links, its tokens what `signing.loads`
    reads, with the HMAC key derived once per signer instead of once per token (a burst
    of reminders signs one link per email). Uncompressed: a patient id and a kind never
    shrink under zlib, so the tokens are the ones `signing.dumps(..., compress=True)` made.
    """

    def __init__(self) -> None:
        super().__init__(salt=UNSUBSCRIBE_SALT)
        # Keyed with the derived key, fed nothing yet: each signature is a copy fed its value.
        self._keyed = salted_hmac(
            f"{UNSUBSCRIBE_SALT}signer", b"", self.key, algorithm=self.algorithm
        )

    def signature(self, value: str | bytes, key: str | bytes | None = None) -> str:
        if key is not None and key != self.key:  # a fallback key (verifying): Django's way
            return super().signature(value, key)
        mac = self._keyed.copy()
        mac.update(value.encode() if isinstance(value, str) else value)
        return signing.b64_encode(mac.digest()).decode()


@cache
def _unsubscribe_path(placeholder: str) -> str:
    # Reversed once per process: a reverse() costs milliseconds here, and a burst of
    # reminders composes thousands of links a second.
    return reverse("reminders-unsubscribe", kwargs={"token": placeholder})


def unsubscribe_url(
    *, patient_id: UUID | str, what: str, signer: UnsubscribeSigner | None = None
) -> str:
    """The link's URL; a batch passes one `signer` for all its links."""
    signer = signer or UnsubscribeSigner()
    token = signer.sign_object({"p": str(patient_id), "k": what})
    # Signed tokens are URL-safe (base64url and colons): nothing to quote.
    path = _unsubscribe_path("TOKEN").replace("TOKEN", token)
    return f"{settings.PUBLIC_BASE_URL}{path}"


def unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs."""
    return {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


class BadToken(Exception):
    pass


def unsubscribe_read(token: str) -> tuple[UUID, str]:
    """The patient and opt-out a token names; BadToken when tampered, expired or unknown."""
    try:
        value = signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=UNSUBSCRIBE_MAX_AGE)
        patient_id, what = UUID(value["p"]), str(value["k"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise BadToken(type(exc).__name__) from exc
    if what not in OPT_OUTS:
        raise BadToken("unknown kind")
    return patient_id, what


def patient_language(*, patient_id: UUID) -> str:
    """The language of the patient a token names; BadToken when there is none."""
    language = Patient.objects.filter(pk=patient_id).values_list("language", flat=True).first()
    if language is None:
        raise BadToken("no such patient")
    return str(language)


def unsubscribe(*, token: str, context: AuditContext | None = None) -> tuple[Patient, str]:
    """Switch off what the token names; idempotent. Raises BadToken."""
    patient_id, what = unsubscribe_read(token)
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        raise BadToken("no such patient")
    reminder_settings_update(
        patient=patient, actor=None, data={OPT_OUTS[what]: False}, context=context
    )
    return patient, what


Composed = tuple[messages.Text, dict[str, str]] | None


class ReminderFacts(NamedTuple):
    """What sending one claimed reminder delivery needs, read in the statement that
    claims it (notifications/reminders_sweep.py) or by `reminders_compose`."""

    delivery_id: UUID
    channel: str
    address: str
    idempotency_key: str
    attempts: int
    # The delivery's `object_id`: its reminder's id (its feed item's id derives from it).
    reminder_id: int | None
    # None when the reminder row is gone (withdrawn by a settings change).
    kind: str | None
    patient_id: UUID | None
    first_name: str | None
    language: str | None
    restricted: bool | None
    has_user: bool | None
    # The patient's settings; None without a settings row (the defaults apply).
    channels: str | None
    wanted: bool | None
    # The reminder's local day is already logged.
    logged: bool | None


_D = Delivery._meta.db_table
_R = Reminder._meta.db_table
_P = Patient._meta.db_table
_S = ReminderSettings._meta.db_table
_L = DailyLog._meta.db_table


def facts_sql(deliveries: str) -> tuple[str, dict[str, str]]:
    """A SELECT of `ReminderFacts` columns for each row of `deliveries` (a table or CTE
    name with the delivery columns `id, channel, address, idempotency_key, attempts,
    object_id`), and its named parameters. One statement, however many deliveries."""
    wanted = " ".join(
        f"WHEN %(kind_{kind!s})s THEN s.{field}"  # the settings' field: its column
        for kind, field in KIND_OPT_OUT.items()
    )
    sql = f"""
    SELECT c.id, c.channel, c.address, c.idempotency_key, c.attempts, c.object_id, r.kind, p.id,
           p.first_name, p.language, p.restricted_at IS NOT NULL, p.user_id IS NOT NULL,
           s.channels, CASE r.kind {wanted} END,
           r.kind = %(kind_daily_log)s AND EXISTS (
               SELECT 1 FROM {_L} l WHERE l.patient_id = r.patient_id AND l.date = r.local_date
           )
    FROM {deliveries} c
    LEFT JOIN {_R} r ON r.id = c.object_id
    LEFT JOIN {_P} p ON p.id = r.patient_id
    LEFT JOIN {_S} s ON s.patient_id = r.patient_id
    """  # noqa: S608 - identifiers from the models, values as parameters
    return sql, {f"kind_{kind!s}": str(kind) for kind in KIND_OPT_OUT}


def reminders_compose(deliveries: list[Delivery]) -> dict[UUID, Composed]:
    """The text of each reminder delivery, by delivery id; None for one no longer owed
    (checked now, at send time: a log written since planning cancels it). One query,
    however many deliveries."""
    select, params = facts_sql("claimed")
    sql = f"WITH claimed AS (SELECT * FROM {_D} WHERE id = ANY(%(ids)s::uuid[])) {select}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "ids": [d.pk for d in deliveries]})
        rows = [ReminderFacts(*row) for row in cursor.fetchall()]
    signer = UnsubscribeSigner()
    composed: dict[UUID, Composed] = {d.pk: None for d in deliveries}
    for facts in rows:
        composed[facts.delivery_id] = reminder_compose_facts(facts, signer=signer)
    return composed


@cache
def _defaults() -> ReminderSettings:
    return ReminderSettings()


def reminder_compose_facts(facts: ReminderFacts, *, signer: UnsubscribeSigner) -> Composed:
    """One reminder delivery's text, or None when it is no longer owed: the reminder
    withdrawn, the record restricted or without a sign-in, the kind switched off, the
    channel no longer chosen, or (a daily-log reminder) the day already logged."""
    if facts.kind is None or facts.reminder_id is None or facts.restricted or not facts.has_user:
        return None
    defaults = _defaults()
    channels = facts.channels if facts.channels is not None else defaults.channels
    wanted = (
        facts.wanted if facts.wanted is not None else getattr(defaults, KIND_OPT_OUT[facts.kind])
    )
    email = facts.idempotency_key.endswith(":email")
    unwanted_channel = ReminderSettings.Channels.PUSH if email else ReminderSettings.Channels.EMAIL
    # The feed has every reminder the patient has not switched off, whatever the channels.
    feed = facts.channel == FEED_CHANNEL
    if not wanted or (channels == unwanted_channel and not feed) or facts.logged:
        return None
    link = (
        unsubscribe_url(
            patient_id=str(facts.patient_id), what=KIND_OPT_OUT[facts.kind], signer=signer
        )
        if email
        else None
    )
    text = messages.reminder_text(
        kind=facts.kind,
        first_name=facts.first_name or "",
        language=facts.language or "",
        unsubscribe_link=link,
    )
    if link:
        text = messages.Text(text.subject, text.body, unsubscribe_headers(link))
    # A push names the reminder's feed item, written before any hand-over (one dict per
    # message: the feed item differs from one reminder to the next).
    data = {
        "kind": "reminder",
        "reminder": facts.kind,
        "feed_item": str(reminder_feed_item_id(facts.reminder_id)),
    }
    return text, data


# --------------------------------------------------------------------------- feed


def reminder_feed_item_id(reminder_id: int) -> UUID:
    return uuid5(FEED_NAMESPACE, f"reminder:{reminder_id}")


def reminders_owed(deliveries: list[Delivery], composed: Mapping[UUID, Composed]) -> list[int]:
    """The reminders of `deliveries` still owed (composed, not cancelled)."""
    return sorted(
        {
            d.object_id
            for d in deliveries
            if d.object_id is not None and composed.get(d.pk) is not None
        }
    )


def reminders_feed(reminder_ids: list[int]) -> int:
    """Put each reminder in its patient's feed, once, in one statement however many:
    called with the reminders a sender is about to hand over, so a patient with push and
    email off, or whose email failed, still sees it. Two senders, a retry or a worker
    killed mid-send meet on the item's key (and its derived id). Returns the new items."""
    if not reminder_ids:
        return 0
    ids = [reminder_feed_item_id(reminder_id) for reminder_id in reminder_ids]
    feed = FeedItem._meta.db_table
    reminder = Reminder._meta.db_table
    sql = f"""
    INSERT INTO {feed} (id, patient_id, kind, object_id, idempotency_key, created_at)
    SELECT v.id, r.patient_id, 'reminder', r.id, 'reminder:' || r.id, r.due_at
    FROM unnest(%s::uuid[], %s::bigint[]) AS v(id, reminder_id)
    JOIN {reminder} r ON r.id = v.reminder_id
    ON CONFLICT DO NOTHING
    """  # noqa: S608 - identifiers from the models, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids, reminder_ids])
        return int(cursor.rowcount)


def reminder_deliveries_cancel(delivery_ids: list[UUID]) -> int:
    """Cancel these reminder deliveries and, in the same statement, take out of the feed
    each of their reminders now owed on no channel (every other delivery of it cancelled
    too). A row handed back at a sender's deadline keeps the item written before its
    hand-over (`reminders_feed`); if it is cancelled when its turn comes again (the day
    logged meanwhile, the kind switched off, the settings changed), the feed must not go
    on showing a reminder that was never sent and no longer applies. A reminder sent,
    tried or still owed on another channel keeps its item. Set-based: one statement
    however many. Returns the feed items removed."""
    if not delivery_ids:
        return 0
    feed = FeedItem._meta.db_table
    delivery = Delivery._meta.db_table
    # The DELETE reads the table as it was before the UPDATE beside it (one snapshot for
    # the statement): the rows being cancelled are left out of the "still owed" test.
    sql = f"""
    WITH cancelled AS (
        UPDATE {delivery}
        SET status = %(cancelled)s, sending_until = NULL, updated_at = %(now)s
        WHERE id = ANY(%(ids)s::uuid[]) AND kind = %(kind)s
        RETURNING object_id
    )
    DELETE FROM {feed} f
    USING (SELECT DISTINCT object_id FROM cancelled WHERE object_id IS NOT NULL) c
    WHERE f.idempotency_key = 'reminder:' || c.object_id
      AND NOT EXISTS (
          SELECT 1 FROM {delivery} d
          WHERE d.kind = %(kind)s AND d.object_id = c.object_id
            AND d.status <> %(cancelled)s AND d.id <> ALL(%(ids)s::uuid[])
      )
    """  # noqa: S608 - identifiers from the models, values as parameters
    params: dict[str, Any] = {
        "ids": list(delivery_ids),
        "kind": Delivery.Kind.REMINDER.value,
        "cancelled": Delivery.Status.CANCELLED.value,
        "now": timezone.now(),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def reminder_compose(delivery: Delivery) -> Composed:
    """One claimed reminder delivery's text (the per-delivery send's path)."""
    return reminders_compose([delivery])[delivery.pk]


def email_chosen(*, patient: Patient) -> bool:
    """Whether the patient's channels (`ReminderSettings.channels`) include email."""
    return reminder_settings_get(patient=patient).channels != ReminderSettings.Channels.PUSH


def missed_log_email_wanted(*, patient: Patient) -> bool:
    return reminder_settings_get(patient=patient).missed_log_email
