"""The periodic review job (docs/safety-rules.md § Review rules): detect in SQL, raise
alerts, auto-resolve.

One run, for each review rule in `REVIEW_DETECTORS`:
1. one SQL statement finds every patient the rule fires for on their local today
   (`rehab.selectors.review`); nothing here loops over patients who do not fire. The rules
   that judge one day's log (NR-PAIN-01, NR-PAIN-03, NR-POST-01) also judge, in a second
   statement, the earlier days (within the 14-day backfill window) whose logs were created
   or changed in the last `CHANGED_LOOKBACK`: a log made at 23:50 after the last run of
   the patient's day, a backfilled day, an edit to yesterday;
2. each firing is recorded as `alert_raise` would (one unresolved alert per patient and
   rule; trend rules have no log, so an occurrence is unique per alert and patient-local
   day): routine rules in bulk, a fixed number of statements per chunk of patients (a
   morning of backfilled logs fires hundreds at once); the urgent NR-PAIN-03 through
   `alert_raise` itself, which also notifies the care team. Firings already recorded are
   skipped in one query, so the hourly runs after the first of the day cost a read;
3. one UPDATE resolves, with disposition `trigger_cleared`, every unresolved *routine*
   alert of the rule whose patient no longer fires and has logged today, and the
   `auto_resolved` events are inserted in bulk. Urgent alerts (NR-PAIN-03) stay until a
   clinician resolves them.

Why "and has logged today": the review rules read the patient's local today, which is
young when the patient has not logged yet. At 00:30 local time NR-PROG-03 ("pain <= 1 on
each of the last 7 days") cannot fire, for want of today's log, not because pain came
back; resolving then would close the alert every night and open a new one every morning.
So a day without a log is no news: an alert clears on evidence, the first log on which
the rule does not fire (NR-LOG-01 clears on the log that ends the silence).

Safe to run twice, and concurrently (two beats by mistake): `alert_raise` runs under the
patient's row lock and the (alert, fired_on) unique index drops a second occurrence; the
resolving UPDATE is conditional on the alert still being unresolved, so a second run
finds nothing left to resolve and writes no second event.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone, translation
from django.utils.translation import gettext

from patients.models import Patient
from rehab.models import Alert, AlertEvent, AlertOccurrence, MissedLogReminder, Severity
from rehab.safety import Firing
from rehab.safety.review import REVIEW_RULES, ReviewFinding, ReviewRule
from rehab.selectors.review import (
    CHANGED_DAY_DETECTORS,
    REVIEW_DETECTORS,
    Changed,
    missed_logs_reminder_list,
)
from rehab.services.safety import alert_raise

logger = logging.getLogger(__name__)

REVIEW_RULES_BY_ID = {rule.id: rule for rule in REVIEW_RULES}

Finding = tuple[UUID, ReviewFinding]

# How far back a run looks for changed logs of earlier days. The job runs hourly; a day
# and a bit covers the runs in between many times over (a missed run, a worker outage of
# hours), and what was recorded is not recorded twice (the (alert, fired_on) index).
CHANGED_LOOKBACK = dt.timedelta(hours=26)
# The oldest day a patient may log (docs/app-developers.md), as in rehab.services.logs.
BACKFILL_DAYS = 14


@dataclass(frozen=True)
class ReviewRunStats:
    rule: str
    # Patients for whom the rule fires today.
    firing: int
    # Firings not yet recorded today, passed to alert_raise; of those, new alerts.
    recorded: int
    created: int
    # Routine alerts resolved because their trigger cleared.
    auto_resolved: int
    # Firings whose recording raised (logged; the next run tries again).
    failed: int = 0
    # Firings on earlier days whose logs changed since the lookback (late, backfilled or
    # edited logs); recorded like today's.
    earlier_days: int = 0


def review_rules_run(
    *, now: dt.datetime | None = None, rules: Sequence[str] | None = None
) -> dict[str, ReviewRunStats]:
    """Run the review rules (all, or the ids given) over every patient, as of `now`."""
    now = now or timezone.now()
    selected = list(REVIEW_DETECTORS) if rules is None else list(dict.fromkeys(rules))
    unknown = [rule_id for rule_id in selected if rule_id not in REVIEW_DETECTORS]
    if unknown:
        raise ValueError(
            f"not a review rule this job runs: {', '.join(unknown)} "
            f"(it runs {', '.join(REVIEW_DETECTORS)})"
        )
    changed = Changed(since=now - CHANGED_LOOKBACK, backfill_days=BACKFILL_DAYS)
    return {
        rule_id: _run_rule(REVIEW_RULES_BY_ID[rule_id], now=now, changed=changed)
        for rule_id in selected
    }


def _run_rule(rule: ReviewRule, *, now: dt.datetime, changed: Changed) -> ReviewRunStats:
    findings = REVIEW_DETECTORS[rule.id](now=now)
    earlier = (
        CHANGED_DAY_DETECTORS[rule.id](now=now, changed=changed)
        if rule.id in CHANGED_DAY_DETECTORS
        else []
    )
    todo = _not_recorded(today=list(findings.items()), earlier=earlier)
    created = failed = 0
    if rule.severity == Severity.ROUTINE:
        # Routine alerts notify nobody: a morning's backfilled logs can fire hundreds at
        # once, so they are recorded in bulk, a few statements per chunk of patients.
        for start in range(0, len(todo), RECORD_CHUNK):
            chunk = todo[start : start + RECORD_CHUNK]
            try:
                created += _record_routine(rule, chunk)
            except Exception:
                # One chunk's failure must not cost the others their alerts; its patients
                # stay in the firing set, so nothing of theirs is auto-resolved either.
                failed += len(chunk)
                logger.exception("review rule %s: could not record %s firings", rule.id, len(chunk))
    else:
        for patient_id, finding in todo:
            try:
                created += _record(rule, patient_id=patient_id, finding=finding)
            except Exception:
                failed += 1
                logger.exception(
                    "review rule %s: could not record for patient %s", rule.id, patient_id
                )
    # Only today's firing set keeps alerts open: an alert raised here from an earlier day
    # whose patient has logged today without the rule firing is a trigger that has
    # already cleared (recorded, audited, and resolved like any other).
    # First what a red flag displaces (said so in its disposition), then what cleared.
    resolved = _resolve_beside_red_flags(rule) if rule.id in RESOLVED_BESIDE_RED_FLAGS else 0
    resolved += _auto_resolve(rule, firing=findings.keys(), now=now)
    return ReviewRunStats(
        rule=rule.id,
        firing=len(findings),
        recorded=len(todo) - failed,
        created=created,
        auto_resolved=resolved,
        failed=failed,
        earlier_days=len(earlier),
    )


def _not_recorded(*, today: Sequence[Finding], earlier: Sequence[Finding]) -> list[Finding]:
    """The findings not recorded yet (one query): those with no occurrence for their day.

    An occurrence on a resolved alert counts too: a day a clinician has already dealt
    with is not raised again by the next hourly run (today) or by every run of the
    lookback (an earlier day). The next day's finding is a new day, and raises again.
    """
    if not today and not earlier:
        return []
    both = [*today, *earlier]
    occurrences = AlertOccurrence.objects.filter(
        alert__rule__in={f.rule_id for _, f in both},
        alert__patient_id__in={pid for pid, _ in both},
        log__isnull=True,
        fired_on__in={f.date for _, f in both},
    ).values_list("alert__rule", "alert__patient_id", "fired_on")
    seen = set(occurrences)
    todo: dict[tuple[str, UUID, dt.date], Finding] = {}
    for patient_id, finding in both:
        key = (finding.rule_id, patient_id, finding.date)
        if key not in seen:
            todo.setdefault(key, (patient_id, finding))
    return list(todo.values())


# Patients locked and recorded per transaction by `_record_routine`.
RECORD_CHUNK = 500


def _record_routine(rule: ReviewRule, findings: Sequence[Finding]) -> int:
    """`alert_raise`'s outcome for many routine firings in a fixed number of statements.

    The same result, firing by firing in date order: a new alert for a patient with no
    unresolved one (created by their earliest firing), an occurrence per day, a `created`,
    `refired` or `reopened` event per firing, an acknowledged alert back to `open`. It runs
    under the same patient row locks, taken in one statement in id order (two runs cannot
    deadlock), and re-reads what was recorded once it holds them, so a concurrent run
    doubles nothing. Returns how many alerts it created.
    """
    now = timezone.now()
    by_patient: dict[UUID, list[ReviewFinding]] = defaultdict(list)
    for patient_id, finding in sorted(findings, key=lambda f: (str(f[0]), f[1].date)):
        by_patient[patient_id].append(finding)
    with transaction.atomic():
        locked = list(
            Patient.objects.select_for_update(no_key=True)
            .filter(pk__in=list(by_patient))
            .order_by("pk")
            .values_list("pk", flat=True)
        )  # a patient deleted since the detection query is simply gone
        alerts = {
            alert.patient_id: alert
            for alert in Alert.objects.select_for_update()
            .filter(patient_id__in=locked, rule=rule.id)
            .exclude(status=Alert.Status.RESOLVED)
        }
        recorded = set(
            AlertOccurrence.objects.filter(
                alert__patient_id__in=locked,
                alert__rule=rule.id,
                log__isnull=True,
                fired_on__in={f.date for fs in by_patient.values() for f in fs},
            ).values_list("alert__patient_id", "fired_on")
        )
        owed = {
            pid: [f for f in by_patient[pid] if (pid, f.date) not in recorded] for pid in locked
        }
        owed = {pid: fs for pid, fs in owed.items() if fs}
        new = [
            Alert(
                patient_id=pid,
                rule=rule.id,
                rule_version=rule.version,
                severity=rule.severity,
                title=rule.title,
                basis=fs[0].basis,
                log=None,
                last_fired_at=now,
                opened_at=now,
                occurrence_count=len(fs),
            )
            for pid, fs in owed.items()
            if pid not in alerts
        ]
        Alert.objects.bulk_create(new)
        alert_of = {**alerts, **{alert.patient_id: alert for alert in new}}
        AlertOccurrence.objects.bulk_create(
            AlertOccurrence(
                alert=alert_of[pid],
                log=None,
                fired_on=f.date,
                rule_version=f.version,
                basis=f.basis,
                source=AlertOccurrence.Source.REVIEW,
            )
            for pid, fs in owed.items()
            for f in fs
        )
        events: list[AlertEvent] = []
        reopened: list[UUID] = []
        for pid, fs in owed.items():
            alert = alert_of[pid]
            kinds = [AlertEvent.Kind.REFIRED] * len(fs)
            if pid not in alerts:
                kinds[0] = AlertEvent.Kind.CREATED
            elif alert.status == Alert.Status.ACKNOWLEDGED:
                kinds[0] = AlertEvent.Kind.REOPENED
                reopened.append(alert.pk)
            events += [AlertEvent(alert=alert, kind=kind, data={"log": None}) for kind in kinds]
        AlertEvent.objects.bulk_create(events)
        # A routine alert has no escalation deadline (docs/safety-rules.md, RF-META-01):
        # reopening only puts it back in the open queue, where the triage order counts from
        # now.
        Alert.objects.filter(pk__in=reopened).update(
            status=Alert.Status.OPEN,
            opened_at=now,
            escalation_due_at=None,
            escalated_at=None,
            updated_at=now,
        )
        Alert.objects.filter(pk__in=[alerts[pid].pk for pid in owed if pid in alerts]).update(
            occurrence_count=Subquery(
                AlertOccurrence.objects.filter(alert=OuterRef("pk"))
                .order_by()
                .values("alert")
                .annotate(n=Count("id"))
                .values("n")
            ),
            last_fired_at=now,
            updated_at=now,
        )
    return len(new)


def _record(rule: ReviewRule, *, patient_id: UUID, finding: ReviewFinding) -> bool:
    """Raise (or add today's occurrence to) the patient's alert; True for a new alert."""
    with transaction.atomic():
        # alert_raise reads then writes: its callers hold the patient's row lock, so a
        # concurrent run (or a log evaluation) of the same patient waits its turn.
        patient = Patient.objects.select_for_update(no_key=True).filter(pk=patient_id).first()
        if patient is None:  # deleted since the detection query
            return False
        raised = alert_raise(
            patient=patient,
            firing=Firing(
                rule_id=rule.id,
                version=rule.version,
                severity=rule.severity,
                basis=finding.basis,
                # Review rules tell the patient nothing: no message of their own.
                message_key="",
            ),
            log=None,
            fired_on=finding.date,
            title=rule.title,
        )
    return raised.created


_AUTO_RESOLVE_SQL = """
UPDATE rehab_alert AS a
SET status = %(resolved)s, disposition = %(disposition)s, resolved_at = %(at)s,
    updated_at = %(at)s
FROM patients_patient AS p
WHERE p.id = a.patient_id
  AND a.rule = %(rule)s
  AND a.severity = %(routine)s
  AND a.status <> %(resolved)s
  AND NOT (a.patient_id = ANY(%(firing)s::uuid[]))
  AND EXISTS (
      SELECT 1 FROM rehab_dailylog l
      WHERE l.patient_id = a.patient_id
        AND l.date = (timezone(p.timezone, %(now)s::timestamptz))::date
  )
RETURNING a.id
"""


# Amendment 8.4: "consider discharge" (NR-PROG-03) never stands beside a red flag being
# dealt with. The run resolves it, open or acknowledged, whatever the patient logged today.
RESOLVED_BESIDE_RED_FLAGS = frozenset({"NR-PROG-03"})

_RESOLVE_BESIDE_RED_FLAGS_SQL = """
UPDATE rehab_alert AS a
SET status = %(resolved)s, disposition = %(disposition)s, resolved_at = %(at)s,
    updated_at = %(at)s
WHERE a.rule = %(rule)s
  AND a.status <> %(resolved)s
  AND EXISTS (
      SELECT 1 FROM rehab_alert r
      WHERE r.patient_id = a.patient_id AND r.rule LIKE 'RF-%%' AND r.status <> %(resolved)s
        AND r.severity IN (%(urgent)s, %(emergency)s)
  )
RETURNING a.id
"""


def _resolve_beside_red_flags(rule: ReviewRule) -> int:
    """Resolve the rule's unresolved alerts of patients with an unresolved urgent or
    emergency red-flag alert (disposition `red_flag_open`): one UPDATE, one INSERT."""
    return _resolve_automatically(
        _RESOLVE_BESIDE_RED_FLAGS_SQL,
        {
            "rule": rule.id,
            "urgent": Severity.URGENT.value,
            "emergency": Severity.EMERGENCY.value,
        },
        disposition=Alert.Disposition.RED_FLAG_OPEN,
    )


def _auto_resolve(rule: ReviewRule, *, firing: Iterable[UUID], now: dt.datetime) -> int:
    """Resolve the rule's routine alerts whose trigger cleared: one UPDATE, one INSERT.

    `now` decides the patients' today, as in detection; `at` stamps the write.
    """
    return _resolve_automatically(
        _AUTO_RESOLVE_SQL,
        {
            "rule": rule.id,
            "firing": list(firing),
            "now": now,
            "routine": Severity.ROUTINE.value,
        },
        disposition=Alert.Disposition.TRIGGER_CLEARED,
    )


def _resolve_automatically(sql: str, params: dict[str, Any], *, disposition: str) -> int:
    """Run a resolving UPDATE (it returns the ids it resolved) and record an
    `auto_resolved` event with its disposition for each, in one transaction."""
    at = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                **params,
                "at": at,
                "resolved": Alert.Status.RESOLVED.value,
                "disposition": disposition,
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
        AlertEvent.objects.bulk_create(
            AlertEvent(
                alert_id=alert_id,
                kind=AlertEvent.Kind.AUTO_RESOLVED,
                data={"disposition": str(disposition)},
            )
            for alert_id in ids
        )
    return len(ids)


# --------------------------------------------------------------------------- NR-LOG-01


# The patient's local hours in which a reminder may go out: a nudge, not a 3 a.m. email.
# Beat runs the job hourly, so each patient hears at the start of their own morning.
REMINDER_LOCAL_HOURS = (9, 21)


def missed_log_reminders_send(*, now: dt.datetime | None = None) -> int:
    """NR-LOG-01's first step: remind each patient 3 to 6 days without a log, once per
    streak (from 7 days their clinician is alerted instead). Returns reminders sent.

    Who is owed one is one set-based query; each reminder is claimed under its row's
    lock (SKIP LOCKED) and stamped `sent_at` in the same transaction as the send, so a
    second run or a second beat sends nothing twice, and a failed send is tried again
    by the next run while the streak lasts.
    """
    now = now or timezone.now()
    findings = missed_logs_reminder_list(now=now)
    if not findings:
        return 0
    # A streak is named by its first missed day: `missed_days` before the finding's date.
    streaks: dict[UUID, tuple[dt.date, int]] = {}
    for patient_id, finding in findings.items():
        missed = int(finding.basis["missed_days"])  # type: ignore[arg-type]
        streaks[patient_id] = (finding.date - dt.timedelta(days=missed), missed)
    MissedLogReminder.objects.bulk_create(
        [
            MissedLogReminder(patient_id=pid, streak_from=start, missed_days=missed)
            for pid, (start, missed) in streaks.items()
        ],
        ignore_conflicts=True,
    )
    owed = MissedLogReminder.objects.filter(
        patient_id__in=list(streaks), sent_at__isnull=True
    ).values_list("pk", "patient_id", "streak_from")
    sent = 0
    for reminder_id, patient_id, streak_from in owed:
        if streaks[patient_id][0] != streak_from:
            continue  # an older streak, ended since: nothing more to say about it
        try:
            sent += _send_reminder(reminder_id, missed=streaks[patient_id][1])
        except Exception:
            logger.exception("could not send the missed-log reminder %s", reminder_id)
    return sent


def _send_reminder(reminder_id: int, *, missed: int) -> bool:
    with transaction.atomic():
        reminder = (
            MissedLogReminder.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("patient")
            .filter(pk=reminder_id, sent_at__isnull=True)
            .first()
        )
        if reminder is None:
            return False
        patient = reminder.patient
        first, last = REMINDER_LOCAL_HOURS
        if not first <= timezone.now().astimezone(patient.tz).hour < last:
            return False  # owed still: a later hourly run sends it in the patient's day
        # No clinical content: a nudge to open the app, where the safety check is. In the
        # patient's language, else English (docs/app-developers.md § Languages).
        with translation.override(patient.language or "en"):
            subject = gettext("A quick check-in on how you are doing")
            message = gettext(
                "Hello %(first_name)s,\n\n"
                "We have not had your daily log for %(missed)s days. It takes a minute, "
                "and it helps your physio follow how you are doing. Please open the app "
                "and fill in today's log, including the safety questions.\n\n"
                "If you have new numbness between your legs, bladder or bowel changes, or "
                "weakness in both legs, go to the Emergency Department now.\n"
            ) % {"first_name": patient.first_name, "missed": missed}
        send_mail(
            subject=subject,
            message=message,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[patient.email],
        )
        reminder.sent_at = timezone.now()
        reminder.missed_days = missed
        reminder.save(update_fields=["sent_at", "missed_days"])
    return True
