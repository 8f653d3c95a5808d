"""`manage.py backtest_rules`: what the current rules would have raised, writing nothing."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from patients.models import Patient
from programs import services as program_services
from programs.models import AssignedExercise, ExerciseLog
from rehab.management.commands import backtest_rules
from rehab.models import Alert, AlertEvent, AlertOccurrence, DailyLog, Notification
from rehab.safety import RULES
from rehab.selectors.review import REVIEW_DETECTORS
from rehab.services import review
from tests.factories import PatientFactory
from tests.programs.factories import make_template

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
SADDLE = {"saddle_numbness": "new_or_worse"}


@pytest.fixture(autouse=True)
def _frozen_time() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def day(n: int) -> date:
    """The nth of November 2026."""
    return date(2026, 11, n)


@pytest.fixture
def cohort(patient: Patient, other_patient: Patient) -> None:
    """`patient` logs 11-20 November: saddle numbness on the 13th, 14th and 17th (two
    episodes), worst pain 9 on the 19th and 20th (NR-PAIN-03 on the 20th). `other_patient`
    signed up on the 11th and never logged (NR-LOG-01 from the 18th: 7 days missed)."""
    for n in range(11, 21):
        DailyLog.objects.create(
            patient=patient,
            date=day(n),
            pain=3,
            worst_pain=9 if n >= 19 else 4,
            safety=SADDLE if n in (13, 14, 17) else {},
        )
    assert other_patient.user is not None
    other_patient.user.date_joined = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)
    other_patient.user.save()


def run(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("backtest_rules", *args, "--format", "json", stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def fired(result: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """rule -> (firings, episodes, patients), for the rules that fired."""
    return {
        r["rule"]: (r["firings"], r["episodes"], r["patients"])
        for r in result["rules"]
        if r["firings"]
    }


def test_it_counts_firings_episodes_and_patients(cohort):
    result = run()
    assert fired(result) == {
        "RF-CES-01": (3, 2, 1),
        "NR-PAIN-03": (1, 1, 1),
        "NR-LOG-01": (3, 1, 1),
    }
    assert result["severities"] == {
        "emergency": {"firings": 3, "episodes": 2},
        "urgent": {"firings": 1, "episodes": 1},
        "routine": {"firings": 3, "episodes": 1},
    }
    assert result["logs_evaluated"] == 10
    # The patient's 10 days, and the other patient's 10 days since signing up.
    assert result["patient_days"] == 20
    rules = {r["rule"]: r for r in result["rules"]}
    assert rules["RF-CES-01"]["severity"] == "emergency"
    assert rules["RF-CES-01"]["version"] == 1
    assert rules["RF-CES-01"]["kind"] == "red_flag"
    assert rules["NR-LOG-01"]["kind"] == "review"
    # Every replayable rule is listed, fired or not: red flags first, then review rules.
    assert [r["rule"] for r in result["rules"]] == [r.id for r in RULES] + list(
        backtest_rules.REVIEW_REPLAYS
    )


def test_it_filters_by_rule(cohort):
    result = run("--rule", "RF-CES-01", "nr-log-01")
    assert [r["rule"] for r in result["rules"]] == ["RF-CES-01", "NR-LOG-01"]
    assert fired(result) == {"RF-CES-01": (3, 2, 1), "NR-LOG-01": (3, 1, 1)}
    assert result["patient_days"] == 20
    only_red = run("--rule", "RF-CES-01")
    assert only_red["patient_days"] == 0  # no review rule asked for: no day replayed


def test_it_filters_by_date(cohort):
    since = run("--since", "2026-11-15")
    # The 17th only; the 13th and 14th are history, not replayed.
    assert fired(since)["RF-CES-01"] == (1, 1, 1)
    assert since["logs_evaluated"] == 6
    assert since["since"] == "2026-11-15"

    until = run("--until", "2026-11-14")
    assert fired(until) == {"RF-CES-01": (2, 1, 1)}
    assert until["logs_evaluated"] == 4


def test_it_replays_red_flags_with_their_history(patient):
    # RF-NP-01, constant night pain on 3 of the last 7 logged nights, needs the history
    # the request path lacks, and holds back while another red flag is open. Constant
    # 11th-14th, thoracic pain (RF-TH-01) on the 11th and 12th: suppressed on the 13th
    # (RF-TH-01 open from the 12th), fires from the 14th to the 18th (3 of the 12th-18th).
    for n, sleep in enumerate(["constant_any_position"] * 4 + ["undisturbed"] * 5, start=11):
        DailyLog.objects.create(
            patient=patient,
            date=day(n),
            pain=4,
            sleep=sleep,
            safety={"thoracic_or_band_pain": True} if n <= 12 else {},
        )
    assert fired(run("--rule", "RF-NP-01", "RF-TH-01")) == {
        "RF-TH-01": (2, 1, 1),
        "RF-NP-01": (5, 1, 1),
    }
    # Asked for alone, RF-NP-01 still sees RF-TH-01 open: the counts of the full run.
    assert fired(run("--rule", "RF-NP-01")) == {"RF-NP-01": (5, 1, 1)}
    assert fired(run())["RF-NP-01"] == (5, 1, 1)


def test_it_uses_the_back_pain_baseline_known_on_the_logs_date(patient):
    # RF-CA-02: back pain >= baseline + 2 on 3 consecutive logs. On the 6th the baseline
    # is the mean of the 1st-6th (5.5), not of the whole first week (4.71 with the 0 of
    # the 7th, logged later): no firing yet. From the 8th the week is complete.
    patient.history_cancer = True
    patient.save()
    for n, back in enumerate([4, 4, 4, 7, 7, 7, 0, 7, 7, 7], start=1):
        DailyLog.objects.create(patient=patient, date=day(n), pain=4, back_pain=back)
    assert fired(run("--rule", "RF-CA-02")) == {"RF-CA-02": (1, 1, 1)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rule", "XX-01"], "Unknown rule 'XX-01'"),
        (["--rule", "RF-META-01"], "about alerts, not logs"),
        (["--since", "2026-13-01"], "--since '2026-13-01' is not a date"),
        (["--until", "yesterday"], "--until 'yesterday' is not a date"),
        (["--since", "2026-11-20", "--until", "2026-11-19"], "is after --until"),
        (["--format", "xml"], "invalid choice"),
    ],
)
def test_it_rejects_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("backtest_rules", *args, stdout=StringIO())


def test_it_prints_a_readable_table(cohort):
    out = StringIO()
    call_command("backtest_rules", "--since", "2026-11-11", stdout=out)
    text = out.getvalue()
    assert "Backtest of the current rule definitions, 2026-11-11 to each patient's local" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["rule"] == ["version", "severity", "firings", "episodes", "patients"]
    assert rows["RF-CES-01"] == ["1", "emergency", "3", "2", "1"]
    assert rows["NR-LOG-01"] == ["1", "routine", "3", "1", "1"]
    assert rows["emergency"] == ["3", "/", "2"]


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Alert, AlertOccurrence, AlertEvent, DailyLog, Notification, Patient)
    }


def test_it_writes_nothing(cohort):
    before = _counts()
    evaluated = list(DailyLog.objects.values_list("evaluated_at", flat=True))
    run()
    assert _counts() == before
    assert list(DailyLog.objects.values_list("evaluated_at", flat=True)) == evaluated
    # And the connection can write again afterwards: the read-only mode did not leak.
    DailyLog.objects.filter(date=day(11)).update(notes="still writable")


def test_it_replays_in_a_read_only_transaction(cohort, monkeypatch):
    def write(self: Any) -> Any:
        DailyLog.objects.update(pain=0)

    monkeypatch.setattr(backtest_rules.Replay, "run", write)
    with pytest.raises(DatabaseError, match="read-only transaction"):
        call_command("backtest_rules", stdout=StringIO())
    assert not DailyLog.objects.filter(pain=0).exists()


def _queries_of_a_backtest() -> int:
    with CaptureQueriesContext(connection) as ctx:
        run()
    return len(ctx.captured_queries)


def test_it_reads_in_a_fixed_number_of_queries(cohort, clinic):
    few = _queries_of_a_backtest()
    for _ in range(10):
        p = PatientFactory.create(clinic=clinic)
        for n in range(1, 21):
            DailyLog.objects.create(patient=p, date=day(n), pain=3)
    # The read-only switch, the patients, the log cursor, the programs and the exercise
    # sessions: nothing per log, per patient or per patient-day.
    assert _queries_of_a_backtest() == few <= 12


# --------------------------------------------------------------------------- vs the job


def test_it_counts_what_the_review_job_raises_day_by_day(clinic, clinician):
    """Run the real job at the end of every day of a month, then compare: for the routine
    rules each alert is an episode and each occurrence a firing; NR-PAIN-03 (urgent) stays
    open, so only its firings compare."""
    rng = random.Random(6)
    first = date(2026, 10, 21)
    patients = []
    for i in range(8):
        p = PatientFactory.create(clinic=clinic)
        assert p.user is not None
        p.user.date_joined = datetime(2026, 10, 21, 8, 0, tzinfo=UTC)
        p.user.save()
        patients.append(p)
        for n in range(31):
            # Patient 7 stops logging for the last 10 days (NR-LOG-01).
            if rng.random() < 0.12 or (i == 7 and n > 20):
                continue
            pain = rng.choice([0, 1, 1, 1]) if i % 4 == 0 else rng.choice([2, 3, 3, 4, 8, 9])
            if i == 1:  # the patient on a program: better, then worse again (NR-PROG-01)
                pain = 8 if n < 7 else 5 if n < 21 else 7
            DailyLog.objects.create(
                patient=p,
                date=first + timedelta(days=n),
                pain=pain,
                worst_pain=min(10, pain + rng.randint(0, 2)),
            )
    # An injection in the middle of the month for a patient with swinging pain (NR-POST-01).
    import uuid

    from rehab.models.record import Intervention

    Intervention.objects.create(
        patient=patients[2],
        date=first + timedelta(days=12),
        kind="prolotherapy",
        course_id=uuid.uuid4(),
    )
    # One patient on a program, half-heartedly exercising (NR-ADH-01), and long enough
    # on it for NR-PROG-01.
    template = make_template(clinic=clinic, phases=[(12, [4])])
    assignment = program_services.assignment_create(
        patient=patients[1],
        template=template,
        by=clinician,
        start_date=date(2026, 9, 1),
        today=date(2026, 9, 1),
    )
    exercise = AssignedExercise.objects.get(phase__assignment=assignment)
    # Sessions done per program week (4 prescribed): under half in weeks 6-7 and 9-10.
    done = [4, 4, 4, 4, 4, 4, 1, 1, 3, 1, 1, 0, 4]
    for n in (7 * week + k for week, count in enumerate(done) for k in range(count)):
        ExerciseLog.objects.create(
            patient=patients[1],
            assigned_exercise=exercise,
            date=date(2026, 9, 1) + timedelta(days=n),
            sets_done=3,
            pain_during=2,
            difficulty=3,
        )

    end = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)  # London's evening: each day complete
    with time_machine.travel(end, tick=False):
        replayed = {r["rule"]: r for r in run("--since", first.isoformat())["rules"]}
    for n in range(31):
        with time_machine.travel(end - timedelta(days=30 - n), tick=False):
            review.review_rules_run()

    from rehab.management.commands.backtest_rules import NOT_REPLAYABLE

    replayable = [rule_id for rule_id in REVIEW_DETECTORS if rule_id not in NOT_REPLAYABLE]
    checked = 0
    for rule_id in replayable:
        occurrences = AlertOccurrence.objects.filter(alert__rule=rule_id).count()
        assert replayed[rule_id]["firings"] == occurrences, rule_id
        if rule_id != "NR-PAIN-03":
            assert replayed[rule_id]["episodes"] == Alert.objects.filter(rule=rule_id).count()
        checked += bool(occurrences)
    assert checked == len(replayable)  # every rule fired, or this proves little
    # By hand: program days 56-62 (weeks 6-7 under half) and 77-80 (weeks 9-10).
    assert replayed["NR-ADH-01"]["firings"] == 11


EVENTS: list[dict[str, Any]] = [
    {"saddle_numbness": "new_or_worse"},
    {"bladder_change": "new_or_worse"},
    {"both_legs": "unchanged_assessed"},  # no mark holds: counts as new
    {"weakness": "one_leg_new"},
    {"numbness_spread": "arms_or_trunk"},
    {"temperature_c": 38.2},
    {"thoracic_or_band_pain": True},
    {"injury": "minor", "pain_new_or_rapidly_worse": True},
    {"injury": "minor"},
    {"unexplained_weight_loss": True},
]


def test_it_counts_what_log_evaluation_raises(clinic):
    """Store and evaluate a month of logs one by one, as the worker does, then compare the
    replay's firings with the occurrences recorded (red flags are never auto-resolved, so
    episodes do not compare). The replay builds its context in bulk; this holds it to
    `full_context`: previous logs, the back-pain baseline as it stood, open rules."""
    from rehab.services import safety

    rng = random.Random(14)
    histories: list[dict[str, Any]] = [
        {},
        {"history_cancer": True},
        {"history_osteoporosis": True},
        {"date_of_birth": date(1950, 1, 1)},
        {},
    ]
    for i, history in enumerate(histories):
        p = PatientFactory.create(clinic=clinic, **history)
        night_pain_only = i == len(histories) - 1
        for n in range(30):
            safety_answers: dict[str, Any] = {}
            if not night_pain_only and rng.random() < 0.2:
                for event in rng.sample(EVENTS, rng.randint(1, 2)):
                    safety_answers |= event
            log = DailyLog.objects.create(
                patient=p,
                date=date(2026, 10, 22) + timedelta(days=n),
                pain=rng.randint(2, 8),
                back_pain=rng.randint(1, 9),
                leg_pain_side=rng.choice(["left", "left", "left", "both"])
                if not night_pain_only
                else "left",
                sleep=rng.choice(["undisturbed", "disturbed", "constant_any_position"])
                if night_pain_only
                else "disturbed",
                safety=safety_answers,
            )
            safety.log_evaluate(log_id=log.pk)

    replayed = {r["rule"]: r["firings"] for r in run("--rule", *(r.id for r in RULES))["rules"]}
    recorded = {
        rule.id: AlertOccurrence.objects.filter(alert__rule=rule.id).count() for rule in RULES
    }
    assert replayed == recorded
    assert sum(1 for n in recorded.values() if n) >= 10, recorded
    # The history-only branches were among them: night pain, back pain above baseline.
    assert recorded["RF-NP-01"], recorded
    assert any(
        "back_pain_run" in basis
        for basis in AlertOccurrence.objects.filter(alert__rule="RF-CA-02").values_list(
            "basis", flat=True
        )
    )


def test_it_replays_the_post_injection_rule(patient):
    import uuid

    from rehab.models.record import Intervention

    injected = date(2026, 11, 1)
    for i in range(1, 8):
        DailyLog.objects.create(patient=patient, date=injected - timedelta(days=i), pain=4)
    Intervention.objects.create(
        patient=patient, date=injected, kind="injection", course_id=uuid.uuid4()
    )
    # Days 3..6 after: day 3 is within 72 hours; days 4 and 5 above the mean, day 6 not.
    for offset, pain in ((3, 7), (4, 6), (5, 6), (6, 4)):
        DailyLog.objects.create(patient=patient, date=injected + timedelta(days=offset), pain=pain)
    with time_machine.travel(datetime(2026, 11, 20, 22, 0, tzinfo=UTC), tick=False):
        result = run("--rule", "NR-POST-01")
    assert fired(result) == {"NR-POST-01": (2, 1, 1)}


def test_it_shows_what_the_amended_rules_would_have_raised(patient):
    """A fall after spine surgery (RF-FX-04), a fall with numbness (RF-FX-03) and a fever
    without pain while immunosuppressed (RF-INF-03)."""
    patient.history_previous_spine_surgery = True
    patient.history_immunosuppressed = True
    patient.save()
    answers = {
        12: {"injury": "minor"},
        13: {"injury": "minor", "numbness_spread": "one_leg"},
        14: {"fever": True},
    }
    for n in range(11, 16):
        DailyLog.objects.create(
            patient=patient, date=day(n), pain=4 if n != 14 else 0, safety=answers.get(n, {})
        )

    result = run("--rule", "RF-FX-03", "RF-FX-04", "RF-INF-03")
    assert fired(result) == {
        "RF-FX-03": (1, 1, 1),
        "RF-FX-04": (2, 1, 1),
        "RF-INF-03": (1, 1, 1),
    }


@pytest.mark.parametrize(("surgery", "recovered"), [(False, (4, 1, 1)), (True, None)])
def test_nr_prog_03_stays_silent_in_the_replay_while_a_red_flag_is_open(
    patient, surgery, recovered
):
    # Pain <= 1 from the 11th (NR-PROG-03 from the 17th); a minor fall logged every day
    # from the 16th: after spine surgery that is RF-FX-04, urgent, open through the 20th.
    patient.history_previous_spine_surgery = surgery
    patient.save()
    for n in range(11, 21):
        DailyLog.objects.create(
            patient=patient, date=day(n), pain=1, safety={"injury": "minor"} if n >= 16 else {}
        )

    assert fired(run("--rule", "NR-PROG-03")).get("NR-PROG-03") == recovered
