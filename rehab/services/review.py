"""The periodic review job (clinical-rules.md §3): detect in SQL, raise alerts, auto-resolve.

One run, for each review rule in `REVIEW_DETECTORS`:
1. one SQL statement finds every patient the rule fires for on their local today
   (`rehab.selectors.review`); nothing here loops over patients who do not fire;
2. each firing is recorded through `alert_raise` (one unresolved alert per patient and
   rule; trend rules have no log, so an occurrence is unique per alert and patient-local
   day). Firings already recorded today are skipped in one query, so the hourly runs
   after the first of the day cost a read;
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from patients.models import Patient
from rehab.models import Alert, AlertEvent, AlertOccurrence, Severity
from rehab.safety import Firing
from rehab.safety.review import REVIEW_RULES, ReviewFinding, ReviewRule
from rehab.selectors.review import REVIEW_DETECTORS
from rehab.services.safety import alert_raise

logger = logging.getLogger(__name__)

REVIEW_RULES_BY_ID = {rule.id: rule for rule in REVIEW_RULES}


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
    return {rule_id: _run_rule(REVIEW_RULES_BY_ID[rule_id], now=now) for rule_id in selected}


def _run_rule(rule: ReviewRule, *, now: dt.datetime) -> ReviewRunStats:
    findings = REVIEW_DETECTORS[rule.id](now=now)
    todo = _not_recorded_today(rule, findings)
    created = failed = 0
    for patient_id, finding in todo.items():
        try:
            created += _record(rule, patient_id=patient_id, finding=finding)
        except Exception:
            # One patient's failure must not cost the others their alerts. The patient
            # stays in the firing set, so nothing of theirs is auto-resolved either.
            failed += 1
            logger.exception("review rule %s: could not record for patient %s", rule.id, patient_id)
    resolved = _auto_resolve(rule, firing=findings.keys(), now=now)
    return ReviewRunStats(
        rule=rule.id,
        firing=len(findings),
        recorded=len(todo) - failed,
        created=created,
        auto_resolved=resolved,
        failed=failed,
    )


def _not_recorded_today(
    rule: ReviewRule, findings: dict[UUID, ReviewFinding]
) -> dict[UUID, ReviewFinding]:
    """The findings whose unresolved alert has no occurrence for that day yet (one query).

    Only an optimisation: `alert_raise` would find the occurrence and add nothing.
    """
    if not findings:
        return {}
    recorded = set(
        AlertOccurrence.objects.filter(
            alert__rule=rule.id,
            alert__patient_id__in=list(findings),
            log__isnull=True,
            fired_on__in={f.date for f in findings.values()},
        )
        .exclude(alert__status=Alert.Status.RESOLVED)
        .values_list("alert__patient_id", "fired_on")
    )
    return {pid: f for pid, f in findings.items() if (pid, f.date) not in recorded}


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


def _auto_resolve(rule: ReviewRule, *, firing: Iterable[UUID], now: dt.datetime) -> int:
    """Resolve the rule's routine alerts whose trigger cleared: one UPDATE, one INSERT.

    `now` decides the patients' today, as in detection; `at` stamps the write.
    """
    at = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _AUTO_RESOLVE_SQL,
            {
                "rule": rule.id,
                "firing": list(firing),
                "now": now,
                "at": at,
                "resolved": Alert.Status.RESOLVED.value,
                "routine": Severity.ROUTINE.value,
                "disposition": Alert.Disposition.TRIGGER_CLEARED.value,
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
        AlertEvent.objects.bulk_create(
            AlertEvent(
                alert_id=alert_id,
                kind=AlertEvent.Kind.AUTO_RESOLVED,
                data={"disposition": Alert.Disposition.TRIGGER_CLEARED.value},
            )
            for alert_id in ids
        )
    return len(ids)
