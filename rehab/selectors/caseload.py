"""The clinician's caseload: one page of patients with their figures, in constant queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import (
    DateField,
    DateTimeField,
    ExpressionWrapper,
    F,
    Field,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Coalesce

from config.db import column, table
from patients.models import Patient, User
from rehab import progress
from rehab.models import Alert, Severity
from rehab.models.alerts import SEVERITY_RANK
from rehab.selectors.logs import (
    CURRENT,
    ROLLUP_ROW,
    PatientScalar,
    rollup_refs,
    sql_literal,
    with_log_figures,
)

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


_ALERTS = table(Alert)
_PATIENT, _STATUS, _SEVERITY, _OPENED_AT = (
    column(Alert, name) for name in ("patient", "status", "severity", "opened_at")
)


def _open_alerts(condition: str = "") -> str:
    return (
        f"FROM {_ALERTS} WHERE {_PATIENT} = o.patient_id"
        f" AND {_STATUS} = {sql_literal(Alert.Status.OPEN)} {condition}"
    )


# The tier of an alert: its severity's rank (rehab.selectors.alerts.severity_rank).
_RANK = (
    f"CASE {_SEVERITY} "
    + " ".join(f"WHEN {sql_literal(sev)} THEN {rank}" for sev, rank in SEVERITY_RANK.items())
    + f" ELSE {NO_ALERT_TIER} END"
)


def with_alert_triage(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    """Open alert counts per severity, the patient's tier (most severe open alert) and
    since when that alert has waited, each a correlated subquery on (patient, status)."""

    def count(severity: str) -> PatientScalar:
        return PatientScalar(
            f"SELECT count(*) {_open_alerts(f'AND {_SEVERITY} = {sql_literal(severity)}')}",
            output_field=IntegerField(),
        )

    def most_urgent(what: str, output_field: Field[Any, Any]) -> PatientScalar:
        return PatientScalar(
            f"SELECT {what} {_open_alerts()} ORDER BY {_RANK}, {_OPENED_AT} LIMIT 1",
            output_field=output_field,
        )

    return patients.annotate(
        open_emergency=count(Severity.EMERGENCY),
        open_urgent=count(Severity.URGENT),
        open_routine=count(Severity.ROUTINE),
        alert_tier=Coalesce(most_urgent(_RANK, IntegerField()), Value(NO_ALERT_TIER)),
        alert_waiting_since=most_urgent(_OPENED_AT, DateTimeField()),
    )


class _AlertTriage(Func):
    """The alert tiers' order as one sortable row per patient: the most urgent open
    alert's tier (NO_ALERT_TIER without one), then since when it has waited, the longest
    first (none last). The same order as `alert_tier` then `alert_waiting_since`, from
    one look-up of the patient's open alerts instead of two: the sort computes it for
    every patient of the clinic, the annotations are read for the page's rows only."""

    template = f"""(
        SELECT ROW(coalesce(a.tier, {NO_ALERT_TIER}), a.since IS NULL, a.since)
        FROM (SELECT %(expressions)s) AS o(patient_id)
        LEFT JOIN LATERAL (
            SELECT {_RANK} AS tier, {_OPENED_AT} AS since {_open_alerts()}
            ORDER BY 1, 2 LIMIT 1
        ) AS a ON true
    )"""  # noqa: S608 - the only interpolations are the model's names and constants
    # Only ever ordered by, never read: the value is an anonymous record.
    output_field = Field()

    def __init__(self) -> None:
        super().__init__(F("pk"))


class _LogTriage(Func):
    """The caseload's order below the alert tiers, as one sortable row per patient:
    worsening pain, then missed logs, then the rest (the tier); within missed logs, never
    logged, then the longest silent first; then the most worsened first; then the oldest
    last log first.

    One subquery over the patient's rollup row (`rehab.models.PatientLogRollup`), whose
    figures are computed once, in LATERAL joins: the same order as annotations (a pain
    delta, a tier, a missed-logs date) would cost PostgreSQL one evaluation of every
    subquery per mention. Its windows and tests are those of `with_log_figures` and
    `missed_logs()` (issue 8: tests/rehab/test_caseload_order.py checks it against them);
    means are exact numeric, as AVG of integers (sum / count), so equal deltas tie.

    A flag before a value that may be NULL orders the NULLs (last, or first for "never
    logged"), so that record comparison never meets a NULL against a value; the last
    log's date is NULL only for those who never logged, who are all in the missed-logs
    tier and ordered there by its own key.
    """

    template = f"""(
        SELECT ROW(
            t.tier,
            t.tier = {MISSED_LOGS_TIER} AND o.last IS NOT NULL,
            CASE WHEN t.tier = {MISSED_LOGS_TIER} THEN o.last END,
            d.delta IS NULL,
            -d.delta,
            o.last
        )
        FROM (SELECT %(expressions)s OFFSET 0) AS {ROLLUP_ROW}
        CROSS JOIN LATERAL (SELECT {CURRENT.n} AS n, {CURRENT.total} AS total) AS c
        CROSS JOIN LATERAL (
            SELECT CASE
                WHEN o.bn >= {progress.MIN_LOGS} AND c.n >= {progress.MIN_LOGS}
                THEN c.total::numeric / c.n::numeric - o.bs::numeric / o.bn::numeric
            END AS delta
        ) AS d
        CROSS JOIN LATERAL (
            SELECT CASE
                WHEN d.delta > 0 THEN {WORSENING_TIER}
                WHEN o.last IS NULL OR o.last <= o.today - {MISSED_LOG_DAYS}
                THEN {MISSED_LOGS_TIER}
                ELSE {REST_TIER}
            END AS tier
        ) AS t
    )"""  # noqa: S608 - the only interpolations are the model's names and integer constants
    # Only ever ordered by, never read: the value is an anonymous record.
    output_field = Field()

    def __init__(self) -> None:
        super().__init__(*rollup_refs())


def caseload_list(*, user: User, search: str = "") -> QuerySet[Patient]:
    """Visible patients, most urgent first (docs/clinical-record.md § Caseload order).

    Emergency, then urgent, then routine open alerts, the longest-waiting first within a
    tier; then those whose pain worsened (most first), then those who missed logs (never
    logged, then the longest silent first), then the rest (most worsened first). One SQL
    ordering, so that any page of it costs the same queries; PostgreSQL computes the
    row's other figures after the sort, for the page's rows only.
    """
    # Not `patient_selectors.patient_list`: a caseload row shows neither the clinic nor the
    # care team, and prefetching the team for every page was one query and a join wasted.
    # Restricted patients (an approved erasure) are off the caseload; their record is still
    # opened by id (docs/data-rights.md § Restriction).
    patients = Patient.objects.visible_to(user).active()
    if search:
        patients = patients.filter(
            Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(email__icontains=search)
            | Q(condition__icontains=search)
        )
    return (
        with_alert_triage(with_log_figures(patients))
        .alias(alert_triage=_AlertTriage(), log_triage=_LogTriage())
        .order_by(
            "alert_triage",
            "log_triage",
            "last_name",
            "first_name",
            "id",
        )
    )
