from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from patients.models import Clinician, Patient
from rehab.models import Alert, DailyLog
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

CASELOAD = "/api/v1/clinician/patients/"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


def make_patient(clinician: Clinician, name: str) -> Patient:
    return PatientFactory.create(
        clinic=clinician.clinic, care_team=[clinician], first_name=name, last_name=name
    )


def open_alert(patient: Patient, severity: str, rule: str, waited: timedelta) -> Alert:
    return Alert.objects.create(
        patient=patient,
        rule=rule,
        rule_version=1,
        severity=severity,
        last_fired_at=NOW - waited,
        opened_at=NOW - waited,
    )


def test_it_orders_the_caseload_by_alert_tier_then_waiting_time(clinician_client, clinician):
    quiet = make_patient(clinician, "Quiet")
    routine = make_patient(clinician, "Routine")
    urgent_new = make_patient(clinician, "UrgentNew")
    urgent_old = make_patient(clinician, "UrgentOld")
    emergency = make_patient(clinician, "Emergency")
    open_alert(routine, "routine", "NR-PAIN-01", timedelta(days=3))
    open_alert(urgent_new, "urgent", "RF-NEU-01", timedelta(minutes=5))
    open_alert(urgent_old, "urgent", "RF-TH-01", timedelta(hours=2))
    # An emergency outranks an older urgent alert of the same patient and of others.
    open_alert(emergency, "emergency", "RF-CES-01", timedelta(minutes=1))
    open_alert(emergency, "urgent", "RF-NEU-01", timedelta(days=1))
    # Acknowledged alerts no longer count as waiting.
    acked = open_alert(quiet, "emergency", "RF-CES-02", timedelta(days=1))
    Alert.objects.filter(pk=acked.pk).update(status="acknowledged")

    rows = clinician_client.get(CASELOAD).json()["results"]
    assert [r["last_name"] for r in rows] == [
        "Emergency",
        "UrgentOld",
        "UrgentNew",
        "Routine",
        "Quiet",
    ]
    assert rows[0]["open_alerts"] == {"emergency": 1, "urgent": 1, "routine": 0}
    assert rows[-1]["open_alerts"] == {"emergency": 0, "urgent": 0, "routine": 0}


def test_it_puts_worsening_pain_first_among_patients_without_alerts(clinician_client, clinician):
    better = make_patient(clinician, "Better")
    worse = make_patient(clinician, "Worse")
    for patient, pains in ((better, [8, 8, 8, 3, 3, 3]), (worse, [4, 4, 4, 8, 8, 8])):
        days = [date(2026, 10, 1) + timedelta(days=i) for i in range(3)]
        days += [TODAY - timedelta(days=i) for i in range(3)]
        DailyLog.objects.bulk_create(
            DailyLog(patient=patient, date=day, pain=pain)
            for day, pain in zip(days, pains, strict=True)
        )
    rows = clinician_client.get(CASELOAD).json()["results"]
    assert [r["last_name"] for r in rows] == ["Worse", "Better"]
    assert rows[0]["pain_change_pct"] == 100.0


def test_it_keeps_the_ordered_caseload_query_count_flat(
    clinician_client, clinician, django_assert_max_num_queries
):
    def grow(n: int) -> None:
        for i in range(n):
            patient = make_patient(clinician, f"P{i}")
            open_alert(patient, "urgent", "RF-TH-01", timedelta(minutes=i))

    grow(2)
    with django_assert_max_num_queries(16) as small:
        clinician_client.get(CASELOAD)
    grow(20)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert clinician_client.get(CASELOAD).json()["count"] == 22


# --------------------------------------------------------------------------- local dates


@pytest.mark.parametrize(
    ("zone", "utc_now", "local_today"),
    [
        # UTC+14: at 12:00 UTC on 20 November it is already the 21st in Kiritimati.
        ("Pacific/Kiritimati", datetime(2026, 11, 20, 12, 0, tzinfo=UTC), date(2026, 11, 21)),
        # UTC-11: at 05:00 UTC on 20 November it is still the 19th in Pago Pago.
        ("Pacific/Pago_Pago", datetime(2026, 11, 20, 5, 0, tzinfo=UTC), date(2026, 11, 19)),
        # New York left daylight saving at 06:00 UTC on 1 November 2026: at 04:30 UTC on
        # the 2nd it is 23:30 on the 1st (the summer offset, UTC-4, would say the 2nd).
        ("America/New_York", datetime(2026, 11, 2, 4, 30, tzinfo=UTC), date(2026, 11, 1)),
        # London entered summer time at 01:00 UTC on 29 March 2026: at 23:30 UTC that day
        # it is already the 30th (the winter offset, UTC+0, would say the 29th).
        ("Europe/London", datetime(2026, 3, 29, 23, 30, tzinfo=UTC), date(2026, 3, 30)),
    ],
)
def test_it_takes_each_patients_seven_days_in_their_own_time_zone(
    clinician_client, clinician, zone, utc_now, local_today
):
    patient = make_patient(clinician, "Local")
    patient.timezone = zone
    patient.save(update_fields=["timezone"])
    # The patient's window is day-6..day: 9, 6, 3, 3 = 5.25. A window a day late
    # (day-5..day+1: 6, 3, 3 = 4.0) or a day early (day-7..day-1: 0, 9, 6, 3 = 4.5) differs.
    DailyLog.objects.bulk_create(
        DailyLog(patient=patient, date=local_today + timedelta(days=offset), pain=pain)
        for offset, pain in ((-7, 0), (-6, 9), (-5, 6), (-4, 3), (0, 3))
    )
    with time_machine.travel(utc_now, tick=False):
        row = clinician_client.get(CASELOAD).json()["results"][0]
        progress = clinician_client.get(f"{CASELOAD}{patient.pk}/progress/").json()
    assert row["current_pain_7d"] == 5.3
    assert progress["current_pain_7d"] == 5.3
    assert row["last_log_date"] == local_today.isoformat()


# --------------------------------------------------------------------------- scope, pages


def test_it_scopes_the_caseload_to_the_callers_clinic(
    clinician_client,
    other_clinic_clinician_client,
    patient_client,
    anon_client,
    patient,
    other_patient,
):
    assert [r["id"] for r in clinician_client.get(CASELOAD).json()["results"]] == [str(patient.pk)]
    assert [r["id"] for r in other_clinic_clinician_client.get(CASELOAD).json()["results"]] == [
        str(other_patient.pk)
    ]
    assert patient_client.get(CASELOAD).status_code == 403
    assert anon_client.get(CASELOAD).status_code == 401


def test_it_pages_the_caseload(clinician_client, clinician):
    names = [make_patient(clinician, f"P{i}").last_name for i in range(5)]
    first = clinician_client.get(CASELOAD, {"page_size": 2})
    assert first.status_code == 200
    data = first.json()
    assert set(data) == {"count", "next", "previous", "results"}
    assert data["count"] == 5
    assert data["previous"] is None
    assert "page=2" in data["next"]
    assert "page_size=2" in data["next"]
    assert [r["last_name"] for r in data["results"]] == names[:2]

    last = clinician_client.get(CASELOAD, {"page_size": 2, "page": 3}).json()
    assert last["next"] is None
    assert "page=2" in last["previous"]
    assert [r["last_name"] for r in last["results"]] == names[4:]

    # The project's paginator is DRF's: a page past the last is a 404.
    beyond = clinician_client.get(CASELOAD, {"page_size": 2, "page": 4})
    assert beyond.status_code == 404
    assert "detail" in beyond.json()
