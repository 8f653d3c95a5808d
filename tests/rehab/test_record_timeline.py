"""The clinician's patient timeline: order, content, pagination, query count."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patients.models import AuditEvent
from programs import services as program_services
from rehab.models import Alert
from rehab.selectors import record as selectors
from tests.factories import PatientFactory
from tests.programs.factories import make_template
from tests.rehab.factories_record import (
    DailyLogFactory,
    DiagnosisFactory,
    ImagingFindingFactory,
    InterventionFactory,
    ProvocativeTestFactory,
    QuestionnaireResponseFactory,
)

pytestmark = pytest.mark.django_db

# A Monday, so that weeks are easy to read.
START = dt.date(2026, 3, 2)


def _timeline_url(patient) -> str:
    return f"/api/v1/clinician/patients/{patient.pk}/timeline/"


def _noon(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC)


def _build_record(patient, *, weeks: int = 2) -> None:
    for day in range(7 * weeks):
        DailyLogFactory.create(
            patient=patient, date=START + dt.timedelta(days=day), pain=8 - day // 7
        )
    InterventionFactory.create(patient=patient, date=START + dt.timedelta(days=2))
    ImagingFindingFactory.create(patient=patient, date=START, modality="radiograph")
    ProvocativeTestFactory.create(patient=patient, performed_at=_noon(START + dt.timedelta(days=1)))
    ProvocativeTestFactory.create(
        patient=patient,
        side="left",
        result="negative",
        performed_at=_noon(START + dt.timedelta(days=1)),
    )
    DiagnosisFactory.create(
        patient=patient,
        name="Disc re-herniation",
        date_from=START,
        date_to=START + dt.timedelta(days=5),
    )
    for days, score in ((0, 18), (14, 10)):
        QuestionnaireResponseFactory.create(
            patient=patient,
            score=Decimal(score),
            date=START + dt.timedelta(days=days),
            submitted_at=_noon(START + dt.timedelta(days=days)),
        )


def test_it_merges_the_record_newest_first(clinician_client, patient):
    _build_record(patient)
    body = clinician_client.get(_timeline_url(patient) + "?page_size=50").json()
    entries = body["results"]
    dates = [e["date"] for e in entries]
    assert dates == sorted(dates, reverse=True)
    assert [(e["date"], e["kind"]) for e in entries] == [
        ("2026-03-16", "questionnaire"),
        ("2026-03-15", "logs_week"),
        ("2026-03-08", "logs_week"),
        ("2026-03-07", "diagnosis_ended"),
        ("2026-03-04", "intervention"),
        ("2026-03-03", "provocative_tests"),
        ("2026-03-02", "questionnaire"),
        ("2026-03-02", "imaging"),
        ("2026-03-02", "diagnosis"),
    ]
    assert body["count"] == 9


def test_it_summarises_logs_one_week_at_a_time(clinician_client, patient):
    _build_record(patient)
    entries = clinician_client.get(_timeline_url(patient)).json()["results"]
    second, first = [e["details"] for e in entries if e["kind"] == "logs_week"]
    assert first["week_start"] == "2026-03-02"
    assert first["week_end"] == "2026-03-08"
    assert (first["days_logged"], first["mean_pain"]) == (7, 8.0)
    assert (second["days_logged"], second["mean_pain"]) == (7, 7.0)


def test_it_shows_an_examination_as_one_entry(clinician_client, patient):
    _build_record(patient)
    entries = clinician_client.get(_timeline_url(patient)).json()["results"]
    exam = next(e for e in entries if e["kind"] == "provocative_tests")
    assert exam["details"]["positive"] == 1
    assert [(t["side"], t["result"]) for t in exam["details"]["tests"]] == [
        ("left", "negative"),
        ("right", "positive"),
    ]


def test_it_shows_questionnaire_change_from_baseline(clinician_client, patient):
    _build_record(patient)
    entries = clinician_client.get(_timeline_url(patient)).json()["results"]
    latest, baseline = [e["details"] for e in entries if e["kind"] == "questionnaire"]
    assert baseline["baseline"] is True
    assert (latest["change"], latest["meaningful_change"], latest["direction"]) == (
        -8.0,
        True,
        "improved",
    )


def test_it_pages_through_the_timeline(clinician_client, patient):
    _build_record(patient)
    first = clinician_client.get(_timeline_url(patient) + "?page_size=4").json()
    assert first["count"] == 9
    assert first["previous"] is None
    assert len(first["results"]) == 4
    second = clinician_client.get(first["next"]).json()
    third = clinician_client.get(second["next"]).json()
    assert third["next"] is None
    ids = [e["id"] for page in (first, second, third) for e in page["results"]]
    assert len(ids) == len(set(ids)) == 9


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_it_reads_a_page_in_a_constant_number_of_queries(clinician_client, patient, clinic):
    _build_record(patient, weeks=1)
    small = _queries(clinician_client, _timeline_url(patient) + "?page_size=3")

    big = PatientFactory.create(clinic=clinic)
    _build_record(big, weeks=8)
    for day in range(10):
        InterventionFactory.create(patient=big, date=START + dt.timedelta(days=day))
        ProvocativeTestFactory.create(
            patient=big, performed_at=_noon(START) + dt.timedelta(days=day, hours=2)
        )
        ImagingFindingFactory.create(patient=big, date=START + dt.timedelta(days=day))
    assert _queries(clinician_client, _timeline_url(big) + "?page_size=3") == small
    assert _queries(clinician_client, _timeline_url(big) + "?page_size=10&page=3") == small


def test_it_takes_new_kinds_of_entry_from_one_more_source(patient, clinician):
    def messages(p):
        return [
            selectors.TimelineEntry(
                kind="message", date=START, id="m1", title="Clinic letter", data={}
            )
        ]

    _build_record(patient)
    entries = selectors.timeline_list(
        user=clinician.user, patient=patient, sources=(*selectors.TIMELINE_SOURCES, messages)
    )
    assert "message" in {e.kind for e in entries}
    assert len(entries) == 10


def test_it_shows_program_phases_and_alerts(clinician_client, patient, clinician):
    template = make_template(clinic=patient.clinic, phases=[(2, [3]), (4, [3])])
    today = patient.local_today()
    program = program_services.assignment_create(
        patient=patient, template=template, by=clinician, start_date=today, today=today
    )
    program_services.assignment_end(assignment=program, by=clinician, on=today, today=today)
    log = DailyLogFactory.create(patient=patient, date=today - dt.timedelta(days=1))
    Alert.objects.create(
        patient=patient,
        rule="RF-CES-05",
        rule_version=1,
        severity="emergency",
        log=log,
        last_fired_at=timezone.now(),
        opened_at=timezone.now(),
    )
    entries = clinician_client.get(_timeline_url(patient)).json()["results"]
    by_kind = {e["kind"]: e for e in entries}
    assert by_kind["program_phase"]["details"]["position"] == 1
    assert by_kind["program_phase"]["date"] == today.isoformat()
    assert by_kind["program_ended"]["date"] == today.isoformat()
    # An alert sits on the date of the log that raised it.
    assert by_kind["alert"]["date"] == log.date.isoformat()
    assert by_kind["alert"]["details"]["rule"] == "RF-CES-05"


def test_it_audits_reading_the_timeline(clinician_client, patient, clinician):
    clinician_client.get(_timeline_url(patient))
    assert AuditEvent.objects.filter(
        patient=patient, actor=clinician.user, action="read", object_type="timeline"
    ).exists()


def test_it_shows_an_empty_timeline_for_a_new_patient(clinician_client, patient):
    body = clinician_client.get(_timeline_url(patient)).json()
    assert body == {"count": 0, "next": None, "previous": None, "results": []}
