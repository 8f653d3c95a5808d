"""Reads for the clinician web dashboard (rehab/views/dashboard.py).

Everything starts from the same scoped selectors as the API (`caseload_list`,
`alert_list`, `patient_get`), so the dashboard cannot see more than the API does.

The caseload's columns are annotations: a new one (the programs app's current phase and
exercise adherence) is one more correlated subquery in `dashboard_caseload` and one more
cell in dashboard/caseload.html, which keeps the page at a constant number of queries
(tests/dashboard/test_caseload.py checks it at 5, 50 and 500 patients).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import (
    Count,
    DateField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from patients.models import Patient, User
from rehab import progress
from rehab.models import Alert, DailyLog
from rehab.safety.vocab import BOOLEAN_FIELDS, CHOICE_FIELDS
from rehab.selectors.alerts import alert_list
from rehab.selectors.caseload import NO_ALERT_TIER, caseload_list

# "No log for 3+ days" on the caseload (NR-LOG-01 reminds the patient at 3 days).
STALE_DAYS = 3
ADHERENCE_DAYS = 7


@dataclass(frozen=True)
class CaseloadFilters:
    search: str = ""
    # "any" (at least one open alert) or a severity
    alerts: str = ""
    # True: meaningful change reached; False: not (or not computable yet)
    mcid: bool | None = None
    stale: bool = False


def _logs_in_last_days(days: int) -> Coalesce:
    since = ExpressionWrapper(
        OuterRef("local_date") - timedelta(days=days - 1), output_field=DateField()
    )
    counts = (
        DailyLog.objects.filter(
            patient=OuterRef("pk"), date__gte=since, date__lte=OuterRef("local_date")
        )
        .order_by()
        .values("patient")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def _mcid_reached() -> Q:
    # progress.figures in SQL: change <= -2 and 100 * change / baseline <= -30, i.e.
    # current <= 0.7 * baseline (baseline > 0; with a baseline of 0 nothing can drop 2).
    return Q(
        baseline_mean__gt=0,
        pain_delta__lte=progress.MCID_POINTS,
        current_mean__lte=F("baseline_mean") * (1 + progress.MCID_PERCENT / 100),
    )


def dashboard_caseload(*, user: User, filters: CaseloadFilters) -> QuerySet[Patient]:
    """The caseload in triage order, narrowed by the dashboard's filters; one SQL query
    per page whatever the clinic's size (every figure is a correlated subquery)."""
    patients = caseload_list(user=user, search=filters.search).annotate(
        logs_7d=_logs_in_last_days(ADHERENCE_DAYS)
    )
    if filters.alerts == "any":
        patients = patients.filter(Q(alert_tier__lt=NO_ALERT_TIER))
    elif filters.alerts:
        patients = patients.filter(**{f"open_{filters.alerts}__gt": 0})
    if filters.mcid is True:
        patients = patients.filter(_mcid_reached())
    elif filters.mcid is False:
        patients = patients.exclude(_mcid_reached())
    if filters.stale:
        stale_since = ExpressionWrapper(
            F("local_date") - timedelta(days=STALE_DAYS), output_field=DateField()
        )
        patients = patients.filter(
            Q(last_log_date__isnull=True) | Q(last_log_date__lte=stale_since)
        )
    return patients


def unresolved_alert_count(*, user: User) -> int:
    """For the navigation bar: how many alerts still wait for someone."""
    return Alert.objects.visible_to(user).filter(status=Alert.Status.OPEN).count()


def inbox_alerts(
    *, user: User, status: str = "", severity: str = "", patient_id: Any = None
) -> QuerySet[Alert]:
    """The inbox: unresolved alerts unless a status is asked for; most severe, then
    longest waiting, first (the selector's order)."""
    alerts = alert_list(
        user=user, status=status or None, severity=severity or None, patient_id=patient_id
    )
    if not status:
        alerts = alerts.exclude(status=Alert.Status.RESOLVED)
    return alerts.select_related("acknowledged_by", "resolved_by", "log")


def patient_alerts(*, user: User, patient: Patient, past: int = 20) -> dict[str, list[Alert]]:
    """The patient's unresolved alerts (all of them) and the most recent resolved ones."""
    alerts = alert_list(user=user, patient_id=patient.pk).select_related(
        "acknowledged_by", "resolved_by", "log"
    )
    return {
        "unresolved": list(alerts.exclude(status=Alert.Status.RESOLVED)),
        "past": list(
            alerts.filter(status=Alert.Status.RESOLVED).order_by("-resolved_at", "-id")[:past]
        ),
    }


# --------------------------------------------------------------------------- daily logs


@dataclass(frozen=True)
class SafetyAnswer:
    field: str
    label: str
    value: str
    # Anything but "no"/"none"/false: what the clinician's eye must land on.
    notable: bool


_SAFETY_LABELS = {
    "saddle_numbness": "Numbness between the legs (saddle)",
    "bladder_change": "Bladder change",
    "bowel_change": "Bowel change",
    "sexual_function_change": "Sexual function change",
    "both_legs": "Symptoms in both legs",
    "weakness": "Weakness",
    "numbness_spread": "Numbness spreading",
    "walking_unsteady_new": "New unsteady walking",
    "fever": "Fever",
    "temperature_c": "Temperature",
    "feel_very_unwell": "Feels very unwell",
    "injury": "Injury",
    "pain_new_or_rapidly_worse": "Pain new or rapidly worse",
    "unexplained_weight_loss": "Unexplained weight loss",
    "thoracic_or_band_pain": "Thoracic or band-like pain",
}
# RF-INF-01's threshold: a recorded temperature below it is an answer, not a finding.
FEVER_C = 38.0


def safety_answers(safety: dict[str, Any] | None) -> list[SafetyAnswer]:
    """Every answer of a log's safety check, in the contract's order, notable ones marked."""
    safety = safety or {}
    answers = []
    for field, label in _SAFETY_LABELS.items():
        raw = safety.get(field)
        if field in CHOICE_FIELDS:
            value = raw or CHOICE_FIELDS[field][0]
            notable = value not in ("no", "none")
            shown = str(value).replace("_", " ")
        elif field in BOOLEAN_FIELDS:
            notable = bool(raw)
            shown = "yes" if raw else "no"
        else:  # temperature_c
            notable = raw is not None and float(raw) >= FEVER_C
            shown = f"{raw} °C" if raw is not None else "not taken"
        answers.append(SafetyAnswer(field=field, label=label, value=shown, notable=notable))
    return answers


@dataclass(frozen=True)
class RecentLog:
    log: DailyLog
    answers: list[SafetyAnswer]

    @property
    def notable(self) -> list[SafetyAnswer]:
        return [a for a in self.answers if a.notable]


def recent_logs(*, user: User, patient: Patient, limit: int = 14) -> list[RecentLog]:
    logs = DailyLog.objects.visible_to(user).filter(patient=patient).order_by("-date")[:limit]
    return [RecentLog(log=log, answers=safety_answers(log.safety)) for log in logs]


def chart_window(*, today: date, days: int | None, first_log: date | None) -> tuple[date, date]:
    """The chart's dates: the last `days` days to today (all logs for None), starting no
    earlier than the first log, so that a new patient's few weeks fill the chart."""
    start = today - timedelta(days=(days or 30) - 1)
    if first_log is not None and (days is None or first_log > start):
        start = first_log
    # At least a week wide: a date axis of one day has nothing to scale.
    return min(start, today - timedelta(days=6)), today
