"""`config.pagination.CountedPaginator`: Django's pages, counts and errors, the count read
from the page's own query (a window count) instead of a COUNT query of its own."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.pagination import CountedPaginator
from patients.models import Clinic, Patient
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

NUMBERS: list[Any] = [1, 2, 3, 4, "1", "3", 2.0, 0, -1, "0", "abc", "", None, 1.5, "2.5", 99]


def _patients(clinic: Clinic, n: int) -> Any:
    for i in range(n):
        PatientFactory.create(clinic=clinic, last_name=f"P{i:02}")
    return Patient.objects.filter(clinic=clinic).order_by("last_name", "id")


def _answer(paginator: Paginator[Any], number: Any, *, get: bool) -> Any:
    try:
        page = paginator.get_page(number) if get else paginator.page(number)
    except (EmptyPage, PageNotAnInteger) as exc:
        return type(exc).__name__, str(exc)
    return (
        [p["id"] if isinstance(p, dict) else p.pk for p in page.object_list],
        page.number,
        paginator.count,
        paginator.num_pages,
        page.has_next(),
        page.has_previous(),
    )


@pytest.mark.parametrize("size", [0, 1, 5, 6])
@pytest.mark.parametrize("get", [False, True], ids=["page", "get_page"])
def test_it_answers_as_djangos_paginator(clinic, size, get):
    patients = _patients(clinic, size)
    for values in (False, True):
        rows = patients.values("id", "last_name") if values else patients
        for number in NUMBERS:
            expected = _answer(Paginator(rows, 2), number, get=get)
            assert _answer(CountedPaginator(rows, 2), number, get=get) == expected, (values, number)


def test_a_page_in_range_is_one_query(clinic):
    patients = _patients(clinic, 5)
    with CaptureQueriesContext(connection) as ctx:
        page = CountedPaginator(patients, 2).page(2)
        assert (page.paginator.count, page.has_next()) == (5, True)
    assert len(ctx.captured_queries) == 1
    assert "COUNT(*) OVER ()" in ctx.captured_queries[0]["sql"]


def test_the_last_page_asked_for_by_name_counts_first(clinic):
    """DRF's "last" page needs the count before the page: Django's COUNT, then the page."""
    patients = _patients(clinic, 5)
    paginator = CountedPaginator(patients, 2)
    with CaptureQueriesContext(connection) as ctx:
        shown = [p.last_name for p in paginator.page(paginator.num_pages).object_list]
    assert shown == ["P04"]
    assert len(ctx.captured_queries) == 2
