"""Daily logs and progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Any
from uuid import UUID

from django.db.models import (
    Count,
    DateField,
    DateTimeField,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404
from django.utils import timezone

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


def _window_figures(prefix: str, start: Any, end: Any) -> dict[str, Subquery]:
    """Figures of the outer patient's logs dated start..end, NULL under 3 logs:
    `<prefix>_sum` and `<prefix>_n`, integers from which the exact mean is built in
    Python, as rehab.progress does (SQL's AVG is a float here: 4/3 came back as
    1.3333333333333333 and -81.25 % rounded to -81.2). The caseload's order compares the
    same windows' means in SQL (`caseload._LogTriage`)."""
    logs = (
        DailyLog.objects.filter(patient=OuterRef("pk"), date__gte=start, date__lte=end)
        .order_by()
        .values("patient")
        .annotate(n=Count("id"), total=Sum("pain"))
        .filter(n__gte=progress.MIN_LOGS)
    )
    return {
        f"{prefix}_sum": Subquery(logs.values("total"), output_field=IntegerField()),
        f"{prefix}_n": Subquery(logs.values("n"), output_field=IntegerField()),
    }


def with_log_figures(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    """Annotate every patient with the caseload's log figures, in the same SQL query."""
    logs = DailyLog.objects.filter(patient=OuterRef("pk"))
    latest = logs.order_by("-date")
    return patients.annotate(
        local_date=_local_today(),
        first_log_date=Subquery(logs.order_by("date").values("date")[:1]),
        last_log_date=Subquery(latest.values("date")[:1]),
        latest_pain=Subquery(latest.values("pain")[:1]),
    ).annotate(
        **_window_figures(
            "baseline",
            OuterRef("first_log_date"),
            ExpressionWrapper(
                OuterRef("first_log_date") + timedelta(days=progress.BASELINE_DAYS - 1),
                output_field=DateField(),
            ),
        ),
        **_window_figures(
            "current",
            ExpressionWrapper(
                OuterRef("local_date") - timedelta(days=progress.CURRENT_DAYS - 1),
                output_field=DateField(),
            ),
            OuterRef("local_date"),
        ),
    )


def figures_of(patient: Patient) -> progress.Progress:
    """The contract's figures from a patient annotated by `with_log_figures`."""

    def exact(prefix: str) -> Fraction | None:
        total = getattr(patient, f"{prefix}_sum", None)
        n = getattr(patient, f"{prefix}_n", None)
        return Fraction(total, n) if total is not None and n else None

    return progress.figures(exact("baseline"), exact("current"), days_logged=0)
