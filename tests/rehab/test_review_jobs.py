"""The §3 review rules as set-based SQL jobs: thresholds, the pure oracle, local dates,
auto-resolution, idempotency, concurrency and query counts.

The reference functions of rehab/safety/review.py are the oracle: the SQL must return the
very same findings (date and basis included) for every patient on every day.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pytest
import time_machine
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.models import Clinic, Clinician, Patient
from programs import services as program_services
from programs.models import AssignedExercise, ExerciseLog, ProgramAssignment
from rehab import tasks
from rehab.models import Alert, AlertEvent, AlertOccurrence, DailyLog
from rehab.safety import LogFacts
from rehab.safety import review as oracle
from rehab.selectors import review as detectors
from rehab.selectors.review import CHANGED_DAY_DETECTORS, REVIEW_DETECTORS
from rehab.services import review
from rehab.services.alerts import alert_resolve
from tests.factories import PatientFactory, UserFactory
from tests.programs.factories import make_template

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)  # Europe/London, the cast patient's zone, at NOW


@pytest.fixture(autouse=True)
def _frozen_time() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def days_ago(n: int, today: date = TODAY) -> date:
    return today - timedelta(days=n)


def daily(patient: Patient, values: list[Any], *, end: date = TODAY, field: str = "pain") -> None:
    """One log a day ending on `end`; None leaves the day without a log. A dict gives a
    log's fields; a number sets `field` (pain defaults to 3 when it is not the field)."""
    for i, value in enumerate(values):
        if value is None:
            continue
        fields = value if isinstance(value, dict) else {field: value}
        DailyLog.objects.create(
            patient=patient, date=end - timedelta(days=len(values) - 1 - i), **{"pain": 3, **fields}
        )


def fired(rule_id: str, *, now: datetime = NOW) -> dict[UUID, oracle.ReviewFinding]:
    return REVIEW_DETECTORS[rule_id](now=now)


def alerts(rule_id: str) -> list[Alert]:
    return list(Alert.objects.filter(rule=rule_id).order_by("created_at"))


# --------------------------------------------------------------------------- NR-PAIN-01


@pytest.mark.parametrize(
    ("prior", "today", "fires"),
    [
        ([3, 3, 3, 3], 5, True),  # median 3: 5 >= 3 + 2 and 5 >= 3.9
        ([3, 3, 3, 3], 4, False),  # under median + 2
        ([3, 3, 3], 9, False),  # only 3 prior logs: needs 4
        ([7, 7, 7, 7], 9, False),  # 9 >= 7 + 2 but 9 < 7 x 1.3 = 9.1
        ([7, 7, 7, 7], 10, True),
        ([6, 6, 7, 7], 9, True),  # even count: median 6.5; 9 >= 8.5 and >= 8.45
        ([6, 6, 7, 7], 8, False),
        ([0, 0, 0, 0], 2, True),  # median 0: the rise decides (integer scores never sit
        # exactly on median x 1.3 unless the median is 0)
        ([9] * 8 + [3] * 7, 5, True),  # the 7 most recent logs only (all 15: median 9)
    ],
)
def test_it_fires_a_pain_spike_at_the_edges(patient, prior, today, fires):
    daily(patient, [*prior, today])
    assert (patient.pk in fired("NR-PAIN-01")) is fires


def test_it_reads_leg_pain_for_a_spike_when_recorded(patient):
    daily(patient, [{"leg_pain": 2}] * 4 + [{"leg_pain": 6, "pain": 2}])
    finding = fired("NR-PAIN-01")[patient.pk]
    assert finding.basis["field"] == "leg_pain"
    assert finding.basis["value"] == 6
    assert finding.basis["prior_median"] == 2.0


def test_it_counts_the_previous_logs_however_far_apart(patient):
    daily(patient, [2, None, None, 2, None, 2, None, None, None, 2, 6])
    finding = fired("NR-PAIN-01")[patient.pk]
    assert finding.basis["prior_dates"] == [days_ago(n).isoformat() for n in (10, 7, 5, 1)]


def test_it_needs_todays_log_for_a_spike(patient):
    daily(patient, [2, 2, 2, 2, 8, None])
    assert fired("NR-PAIN-01") == {}


# --------------------------------------------------------------------------- NR-PAIN-02


@pytest.mark.parametrize(
    ("before", "now", "fires"),
    [
        ([3, 3, 3], [5, 5, 5], True),  # mean 5 >= 3 + 2, exactly
        ([3, 3, 4], [5, 5, 5], False),  # 5 < 3.33 + 2
        ([3, 3, 4], [5, 5, 6], True),  # 5.33 >= 5.33: equal thirds, exact
        ([3, 3], [9, 9, 9], False),  # the previous week needs 3 logs
        ([3, 3, 3], [9, 9], False),  # and so does this one
    ],
)
def test_it_fires_a_worsening_trend_at_the_edges(patient, before, now, fires):
    # Days 13..11 ago in the previous week, the last 3 days in this one.
    daily(patient, [*before, *[None] * (11 - len(before)), *now], end=TODAY)
    assert (patient.pk in fired("NR-PAIN-02")) is fires


def test_it_compares_calendar_weeks_for_the_trend(patient):
    # 14 days ago is outside both windows: its pain does not count.
    daily(patient, [0, 3, 3, 3, None, None, None, None, 5, 5, 5, None, None, None, None])
    assert fired("NR-PAIN-02")[patient.pk].basis == {"mean_pain": 5.0, "previous_mean_pain": 3.0}


# --------------------------------------------------------------------------- NR-PAIN-03


@pytest.mark.parametrize(
    ("worst", "fires"),
    [
        ([9, 9], True),
        ([10, 9], True),
        ([9, 8], False),
        ([8, 9], False),
        ([9, None, 9], False),  # calendar days: a day without a log breaks it
        ([9, 9, None], False),  # today must be logged
    ],
)
def test_it_fires_uncontrolled_pain_on_two_calendar_days(patient, worst, fires):
    daily(patient, [None if w is None else {"worst_pain": w} for w in worst])
    finding = fired("NR-PAIN-03").get(patient.pk)
    assert (finding is not None) is fires
    if finding is not None:
        assert finding.severity == "urgent"


# --------------------------------------------------------------------------- NR-PROG-03


@pytest.mark.parametrize(
    ("pains", "fires"),
    [
        ([1, 0, 1, 1, 0, 0, 1], True),
        ([5, 1, 0, 1, 1, 0, 0, 1], True),  # an 8th day back does not count
        ([1, 0, 1, 2, 0, 0, 1], False),
        ([1, 0, 1, None, 0, 0, 1], False),  # a missing day breaks it
        ([0, 0, 0, 0, 0, 0], False),  # 6 days
        ([1, 1, 1, 1, 1, 1, 1, None], False),  # today not logged (yet)
    ],
)
def test_it_finds_a_recovered_patient(patient, pains, fires):
    daily(patient, pains)
    assert (patient.pk in fired("NR-PROG-03")) is fires


def _red_flag_alert(patient: Patient, *, rule: str, severity: str, status: str = "open") -> Alert:
    return Alert.objects.create(
        patient=patient,
        rule=rule,
        rule_version=1,
        severity=severity,
        status=status,
        last_fired_at=NOW,
        opened_at=NOW,
    )


@pytest.mark.parametrize(
    ("rule", "severity", "status", "fires"),
    [
        ("RF-CES-02", "emergency", "open", False),
        ("RF-NEU-01", "urgent", "acknowledged", False),
        ("RF-NEU-01", "urgent", "resolved", True),
        ("RF-NP-01", "routine", "open", True),  # a routine red flag does not stop it
        ("NR-PAIN-03", "urgent", "open", True),  # nor does an urgent review alert
    ],
)
def test_it_does_not_call_a_patient_recovered_beside_a_red_flag(
    patient, rule, severity, status, fires
):
    daily(patient, [1, 0, 1, 1, 0, 0, 1])
    _red_flag_alert(patient, rule=rule, severity=severity, status=status)

    assert (patient.pk in fired("NR-PROG-03")) is fires
    recovered = oracle.recovered(
        [LogFacts(date=days_ago(n), pain=0) for n in range(7)],
        today=TODAY,
        red_flag_open=not fires,
    )
    assert (recovered is not None) is fires


def test_it_resolves_consider_discharge_when_a_red_flag_opens(patient, other_patient):
    for someone in (patient, other_patient):
        daily(someone, [1, 0, 1, 1, 0, 0, 1])
    review.review_rules_run(rules=["NR-PROG-03"])
    alert = Alert.objects.get(patient=patient, rule="NR-PROG-03")
    alert.status = "acknowledged"
    alert.save()
    _red_flag_alert(patient, rule="RF-CES-02", severity="emergency")

    stats = review.review_rules_run(rules=["NR-PROG-03"])

    assert stats["NR-PROG-03"].auto_resolved == 1
    alert.refresh_from_db()
    assert (alert.status, alert.disposition) == ("resolved", "red_flag_open")
    assert AlertEvent.objects.filter(
        alert=alert, kind="auto_resolved", data={"disposition": "red_flag_open"}
    ).exists()
    # The other patient, with no red flag, keeps theirs; a second run changes nothing.
    assert Alert.objects.get(patient=other_patient, rule="NR-PROG-03").status == "open"
    assert review.review_rules_run(rules=["NR-PROG-03"])["NR-PROG-03"].auto_resolved == 0


def test_nr_prog_03_is_version_2() -> None:
    assert oracle.NR_PROG_03.version == 2


# --------------------------------------------------------------------------- NR-LOG-01


@pytest.mark.parametrize(
    ("last_log_days_ago", "alert", "remind"),
    [
        (0, False, False),
        (3, False, False),  # 2 whole days missed
        (4, False, True),  # 3: remind the patient
        (7, False, True),  # 6
        (8, True, False),  # 7: alert the clinician
        (30, True, False),
    ],
)
def test_it_counts_missed_log_days(patient, last_log_days_ago, alert, remind):
    DailyLog.objects.create(patient=patient, date=days_ago(last_log_days_ago), pain=3)
    assert (patient.pk in fired("NR-LOG-01")) is alert
    assert (patient.pk in detectors.missed_logs_reminder_list(now=NOW)) is remind


def test_it_counts_missed_days_from_the_account_start_without_logs(patient):
    assert patient.user is not None
    patient.user.date_joined = NOW - timedelta(days=7)
    patient.user.save()
    assert fired("NR-LOG-01")[patient.pk].basis == {
        "missed_days": 7,
        "last_log_date": None,
        "action": "alert_clinician",
    }
    patient.user.date_joined = NOW - timedelta(days=6)
    patient.user.save()
    assert fired("NR-LOG-01") == {}


def test_it_does_not_chase_patients_who_cannot_log(clinic: Clinic):
    invited = PatientFactory.create(
        clinic=clinic, user=None, email="new@example.com", first_name="New", last_name="Patient"
    )
    inactive = PatientFactory.create(clinic=clinic, user=UserFactory.create(is_active=False))
    for p in (invited, inactive):
        DailyLog.objects.create(patient=p, date=days_ago(20), pain=3)
    assert fired("NR-LOG-01") == {}


# --------------------------------------------------------------------------- NR-PROG-01


def on_program(patient: Patient, start: date, ended_on: date | None = None) -> None:
    ProgramAssignment.objects.create(
        patient=patient, name="Sciatica", start_date=start, ended_on=ended_on
    )


@pytest.mark.parametrize(
    ("current", "program_day", "fires"),
    [
        ([7, 7, 8], 42, True),  # 10 -> 7.33: down 26.7 %
        ([7, 7, 7], 42, False),  # down 30 % exactly: meaningful
        ([7, 7, 8], 41, False),  # not 6 weeks into the program yet
        ([9, 9], 50, False),  # the current week needs 3 logs
    ],
)
def test_it_finds_no_meaningful_improvement_after_six_weeks(patient, current, program_day, fires):
    on_program(patient, days_ago(program_day))
    daily(patient, [10, 10, 10], end=days_ago(60))
    daily(patient, current)
    finding = fired("NR-PROG-01").get(patient.pk)
    assert (finding is not None) is fires
    if finding is not None:
        assert finding.basis == {
            "baseline_pain": 10.0,
            "current_pain_7d": 7.3333,
            "percent_change": -26.6667,
            "program_start": days_ago(42).isoformat(),
            "program_day": 42,
        }


def test_it_needs_a_current_program_and_a_baseline_above_zero(patient, clinic):
    ended = PatientFactory.create(clinic=clinic)
    zero = PatientFactory.create(clinic=clinic)
    on_program(ended, days_ago(60), ended_on=days_ago(1))
    on_program(zero, days_ago(60))
    for p in (patient, ended):
        daily(p, [8, 8, 8], end=days_ago(55))
        daily(p, [8, 8, 8])
    daily(zero, [0, 0, 0], end=days_ago(55))
    daily(zero, [4, 4, 4])
    assert fired("NR-PROG-01") == {}


# --------------------------------------------------------------------------- NR-ADH-01

PROGRAM_START = TODAY - timedelta(days=14)


@pytest.fixture
def exercise(patient: Patient, clinician: Clinician) -> AssignedExercise:
    """One exercise due 4 days in every 7 from the program's start: 4 sessions a week."""
    template = make_template(clinic=patient.clinic, phases=[(6, [4])])
    assignment = program_services.assignment_create(
        patient=patient, template=template, by=clinician, start_date=PROGRAM_START, today=TODAY
    )
    return AssignedExercise.objects.get(phase__assignment=assignment)


def sessions(patient: Patient, exercise: AssignedExercise, offsets: list[int]) -> None:
    for offset in offsets:
        ExerciseLog.objects.create(
            patient=patient,
            assigned_exercise=exercise,
            date=PROGRAM_START + timedelta(days=offset),
            sets_done=3,
            pain_during=2,
            difficulty=3,
        )


@pytest.mark.parametrize(
    ("offsets", "fires"),
    [
        ([0, 7], True),  # 1 of 4 in each program week
        ([0, 1, 7], False),  # 2 of 4 is 50 %: not under it
        ([0, 1, 7, 8], False),
        ([0, 1, 7, 9], False),
        ([7], True),  # nothing done in week 1 is under 50 % too
    ],
)
def test_it_finds_non_adherence_in_two_program_weeks(patient, exercise, offsets, fires):
    sessions(patient, exercise, offsets)
    finding = fired("NR-ADH-01").get(patient.pk)
    if not fires:
        assert finding is None
        return
    assert finding is not None
    weeks: Any = finding.basis["weeks"]
    assert weeks == [
        {
            "start": (PROGRAM_START + timedelta(days=7 * k)).isoformat(),
            "prescribed": 4,
            "done": len([o for o in offsets if 7 * k <= o < 7 * (k + 1)]),
        }
        for k in (0, 1)
    ]


def test_it_waits_for_two_completed_program_weeks(patient, exercise):
    sessions(patient, exercise, [0])
    assert patient.pk not in fired("NR-ADH-01", now=NOW - timedelta(days=1))
    assert patient.pk in fired("NR-ADH-01")
    # Three days later the third week is under way: it does not count yet.
    sessions(patient, exercise, [14, 15, 16])
    finding = fired("NR-ADH-01", now=NOW + timedelta(days=3))[patient.pk]
    assert finding.date == TODAY + timedelta(days=3)
    weeks: Any = finding.basis["weeks"]
    assert weeks[-1]["start"] == (PROGRAM_START + timedelta(days=7)).isoformat()


# --------------------------------------------------------------------------- the oracle

ZONES = (
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "Europe/London",
    "America/New_York",
    "Asia/Kolkata",  # a half-hour offset
    "Australia/Adelaide",
)
COHORT_START = date(2026, 9, 1)
COHORT_DAYS = 60


def _pain_for(profile: str, day: int, rng: random.Random) -> int:
    if profile == "recovering":
        return rng.choice([0, 0, 1, 1, 1, 1, 1, 2]) if day > 20 else rng.randint(2, 6)
    if profile == "worsening":
        return min(10, 1 + (day % 30) // 4 + rng.randint(0, 2))
    if profile == "spiky":
        return rng.choice([2, 2, 3, 3, 3, 4, 8, 9])
    if profile == "severe":
        return rng.randint(6, 10)
    return rng.randint(2, 6)


Cohort = dict[Patient, tuple[list[LogFacts], list[tuple[date, date | None]]]]


def _make_cohort(clinic: Clinic, rng: random.Random, n: int = 30) -> Cohort:
    """Patients with their logs and their programs (start, ended_on)."""
    profiles = ("steady", "recovering", "worsening", "spiky", "severe", "sporadic")
    cohort: Cohort = {}
    logs: list[DailyLog] = []
    for i in range(n):
        profile = profiles[i % len(profiles)]
        joined = datetime.combine(COHORT_START, time(rng.randint(0, 23)), tzinfo=UTC) + timedelta(
            days=rng.randint(-3, 5)
        )
        patient = PatientFactory.create(
            clinic=clinic,
            timezone=ZONES[i % len(ZONES)],
            user=UserFactory.create(email=f"cohort{i}@example.com", date_joined=joined),
        )
        series = []
        skip = {"sporadic": 0.45, "steady": 0.1}.get(profile, 0.05)
        # Some patients stop logging for a while (NR-LOG-01); every tenth never logs.
        gap = range(rng.randint(10, 45), rng.randint(50, 60)) if i % 4 == 0 else range(0)
        for d in range(COHORT_DAYS if i % 10 != 9 else 0):
            if rng.random() < skip or d in gap:
                continue
            pain = _pain_for(profile, d, rng)
            leg = None if rng.random() < 0.3 else max(0, min(10, pain + rng.randint(-2, 2)))
            worst = None if rng.random() < 0.1 else min(10, pain + rng.randint(0, 3))
            day = COHORT_START + timedelta(days=d)
            logs.append(
                DailyLog(patient=patient, date=day, pain=pain, leg_pain=leg, worst_pain=worst)
            )
            series.append(LogFacts(date=day, pain=pain, leg_pain=leg, worst_pain=worst))
        programs: list[tuple[date, date | None]] = []
        if i % 3 != 2:
            start = COHORT_START + timedelta(days=rng.randint(-30, 10))
            ended = start + timedelta(days=rng.randint(30, 70)) if i % 3 == 1 else None
            on_program(patient, start, ended_on=ended)
            programs.append((start, ended))
        cohort[patient] = (series, programs)
    DailyLog.objects.bulk_create(logs)
    return cohort


ORACLES: dict[str, Callable[..., oracle.ReviewFinding | None]] = {
    "NR-PAIN-01": oracle.pain_spike,
    "NR-PAIN-02": oracle.worsening_trend,
    "NR-PAIN-03": oracle.uncontrolled_pain,
    "NR-PROG-03": oracle.recovered,
}


def _expected(cohort: Cohort, rule_id: str, now: datetime) -> dict[UUID, oracle.ReviewFinding]:
    out = {}
    for patient, (series, programs) in cohort.items():
        today = patient.local_today(now)
        finding: oracle.ReviewFinding | None
        if rule_id == "NR-PROG-01":
            starts = [s for s, e in programs if s <= today and (e is None or today < e)]
            finding = (
                oracle.no_meaningful_improvement(series, today=today, program_start=starts[0])
                if starts
                else None
            )
        elif rule_id == "NR-LOG-01":
            assert patient.user is not None
            since = patient.user.date_joined.astimezone(patient.tz).date()
            finding = oracle.missed_logs(series, today=today, since=since)
        else:
            finding = ORACLES[rule_id](series, today=today)
        if finding is not None:
            out[patient.pk] = finding
    return out


def test_it_agrees_with_the_reference_functions_on_a_random_cohort(clinic):
    rng = random.Random(20261120)
    cohort = _make_cohort(clinic, rng)
    # NR-ADH-01 is left out: its decision *is* the reference function, on weeks the
    # programs app computes (tested by hand above and in tests/programs).
    # NR-POST-01 has its own oracle comparison below (this cohort has no interventions).
    rules = [r for r in REVIEW_DETECTORS if r not in ("NR-ADH-01", "NR-POST-01")]
    totals = dict.fromkeys([*rules, "reminders"], 0)
    for d in range(-2, COHORT_DAYS + 12):
        # A different hour each day, so that the zones straddle different dates.
        now = datetime.combine(COHORT_START + timedelta(days=d), time(rng.randint(0, 23)), UTC)
        for rule_id in rules:
            expected = _expected(cohort, rule_id, now)
            if rule_id == "NR-LOG-01":
                reminders = {
                    p: f for p, f in expected.items() if f.basis["action"] == "remind_patient"
                }
                assert detectors.missed_logs_reminder_list(now=now) == reminders, now
                totals["reminders"] += len(reminders)
                expected = {p: f for p, f in expected.items() if p not in reminders}
            assert fired(rule_id, now=now) == expected, (rule_id, now)
            totals[rule_id] += len(expected)
    # The comparison proves something only if every rule fired, many times.
    assert min(totals.values()) >= 10, totals


# --------------------------------------------------------------------------- local dates


def test_it_uses_each_patients_local_date(clinic):
    # 10:30 UTC on the 20th is 00:30 on the 21st at UTC+14 and 23:30 on the 19th at UTC-11.
    now = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    east, west, london = (
        PatientFactory.create(clinic=clinic, timezone=tz)
        for tz in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/London")
    )
    daily(east, [2, 2, 2, 2, 2, 7], end=date(2026, 11, 21))
    daily(london, [2, 2, 2, 2, 2, 7], end=date(2026, 11, 21))
    daily(west, [2, 2, 2, 2, 2, 7], end=date(2026, 11, 19))

    with time_machine.travel(now, tick=False):
        stats = review.review_rules_run(rules=["NR-PAIN-01"])

    assert stats["NR-PAIN-01"].firing == 2
    fired_on = dict(
        AlertOccurrence.objects.filter(alert__rule="NR-PAIN-01").values_list(
            "alert__patient_id", "fired_on"
        )
    )
    # London's today is the 20th, whose log is no spike; its 21st is still to come.
    assert fired_on == {east.pk: date(2026, 11, 21), west.pk: date(2026, 11, 19)}


def test_it_counts_missed_days_in_the_patients_zone(clinic):
    now = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    east, west = (
        PatientFactory.create(clinic=clinic, timezone=tz)
        for tz in ("Pacific/Kiritimati", "Pacific/Pago_Pago")
    )
    for p in (east, west):
        DailyLog.objects.create(patient=p, date=date(2026, 11, 12), pain=3)
    # East: the 21st, 8 whole days missed; west: the 19th, 6.
    assert set(fired("NR-LOG-01", now=now)) == {east.pk}
    assert set(detectors.missed_logs_reminder_list(now=now)) == {west.pk}


# --------------------------------------------------------------------------- the job


def test_it_raises_review_alerts_without_a_log(patient, clinician):
    daily(patient, [3, 3, 3, 3, 8])
    stats = review.review_rules_run()
    assert stats["NR-PAIN-01"] == review.ReviewRunStats(
        rule="NR-PAIN-01", firing=1, recorded=1, created=1, auto_resolved=0
    )
    alert = Alert.objects.get(rule="NR-PAIN-01")
    assert (alert.patient, alert.severity, alert.status, alert.log) == (
        patient,
        "routine",
        "open",
        None,
    )
    assert (alert.rule_version, alert.title) == (1, "Pain spike")
    assert alert.basis["prior_median"] == 3.0
    occurrence = alert.occurrences.get()
    assert (occurrence.fired_on, occurrence.log) == (TODAY, None)
    assert list(alert.events.values_list("kind", flat=True)) == ["created"]
    # Routine: no email, no in-app notification, no escalation clock.
    assert not alert.notify_due
    assert alert.escalation_due_at is None


def test_it_raises_uncontrolled_pain_as_urgent_with_its_escalation_clock(patient, clinician):
    daily(patient, [{"worst_pain": 9}, {"worst_pain": 10}])
    review.review_rules_run()
    alert = Alert.objects.get(rule="NR-PAIN-03")
    assert alert.severity == "urgent"
    assert alert.notify_due
    assert alert.escalation_due_at == NOW + timedelta(hours=4)
    assert alert.notifications.count() == 1  # the care team's in-app notification


def test_it_is_idempotent_within_a_day_and_records_each_new_day(patient):
    daily(patient, [{"worst_pain": 9}, {"worst_pain": 9}])
    review.review_rules_run()
    second = review.review_rules_run()
    assert second["NR-PAIN-03"].recorded == 0
    alert = Alert.objects.get(rule="NR-PAIN-03")
    assert alert.occurrences.count() == 1
    assert alert.occurrence_count == 1
    # Even with the skip bypassed, alert_raise's unique (alert, fired_on) adds nothing.
    review._record(
        review.REVIEW_RULES_BY_ID["NR-PAIN-03"],
        patient_id=patient.pk,
        finding=fired("NR-PAIN-03")[patient.pk],
    )
    assert alert.occurrences.count() == 1
    assert alert.events.count() == 1

    tomorrow = NOW + timedelta(days=1)
    DailyLog.objects.create(patient=patient, date=TODAY + timedelta(days=1), pain=8, worst_pain=9)
    with time_machine.travel(tomorrow, tick=False):
        assert review.review_rules_run()["NR-PAIN-03"].recorded == 1
    alert.refresh_from_db()
    assert alert.occurrence_count == 2
    assert list(alert.occurrences.values_list("fired_on", flat=True)) == [
        TODAY,
        TODAY + timedelta(days=1),
    ]


def test_it_resolves_a_routine_alert_once_a_log_shows_the_trigger_cleared(patient):
    daily(patient, [1, 1, 1, 0, 0, 1, 1])
    review.review_rules_run()
    alert = Alert.objects.get(rule="NR-PROG-03")

    # Just after the patient's midnight, today has no log yet: that is no news.
    next_midnight = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    with time_machine.travel(next_midnight, tick=False):
        assert review.review_rules_run()["NR-PROG-03"].auto_resolved == 0
        alert.refresh_from_db()
        assert alert.status == "open"

        DailyLog.objects.create(patient=patient, date=TODAY + timedelta(days=1), pain=4)
        stats = review.review_rules_run()

    assert stats["NR-PROG-03"].auto_resolved == 1
    alert.refresh_from_db()
    assert (alert.status, alert.disposition, alert.resolved_at, alert.resolved_by) == (
        "resolved",
        "trigger_cleared",
        next_midnight,
        None,
    )
    event = alert.events.get(kind="auto_resolved")
    assert event.actor is None
    assert event.data == {"disposition": "trigger_cleared"}


def test_it_resolves_an_acknowledged_routine_alert_too(patient, clinician):
    DailyLog.objects.create(patient=patient, date=days_ago(9), pain=3)
    review.review_rules_run()
    alert = Alert.objects.get(rule="NR-LOG-01")
    alert.status = Alert.Status.ACKNOWLEDGED
    alert.save()

    DailyLog.objects.create(patient=patient, date=TODAY, pain=3)
    assert review.review_rules_run()["NR-LOG-01"].auto_resolved == 1
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_it_never_resolves_an_urgent_alert_by_itself(patient):
    daily(patient, [{"worst_pain": 9}, {"worst_pain": 9}])
    review.review_rules_run()
    DailyLog.objects.create(patient=patient, date=TODAY + timedelta(days=1), pain=2, worst_pain=2)
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        assert review.review_rules_run()["NR-PAIN-03"].auto_resolved == 0
    assert Alert.objects.get(rule="NR-PAIN-03").status == "open"


def test_it_leaves_other_rules_and_clinician_resolved_alerts_alone(patient, clinician, clinic):
    other = PatientFactory.create(clinic=clinic)
    daily(patient, [1, 1, 1, 1, 1, 1, 1])
    daily(other, [1, 1, 1, 1, 1, 1, 1])
    review.review_rules_run()
    resolved = Alert.objects.get(patient=other, rule="NR-PROG-03")
    alert_resolve(alert=resolved, actor=clinician.user, disposition="phoned_patient")
    # A red-flag alert (raised from a log) is never the review job's to resolve.
    red = Alert.objects.create(
        patient=patient,
        rule="RF-NP-01",
        rule_version=1,
        severity="routine",
        last_fired_at=NOW,
        opened_at=NOW,
    )
    DailyLog.objects.filter(date=TODAY).update(pain=5)

    stats = review.review_rules_run(rules=["NR-PROG-03"])

    assert stats["NR-PROG-03"].auto_resolved == 1
    assert Alert.objects.get(patient=patient, rule="NR-PROG-03").status == "resolved"
    resolved.refresh_from_db()
    assert (resolved.disposition, resolved.resolved_by) == ("phoned_patient", clinician.user)
    red.refresh_from_db()
    assert red.status == "open"


def test_it_raises_a_new_alert_when_the_trigger_returns(patient):
    daily(patient, [3, 3, 3, 3, 8])
    review.review_rules_run()
    for n, pain in ((1, 3), (2, 9)):
        DailyLog.objects.create(patient=patient, date=TODAY + timedelta(days=n), pain=pain)
        with time_machine.travel(NOW + timedelta(days=n), tick=False):
            review.review_rules_run()
    assert [a.status for a in alerts("NR-PAIN-01")] == ["resolved", "open"]


def test_it_raises_no_new_alert_the_same_day_a_clinician_resolved_one(patient, clinician):
    daily(patient, [1, 1, 1, 1, 1, 1, 1])
    review.review_rules_run()
    alert_resolve(alert=alerts("NR-PROG-03")[0], actor=clinician.user, disposition="referred")

    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert review.review_rules_run(rules=["NR-PROG-03"])["NR-PROG-03"].recorded == 0
    assert [a.status for a in alerts("NR-PROG-03")] == ["resolved"]

    # The next day is a new finding: the trigger still holds, so it is raised again.
    DailyLog.objects.create(patient=patient, date=TODAY + timedelta(days=1), pain=1)
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        review.review_rules_run(rules=["NR-PROG-03"])
    assert [a.status for a in alerts("NR-PROG-03")] == ["resolved", "open"]


def test_it_runs_only_the_rules_asked_for(patient):
    daily(patient, [{"worst_pain": 9, "pain": 1}] * 7)
    assert list(review.review_rules_run(rules=["NR-PROG-03"])) == ["NR-PROG-03"]
    assert list(Alert.objects.values_list("rule", flat=True)) == ["NR-PROG-03"]


def test_it_rejects_a_rule_the_job_does_not_run():
    with pytest.raises(ValueError, match="NR-NOPE-01"):
        review.review_rules_run(rules=["NR-NOPE-01"])


def test_it_runs_from_the_beat_task(patient):
    DailyLog.objects.create(patient=patient, date=days_ago(10), pain=3)
    assert tasks.review_rules_task() == 1
    assert Alert.objects.get().rule == "NR-LOG-01"


def test_it_is_scheduled_by_beat(settings):
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if "review_rules" in e["task"]]
    assert entries == [
        {"task": "rehab.tasks.review_rules_task", "schedule": 3600.0, "options": {"expires": 3000}}
    ]


# --------------------------------------------------------------------------- scale


def _quiet_patients(clinic: Clinic, n: int) -> None:
    """Patients who log every day and fire nothing."""
    for _ in range(n):
        daily(PatientFactory.create(clinic=clinic), [4, 3, 4, 3, 4, 3, 4, 3, 4, 3, 4, 3, 4, 3])


def _queries_of_a_run() -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        stats = review.review_rules_run()
    assert all(s.firing == 0 for s in stats.values())
    # The resolving UPDATE runs in a transaction: a savepoint inside the test's own.
    return [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_it_runs_in_a_constant_number_of_queries(clinic, django_assert_max_num_queries):
    _quiet_patients(clinic, 5)
    few = _queries_of_a_run()
    _quiet_patients(clinic, 45)
    with django_assert_max_num_queries(5 * len(REVIEW_DETECTORS)):
        many = _queries_of_a_run()
    # One detection query and one resolving UPDATE per rule, whatever the cohort, one more
    # detection (earlier days with changed logs) for the rules that read a log, and one
    # more UPDATE for the rules a red flag displaces (NR-PROG-03).
    assert (
        len(many)
        == len(few)
        == (
            2 * len(REVIEW_DETECTORS)
            + len(CHANGED_DAY_DETECTORS)
            + len(review.RESOLVED_BESIDE_RED_FLAGS)
        )
    )


# --------------------------------------------------------------------------- concurrency


@pytest.mark.django_db(transaction=True)
def test_it_doubles_nothing_when_two_runs_race(monkeypatch):
    clinic = Clinic.objects.create(name="Race Clinic")
    spiking = [PatientFactory.create(clinic=clinic) for _ in range(3)]
    for p in spiking:
        daily(p, [3, 3, 3, 3, 8])
    cleared = PatientFactory.create(clinic=clinic)
    daily(cleared, [3, 3, 3, 3, 3])
    stale = Alert.objects.create(
        patient=cleared,
        rule="NR-PAIN-01",
        rule_version=1,
        severity="routine",
        last_fired_at=NOW,
        opened_at=NOW,
    )

    # Both runs finish detecting before either writes: the worst interleaving.
    barrier = threading.Barrier(2, timeout=10)
    detect = REVIEW_DETECTORS["NR-PAIN-01"]

    def detect_then_wait(*, now: datetime) -> dict[UUID, oracle.ReviewFinding]:
        found = detect(now=now)
        barrier.wait()
        return found

    monkeypatch.setitem(REVIEW_DETECTORS, "NR-PAIN-01", detect_then_wait)
    results: list[review.ReviewRunStats] = []
    errors: list[BaseException] = []

    def run() -> None:
        # Time is frozen for every thread by the autouse fixture.
        try:
            results.append(review.review_rules_run(rules=["NR-PAIN-01"])["NR-PAIN-01"])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(r.created for r in results) == 3
    assert sum(r.auto_resolved for r in results) == 1
    for p in spiking:
        alert = Alert.objects.get(patient=p, rule="NR-PAIN-01")
        assert alert.occurrences.count() == 1
        assert alert.events.count() == 1
    assert AlertEvent.objects.filter(alert=stale, kind="auto_resolved").count() == 1


# --------------------------------------------------------------------------- NR-POST-01


def _injection(patient: Patient, on: date, kind: str = "prolotherapy") -> None:
    import uuid

    from rehab.models.record import Intervention

    Intervention.objects.create(patient=patient, date=on, kind=kind, course_id=uuid.uuid4())


@pytest.mark.parametrize(
    ("days_after", "today_pain", "fires"),
    [
        (4, 6, True),  # day 4: more than 72 hours after
        (3, 6, False),  # day 3 may be under 72 hours: a short-lived flare is expected
        (42, 6, True),
        (43, 6, False),
        (10, 5, False),  # equal to the pre-injection mean is not above it
    ],
)
def test_it_flags_pain_above_the_pre_injection_mean(patient, days_after, today_pain, fires):
    injected = days_ago(days_after)
    for i in range(1, 8):  # the week before: mean 5
        DailyLog.objects.create(patient=patient, date=injected - timedelta(days=i), pain=5)
    _injection(patient, injected)
    DailyLog.objects.create(patient=patient, date=TODAY, pain=today_pain)
    found = fired("NR-POST-01")
    assert (patient.pk in found) is fires
    if fires:
        basis = found[patient.pk].basis
        assert basis["days_after"] == days_after
        assert basis["intervention"] == {"kind": "prolotherapy", "date": injected.isoformat()}


def test_it_ignores_procedures_that_are_not_injections(patient):
    injected = days_ago(10)
    for i in range(1, 8):
        DailyLog.objects.create(patient=patient, date=injected - timedelta(days=i), pain=2)
    _injection(patient, injected, kind="surgery")
    DailyLog.objects.create(patient=patient, date=TODAY, pain=8)
    assert fired("NR-POST-01") == {}


def test_it_agrees_with_the_oracle_after_injections(clinician):
    from rehab.safety import InterventionFact

    rng = random.Random(11)
    cohort = []
    for _ in range(12):
        patient = PatientFactory.create(clinic=clinician.clinic, user=UserFactory.create())
        injected = days_ago(rng.randint(1, 50))
        for day in range(60):
            if rng.random() < 0.85:
                DailyLog.objects.create(patient=patient, date=days_ago(day), pain=rng.randint(2, 8))
        _injection(patient, injected, kind=rng.choice(["injection", "prolotherapy"]))
        cohort.append((patient, injected))
    found = fired("NR-POST-01")
    for patient, _ in cohort:
        series = [
            LogFacts(date=d, pain=p)
            for d, p in DailyLog.objects.filter(patient=patient)
            .order_by("date")
            .values_list("date", "pain")
        ]
        from rehab.models.record import Intervention

        facts = [
            InterventionFact(date=i.date, kind=i.kind)
            for i in Intervention.objects.filter(patient=patient)
        ]
        expected = oracle.post_injection(series, today=TODAY, interventions=facts)
        assert (patient.pk in found) == (expected is not None), patient.pk
        if expected is not None:
            assert found[patient.pk].basis == expected.basis


# --------------------------------------------------------------------------- earlier days


def _logged_at(when: datetime, patient: Patient, day: date, **fields: Any) -> DailyLog:
    with time_machine.travel(when, tick=False):
        return DailyLog.objects.create(patient=patient, date=day, **{"pain": 3, **fields})


def test_it_judges_a_log_made_after_the_last_run_before_local_midnight(patient):
    # Europe/London in November is UTC: the log comes at 23:50, after the 23:00 run.
    evening = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
    for n in range(2, 5):
        _logged_at(evening - timedelta(days=n), patient, days_ago(n), pain=3)
    _logged_at(evening - timedelta(days=1), patient, days_ago(1), pain=3, worst_pain=9)
    with time_machine.travel(evening, tick=False):
        assert review.review_rules_run()["NR-PAIN-01"].firing == 0
    _logged_at(evening + timedelta(minutes=50), patient, TODAY, pain=8, worst_pain=9)

    after_midnight = datetime(2026, 11, 21, 0, 10, tzinfo=UTC)
    with time_machine.travel(after_midnight, tick=False):
        first = review.review_rules_run()
        second = review.review_rules_run()

    spike = Alert.objects.get(rule="NR-PAIN-01")
    assert list(spike.occurrences.values_list("fired_on", flat=True)) == [TODAY]
    assert spike.basis["value"] == 8
    uncontrolled = Alert.objects.get(rule="NR-PAIN-03")
    assert uncontrolled.severity == "urgent"
    assert uncontrolled.basis["worst_pain"] == [
        {"date": days_ago(1).isoformat(), "worst_pain": 9},
        {"date": TODAY.isoformat(), "worst_pain": 9},
    ]
    assert (first["NR-PAIN-01"].earlier_days, first["NR-PAIN-01"].created) == (1, 1)
    # The second run doubles nothing.
    assert (second["NR-PAIN-01"].recorded, second["NR-PAIN-03"].recorded) == (0, 0)
    assert AlertOccurrence.objects.count() == 2
    assert AlertEvent.objects.count() == 2


def test_it_judges_a_backfilled_day(patient):
    for n in (4, 5, 6, 7):
        _logged_at(NOW - timedelta(days=n), patient, days_ago(n), pain=3)
    _logged_at(NOW - timedelta(days=3), patient, days_ago(3), pain=3, worst_pain=9)
    # Days 2 and 1 come in today, after a flat battery: the first is a spike, and with
    # day 3 they make two days of worst pain >= 9.
    _logged_at(NOW, patient, days_ago(2), pain=8, worst_pain=10)
    _logged_at(NOW, patient, days_ago(1), pain=3)

    stats = review.review_rules_run()

    assert stats["NR-PAIN-01"].firing == 0  # nothing fires on today
    assert Alert.objects.get(rule="NR-PAIN-01").occurrences.get().fired_on == days_ago(2)
    assert Alert.objects.get(rule="NR-PAIN-03").occurrences.get().fired_on == days_ago(2)


def test_it_judges_an_edit_to_an_earlier_day(patient):
    for n in range(1, 7):
        _logged_at(NOW - timedelta(days=n), patient, days_ago(n), pain=3)
    review.review_rules_run()
    assert not Alert.objects.exists()
    with time_machine.travel(NOW, tick=False):
        DailyLog.objects.filter(patient=patient, date=days_ago(1)).update(pain=9, updated_at=NOW)
    review.review_rules_run()
    assert Alert.objects.get(rule="NR-PAIN-01").occurrences.get().fired_on == days_ago(1)


def test_it_leaves_earlier_days_alone_once_judged_or_out_of_reach(patient, clinician):
    # A spike logged two days ago, at the time: judged then, not now.
    for n in range(3, 8):
        _logged_at(NOW - timedelta(days=n), patient, days_ago(n), pain=3)
    _logged_at(NOW - timedelta(days=2), patient, days_ago(2), pain=9)
    assert review.review_rules_run()["NR-PAIN-01"].earlier_days == 0
    assert not Alert.objects.exists()

    # A day a clinician has dealt with is not raised again while its log is recent.
    _logged_at(NOW, patient, days_ago(1), pain=9)
    review.review_rules_run()
    alert = Alert.objects.get(rule="NR-PAIN-01")
    alert_resolve(alert=alert, actor=clinician.user, disposition="phoned_patient")
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert review.review_rules_run()["NR-PAIN-01"].recorded == 0
    assert Alert.objects.filter(rule="NR-PAIN-01").count() == 1


def test_it_judges_no_day_before_the_backfill_window(patient):
    first = review.BACKFILL_DAYS + 1
    for n in range(first + 1, first + 5):
        _logged_at(NOW, patient, days_ago(n), pain=3)
    # Only a clinician's data fix could change a log this old; the job stays in bounds.
    _logged_at(NOW, patient, days_ago(first), pain=9)
    assert review.review_rules_run()["NR-PAIN-01"].earlier_days == 0
    _logged_at(NOW, patient, days_ago(first - 1), pain=9)
    assert review.review_rules_run()["NR-PAIN-01"].earlier_days == 1


def test_it_judges_a_late_log_after_an_injection(patient):
    injected = days_ago(10)
    for i in range(1, 8):
        _logged_at(NOW - timedelta(days=30), patient, injected - timedelta(days=i), pain=4)
    _injection(patient, injected)
    _logged_at(NOW, patient, days_ago(1), pain=7)
    review.review_rules_run()
    occurrence = Alert.objects.get(rule="NR-POST-01").occurrences.get()
    assert occurrence.fired_on == days_ago(1)
    assert occurrence.basis["days_after"] == 9


# --------------------------------------------------------------------------- NR-LOG-01 reminders


def test_it_reminds_a_patient_once_per_missed_log_streak(patient, clinic, run_published):
    from django.core import mail

    from rehab.models import MissedLogReminder

    DailyLog.objects.create(patient=patient, date=days_ago(4), pain=3)  # 3 days missed
    regular = PatientFactory.create(clinic=clinic)
    for n in range(-4, 2):  # logs every day, through the days this test travels to
        DailyLog.objects.create(patient=regular, date=days_ago(n), pain=3)

    assert tasks.missed_log_reminders_task() == 1
    assert [m.to for m in mail.outbox] == [["pat@example.com"]]
    assert "3 days" in mail.outbox[0].body
    # A second beat, and the next days of the same streak, send nothing more.
    assert review.missed_log_reminders_send() == 0
    for n in (1, 2, 3):
        with time_machine.travel(NOW + timedelta(days=n), tick=False):
            assert review.missed_log_reminders_send() == 0
    assert len(mail.outbox) == 1
    reminder = MissedLogReminder.objects.get()
    assert (reminder.patient, reminder.streak_from) == (patient, days_ago(3))
    assert reminder.sent_at == NOW

    # The patient logs again, then goes quiet: a new streak, a new reminder.
    DailyLog.objects.create(patient=patient, date=TODAY, pain=3)
    with time_machine.travel(NOW + timedelta(days=4), tick=False):
        assert review.missed_log_reminders_send() == 1
    assert len(mail.outbox) == 2


def test_it_tries_a_failed_reminder_again_at_the_next_run(patient, settings, run_published):
    from django.core import mail

    from rehab.models import MissedLogReminder

    DailyLog.objects.create(patient=patient, date=days_ago(5), pain=3)

    settings.EMAIL_BACKEND = "tests.rehab.test_review_jobs.DownEmailBackend"
    assert review.missed_log_reminders_send() == 1  # handed over, and failed
    assert MissedLogReminder.objects.get().sent_at is None
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert review.missed_log_reminders_send() == 1
    assert len(mail.outbox) == 1
    assert MissedLogReminder.objects.get().sent_at == NOW + timedelta(hours=1)
    # Sent: the next run finds nothing owed.
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        assert review.missed_log_reminders_send() == 0


class DownEmailBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, email_messages: Any) -> int:
        raise OSError("smtp down")


def test_it_schedules_the_reminders_daily(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["safety-missed-log-reminders"]
    assert entry["task"] == "rehab.tasks.missed_log_reminders_task"
    assert entry["schedule"] == 3600.0  # hourly: each patient's own morning


def test_it_reminds_a_patient_in_their_own_day_not_at_night(patient, clinic, run_published):
    from django.core import mail

    night = PatientFactory.create(clinic=clinic, timezone="Pacific/Auckland")  # 01:00 there
    for who in (patient, night):
        DailyLog.objects.create(patient=who, date=days_ago(4), pain=3)
    # 12:00 in London; in Auckland it is already 1 a.m. of the next day (one more missed).
    assert review.missed_log_reminders_send() == 1
    assert [m.to for m in mail.outbox] == [["pat@example.com"]]
    with time_machine.travel(NOW + timedelta(hours=7), tick=False):  # 08:00 in Auckland
        assert review.missed_log_reminders_send() == 0
    with time_machine.travel(NOW + timedelta(hours=8), tick=False):  # 09:00 in Auckland
        assert review.missed_log_reminders_send() == 1
    assert [m.to for m in mail.outbox][-1] == [night.email]


def test_it_judges_each_changed_day_against_its_own_previous_logs(patient):
    for n in range(5, 9):
        _logged_at(NOW - timedelta(days=n), patient, days_ago(n), pain=3)
    for n in (4, 3, 2):  # backfilled today, each a spike on the logs before it
        _logged_at(NOW, patient, days_ago(n), pain=8)
    review.review_rules_run(rules=["NR-PAIN-01"])
    occurrences = Alert.objects.get(rule="NR-PAIN-01").occurrences.order_by("fired_on")
    assert [(o.fired_on, o.basis["prior_dates"]) for o in occurrences] == [
        (days_ago(n), [days_ago(d).isoformat() for d in range(8, n, -1)]) for n in (4, 3, 2)
    ]


# --------------------------------------------------------------------------- bulk recording


def _backfilled_spikes(patient: Patient, days: tuple[int, ...] = (3, 2)) -> None:
    """Four quiet logs long since, then spikes on `days` backfilled today (NR-PAIN-01)."""
    for n in range(5, 9):
        _logged_at(NOW - timedelta(days=n), patient, days_ago(n), pain=3)
    for n in days:
        _logged_at(NOW, patient, days_ago(n), pain=8)


def test_it_records_routine_firings_in_the_same_statements_for_3_or_30_patients(clinic):
    def statements(n: int) -> int:
        for _ in range(n):
            _backfilled_spikes(PatientFactory.create(clinic=clinic))
        with CaptureQueriesContext(connection) as ctx:
            stats = review.review_rules_run(rules=["NR-PAIN-01"])
        assert stats["NR-PAIN-01"].created == n
        return len(ctx.captured_queries)

    assert statements(3) == statements(30)
    assert AlertOccurrence.objects.filter(alert__rule="NR-PAIN-01").count() == 2 * 33


def test_it_records_several_days_of_one_patient_as_one_alert(patient):
    _backfilled_spikes(patient, days=(4, 3, 2))
    review.review_rules_run(rules=["NR-PAIN-01"])
    alert = Alert.objects.get(rule="NR-PAIN-01")
    assert alert.occurrence_count == 3
    assert alert.basis == alert.occurrences.get(fired_on=days_ago(4)).basis  # the earliest
    kinds = list(alert.events.order_by("id").values_list("kind", flat=True))
    assert kinds == ["created", "refired", "refired"]


def test_it_reopens_an_acknowledged_routine_alert_on_a_new_day(patient, clinician):
    _backfilled_spikes(patient, days=(3,))
    review.review_rules_run(rules=["NR-PAIN-01"])
    alert = Alert.objects.get(rule="NR-PAIN-01")
    Alert.objects.filter(pk=alert.pk).update(
        status=Alert.Status.ACKNOWLEDGED, acknowledged_at=NOW, acknowledged_by=clinician.user
    )
    _logged_at(NOW, patient, days_ago(2), pain=9)

    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        stats = review.review_rules_run(rules=["NR-PAIN-01"])

    assert (stats["NR-PAIN-01"].recorded, stats["NR-PAIN-01"].created) == (1, 0)
    alert.refresh_from_db()
    assert (alert.status, alert.occurrence_count) == ("open", 2)
    assert alert.opened_at == NOW + timedelta(hours=1)
    assert alert.events.order_by("-id").values_list("kind", flat=True)[0] == "reopened"
    # A second run (or a second beat) finds it all recorded.
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        assert review.review_rules_run(rules=["NR-PAIN-01"])["NR-PAIN-01"].recorded == 0
    alert.refresh_from_db()
    assert alert.occurrence_count == 2
