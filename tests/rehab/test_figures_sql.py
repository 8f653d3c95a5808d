"""The SQL that restates a progress figure for speed is held to its one definition in
Python (rehab/progress.py) over generated logs: the caseload's figures, the dashboard's
MCID filter and the review rule NR-PROG-01 (docs/clinical-record.md § Progress figures).

Pains are small integers and windows short, so that exact ties (a change of exactly
-2 points, exactly -30 %) come up often: those are where a restatement in floats or with
a strict inequality would part from the definition.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dashboard.selectors import _mcid_reached
from patients.models import Patient
from programs.models import ProgramAssignment
from rehab import progress
from rehab.models import DailyLog
from rehab.selectors.logs import figures_of, with_log_figures
from rehab.selectors.review import no_improvement_firing

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)  # Europe/London, the cast patient's zone, at NOW
# Days back from today a log may fall on: the baseline and current windows overlap for
# the short histories and are apart for the long ones.
HISTORY_DAYS = 21

# Each day at most once; pain 0..10 as the API allows.
LOGS = st.dictionaries(
    keys=st.integers(min_value=0, max_value=HISTORY_DAYS - 1),
    values=st.integers(min_value=0, max_value=10),
    max_size=HISTORY_DAYS,
)
# Baseline 20/3, current 14/3: down exactly 2 points and exactly 30 %, the MCID reached
# and NR-PROG-01 not firing, both on the boundary.
EXACT_TIE = {20: 7, 19: 7, 18: 6, 2: 5, 1: 4, 0: 5}
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    # One patient from the fixed cast for every example; each example writes its own logs.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(autouse=True)
def _frozen_time() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _write(patient: Patient, logs: dict[int, int]) -> list[tuple[date, int]]:
    DailyLog.objects.filter(patient=patient).delete()
    pains = [(TODAY - timedelta(days=back), pain) for back, pain in logs.items()]
    DailyLog.objects.bulk_create(
        DailyLog(patient=patient, date=day, pain=pain) for day, pain in pains
    )
    return pains


@EXAMPLES
@given(logs=LOGS)
@example(logs=EXACT_TIE)
def test_the_caseload_figures_are_the_python_figures(patient, logs):
    pains = _write(patient, logs)

    row = with_log_figures(Patient.objects.filter(pk=patient.pk)).get()

    expected = progress.progress(pains, today=TODAY)
    got = figures_of(row)
    assert (got.baseline_pain, got.current_pain_7d, got.change, got.percent_change) == (
        expected.baseline_pain,
        expected.current_pain_7d,
        expected.change,
        expected.percent_change,
    )
    assert got.mcid_reached is expected.mcid_reached


@EXAMPLES
@given(logs=LOGS)
@example(logs=EXACT_TIE)
def test_the_dashboards_mcid_filter_is_the_python_mcid(patient, logs):
    pains = _write(patient, logs)

    (reached,) = (
        with_log_figures(Patient.objects.filter(pk=patient.pk))
        .annotate(reached=_mcid_reached())
        .values_list("reached", flat=True)
    )

    baseline, current = progress.means(pains, today=TODAY)
    assert reached is progress.mcid_reached(baseline, current)


@EXAMPLES
@given(logs=LOGS)
@example(logs=EXACT_TIE)
def test_no_improvement_fires_exactly_when_python_says_under_30_percent_down(patient, logs):
    ProgramAssignment.objects.get_or_create(
        patient=patient, defaults={"name": "Sciatica", "start_date": TODAY - timedelta(days=60)}
    )
    pains = _write(patient, logs)

    fired = patient.pk in no_improvement_firing(now=NOW)

    # NR-PROG-01's windows are the progress figures' (7 days, 3 logs at least).
    baseline, current = progress.means(pains, today=TODAY)
    percent = progress.percent_change(baseline, current)
    assert fired is (percent is not None and percent > -30)
