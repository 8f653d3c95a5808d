"""The caseload order in one LATERAL subquery (issue 8) against the order it replaced: the
same annotations compared and sorted one by one (`_reference_order` below is the ORM
ordering of `caseload_list` before issue 8, kept here as the definition), on seeded data
with the cases the SQL must agree on: ties on every key, edited, moved, backfilled and
deleted logs, windows with exactly MIN_LOGS logs, overlapping windows, patients who never
logged, logs dated past a patient's local today, and patients in zones either side of
UTC's date line."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db.models import (
    Avg,
    Case,
    Count,
    DateField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from dashboard.selectors import CaseloadFilters, dashboard_caseload
from patients.models import Clinician, Patient
from rehab import progress
from rehab.models import Alert, DailyLog
from rehab.selectors.alerts import severity_rank
from rehab.selectors.caseload import (
    MISSED_LOGS_TIER,
    NO_ALERT_TIER,
    REST_TIER,
    WORSENING_TIER,
    caseload_list,
    missed_logs,
    with_alert_triage,
)
from rehab.selectors.logs import _local_today, with_log_figures
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

ZONES = ["Europe/London", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/New_York", "UTC"]
# Late on the 20th in UTC: the 21st in Kiritimati, still the 20th in Pago Pago.
NOW = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)
# Pain patterns drawn from a few, so that several patients share a delta exactly.
PATTERNS = [[5, 5, 5], [4, 4, 4, 4], [7, 6, 5], [3, 3, 3, 3, 3], [8, 2, 5], [6, 6, 6]]


def _window(start: Any, end: Any) -> Any:
    """The outer patient's logs dated start..end, as one row of figures (none under
    MIN_LOGS logs)."""
    return (
        DailyLog.objects.filter(patient=OuterRef("pk"), date__gte=start, date__lte=end)
        .order_by()
        .values("patient")
        .annotate(n=Count("id"), total=Sum("pain"), mean=Avg("pain"))
        .filter(n__gte=progress.MIN_LOGS)
    )


def _mean(start: Any, end: Any) -> Subquery:
    return Subquery(_window(start, end).values("mean"))


# --- the caseload's annotations as ORM trees (rehab/selectors before issue 8's
# PatientScalar): the definition that `with_log_figures` and `with_alert_triage` must match.


def _reference_window(prefix: str, start: Any, end: Any) -> dict[str, Subquery]:
    logs = _window(start, end)
    return {
        f"{prefix}_sum": Subquery(logs.values("total"), output_field=IntegerField()),
        f"{prefix}_n": Subquery(logs.values("n"), output_field=IntegerField()),
    }


def _reference_log_figures(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    logs = DailyLog.objects.filter(patient=OuterRef("pk"))
    latest = logs.order_by("-date")
    return patients.annotate(
        local_date=_local_today(),
        first_log_date=Subquery(logs.order_by("date").values("date")[:1]),
        last_log_date=Subquery(latest.values("date")[:1]),
        latest_pain=Subquery(latest.values("pain")[:1]),
    ).annotate(
        **_reference_window(
            "baseline",
            OuterRef("first_log_date"),
            ExpressionWrapper(
                OuterRef("first_log_date") + timedelta(days=progress.BASELINE_DAYS - 1),
                output_field=DateField(),
            ),
        ),
        **_reference_window(
            "current",
            ExpressionWrapper(
                OuterRef("local_date") - timedelta(days=progress.CURRENT_DAYS - 1),
                output_field=DateField(),
            ),
            OuterRef("local_date"),
        ),
    )


def _reference_open_count(severity: str) -> Coalesce:
    counts = (
        Alert.objects.filter(patient=OuterRef("pk"), status=Alert.Status.OPEN, severity=severity)
        .order_by()
        .values("patient")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def _reference_alert_triage(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    most_urgent = (
        Alert.objects.filter(patient=OuterRef("pk"), status=Alert.Status.OPEN)
        .annotate(rank=severity_rank())
        .order_by("rank", "opened_at")
    )
    return patients.annotate(
        open_emergency=_reference_open_count("emergency"),
        open_urgent=_reference_open_count("urgent"),
        open_routine=_reference_open_count("routine"),
        alert_tier=Coalesce(
            Subquery(most_urgent.values("rank")[:1], output_field=IntegerField()),
            Value(NO_ALERT_TIER),
        ),
        alert_waiting_since=Subquery(most_urgent.values("opened_at")[:1]),
    )


ANNOTATIONS = (
    "local_date",
    "first_log_date",
    "last_log_date",
    "latest_pain",
    "baseline_sum",
    "baseline_n",
    "current_sum",
    "current_n",
    "open_emergency",
    "open_urgent",
    "open_routine",
    "alert_tier",
    "alert_waiting_since",
)


def _reference_order(patients: QuerySet[Patient]) -> list[Any]:
    def days(expression: Any, n: int) -> ExpressionWrapper[Any]:
        return ExpressionWrapper(expression + timedelta(days=n), output_field=DateField())

    annotated = (
        _reference_alert_triage(_reference_log_figures(patients))
        .annotate(
            baseline_mean=_mean(
                OuterRef("first_log_date"),
                days(OuterRef("first_log_date"), progress.BASELINE_DAYS - 1),
            ),
            current_mean=_mean(
                days(OuterRef("local_date"), -(progress.CURRENT_DAYS - 1)),
                OuterRef("local_date"),
            ),
        )
        .annotate(pain_delta=F("current_mean") - F("baseline_mean"))
        .annotate(
            log_tier=Case(
                When(pain_delta__gt=0, then=Value(WORSENING_TIER)),
                When(missed_logs(), then=Value(MISSED_LOGS_TIER)),
                default=Value(REST_TIER),
                output_field=IntegerField(),
            )
        )
    )
    return list(
        annotated.order_by(
            "alert_tier",
            F("alert_waiting_since").asc(nulls_last=True),
            "log_tier",
            Case(When(log_tier=MISSED_LOGS_TIER, then=F("last_log_date"))).asc(nulls_first=True),
            F("pain_delta").desc(nulls_last=True),
            F("last_log_date").asc(nulls_last=True),
            "last_name",
            "first_name",
            "id",
        ).values_list("id", flat=True)
    )


def _seed(clinician: Clinician, rng: random.Random, n: int = 70) -> None:
    patients = [
        PatientFactory.create(
            clinic=clinician.clinic,
            care_team=[clinician],
            # Few names, so that name ties fall through to the id.
            last_name=rng.choice(["Ames", "Baker", "Cole"]),
            first_name=rng.choice(["Ann", "Bob"]),
            timezone=rng.choice(ZONES),
        )
        for _ in range(n)
    ]
    logs: dict[tuple[Any, date], int] = {}  # one log per patient and day
    with time_machine.travel(NOW, tick=False):
        for patient in patients:
            today = patient.local_today()
            shape = rng.randrange(8)
            if shape == 0:
                continue  # never logged
            first = today - timedelta(days=rng.choice([2, 5, 8, 30, 90]))
            base = rng.choice(PATTERNS)
            for i, pain in enumerate(base):
                logs[patient, first + timedelta(days=i)] = pain
            if shape == 1:
                continue  # a baseline only: silent since
            current = rng.choice(PATTERNS)
            # The last log today, 1-3 days ago (3 is "missed"), or 10 days ago.
            last = today - timedelta(days=rng.choice([0, 0, 1, 2, 3, 10]))
            for i, pain in enumerate(reversed(current)):
                logs.setdefault((patient, last - timedelta(days=i)), pain)
            if shape == 2:
                # Dated past the patient's local today (UTC's date, in Pago Pago).
                logs[patient, today + timedelta(days=1)] = rng.randrange(11)
    DailyLog.objects.bulk_create(
        DailyLog(patient=patient, date=day, pain=pain) for (patient, day), pain in logs.items()
    )

    # Edits, moved dates, backfills before the first log, deletions.
    stored = list(DailyLog.objects.filter(patient__in=patients).order_by("patient", "date"))
    for log in rng.sample(stored, len(stored) // 6):
        DailyLog.objects.filter(pk=log.pk).update(pain=rng.randrange(11))
    for log in rng.sample(stored, len(stored) // 12):
        moved = log.date - timedelta(days=rng.choice([1, 4, 20]))
        if not DailyLog.objects.filter(patient_id=log.patient_id, date=moved).exists():
            DailyLog.objects.filter(pk=log.pk).update(date=moved)
    for log in rng.sample(stored, len(stored) // 12):
        DailyLog.objects.filter(pk=log.pk).delete()

    # Alerts: shared opened_at instants (ties), several per patient, closed ones.
    instants = [NOW - timedelta(hours=h) for h in (1, 5, 5, 30)]
    rules = ["RF-CES-01", "RF-NEU-01", "NR-PAIN-01"]
    for patient in rng.sample(patients, n // 3):
        for rule in rng.sample(rules, rng.randrange(1, 3)):
            at = rng.choice(instants)
            Alert.objects.create(
                patient=patient,
                rule=rule,
                rule_version=1,
                severity=rng.choice(["emergency", "urgent", "routine"]),
                status=rng.choice(["open", "open", "acknowledged", "resolved"]),
                last_fired_at=at,
                opened_at=at,
            )


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_it_orders_the_caseload_as_the_annotations_did(clinician, seed):
    _seed(clinician, random.Random(seed))
    for at in (NOW, NOW + timedelta(hours=3), NOW + timedelta(days=2)):
        with time_machine.travel(at, tick=False):
            expected = _reference_order(Patient.objects.visible_to(clinician.user))
            assert list(caseload_list(user=clinician.user).values_list("id", flat=True)) == (
                expected
            )


def test_it_filters_and_orders_the_dashboard_as_before(clinician):
    _seed(clinician, random.Random(7))
    user = clinician.user
    with time_machine.travel(NOW, tick=False):
        for filters in (
            CaseloadFilters(),
            CaseloadFilters(search="ann"),
            CaseloadFilters(alerts="any"),
            CaseloadFilters(stale=True),
            CaseloadFilters(mcid=False),
        ):
            rows = list(dashboard_caseload(user=user, filters=filters).values_list("id", flat=True))
            assert rows == _reference_order(Patient.objects.filter(pk__in=rows)), filters


def test_the_seeded_data_has_the_cases_it_claims(clinician):
    # Guards the test above against data that stopped exercising the order's keys.
    _seed(clinician, random.Random(1))
    with time_machine.travel(NOW, tick=False):
        # The annotations, as the caseload rows carry them.
        rows = [vars(p) for p in caseload_list(user=clinician.user)]
    assert {r["alert_tier"] for r in rows} >= {0, 1, 2, 3}
    assert any(r["last_log_date"] is None for r in rows)
    logged = [r for r in rows if r["last_log_date"] is not None]
    assert any(r["last_log_date"] > r["local_date"] for r in logged)
    assert any((r["local_date"] - r["last_log_date"]).days == 3 for r in logged)
    deltas = [
        (
            r["current_sum"] * r["baseline_n"] - r["baseline_sum"] * r["current_n"],
            r["baseline_n"] * r["current_n"],
        )
        for r in rows
        if r["baseline_n"] and r["current_n"]
    ]
    assert any(d > 0 for d, _ in deltas)
    assert len(set(deltas)) < len(deltas)  # equal deltas: ties


@pytest.mark.parametrize("seed", [1, 2])
def test_its_annotations_are_the_orm_definitions_values(clinician, seed):
    _seed(clinician, random.Random(seed))
    patients = Patient.objects.visible_to(clinician.user).order_by("pk")
    for at in (NOW, NOW + timedelta(days=2)):
        with time_machine.travel(at, tick=False):
            rows = list(with_alert_triage(with_log_figures(patients)).values_list(*ANNOTATIONS))
            expected = _reference_alert_triage(_reference_log_figures(patients))
            assert rows == list(expected.values_list(*ANNOTATIONS))
    # Every annotation takes more than one value here (NULLs included where they can be).
    assert all(len({row[i] for row in rows}) > 1 for i in range(len(ANNOTATIONS)))
