"""The clinician's caseload: one page of patients with their figures, in constant queries."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import (
    DateField,
    ExpressionWrapper,
    F,
    Field,
    Func,
    IntegerField,
    Q,
    QuerySet,
)
from django.db.models.functions import Coalesce

from patients.models import Patient, User
from rehab import progress
from rehab.models.alerts import SEVERITY_RANK
from rehab.selectors.logs import (
    CURRENT,
    ROLLUP_ROW,
    rollup_refs,
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


def with_alert_triage(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    """Open alert counts per severity, the patient's tier (most severe open alert) and
    since when that alert has waited: columns of the patient's alert triage row
    (`rehab.models.PatientAlertTriage`, kept by the database on every alert write), a
    LEFT JOIN; no row, no open alert."""
    return patients.annotate(
        open_emergency=Coalesce(F("alert_triage__open_emergency"), 0, output_field=IntegerField()),
        open_urgent=Coalesce(F("alert_triage__open_urgent"), 0, output_field=IntegerField()),
        open_routine=Coalesce(F("alert_triage__open_routine"), 0, output_field=IntegerField()),
        alert_tier=Coalesce(F("alert_triage__tier"), NO_ALERT_TIER, output_field=IntegerField()),
        alert_waiting_since=F("alert_triage__since"),
    )


class _LogTriage(Func):
    """The caseload's order below the alert tiers, as one sortable row per patient:
    worsening pain, then missed logs, then the rest (the tier); within missed logs, never
    logged, then the longest silent first; then the most worsened first; then the oldest
    last log first.

    One subquery over the patient's rollup row (`rehab.models.PatientLogRollup`), whose
    figures are named once, in LATERAL joins: the same order as annotations (a pain
    delta, a tier, a missed-logs date) would cost PostgreSQL one evaluation of every
    subquery per mention. PostgreSQL flattens a LATERAL subquery without FROM into the
    expressions that use it: the current window (`c`, binary searches and array look-ups)
    is kept computed once a patient by its `OFFSET 0`, as `o` is; without it each of the
    five mentions of the delta (three through the tier) computed the window's count twice
    and its sum once again. The delta and the tier, arithmetic on `c`, are still inlined
    (fencing them too measured no better). Its windows and tests are those of
    `with_log_figures` and `missed_logs()` (issue 8: tests/rehab/test_caseload_order.py
    checks it against them); means are exact numeric, as AVG of integers (sum / count), so
    equal deltas tie.

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
        CROSS JOIN LATERAL (
            SELECT {CURRENT.n} AS n, {CURRENT.total} AS total OFFSET 0
        ) AS c
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
        .alias(log_triage=_LogTriage())
        .order_by(
            "alert_tier",
            F("alert_waiting_since").asc(nulls_last=True),
            "log_triage",
            "last_name",
            "first_name",
            "id",
        )
    )
