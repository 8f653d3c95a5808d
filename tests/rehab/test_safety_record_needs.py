"""`record_needs`, `PREVIOUS_LOGS` and `EarlierLog`: what of the record and of the
patient's earlier logs a log's evaluation can read. Pure: no database.

The request path leaves out of the context what `record_needs` says a log does not need,
and the background job fetches only the PREVIOUS_LOGS latest logs before the one it
evaluates, and of those only the columns of `EarlierLog`, so these tests are what makes
that safe: the evaluation without those facts must be the evaluation with them, for any
log, any record and any history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rehab.safety import (
    EARLIER_LOG_FIELDS,
    PREVIOUS_LOGS,
    RULES,
    EarlierLog,
    History,
    InterventionFact,
    LogFacts,
    MarkFact,
    PatientContext,
    RecordNeeds,
    SafetyAnswers,
    evaluate,
    record_needs,
)
from rehab.safety.rules import (
    AllOf,
    AnyOf,
    BackPainRunAboveBaseline,
    Not,
    Predicate,
    SleepOnLogs,
)
from rehab.safety.vocab import (
    BOOLEAN_FIELDS,
    CHOICE_FIELDS,
    HISTORY_FLAGS,
    INTERVENTION_KINDS,
    LEG_PAIN_SIDES,
    MARKABLE_SYMPTOMS,
    SLEEP_ANSWERS,
    TEMPERATURE_MAX_C,
    TEMPERATURE_MIN_C,
    LegPainSide,
    Sleep,
)

DAY = dt.date(2026, 11, 20)


def _near(low: int, high: int) -> st.SearchStrategy[dt.date]:
    return st.integers(low, high).map(lambda days: DAY + dt.timedelta(days=days))


_temperatures = st.floats(TEMPERATURE_MIN_C, TEMPERATURE_MAX_C) | st.sampled_from(
    [37.9, 37.99, 38.0, 38.01]
)
_answers = st.fixed_dictionaries(
    {},
    optional={
        **{name: st.none() | st.sampled_from(values) for name, values in CHOICE_FIELDS.items()},
        **{name: st.none() | st.booleans() for name in BOOLEAN_FIELDS},
        "temperature_c": st.none() | _temperatures,
    },
).map(SafetyAnswers.from_mapping)
_scores = st.none() | st.integers(0, 10)


def _logs(dates: st.SearchStrategy[dt.date]) -> st.SearchStrategy[LogFacts]:
    return st.builds(
        LogFacts,
        date=dates,
        pain=st.integers(0, 10),
        leg_pain=_scores,
        back_pain=_scores,
        worst_pain=_scores,
        leg_pain_side=st.none() | st.sampled_from(LEG_PAIN_SIDES),
        function=_scores,
        sleep=st.none() | st.sampled_from(SLEEP_ANSWERS),
        safety=_answers,
    )


_interventions = st.builds(
    InterventionFact, date=_near(-60, 5), kind=st.sampled_from(INTERVENTION_KINDS)
)
_marks = st.builds(MarkFact, symptom=st.sampled_from(MARKABLE_SYMPTOMS), until=_near(-10, 10))
_contexts = st.builds(
    PatientContext,
    date_of_birth=st.dates(dt.date(1930, 1, 1), dt.date(2005, 12, 31)),
    history=st.fixed_dictionaries({str(flag): st.booleans() for flag in HISTORY_FLAGS}).map(
        History.from_mapping
    ),
    interventions=st.lists(_interventions, max_size=4).map(tuple),
    marks=st.lists(_marks, max_size=4).map(tuple),
    # The background job's extras too: the claim holds with or without history.
    baseline_back_pain=st.none() | st.floats(0, 10),
    recent_logs=st.none() | st.lists(_logs(_near(-20, 0)), max_size=8).map(tuple),
    open_alert_rules=st.frozensets(st.sampled_from([r.id for r in RULES])),
)


def _without_unneeded(log: LogFacts, ctx: PatientContext) -> PatientContext:
    needs = record_needs(log)
    return dataclasses.replace(
        ctx,
        interventions=ctx.interventions if needs.interventions else (),
        marks=ctx.marks if needs.marks else (),
    )


@settings(max_examples=1000, derandomize=True, database=None, deadline=None)
@given(log=_logs(_near(-3, 3)), ctx=_contexts)
def test_it_evaluates_any_log_the_same_without_the_record_it_does_not_need(
    log: LogFacts, ctx: PatientContext
) -> None:
    assert evaluate(log, _without_unneeded(log, ctx)) == evaluate(log, ctx)


# Every record fact that could matter to a log dated DAY: each procedure kind on the
# edges of RF-INF-02's 42 days and RF-INF-03's 14 (and after the log), each symptom's
# mark current and expired.
_EVERY_INTERVENTION = tuple(
    InterventionFact(DAY - dt.timedelta(days=days), kind)
    for kind in INTERVENTION_KINDS
    for days in (-1, 0, 14, 15, 42, 43)
)
_EVERY_MARK = tuple(
    MarkFact(symptom, DAY + dt.timedelta(days=days))
    for symptom in MARKABLE_SYMPTOMS
    for days in (-1, 0, 30)
)
_RECORDS = [
    ((), ()),
    (_EVERY_INTERVENTION, ()),
    ((), _EVERY_MARK),
    (_EVERY_INTERVENTION, _EVERY_MARK),
    (_EVERY_INTERVENTION[4:8], _EVERY_MARK[::3]),
]
_SIDES: tuple[LegPainSide | None, ...] = (None, "both")
# The answers of a quiet check, the vast majority of logs: every answer that is no,
# none, false, absent, prefer-not-to-say, or a temperature under 38.0.
_QUIET = [
    {},
    {name: None for name in (*CHOICE_FIELDS, *BOOLEAN_FIELDS, "temperature_c")},
    {**{name: values[0] for name, values in CHOICE_FIELDS.items()}, "fever": False},
    {"sexual_function_change": "prefer_not_to_say"},
    {"temperature_c": TEMPERATURE_MIN_C},
    {"temperature_c": 37.9},
    {"temperature_c": 37.99, "fever": False},
]


@pytest.mark.parametrize("answers", _QUIET)
def test_it_needs_no_record_for_a_quiet_check_whatever_the_record(answers: dict[str, Any]) -> None:
    failures = []
    for history_flags, dob, leg_pain_side, (interventions, marks) in itertools.product(
        itertools.product((False, True), repeat=len(HISTORY_FLAGS)),
        (dt.date(1966, 11, 20), dt.date(1966, 11, 21)),  # 60 on DAY, and 59
        _SIDES,
        _RECORDS,
    ):
        log = LogFacts(
            date=DAY,
            pain=9,
            back_pain=9,
            worst_pain=10,
            leg_pain_side=leg_pain_side,
            sleep="constant_any_position",
            safety=SafetyAnswers.from_mapping(answers),
        )
        bare = PatientContext(
            date_of_birth=dob,
            history=History.from_mapping(dict(zip(HISTORY_FLAGS, history_flags, strict=True))),
        )
        full = dataclasses.replace(bare, interventions=interventions, marks=marks)
        if evaluate(log, full) != evaluate(log, bare):
            failures.append((history_flags, dob, leg_pain_side, interventions, marks))

    assert record_needs(LogFacts(date=DAY, pain=9, safety=SafetyAnswers.from_mapping(answers))) == (
        RecordNeeds(interventions=False, marks=False)
    )
    assert failures == []


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"fever": True}, RecordNeeds(interventions=True, marks=False)),
        ({"temperature_c": 38.0}, RecordNeeds(interventions=True, marks=False)),
        ({"bladder_change": "unchanged_assessed"}, RecordNeeds(interventions=False, marks=True)),
        ({"both_legs": "unchanged_assessed"}, RecordNeeds(interventions=False, marks=True)),
        (
            {"temperature_c": 39.5, "sexual_function_change": "unchanged_assessed"},
            RecordNeeds(interventions=True, marks=True),
        ),
        (
            {"weakness": "foot_drop", "injury": "major"},
            RecordNeeds(interventions=False, marks=False),
        ),
    ],
)
def test_it_names_the_record_facts_a_log_needs(
    answers: dict[str, Any], expected: RecordNeeds
) -> None:
    assert record_needs(LogFacts(date=DAY, pain=5, safety=SafetyAnswers.from_mapping(answers))) == (
        expected
    )


def test_it_needs_the_facts_it_names_for_the_outcome() -> None:
    # What the property above would miss if `record_needs` asked for nothing: the facts it
    # names do change these evaluations.
    ctx = PatientContext(
        date_of_birth=dt.date(1976, 5, 5),
        interventions=(InterventionFact(DAY - dt.timedelta(days=3), "injection"),),
        marks=(MarkFact("bladder_change", DAY),),
    )
    fever = LogFacts(date=DAY, pain=5, safety=SafetyAnswers(fever=True))
    assessed = LogFacts(date=DAY, pain=5, safety=SafetyAnswers(bladder_change="unchanged_assessed"))

    assert evaluate(fever, ctx).rule_ids == ("RF-INF-02",)
    assert evaluate(fever, dataclasses.replace(ctx, interventions=())).rule_ids == ("RF-INF-01",)
    assert evaluate(assessed, ctx).reminder is not None
    assert evaluate(assessed, dataclasses.replace(ctx, marks=())).rule_ids == ("RF-CES-02",)


def _trend_logs(dates: st.SearchStrategy[dt.date]) -> st.SearchStrategy[LogFacts]:
    # Quiet checks with the answers the trend rules count: most random checks fire a red
    # flag of their own, which stops RF-NP-01, so the windows' edges would go untried.
    return st.builds(
        LogFacts,
        date=dates,
        pain=st.integers(0, 10),
        back_pain=st.none() | st.integers(0, 10),
        sleep=st.sampled_from(SLEEP_ANSWERS),
    )


def _history(count: int) -> st.SearchStrategy[tuple[LogFacts, ...]]:
    """Up to `count` logs on distinct days before DAY (a patient logs once a day)."""
    days = st.lists(st.integers(1, 40), unique=True, max_size=count)
    return days.flatmap(
        lambda offsets: st.tuples(
            *(
                _trend_logs(day) | _logs(day)
                for day in (st.just(DAY - dt.timedelta(days=offset)) for offset in offsets)
            )
        )
    )


_trend_contexts = st.builds(
    PatientContext,
    date_of_birth=st.just(dt.date(1970, 1, 1)),
    baseline_back_pain=st.none() | st.floats(0, 8),
)


@settings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(
    log=_trend_logs(st.just(DAY)) | _logs(st.just(DAY)),
    ctx=_trend_contexts | _contexts,
    history=_history(20),
)
def test_it_evaluates_any_log_the_same_with_what_the_job_reads_of_its_earlier_logs(
    log: LogFacts, ctx: PatientContext, history: tuple[LogFacts, ...]
) -> None:
    # The job reads the PREVIOUS_LOGS latest earlier logs, and of those only the columns
    # of `EarlierLog`: each cut must decide every rule, basis included, as the whole
    # history would. A rule that read another field of an earlier log fails here (and
    # in mypy); one that read further back, with fewer logs.
    full = evaluate(log, dataclasses.replace(ctx, recent_logs=history))
    latest = tuple(sorted(history, key=lambda x: x.date, reverse=True)[:PREVIOUS_LOGS])
    earlier = tuple(EarlierLog(x.date, x.back_pain, x.sleep) for x in latest)

    assert evaluate(log, dataclasses.replace(ctx, recent_logs=latest)) == full
    assert evaluate(log, dataclasses.replace(ctx, recent_logs=earlier)) == full


def test_an_earlier_log_is_the_three_columns_the_job_reads() -> None:
    assert EARLIER_LOG_FIELDS == ("date", "back_pain", "sleep")


def test_it_reads_the_longest_window_of_any_rule() -> None:
    # RF-NP-01: 3 of the last 7 logged nights, this one included; RF-CA-02: 3 in a row.
    assert {rule.id: rule.previous_logs for rule in RULES if rule.previous_logs} == {
        "RF-CA-02": 2,
        "RF-NP-01": 6,
    }
    assert PREVIOUS_LOGS == 6


def test_it_counts_the_previous_logs_through_every_combinator() -> None:
    run = BackPainRunAboveBaseline(margin=2, logs=4)
    nights = SleepOnLogs("constant_any_position", at_least=2, window=10)

    assert AllOf(run, Not(AnyOf(nights))).previous_logs == 9
    assert AnyOf(AllOf(), Not(run)).previous_logs == 3


def _every_predicate() -> list[Predicate]:
    found: list[Predicate] = []
    todo: list[Predicate] = [
        p for rule in RULES for p in (rule.condition, *(v.when for v in rule.message_variants))
    ]
    while todo:
        predicate = todo.pop()
        found.append(predicate)
        if isinstance(predicate, AllOf | AnyOf):
            todo.extend(predicate.parts)
        elif isinstance(predicate, Not):
            todo.append(predicate.part)
    return found


_PREDICATES = _every_predicate()


@settings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(
    log=_trend_logs(st.just(DAY)) | _logs(st.just(DAY)),
    ctx=_trend_contexts | _contexts,
    history=st.none() | _history(8),
)
def test_it_decides_every_condition_as_its_evaluation_does(
    log: LogFacts, ctx: PatientContext, history: tuple[LogFacts, ...] | None
) -> None:
    # The engine asks `decide` of every rule and evaluates only the ones that fire: every
    # predicate of every rule, each part of each combinator included, must agree.
    ctx = dataclasses.replace(ctx, recent_logs=history)

    assert [p.decide(log, ctx) for p in _PREDICATES] == [
        p.evaluate(log, ctx).value for p in _PREDICATES
    ]


def _as_the_request_knows(
    log: LogFacts, job: PatientContext, *, with_history: bool
) -> PatientContext:
    """What the request gives the rules of what the job gives them: the record it needs,
    the PREVIOUS_LOGS latest earlier logs when it has all of them (or none), and neither
    the baseline nor the open alerts."""
    history = job.recent_logs or ()
    latest = tuple(sorted(history, key=lambda x: x.date, reverse=True)[:PREVIOUS_LOGS])
    given = with_history and len(latest) == PREVIOUS_LOGS
    return dataclasses.replace(
        _without_unneeded(log, job),
        baseline_back_pain=None,
        open_alert_rules=frozenset(),
        recent_logs=tuple(EarlierLog(x.date, x.back_pain, x.sleep) for x in latest)
        if given
        else None,
    )


def _quiet_history(count: int) -> st.SearchStrategy[tuple[LogFacts, ...]]:
    """As `_history`, of quiet checks only: the nights and back pains the trend rules count."""
    days = st.lists(st.integers(1, 12), unique=True, min_size=4, max_size=count)
    return days.flatmap(
        lambda offsets: st.tuples(
            *(_trend_logs(st.just(DAY - dt.timedelta(days=offset))) for offset in offsets)
        )
    )


_job_cases = st.one_of(
    # Any log, record and history.
    st.tuples(
        _trend_logs(st.just(DAY)) | _logs(st.just(DAY)),
        _trend_contexts | _contexts,
        _history(12),
        st.booleans(),
    ),
    # Quiet checks after quiet weeks, where only the trend rules can still fire: what the
    # request decides most often, and where a wrong decision would hide.
    st.tuples(_trend_logs(st.just(DAY)), _trend_contexts, _quiet_history(10), st.just(True)),
)


def test_a_log_the_request_decides_quiet_fires_nothing_in_the_job() -> None:
    # A log decided in the request is stored evaluated and never reaches the job
    # (docs/safety-path.md § Decided in the request): the job, with everything it reads
    # (the baseline, the open alerts, the record, the history), must fire nothing on it.
    decided: list[bool] = []

    @settings(max_examples=800, derandomize=True, database=None, deadline=None)
    @given(case=_job_cases)
    def check(case: tuple[LogFacts, PatientContext, tuple[LogFacts, ...], bool]) -> None:
        log, ctx, history, with_history = case
        job = dataclasses.replace(ctx, recent_logs=history)
        request = evaluate(log, _as_the_request_knows(log, job, with_history=with_history))
        if request.decided_quiet:
            decided.append(True)
            assert evaluate(log, job).firings == ()

    check()
    # Not a property that holds for want of cases: the cases include decided logs.
    assert len(decided) >= 20


def test_the_request_leaves_to_the_job_a_night_that_could_make_three() -> None:
    constant: list[Sleep] = ["constant_any_position"] * 2
    disturbed: list[Sleep] = ["disturbed"] * 4
    sleeps = constant + disturbed
    nights = tuple(
        EarlierLog(DAY - dt.timedelta(days=n), None, sleep)
        for n, sleep in enumerate(sleeps, start=1)
    )
    ctx = PatientContext(date_of_birth=dt.date(1970, 1, 1), recent_logs=nights)
    bad_night = LogFacts(date=DAY, pain=4, sleep="constant_any_position")
    good_night = LogFacts(date=DAY, pain=4, sleep="undisturbed")

    assert not evaluate(bad_night, dataclasses.replace(ctx, recent_logs=None)).decided_quiet
    assert evaluate(bad_night, ctx).rule_ids == ("RF-NP-01",)
    assert evaluate(good_night, ctx).decided_quiet
