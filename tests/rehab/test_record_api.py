"""Clinician endpoints of the clinical record: writes, lists, bad input, scope, audit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from patients.models import AuditEvent
from rehab.models import (
    AssessedMark,
    Diagnosis,
    ImagingFinding,
    Intervention,
    ProvocativeTest,
    QuestionnaireDue,
)
from tests.factories import ClinicianFactory, PatientFactory
from tests.rehab.factories_record import (
    AssessedMarkFactory,
    DiagnosisFactory,
    InterventionFactory,
    QuestionnaireResponseFactory,
)

pytestmark = pytest.mark.django_db

BASE = "/api/v1/clinician/patients/{}/"


def _url(patient, tail: str) -> str:
    return BASE.format(patient.pk) + tail


def _today(patient) -> dt.date:
    today: dt.date = patient.local_today()
    return today


def _exam(**overrides):
    body = {
        "performed_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
        "tests": [
            {"test": "fair", "side": "right", "result": "positive", "concordant": True,
             "symptom_location": "right buttock", "provoked_pain": 7},
            {"test": "fair", "side": "left", "result": "negative"},
            {"test": "slr", "side": "right", "result": "negative", "angle_deg": 80},
        ],
    }  # fmt: skip
    body.update(overrides)
    return body


# --------------------------------------------------------------------------- interventions


def test_it_records_an_intervention_as_in_the_contract(clinician_client, patient, clinician):
    body = {
        # Planned for tomorrow, so that the "before" questionnaire is still ahead.
        "date": (_today(patient) + dt.timedelta(days=1)).isoformat(),
        "kind": "prolotherapy",
        "description": "First of three sessions",
        "agent": "dextrose 10% + lidocaine",
        "target": "sacrospinous ligament",
        "side": "right",
        "guidance": "ultrasound",
    }
    response = clinician_client.post(_url(patient, "interventions/"), body)
    assert response.status_code == 201
    out = response.json()
    assert {k: out[k] for k in body} == body
    assert out["session_number"] == 1
    assert out["course_id"] == out["id"]
    assert out["created_by"] == "Alice Physio"
    stored = Intervention.objects.get(pk=out["id"])
    assert stored.patient_id == patient.pk
    assert stored.created_by == clinician
    # Its questionnaires were scheduled with it: before, 1 week and 6 weeks after.
    assert set(
        QuestionnaireDue.objects.filter(intervention=stored).values_list("reason", flat=True)
    ) == {"pre_intervention", "post_intervention_1w", "post_intervention_6w"}
    assert AuditEvent.objects.filter(
        patient=patient, action="create", object_type="intervention", object_id=out["id"]
    ).exists()


def test_it_records_an_intervention_with_only_date_and_kind(clinician_client, patient):
    response = clinician_client.post(
        _url(patient, "interventions/"),
        {"date": _today(patient).isoformat(), "kind": "surgery", "side": None},
    )
    assert response.status_code == 201
    assert response.json()["side"] == ""
    assert response.json()["guidance"] == ""


def test_it_numbers_the_sessions_of_a_course(clinician_client, patient):
    today = _today(patient)
    first = clinician_client.post(
        _url(patient, "interventions/"),
        {"date": (today - dt.timedelta(days=21)).isoformat(), "kind": "prolotherapy"},
    ).json()
    second = clinician_client.post(
        _url(patient, "interventions/"),
        {"date": today.isoformat(), "kind": "prolotherapy", "course_id": first["course_id"]},
    )
    assert second.status_code == 201
    assert second.json()["course_id"] == first["course_id"]
    assert second.json()["session_number"] == 2
    again = clinician_client.post(
        _url(patient, "interventions/"),
        {
            "date": today.isoformat(),
            "kind": "prolotherapy",
            "course_id": first["course_id"],
            "session_number": 2,
        },
    )
    assert again.status_code == 400
    assert "session_number" in again.json()


def test_it_refuses_another_patients_course(clinician_client, patient, other_patient):
    elsewhere = InterventionFactory.create(patient=other_patient)
    body = {"date": _today(patient).isoformat(), "kind": "injection"}
    response = clinician_client.post(
        _url(patient, "interventions/"), {**body, "course_id": str(elsewhere.course_id)}
    )
    assert response.status_code == 400
    assert "course_id" in response.json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "laser"}, "kind"),
        ({"side": "top"}, "side"),
        ({"guidance": "mri"}, "guidance"),
        ({"doctor": "Dr Who"}, "doctor"),
        ({"date": "2026-02-30"}, "date"),
        ({"date": "yesterday"}, "date"),
        ({"date": None}, "date"),
        ({"session_number": "2"}, "session_number"),
        ({"session_number": 0}, "session_number"),
        ({"agent": "x" * 201}, "agent"),
        ({"kind": None}, "kind"),
    ],
)
def test_it_rejects_a_bad_intervention(clinician_client, patient, change, field):
    body = {"date": _today(patient).isoformat(), "kind": "injection", **change}
    response = clinician_client.post(_url(patient, "interventions/"), body)
    assert response.status_code == 400
    assert field in response.json()
    assert not Intervention.objects.exists()


def test_it_rejects_an_intervention_over_a_year_ahead(clinician_client, patient):
    day = _today(patient) + dt.timedelta(days=366)
    response = clinician_client.post(
        _url(patient, "interventions/"), {"date": day.isoformat(), "kind": "surgery"}
    )
    assert response.status_code == 400
    assert "date" in response.json()


def test_it_lists_interventions_newest_first(clinician_client, patient, other_patient):
    today = _today(patient)
    for days in (30, 2, 10):
        InterventionFactory.create(patient=patient, date=today - dt.timedelta(days=days))
    InterventionFactory.create(patient=other_patient)
    body = clinician_client.get(_url(patient, "interventions/")).json()
    assert body["count"] == 3
    assert [r["date"] for r in body["results"]] == [
        (today - dt.timedelta(days=d)).isoformat() for d in (2, 10, 30)
    ]


# --------------------------------------------------------------------------- provocative tests


def test_it_records_an_examination_of_both_sides(clinician_client, patient, clinician):
    response = clinician_client.post(_url(patient, "provocative-tests/"), _exam())
    assert response.status_code == 201
    tests = response.json()["tests"]
    assert [(t["test"], t["side"], t["result"]) for t in tests] == [
        ("fair", "right", "positive"),
        ("fair", "left", "negative"),
        ("slr", "right", "negative"),
    ]
    assert tests[0]["provoked_pain"] == 7
    assert tests[0]["concordant"] is True
    assert tests[1]["concordant"] is None
    assert tests[2]["angle_deg"] == 80
    assert tests[0]["examiner"] == "Alice Physio"
    assert ProvocativeTest.objects.filter(patient=patient, examiner=clinician).count() == 3
    assert AuditEvent.objects.filter(
        patient=patient, action="create", object_type="provocativetest"
    ).exists()


def test_it_records_another_clinician_of_the_clinic_as_examiner(clinician_client, patient):
    colleague = ClinicianFactory.create(clinic=patient.clinic)
    response = clinician_client.post(
        _url(patient, "provocative-tests/"), _exam(examiner_id=str(colleague.pk))
    )
    assert response.status_code == 201
    assert ProvocativeTest.objects.filter(examiner=colleague).count() == 3


def test_it_refuses_an_examiner_from_another_clinic(
    clinician_client, patient, other_clinic_clinician
):
    response = clinician_client.post(
        _url(patient, "provocative-tests/"), _exam(examiner_id=str(other_clinic_clinician.pk))
    )
    assert response.status_code == 400
    assert "examiner_id" in response.json()


def test_it_refuses_the_same_examination_twice(clinician_client, patient):
    body = _exam()
    assert clinician_client.post(_url(patient, "provocative-tests/"), body).status_code == 201
    assert clinician_client.post(_url(patient, "provocative-tests/"), body).status_code == 409
    assert ProvocativeTest.objects.count() == 3


@pytest.mark.parametrize(
    ("test_change", "field"),
    [
        ({"provoked_pain": 11}, "provoked_pain"),
        ({"provoked_pain": -1}, "provoked_pain"),
        ({"provoked_pain": 6.5}, "provoked_pain"),
        ({"angle_deg": 45}, "angle_deg"),  # FAIR has no angle
        ({"test": "lasegue"}, "test"),
        ({"side": "both"}, "side"),
        ({"result": "maybe"}, "result"),
        ({"concordant": "yes"}, "concordant"),
        ({"pain": 3}, "pain"),
    ],
)
def test_it_names_the_bad_field_of_a_test(clinician_client, patient, test_change, field):
    body = _exam()
    body["tests"][0].update(test_change)
    response = clinician_client.post(_url(patient, "provocative-tests/"), body)
    assert response.status_code == 400
    # The error names the entry (by its index in `tests`) and the field.
    assert field in response.json()["tests"]["0"]
    assert not ProvocativeTest.objects.exists()


@pytest.mark.parametrize(
    ("body_change", "field"),
    [
        ({"tests": []}, "tests"),
        ({"performed_at": "not a time"}, "performed_at"),
        ({"examiner": "Alice"}, "examiner"),
    ],
)
def test_it_rejects_a_bad_examination(clinician_client, patient, body_change, field):
    response = clinician_client.post(_url(patient, "provocative-tests/"), _exam(**body_change))
    assert response.status_code == 400
    assert field in response.json()


def test_it_rejects_a_test_listed_twice_for_one_side(clinician_client, patient):
    body = _exam()
    body["tests"].append({"test": "fair", "side": "right", "result": "negative"})
    response = clinician_client.post(_url(patient, "provocative-tests/"), body)
    assert response.status_code == 400
    assert "tests" in response.json()


def test_it_rejects_an_examination_in_the_future(clinician_client, patient):
    later = (timezone.now() + dt.timedelta(hours=2)).isoformat()
    response = clinician_client.post(_url(patient, "provocative-tests/"), _exam(performed_at=later))
    assert response.status_code == 400
    assert "performed_at" in response.json()


def test_it_lists_and_filters_provocative_tests(clinician_client, patient):
    clinician_client.post(_url(patient, "provocative-tests/"), _exam())
    everything = clinician_client.get(_url(patient, "provocative-tests/")).json()
    assert everything["count"] == 3
    fair = clinician_client.get(_url(patient, "provocative-tests/") + "?test=fair").json()
    assert {t["test"] for t in fair["results"]} == {"fair"}
    assert fair["count"] == 2
    bad = clinician_client.get(_url(patient, "provocative-tests/") + "?test=nope")
    assert bad.status_code == 400


# --------------------------------------------------------------------------- imaging, diagnoses


def test_it_records_and_lists_imaging_findings(clinician_client, patient):
    body = {
        "modality": "mri",
        "date": _today(patient).isoformat(),
        "body_region": "Lumbar spine",
        "finding": "No recurrent disc herniation at L4-L5. Morel-Lavallee lesion.",
    }
    response = clinician_client.post(_url(patient, "imaging-findings/"), body)
    assert response.status_code == 201
    assert ImagingFinding.objects.get(pk=response.json()["id"]).modality == "mri"
    listed = clinician_client.get(_url(patient, "imaging-findings/")).json()
    assert listed["count"] == 1
    assert listed["results"][0]["finding"] == body["finding"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"modality": "xray"}, "modality"),
        ({"finding": ""}, "finding"),
        ({"body_region": None}, "body_region"),
        ({"date": "2026-13-01"}, "date"),
        ({"date": "2999-01-01"}, "date"),
        ({"seen_by": "radiologist"}, "seen_by"),
    ],
)
def test_it_rejects_a_bad_imaging_finding(clinician_client, patient, change, field):
    body = {
        "modality": "radiograph",
        "date": _today(patient).isoformat(),
        "body_region": "Pelvis",
        "finding": "Calcified sacrospinous ligament.",
        **change,
    }
    response = clinician_client.post(_url(patient, "imaging-findings/"), body)
    assert response.status_code == 400
    assert field in response.json()


def test_it_records_ends_and_filters_diagnoses(clinician_client, patient):
    today = _today(patient)
    five_days_ago = (today - dt.timedelta(days=5)).isoformat()
    created = clinician_client.post(
        _url(patient, "diagnoses/"),
        {"name": "Disc re-herniation L4-L5 (suspected)", "date_from": five_days_ago},
    )
    assert created.status_code == 201
    assert created.json()["current"] is True
    clinician_client.post(
        _url(patient, "diagnoses/"),
        {"name": "Morel-Lavallee lesion", "date_from": today.isoformat()},
    )
    diagnosis_id = created.json()["id"]
    ended = clinician_client.post(
        _url(patient, f"diagnoses/{diagnosis_id}/end/"),
        {"date_to": today.isoformat(), "notes": "Excluded on MRI."},
    )
    assert ended.status_code == 200
    assert ended.json()["date_to"] == today.isoformat()
    assert ended.json()["notes"] == "Excluded on MRI."
    again = clinician_client.post(
        _url(patient, f"diagnoses/{diagnosis_id}/end/"), {"date_to": today.isoformat()}
    )
    assert again.status_code == 409

    current = clinician_client.get(_url(patient, "diagnoses/") + "?current=true").json()
    assert [d["name"] for d in current["results"]] == ["Morel-Lavallee lesion"]
    ended_only = clinician_client.get(_url(patient, "diagnoses/") + "?current=false").json()
    assert [d["name"] for d in ended_only["results"]] == ["Disc re-herniation L4-L5 (suspected)"]
    assert clinician_client.get(_url(patient, "diagnoses/")).json()["count"] == 2
    assert AuditEvent.objects.filter(
        patient=patient, action="update", object_type="diagnosis", object_id=diagnosis_id
    ).exists()


def test_it_refuses_to_end_a_diagnosis_before_it_began(clinician_client, patient):
    diagnosis = DiagnosisFactory.create(patient=patient, date_from=_today(patient))
    response = clinician_client.post(
        _url(patient, f"diagnoses/{diagnosis.pk}/end/"),
        {"date_to": (_today(patient) - dt.timedelta(days=1)).isoformat()},
    )
    assert response.status_code == 400
    assert "date_to" in response.json()
    diagnosis.refresh_from_db()
    assert diagnosis.date_to is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"date_from": "10/03/2026"}, "date_from"),
        ({"date_to": "2020-01-01"}, "date_to"),  # before date_from
        ({"status": "active"}, "status"),
    ],
)
def test_it_rejects_a_bad_diagnosis(clinician_client, patient, change, field):
    body = {"name": "Deep gluteal syndrome", "date_from": _today(patient).isoformat(), **change}
    response = clinician_client.post(_url(patient, "diagnoses/"), body)
    assert response.status_code == 400
    assert field in response.json()


def test_it_rejects_a_bad_diagnosis_filter(clinician_client, patient):
    response = clinician_client.get(_url(patient, "diagnoses/") + "?current=maybe")
    assert response.status_code == 400
    assert "current" in response.json()


# --------------------------------------------------------------------------- date bounds


@pytest.mark.parametrize(
    ("tail", "body", "field"),
    [
        ("interventions/", {"date": "0001-01-01", "kind": "injection"}, "date"),
        ("interventions/", {"date": "0001-01-07", "kind": "injection"}, "date"),
        ("interventions/", {"date": "1899-12-31", "kind": "injection"}, "date"),
        ("imaging-findings/", {"modality": "mri", "date": "0001-01-01", "body_region": "L4",
                               "finding": "x"}, "date"),
        ("diagnoses/", {"name": "x", "date_from": "0001-01-01"}, "date_from"),
        ("provocative-tests/", _exam(performed_at="0001-01-01T00:00:00Z"), "performed_at"),
        ("provocative-tests/", _exam(performed_at="1899-12-31T23:59:59Z"), "performed_at"),
    ],
)  # fmt: skip
def test_it_rejects_a_record_dated_before_1900(clinician_client, patient, tail, body, field):
    response = clinician_client.post(_url(patient, tail), body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Intervention.objects.exists()
    assert not ImagingFinding.objects.exists()
    assert not Diagnosis.objects.exists()
    assert not ProvocativeTest.objects.exists()
    assert not QuestionnaireDue.objects.exists()
    # The timeline still renders.
    assert clinician_client.get(_url(patient, "timeline/")).status_code == 200


def test_it_accepts_a_record_dated_1900_01_01(clinician_client, patient):
    body = {"date": "1900-01-01", "kind": "surgery"}
    assert clinician_client.post(_url(patient, "interventions/"), body).status_code == 201
    exam = _exam(performed_at="1900-01-01T00:00:00Z")
    response = clinician_client.post(_url(patient, "provocative-tests/"), exam, format="json")
    assert response.status_code == 201
    assert clinician_client.get(_url(patient, "timeline/")).status_code == 200


# --------------------------------------------------------------------------- assessed marks


def test_it_creates_a_mark_as_in_the_contract(clinician_client, patient, clinician):
    until = _today(patient) + dt.timedelta(days=30)
    response = clinician_client.post(
        _url(patient, "assessed-marks/"),
        {"symptom": "both_legs", "until": until.isoformat(), "note": "Long-standing, examined"},
    )
    assert response.status_code == 201
    out = response.json()
    assert out["symptom"] == "both_legs"
    assert out["until"] == until.isoformat()
    mark = AssessedMark.objects.get(pk=out["id"])
    assert mark.created_by == clinician
    assert AuditEvent.objects.filter(
        patient=patient, action="create", object_type="assessedmark", object_id=out["id"]
    ).exists()


def test_it_accepts_a_mark_ninety_days_ahead_and_refuses_ninety_one(clinician_client, patient):
    url = _url(patient, "assessed-marks/")
    day_90 = _today(patient) + dt.timedelta(days=90)
    ok = clinician_client.post(url, {"symptom": "bladder_change", "until": day_90.isoformat()})
    assert ok.status_code == 201
    day_91 = day_90 + dt.timedelta(days=1)
    refused = clinician_client.post(url, {"symptom": "bowel_change", "until": day_91.isoformat()})
    assert refused.status_code == 400
    assert "until" in refused.json()
    assert not AssessedMark.objects.filter(symptom="bowel_change").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"symptom": "weakness", "until": "TODAY"}, "symptom"),  # not markable
        ({"symptom": "both_legs", "until": "YESTERDAY"}, "until"),
        ({"symptom": "both_legs", "until": "2026-02-30"}, "until"),
        ({"symptom": "both_legs"}, "until"),
        ({"symptom": "both_legs", "until": "TODAY", "expires": "never"}, "expires"),
    ],
)
def test_it_rejects_a_bad_mark(clinician_client, patient, body, field):
    today = _today(patient)
    dates = {"TODAY": today.isoformat(), "YESTERDAY": (today - dt.timedelta(days=1)).isoformat()}
    body = {k: dates.get(v, v) for k, v in body.items()}
    response = clinician_client.post(_url(patient, "assessed-marks/"), body)
    assert response.status_code == 400
    assert field in response.json()


def test_it_replaces_the_mark_in_force_for_the_same_symptom(clinician_client, patient):
    old = AssessedMarkFactory.create(patient=patient, symptom="both_legs")
    until = _today(patient) + dt.timedelta(days=60)
    response = clinician_client.post(
        _url(patient, "assessed-marks/"), {"symptom": "both_legs", "until": until.isoformat()}
    )
    assert response.status_code == 201
    old.refresh_from_db()
    assert old.revoked_at is not None
    listed = clinician_client.get(_url(patient, "assessed-marks/")).json()["results"]
    assert [m["id"] for m in listed] == [response.json()["id"]]


def test_it_lists_only_the_marks_in_force(clinician_client, patient):
    today = _today(patient)
    current = AssessedMarkFactory.create(patient=patient, symptom="both_legs", until=today)
    AssessedMarkFactory.create(
        patient=patient, symptom="bladder_change", until=today - dt.timedelta(days=1)
    )
    AssessedMarkFactory.create(patient=patient, symptom="bowel_change", revoked_at=timezone.now())
    body = clinician_client.get(_url(patient, "assessed-marks/")).json()
    assert body["count"] == 1
    assert body["results"][0]["id"] == str(current.pk)


def test_it_revokes_a_mark_on_delete_and_keeps_it(clinician_client, patient, clinician):
    mark = AssessedMarkFactory.create(patient=patient)
    url = _url(patient, f"assessed-marks/{mark.pk}/")
    response = clinician_client.delete(url)
    assert response.status_code == 204
    mark.refresh_from_db()
    assert mark.revoked_at is not None
    assert mark.revoked_by == clinician
    assert (
        AuditEvent.objects.filter(
            patient=patient, action="delete", object_type="assessedmark", object_id=str(mark.pk)
        ).count()
        == 1
    )
    assert clinician_client.delete(url).status_code == 404
    assert AssessedMark.objects.filter(pk=mark.pk).exists()


def test_it_revokes_an_expired_mark_too(clinician_client, patient):
    mark = AssessedMarkFactory.create(patient=patient, until=_today(patient) - dt.timedelta(days=3))
    assert clinician_client.delete(_url(patient, f"assessed-marks/{mark.pk}/")).status_code == 204


def test_it_refuses_to_delete_a_mark_through_another_patients_path(
    clinician_client, patient, clinic
):
    neighbour = PatientFactory.create(clinic=clinic)
    mark = AssessedMarkFactory.create(patient=patient)
    response = clinician_client.delete(_url(neighbour, f"assessed-marks/{mark.pk}/"))
    assert response.status_code == 404
    mark.refresh_from_db()
    assert mark.revoked_at is None


# --------------------------------------------------------------------------- scores


def test_it_shows_scores_over_time_against_the_thresholds(clinician_client, patient):
    start = timezone.now() - dt.timedelta(days=42)
    for days, score in ((0, 20), (14, 14), (28, 17)):
        QuestionnaireResponseFactory.create(
            patient=patient,
            instrument="rmdq",
            score=Decimal(score),
            submitted_at=start + dt.timedelta(days=days),
            date=(start + dt.timedelta(days=days)).date(),
        )
    body = clinician_client.get(_url(patient, "questionnaires/scores/")).json()
    assert [i["instrument"] for i in body["instruments"]] == ["psfs", "sbi", "rmdq"]
    psfs, sbi, rmdq = body["instruments"]
    assert psfs["series"] == []
    assert psfs["thresholds"]["points"] == 2.0
    assert psfs["thresholds"]["single_item_points"] == 3.0
    assert sbi["thresholds"]["success_at_or_below"] == 6.5
    assert rmdq["thresholds"]["points"] == 5.0
    assert rmdq["thresholds"]["percent"] == 30.0
    baseline, better, worse = rmdq["series"]
    assert baseline["is_baseline"] is True
    assert baseline["meaningful_change"] is None
    assert (better["change"], better["percent_change"]) == (-6.0, -30.0)
    assert better["meaningful_change"] is True
    assert better["direction"] == "improved"
    assert set(better["criteria"]) == {"points", "percent"}
    assert (worse["change"], worse["meaningful_change"]) == (-3.0, False)
    assert AuditEvent.objects.filter(
        patient=patient, action="read", object_type="questionnaireresponse"
    ).exists()


def test_it_reports_sbi_success_only_twelve_months_after_the_first_sbi(clinician_client, patient):
    first = dt.datetime(2025, 1, 15, 12, tzinfo=dt.UTC)
    for when, score in ((first, 18), (first + dt.timedelta(days=30), 4),
                        (first + dt.timedelta(days=366), 5)):  # fmt: skip
        QuestionnaireResponseFactory.create(
            patient=patient, instrument="sbi", score=Decimal(score), submitted_at=when,
            date=when.date(),
        )  # fmt: skip
    sbi = clinician_client.get(_url(patient, "questionnaires/scores/")).json()["instruments"][1]
    assert sbi["thresholds"]["success_after_months"] == 12
    assert [p["success"] for p in sbi["series"]] == [None, None, True]


def test_it_shows_the_questionnaire_schedule_with_states(clinician_client, patient, clinician):
    clinician_client.post(
        _url(patient, "interventions/"),
        {"date": (_today(patient) + dt.timedelta(days=1)).isoformat(), "kind": "injection"},
    )
    body = clinician_client.get(_url(patient, "questionnaires/schedule/")).json()
    assert body["count"] == 9
    states = {(d["reason"], d["state"]) for d in body["results"]}
    assert states == {
        ("pre_intervention", "open"),
        ("post_intervention_1w", "upcoming"),
        ("post_intervention_6w", "upcoming"),
    }


def test_it_asks_no_before_questionnaire_for_a_procedure_recorded_on_the_day(
    clinician_client, patient
):
    clinician_client.post(
        _url(patient, "interventions/"), {"date": _today(patient).isoformat(), "kind": "injection"}
    )
    body = clinician_client.get(_url(patient, "questionnaires/schedule/")).json()
    assert body["count"] == 6
    assert {d["reason"] for d in body["results"]} == {
        "post_intervention_1w",
        "post_intervention_6w",
    }


# --------------------------------------------------------------------------- scope, audit

ENDPOINTS = [
    ("get", "interventions/", None),
    ("post", "interventions/", {"date": "2026-01-01", "kind": "other"}),
    ("get", "provocative-tests/", None),
    ("post", "provocative-tests/", "EXAM"),
    ("get", "imaging-findings/", None),
    ("post", "imaging-findings/", {"modality": "ct", "date": "2026-01-01", "body_region": "x",
                                   "finding": "y"}),
    ("get", "diagnoses/", None),
    ("post", "diagnoses/", {"name": "x", "date_from": "2026-01-01"}),
    ("post", "diagnoses/{diagnosis}/end/", {"date_to": "2026-01-02"}),
    ("get", "assessed-marks/", None),
    ("post", "assessed-marks/", {"symptom": "both_legs", "until": "TODAY"}),
    ("delete", "assessed-marks/{mark}/", None),
    ("get", "questionnaires/scores/", None),
    ("get", "questionnaires/schedule/", None),
    ("get", "timeline/", None),
]  # fmt: skip


def _call(client, patient, method, tail, body):
    diagnosis = DiagnosisFactory.create(patient=patient, date_from=dt.date(2026, 1, 1))
    mark = AssessedMarkFactory.create(patient=patient)
    url = _url(patient, tail.format(diagnosis=diagnosis.pk, mark=mark.pk))
    if body == "EXAM":
        body = _exam()
    elif isinstance(body, dict):
        body = {k: _today(patient).isoformat() if v == "TODAY" else v for k, v in body.items()}
    return getattr(client, method)(url, body) if body is not None else getattr(client, method)(url)


@pytest.mark.parametrize(("method", "tail", "body"), ENDPOINTS)
def test_it_hides_the_record_from_another_clinic(
    other_clinic_clinician_client, patient, method, tail, body
):
    response = _call(other_clinic_clinician_client, patient, method, tail, body)
    assert response.status_code == 404
    assert not Intervention.objects.exists()
    assert not ProvocativeTest.objects.exists()
    assert not ImagingFinding.objects.exists()
    assert not QuestionnaireDue.objects.exists()
    # Only what `_call` set up: one current diagnosis and one mark in force.
    assert list(Diagnosis.objects.values_list("date_to", flat=True)) == [None]
    assert AssessedMark.objects.count() == 1
    assert not AssessedMark.objects.filter(revoked_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action__in=("create", "update", "delete")).exists()


@pytest.mark.parametrize(("method", "tail", "body"), ENDPOINTS)
def test_it_refuses_patients_on_clinician_endpoints(patient_client, patient, method, tail, body):
    assert _call(patient_client, patient, method, tail, body).status_code == 403


@pytest.mark.parametrize(("method", "tail", "body"), ENDPOINTS)
def test_it_requires_sign_in(anon_client, patient, method, tail, body):
    assert _call(anon_client, patient, method, tail, body).status_code == 401


@pytest.mark.parametrize(("method", "tail", "body"), ENDPOINTS)
def test_it_serves_and_audits_every_endpoint_for_the_care_team(
    clinician_client, patient, method, tail, body
):
    before = AuditEvent.objects.filter(patient=patient).count()
    response = _call(clinician_client, patient, method, tail, body)
    assert response.status_code in (200, 201, 204)
    actions = {"get": ("read",), "post": ("create", "update"), "delete": ("delete",)}[method]
    events = AuditEvent.objects.filter(patient=patient, actor__clinician__isnull=False)
    assert events.count() == before + 1
    latest = events.order_by("-id").first()
    assert latest is not None
    assert latest.action in actions
    assert latest.path == response.wsgi_request.get_full_path()
