"""Daily logs and progress."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any
from uuid import UUID

from django.db.models import (
    Case,
    DateField,
    DateTimeField,
    F,
    Field,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone

from patients.models import Patient, User
from rehab import progress
from rehab.models import DailyLog
from rehab.models.logs import ROLLUP_RECENT_LOGS


def log_list(
    *,
    user: User,
    patient: Patient,
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[DailyLog]:
    logs = DailyLog.objects.visible_to(user).filter(patient=patient)
    if date_from is not None:
        logs = logs.filter(date__gte=date_from)
    if date_to is not None:
        logs = logs.filter(date__lte=date_to)
    return logs.order_by("-date")


def log_get(*, user: User, log_id: UUID) -> DailyLog:
    """A log by id, read from its month's partition alone (`DailyLogQuerySet.by_id`)."""
    try:
        log: DailyLog = (
            DailyLog.objects.visible_to(user).select_related("patient").get_by_id(log_id)
        )
    except DailyLog.DoesNotExist as exc:
        raise Http404 from exc
    return log


@dataclass(frozen=True)
class ProgressSummary:
    figures: progress.Progress
    series: list[dict[str, Any]]


def progress_get(
    *, patient: Patient, series_from: date | None = None, series_to: date | None = None
) -> ProgressSummary:
    """The contract's progress summary. One query: the figures need every log's pain."""
    rows = list(
        DailyLog.objects.filter(patient=patient)
        .order_by("date")
        .values("date", "pain", "leg_pain", "back_pain", "function")
    )
    figures = progress.progress(
        ((row["date"], row["pain"]) for row in rows), today=patient.local_today()
    )
    series = [
        row
        for row in rows
        if (series_from is None or row["date"] >= series_from)
        and (series_to is None or row["date"] <= series_to)
    ]
    return ProgressSummary(figures=figures, series=series)


# --------------------------------------------------------------------------- caseload


def _local_today() -> Cast:
    # PostgreSQL's timezone(zone, timestamptz) gives the wall-clock time in the patient's
    # zone: each patient's "today" is computed in the same query, not in a Python loop.
    # The instant comes from Python, not SQL now(), so that one clock rules both sides.
    now = Value(timezone.now(), output_field=DateTimeField())
    local_now = Func(F("timezone"), now, function="timezone", output_field=DateTimeField())
    return Cast(local_now, output_field=DateField())


# What `RollupScalar` binds in `o`, from the patient's rollup row (all NULL for a patient
# who never logged): its fields, in this order, after `patient_id` and `today`.
ROLLUP_FIELDS = (
    "first_log_date",
    "last_log_date",
    "baseline_sum",
    "baseline_n",
    "recent_dates",
    "recent_pain_sums",
)
ROLLUP_ROW = "o(patient_id, today, first, last, bs, bn, dates, sums)"


def _rollup_alias(name: str) -> str:
    return f"rollup_{name}"


def rollup_refs() -> tuple[F, ...]:
    """The expressions bound as ROLLUP_ROW: the patient, their `local_date` annotation and
    their rollup row's fields (a LEFT JOIN to the rollup, one per query), through the
    aliases `with_log_figures` gives them: Django resolves a relation path afresh at every
    mention (setup_joins), ~24 of them in a caseload query, but an alias by name; the
    SQL is the same."""
    return (F("pk"), F("local_date"), *(F(_rollup_alias(name)) for name in ROLLUP_FIELDS))


class RollupScalar(Func):
    """A scalar SQL subquery over each outer patient's rollup row (`rehab.models.
    PatientLogRollup`), bound once as ROLLUP_ROW: `o.patient_id`, `o.today` (the
    `local_date` annotation), `o.first` and `o.last` (first and last log dates), `o.bs`
    and `o.bn` (the baseline window's pain sum and log count, MIN_LOGS not applied),
    `o.dates` and `o.sums` (the latest logs' dates, oldest first, and running pain
    totals from 0). Needs `local_date`."""

    def __init__(self, sql: str, *, output_field: Field[Any, Any]) -> None:
        escaped = sql.replace("%", "%%")
        super().__init__(
            *rollup_refs(),
            template=f"(SELECT ({escaped}) FROM (SELECT %(expressions)s OFFSET 0) AS {ROLLUP_ROW})",  # noqa: S608
            output_field=output_field,
        )


@dataclass(frozen=True)
class Window:
    """SQL over `o` of ROLLUP_ROW for the outer patient's logs dated start..end (at most
    ROLLUP_RECENT_LOGS days, ending at or after the latest logs' dates, as the current
    window does): `n`, how many, and `total`, their pains' sum (0 for none).

    Read from the rollup's latest logs whenever they hold the whole window: the patient
    has fewer logs than it keeps, or its oldest kept log is older than the window, or
    its newest is not after the window's end (then its ROLLUP_RECENT_LOGS distinct dates
    cover every day of the window, or reach before it). There, two binary searches
    (width_bucket: how many kept dates are at most a date) bound the window's logs and
    the running totals give their sum: no per-log work. Otherwise (logs dated after the
    patient's local today: a zone changed, a clock ahead) from the log table, in a CASE
    branch that only those rare patients reach."""

    n: str
    total: str


def window(start: str, end: str) -> Window:
    k = ROLLUP_RECENT_LOGS
    whole = f"(cardinality(o.dates) < {k} OR o.dates[1] < {start} OR o.dates[{k}] <= {end})"
    upto_end, before_start = f"width_bucket({end}, o.dates)", f"width_bucket({start} - 1, o.dates)"
    # The log table's fallback through functions (rehab/migrations/0016_caseload_sort_keys.py)
    # rather than subqueries: a subquery over the partitioned table is planned, every
    # partition's scan of it, on every request, though almost no row runs it.
    span = f"o.patient_id, {start}, {end}"
    return Window(
        n=f"""(CASE WHEN o.dates IS NULL THEN 0
            WHEN {whole} THEN {upto_end} - {before_start}
            ELSE rehab_log_window_count({span}) END)""",
        total=f"""(CASE WHEN o.dates IS NULL THEN 0
            WHEN {whole} THEN o.sums[{upto_end} + 1] - o.sums[{before_start} + 1]
            ELSE rehab_log_window_pain({span}) END)""",
    )


# The current window (progress.CURRENT_DAYS days ending the patient's local today).
CURRENT = window(f"o.today - {progress.CURRENT_DAYS - 1}", "o.today")
assert progress.CURRENT_DAYS <= ROLLUP_RECENT_LOGS, "the rollup keeps too few logs"


def with_log_figures(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    """Annotate every patient with the caseload's log figures, in the same SQL query, from
    their rollup row: `first_log_date`, `last_log_date`, `latest_pain`, and the baseline
    and current windows' `<window>_sum` and `<window>_n`, NULL under MIN_LOGS logs;
    integers from which the exact mean is built in Python, as rehab.progress does (SQL's
    AVG is a float here: 4/3 came back as 1.3333333333333333 and -81.25 % rounded to
    -81.2). The caseload's order compares the same windows' means in SQL
    (`caseload._LogTriage`)."""
    enough = Q(**{f"{_rollup_alias('baseline_n')}__gte": progress.MIN_LOGS})

    def current(value: str) -> RollupScalar:
        return RollupScalar(
            f"SELECT CASE WHEN {CURRENT.n} >= {progress.MIN_LOGS} THEN {value} END",
            output_field=IntegerField(),
        )

    rollup = {_rollup_alias(name): F(f"log_rollup__{name}") for name in ROLLUP_FIELDS}
    return (
        patients.annotate(local_date=_local_today())
        .alias(**rollup)
        .annotate(
            first_log_date=F(_rollup_alias("first_log_date")),
            last_log_date=F(_rollup_alias("last_log_date")),
            latest_pain=F("log_rollup__latest_pain"),
            baseline_sum=Case(When(enough, then=F(_rollup_alias("baseline_sum")))),
            baseline_n=Case(When(enough, then=F(_rollup_alias("baseline_n")))),
            current_sum=current(CURRENT.total),
            current_n=current(CURRENT.n),
        )
    )


def figures_of(patient: Patient) -> progress.Progress:
    """The contract's figures from a patient annotated by `with_log_figures`."""
    return figures_of_row(vars(patient))


def figures_of_row(row: Mapping[str, Any]) -> progress.Progress:
    """`figures_of` from a row of `with_log_figures` read with `values()` (or a patient's
    attributes): its `baseline_sum`, `baseline_n`, `current_sum` and `current_n`."""

    def exact(prefix: str) -> Fraction | None:
        total = row.get(f"{prefix}_sum")
        n = row.get(f"{prefix}_n")
        return Fraction(total, n) if total is not None and n else None

    return progress.figures(exact("baseline"), exact("current"), days_logged=0)
