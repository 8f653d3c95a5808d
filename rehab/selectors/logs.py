"""Daily logs and progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any
from uuid import UUID

from django.db.models import (
    DateField,
    DateTimeField,
    F,
    Field,
    Func,
    IntegerField,
    QuerySet,
    Value,
)
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404
from django.utils import timezone

from config.db import column, table
from patients.models import Patient, User
from rehab import progress
from rehab.models import DailyLog


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
    log: DailyLog = get_object_or_404(
        DailyLog.objects.visible_to(user).select_related("patient"), pk=log_id
    )
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


def sql_literal(value: str) -> str:
    # Only the model's own constants (choices) are written into SQL text.
    text = str(value)  # a TextChoices member's str() is its value
    if not text.replace("_", "").isalnum():
        raise ValueError(f"not a constant: {text!r}")
    return f"'{text}'"


class PatientScalar(Func):
    """A scalar SQL subquery about each outer patient, written as text: `o.patient_id`
    (and, with `today`, `o.today`: the `local_date` annotation) are bound once, in a
    one-row FROM, the device of `caseload._LogTriage`.

    The caseload's figures were Subquery/OuterRef trees: resolving and compiling them
    cost the ORM ~7 ms of Python on every caseload request (issue 8), more than
    PostgreSQL took to run them for a page. These compile to the same SQL in a fraction
    of that; tests/rehab/test_caseload_order.py keeps the ORM trees as the definition and
    holds these to them.
    """

    def __init__(self, sql: str, *, output_field: Field[Any, Any], today: bool = False) -> None:
        refs = (F("pk"), F("local_date")) if today else (F("pk"),)
        names = "patient_id, today" if today else "patient_id"
        escaped = sql.replace("%", "%%")
        super().__init__(
            *refs,
            template=f"(SELECT ({escaped}) FROM (SELECT %(expressions)s) AS o({names}))",  # noqa: S608
            output_field=output_field,
        )


# The daily logs' table and columns, quoted (`config.db`), for the SQL written here and in
# `caseload`: hand-written statements follow the model's names.
LOGS = table(DailyLog)
LOG_PATIENT, LOG_DATE, LOG_PAIN = (column(DailyLog, name) for name in ("patient", "date", "pain"))


def _log_date(order: str) -> PatientScalar:
    return PatientScalar(
        f"SELECT {LOG_DATE} FROM {LOGS} WHERE {LOG_PATIENT} = o.patient_id"  # noqa: S608
        f" ORDER BY {LOG_DATE} {order} LIMIT 1",
        output_field=DateField(),
    )


def _window_figures(prefix: str, *, start: str, end: str, today: bool) -> dict[str, PatientScalar]:
    """Figures of the outer patient's logs dated start..end (SQL over `o`), NULL under
    MIN_LOGS logs: `<prefix>_sum` and `<prefix>_n`, integers from which the exact mean is
    built in Python, as rehab.progress does (SQL's AVG is a float here: 4/3 came back as
    1.3333333333333333 and -81.25 % rounded to -81.2). The caseload's order compares the
    same windows' means in SQL (`caseload._LogTriage`)."""

    def figure(aggregate: str) -> PatientScalar:
        return PatientScalar(
            f"""SELECT w.value FROM (
                SELECT {aggregate} AS value, count(*) AS n FROM {LOGS}
                WHERE {LOG_PATIENT} = o.patient_id
                    AND {LOG_DATE} >= {start} AND {LOG_DATE} <= {end}
            ) AS w WHERE w.n >= {progress.MIN_LOGS}""",  # noqa: S608 - constants only
            output_field=IntegerField(),
            today=today,
        )

    return {f"{prefix}_sum": figure(f"sum({LOG_PAIN})"), f"{prefix}_n": figure("count(*)")}


def with_log_figures(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    """Annotate every patient with the caseload's log figures, in the same SQL query."""
    first = f"(SELECT min({LOG_DATE}) FROM {LOGS} WHERE {LOG_PATIENT} = o.patient_id)"  # noqa: S608
    return patients.annotate(
        local_date=_local_today(),
        first_log_date=_log_date("ASC"),
        last_log_date=_log_date("DESC"),
        latest_pain=PatientScalar(
            f"SELECT {LOG_PAIN} FROM {LOGS} WHERE {LOG_PATIENT} = o.patient_id"  # noqa: S608
            f" ORDER BY {LOG_DATE} DESC LIMIT 1",
            output_field=IntegerField(),
        ),
    ).annotate(
        **_window_figures(
            "baseline", start=first, end=f"{first} + {progress.BASELINE_DAYS - 1}", today=False
        ),
        **_window_figures(
            "current", start=f"o.today - {progress.CURRENT_DAYS - 1}", end="o.today", today=True
        ),
    )


def figures_of(patient: Patient) -> progress.Progress:
    """The contract's figures from a patient annotated by `with_log_figures`."""

    def exact(prefix: str) -> Fraction | None:
        total = getattr(patient, f"{prefix}_sum", None)
        n = getattr(patient, f"{prefix}_n", None)
        return Fraction(total, n) if total is not None and n else None

    return progress.figures(exact("baseline"), exact("current"), days_logged=0)
