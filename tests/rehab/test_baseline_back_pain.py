"""The background rules' back-pain baseline, read in one statement per evaluation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rehab.models import DailyLog
from rehab.selectors import safety_inputs

pytestmark = pytest.mark.django_db

FIRST = date(2026, 3, 2)


def _log(patient, day: date, back_pain: int | None) -> None:
    DailyLog.objects.create(patient=patient, date=day, pain=5, back_pain=back_pain)


def test_it_averages_back_pain_over_the_first_week_only(patient, django_assert_num_queries):
    for n, back in enumerate((2, None, 4, 6, 3)):
        _log(patient, FIRST + timedelta(days=n), back)
    _log(patient, FIRST + timedelta(days=6), 5)  # the baseline's last day
    _log(patient, FIRST + timedelta(days=7), 10)  # after it
    with django_assert_num_queries(1):
        assert (
            safety_inputs._baseline_back_pains([patient.pk])[patient.pk] == 4.0
        )  # (2 + 4 + 6 + 3 + 5) / 5


def test_it_gives_no_baseline_under_three_answers(patient):
    _log(patient, FIRST, 2)
    _log(patient, FIRST + timedelta(days=1), None)
    _log(patient, FIRST + timedelta(days=2), 4)
    _log(patient, FIRST + timedelta(days=9), 6)
    assert safety_inputs._baseline_back_pains([patient.pk])[patient.pk] is None


def test_it_gives_no_baseline_without_logs(patient):
    assert safety_inputs._baseline_back_pains([patient.pk])[patient.pk] is None
