"""The clinician's caseload: one page of patients with their figures, in constant queries."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import (
    Case,
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
    When,
)
from django.db.models.functions import Coalesce

from patients.models import Patient, User
from rehab.models import Alert, Severity
from rehab.models.alerts import SEVERITY_RANK
from rehab.selectors.alerts import severity_rank
from rehab.selectors.logs import with_log_figures

NO_ALERT_TIER = len(SEVERITY_RANK)
# "No log for 3+ days" (NR-LOG-01 reminds the patient at 3 days): the caseload's missed-logs
# tier and the dashboard's "missed logs" filter use the same test, so they agree.
MISSED_LOG_DAYS = 3
# Below the alert tiers (issue 7): worsening pain, then missed logs, then the rest.
WORSENING_TIER, MISSED_LOGS_TIER, REST_TIER = range(3)


def missed_logs() -> Q:
    """Never logged, or the last log is MISSED_LOG_DAYS or more local days old; needs the
    `local_date` and `last_log_date` annotations of `with_log_figures`."""
    stale_since = ExpressionWrapper(
        F("local_date") - timedelta(days=MISSED_LOG_DAYS), output_field=DateField()
    )
    return Q(last_log_date__isnull=True) | Q(last_log_date__lte=stale_since)


def _open_alert_count(severity: str) -> Coalesce:
    counts = (
        Alert.objects.filter(patient=OuterRef("pk"), status=Alert.Status.OPEN, severity=severity)
        .order_by()
        .values("patient")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def with_alert_triage(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    """Open alert counts per severity, the patient's tier (most severe open alert) and
    since when that alert has waited, each a correlated subquery on (patient, status)."""
    most_urgent = (
        Alert.objects.filter(patient=OuterRef("pk"), status=Alert.Status.OPEN)
        .annotate(rank=severity_rank())
        .order_by("rank", "opened_at")
    )
    return patients.annotate(
        open_emergency=_open_alert_count(Severity.EMERGENCY),
        open_urgent=_open_alert_count(Severity.URGENT),
        open_routine=_open_alert_count(Severity.ROUTINE),
        alert_tier=Coalesce(
            Subquery(most_urgent.values("rank")[:1], output_field=IntegerField()),
            Value(NO_ALERT_TIER),
        ),
        alert_waiting_since=Subquery(most_urgent.values("opened_at")[:1]),
    )


def caseload_list(*, user: User, search: str = "") -> QuerySet[Patient]:
    """Visible patients, most urgent first (api-contract.md § caseload order).

    Emergency, then urgent, then routine open alerts, the longest-waiting first within a
    tier; then those whose pain worsened (most first), then those who missed logs (never
    logged, then the longest silent first), then the rest (most worsened first). One SQL
    ordering, so that any page of it costs the same queries.
    """
    # Not `patient_selectors.patient_list`: a caseload row shows neither the clinic nor the
    # care team, and prefetching the team for every page was one query and a join wasted.
    patients = Patient.objects.visible_to(user)
    if search:
        patients = patients.filter(
            Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(email__icontains=search)
            | Q(condition__icontains=search)
        )
    annotated = (
        with_alert_triage(with_log_figures(patients))
        .annotate(pain_delta=F("current_mean") - F("baseline_mean"))
        .annotate(
            # Only orders patients without an open alert: the alert tiers come first.
            log_tier=Case(
                When(pain_delta__gt=0, then=Value(WORSENING_TIER)),
                When(missed_logs(), then=Value(MISSED_LOGS_TIER)),
                default=Value(REST_TIER),
                output_field=IntegerField(),
            )
        )
    )
    return annotated.order_by(
        "alert_tier",
        F("alert_waiting_since").asc(nulls_last=True),
        "log_tier",
        # Within the missed-logs tier: never logged, then the longest silent first.
        Case(When(log_tier=MISSED_LOGS_TIER, then=F("last_log_date"))).asc(nulls_first=True),
        F("pain_delta").desc(nulls_last=True),
        F("last_log_date").asc(nulls_last=True),
        "last_name",
        "first_name",
        "id",
    )
