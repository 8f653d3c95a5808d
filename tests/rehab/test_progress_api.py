from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from patients.models import AuditEvent, Patient
from rehab.models import DailyLog
from tests.factories import ClinicianFactory, PatientFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


def add_logs(patient: Patient, start: date, pains: list[int]) -> None:
    DailyLog.objects.bulk_create(
        DailyLog(patient=patient, date=start + timedelta(days=i), pain=pain, function=5)
        for i, pain in enumerate(pains)
    )


def responder(patient: Patient) -> None:
    # Baseline 7, 8, 7 (22/3); last week 3, 3, 4 (10/3): -4.0 points, -54.5 %.
    add_logs(patient, date(2026, 10, 1), [7, 8, 7])
    add_logs(patient, TODAY - timedelta(days=2), [3, 3, 4])


EXPECTED = {
    "baseline_pain": 7.3,
    "current_pain_7d": 3.3,
    "change": -4.0,
    "percent_change": -54.5,
    "mcid_reached": True,
    "days_logged": 6,
}


def test_it_gives_the_patient_their_progress(patient_client, patient):
    responder(patient)
    response = patient_client.get("/api/v1/me/progress/")
    assert response.status_code == 200
    data = response.json()
    assert {k: data[k] for k in EXPECTED} == EXPECTED
    assert [p["date"] for p in data["series"]] == sorted(p["date"] for p in data["series"])
    assert data["series"][0] == {
        "date": "2026-10-01",
        "pain": 7,
        "leg_pain": None,
        "back_pain": None,
        "function": 5,
    }


def test_it_gives_nulls_for_a_new_patient(patient_client, patient):
    add_logs(patient, TODAY - timedelta(days=1), [5, 5])
    data = patient_client.get("/api/v1/me/progress/").json()
    assert data["baseline_pain"] is None
    assert data["current_pain_7d"] is None
    assert data["change"] is None
    assert data["percent_change"] is None
    assert data["mcid_reached"] is False
    assert data["days_logged"] == 2


@pytest.mark.parametrize(
    ("zone", "utc_now", "local_today"),
    [
        # UTC+14: at 12:00 UTC on 20 November it is already the 21st in Kiritimati.
        ("Pacific/Kiritimati", datetime(2026, 11, 20, 12, 0, tzinfo=UTC), date(2026, 11, 21)),
        # UTC-11: at 05:00 UTC on 20 November it is still the 19th in Pago Pago.
        ("Pacific/Pago_Pago", datetime(2026, 11, 20, 5, 0, tzinfo=UTC), date(2026, 11, 19)),
    ],
)
def test_it_measures_the_last_seven_days_in_the_patients_time_zone(
    patient_client, patient, zone, utc_now, local_today
):
    patient.timezone = zone
    patient.save()
    day = local_today
    # The patient's window is day-6..day: 9, 6, 3, 3 = 5.25. The server's UTC date is a
    # day off either way, and either wrong window holds other logs: day-5..day+1 gives
    # 6, 3, 3 = 4.0 and day-7..day-1 gives 0, 9, 6, 3 = 4.5.
    for offset, pain in ((-7, 0), (-6, 9), (-5, 6), (-4, 3), (0, 3)):
        DailyLog.objects.create(patient=patient, date=day + timedelta(days=offset), pain=pain)
    with time_machine.travel(utc_now, tick=False):
        data = patient_client.get("/api/v1/me/progress/").json()
    assert data["current_pain_7d"] == 5.3


def test_it_gives_the_clinician_the_same_figures(clinician_client, patient):
    responder(patient)
    data = clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/progress/").json()
    assert {k: data[k] for k in EXPECTED} == EXPECTED


def test_it_windows_the_clinicians_series_without_changing_the_figures(clinician_client, patient):
    responder(patient)
    url = f"/api/v1/clinician/patients/{patient.pk}/progress/"
    data = clinician_client.get(url, {"from": "2026-11-01"}).json()
    assert [p["date"] for p in data["series"]] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert data["baseline_pain"] == 7.3


def test_it_scopes_progress(
    clinician_client, other_clinic_clinician_client, patient_client, anon_client, patient
):
    url = f"/api/v1/clinician/patients/{patient.pk}/progress/"
    assert other_clinic_clinician_client.get(url).status_code == 404
    assert patient_client.get(url).status_code == 403
    assert anon_client.get(url).status_code == 401
    assert clinician_client.get("/api/v1/me/progress/").status_code == 403
    assert anon_client.get("/api/v1/me/progress/").status_code == 401


def test_it_audits_progress_reads(clinician_client, patient, clinician):
    clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/progress/")
    event = AuditEvent.objects.get(object_type="progress")
    assert (event.actor, event.patient_id, event.action) == (clinician.user, patient.pk, "read")


# --------------------------------------------------------------------------- /me/


def test_it_gives_the_patient_their_profile(patient_client, patient, clinician):
    data = patient_client.get("/api/v1/me/").json()
    assert data["id"] == str(patient.pk)
    assert data["clinic"] == "Riverside Physio"
    assert data["local_today"] == "2026-11-20"
    assert data["care_team"] == [
        {"id": str(clinician.pk), "name": "Alice Physio", "role": "physiotherapist"}
    ]


def test_it_refuses_me_to_clinicians_and_anonymous(clinician_client, anon_client):
    assert clinician_client.get("/api/v1/me/").status_code == 403
    assert anon_client.get("/api/v1/me/").status_code == 401


# --------------------------------------------------------------------------- clinician logs


def test_it_lists_a_patients_logs_for_the_clinician(clinician_client, patient):
    add_logs(patient, TODAY - timedelta(days=4), [5, 4, 3, 2, 1])
    url = f"/api/v1/clinician/patients/{patient.pk}/logs/"
    data = clinician_client.get(url, {"from": "2026-11-18"}).json()
    assert data["count"] == 3
    assert [r["pain"] for r in data["results"]] == [1, 2, 3]
    assert clinician_client.get(url, {"to": "nope"}).status_code == 400


def test_it_scopes_the_clinicians_log_list(
    other_clinic_clinician_client, patient_client, anon_client, patient
):
    url = f"/api/v1/clinician/patients/{patient.pk}/logs/"
    assert other_clinic_clinician_client.get(url).status_code == 404
    assert patient_client.get(url).status_code == 403
    assert anon_client.get(url).status_code == 401


# --------------------------------------------------------------------------- caseload


CASELOAD = "/api/v1/clinician/patients/"


def test_it_lists_the_clinics_caseload_with_log_figures(
    clinician_client, patient, other_patient, clinician
):
    responder(patient)
    unlogged = PatientFactory.create(
        clinic=clinician.clinic, user=None, email="new@example.com", first_name="N", last_name="U"
    )
    data = clinician_client.get(CASELOAD).json()
    assert data["count"] == 2  # other_patient is another clinic's
    rows = {row["id"]: row for row in data["results"]}
    row = rows[str(patient.pk)]
    assert row["last_log_date"] == "2026-11-20"
    assert row["latest_pain"] == 4
    assert row["baseline_pain"] == 7.3
    assert row["pain_change_pct"] == -54.5
    assert row["mcid_reached"] is True
    empty = rows[str(unlogged.pk)]
    assert (empty["last_log_date"], empty["latest_pain"], empty["baseline_pain"]) == (
        None,
        None,
        None,
    )
    assert empty["registered"] is False


def test_it_agrees_with_the_progress_endpoint(clinician_client, patient):
    add_logs(patient, date(2026, 10, 1), [9, 8, 8, 7, 9])
    add_logs(patient, TODAY - timedelta(days=5), [5, 6, 4, 5, 3, 4])
    progress = clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/progress/").json()
    row = clinician_client.get(CASELOAD).json()["results"][0]
    assert row["baseline_pain"] == progress["baseline_pain"]
    assert row["current_pain_7d"] == progress["current_pain_7d"]
    assert row["pain_change_pct"] == progress["percent_change"]


@pytest.mark.parametrize(
    ("baseline", "current", "expected"),
    [
        # Baseline 4/3, current 1/4: -1300/16 = -81.25 % exactly, -81.3 rounded half away
        # from zero. Float means (1.3333333333333333) land just above the tie: -81.2.
        ([2, 1, 1], [1, 0, 0, 0], {"percent_change": -81.3, "mcid_reached": False}),
        # Baseline 8/3, current 2/3: a change of exactly -2 and -75 %, so the MCID is
        # reached; float means give -1.9999999999999998 (> -2) and miss it.
        ([3, 3, 2], [1, 1, 0], {"percent_change": -75.0, "mcid_reached": True}),
        # 29/4 -> 10/3: -54.0 % from the unrounded means, -54.8 from the rounded ones.
        ([7, 7, 7, 8], [3, 3, 4], {"percent_change": -54.0, "mcid_reached": True}),
        # 20/3 -> 14/3: exactly -2 points and -30 %, reached (rounded means: -29.9 %).
        ([7, 7, 6], [5, 5, 4], {"percent_change": -30.0, "mcid_reached": True}),
        # 14/3 -> 19/7: a change of -1.95, shown as -2.0, is not two points.
        ([5, 5, 4], [3, 3, 3, 3, 3, 2, 2], {"percent_change": -41.8, "mcid_reached": False}),
        # A zero baseline has no percent change; nothing can drop two points from it.
        ([0, 0, 0], [2, 2, 2], {"percent_change": None, "mcid_reached": False}),
        # Too few logs in either window: no figures at all.
        ([5, 5], [2, 2, 2], {"percent_change": None, "mcid_reached": False}),
        ([5, 5, 5], [2, 2], {"percent_change": None, "mcid_reached": False}),
    ],
)
def test_it_gives_the_caseload_the_exact_figures_of_the_progress_endpoint(
    clinician_client, patient, baseline, current, expected
):
    add_logs(patient, date(2026, 10, 1), baseline)
    add_logs(patient, TODAY - timedelta(days=len(current) - 1), current)
    progress = clinician_client.get(f"/api/v1/clinician/patients/{patient.pk}/progress/").json()
    row = clinician_client.get(CASELOAD).json()["results"][0]
    assert {k: progress[k] for k in expected} == expected
    assert (row["pain_change_pct"], row["mcid_reached"]) == (
        expected["percent_change"],
        expected["mcid_reached"],
    )
    assert (row["baseline_pain"], row["current_pain_7d"]) == (
        progress["baseline_pain"],
        progress["current_pain_7d"],
    )


def test_it_searches_the_caseload(clinician_client, patient, clinician):
    PatientFactory.create(
        clinic=clinician.clinic, first_name="Zed", last_name="Zulu", user=None, email="z@x.example"
    )
    data = clinician_client.get(CASELOAD, {"search": "zul"}).json()
    assert [r["last_name"] for r in data["results"]] == ["Zulu"]


def test_it_keeps_the_caseload_query_count_flat(
    clinician_client, clinician, django_assert_max_num_queries
):
    def grow(n: int) -> None:
        for _ in range(n):
            p = PatientFactory.create(clinic=clinician.clinic, care_team=[clinician])
            add_logs(p, TODAY - timedelta(days=9), [7, 6, 6, 5, 5, 4, 4, 3, 3, 2])

    grow(3)
    with django_assert_max_num_queries(16) as small:
        assert clinician_client.get(CASELOAD).status_code == 200
    grow(30)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert clinician_client.get(CASELOAD).json()["count"] == 33


def test_it_scopes_the_caseload(
    other_clinic_clinician_client, patient_client, anon_client, patient, other_patient
):
    data = other_clinic_clinician_client.get(CASELOAD).json()
    assert [r["id"] for r in data["results"]] == [str(other_patient.pk)]
    assert patient_client.get(CASELOAD).status_code == 403
    assert anon_client.get(CASELOAD).status_code == 401


def test_it_audits_each_patient_shown_in_the_caseload(clinician_client, patient, clinician):
    ClinicianFactory.create(clinic=clinician.clinic)
    clinician_client.get(CASELOAD)
    events = AuditEvent.objects.filter(object_type="caseload_row")
    assert [e.patient_id for e in events] == [patient.pk]
