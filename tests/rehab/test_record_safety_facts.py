"""What the safety engine reads from the clinical record: recent procedures and marks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from rehab.models import AssessedMark
from rehab.selectors.record import safety_facts_for_log, safety_facts_for_logs
from tests.rehab.factories_record import AssessedMarkFactory, InterventionFactory

pytestmark = pytest.mark.django_db

ON = dt.date(2026, 6, 15)


def test_it_counts_a_procedure_42_days_before_but_not_43(patient):
    InterventionFactory.create(patient=patient, date=ON - dt.timedelta(days=42), kind="injection")
    InterventionFactory.create(patient=patient, date=ON - dt.timedelta(days=43), kind="surgery")
    facts = safety_facts_for_log(patient_id=patient.pk, on=ON)
    assert [(i.date, i.kind) for i in facts.interventions] == [
        (ON - dt.timedelta(days=42), "injection")
    ]


def test_it_counts_a_procedure_on_the_logs_date_but_not_after(patient):
    InterventionFactory.create(patient=patient, date=ON, kind="prolotherapy")
    InterventionFactory.create(patient=patient, date=ON + dt.timedelta(days=1), kind="injection")
    interventions, _ = safety_facts_for_log(patient_id=patient.pk, on=ON)
    assert [(i.date, i.kind) for i in interventions] == [(ON, "prolotherapy")]


def test_it_reports_every_kind_newest_first_and_leaves_the_rule_to_choose(patient):
    InterventionFactory.create(patient=patient, date=ON - dt.timedelta(days=20), kind="other")
    InterventionFactory.create(patient=patient, date=ON - dt.timedelta(days=3), kind="surgery")
    interventions, _ = safety_facts_for_log(patient_id=patient.pk, on=ON)
    assert [i.kind for i in interventions] == ["surgery", "other"]


def test_it_holds_a_mark_up_to_and_including_its_until_date(patient):
    AssessedMarkFactory.create(patient=patient, symptom="both_legs", until=ON)
    AssessedMarkFactory.create(
        patient=patient, symptom="bladder_change", until=ON - dt.timedelta(days=1)
    )
    _, marks = safety_facts_for_log(patient_id=patient.pk, on=ON)
    assert [(m.symptom, m.until) for m in marks] == [("both_legs", ON)]
    _, next_day = safety_facts_for_log(patient_id=patient.pk, on=ON + dt.timedelta(days=1))
    assert next_day == ()


def test_it_ignores_a_revoked_mark(patient):
    AssessedMarkFactory.create(
        patient=patient, symptom="both_legs", until=ON, revoked_at=timezone.now()
    )
    assert safety_facts_for_log(patient_id=patient.pk, on=ON).marks == ()


def test_it_keeps_other_patients_facts_apart(patient, other_patient):
    InterventionFactory.create(patient=other_patient, date=ON, kind="injection")
    AssessedMarkFactory.create(patient=other_patient, until=ON)
    assert safety_facts_for_log(patient_id=patient.pk, on=ON) == ((), ())


def test_it_reads_the_facts_of_one_log_in_two_queries(patient, django_assert_num_queries):
    for days in range(0, 60, 5):
        InterventionFactory.create(patient=patient, date=ON - dt.timedelta(days=days))
    AssessedMarkFactory.create(patient=patient, until=ON)
    with django_assert_num_queries(2):
        facts = safety_facts_for_log(patient_id=patient.pk, on=ON)
    assert len(facts.interventions) == 9  # days 0, 5, ..., 40
    assert len(facts.marks) == 1


def test_it_reads_many_logs_of_many_patients_in_two_queries(
    patient, other_patient, django_assert_num_queries
):
    InterventionFactory.create(patient=patient, date=ON - dt.timedelta(days=42), kind="injection")
    AssessedMarkFactory.create(patient=patient, until=ON)
    AssessedMarkFactory.create(patient=other_patient, until=ON + dt.timedelta(days=10))
    later = ON + dt.timedelta(days=1)
    keys = [(patient.pk, ON), (patient.pk, later), (str(other_patient.pk), later)]
    with django_assert_num_queries(2):
        facts = safety_facts_for_logs(keys=keys)
    assert [i.kind for i in facts[(patient.pk, ON)].interventions] == ["injection"]
    assert [m.symptom for m in facts[(patient.pk, ON)].marks] == ["both_legs"]
    # A day later the injection is 43 days old and the mark has run out.
    assert facts[(patient.pk, later)] == ((), ())
    assert len(facts[(str(other_patient.pk), later)].marks) == 1
    assert safety_facts_for_logs(keys=[]) == {}


def test_it_reads_only_the_kinds_asked_for(patient, django_assert_num_queries):
    InterventionFactory.create(patient=patient, date=ON, kind="injection")
    AssessedMarkFactory.create(patient=patient, until=ON)
    with django_assert_num_queries(1):
        procedures = safety_facts_for_log(patient_id=patient.pk, on=ON, read_marks=False)
    with django_assert_num_queries(1):
        marks = safety_facts_for_log(patient_id=patient.pk, on=ON, read_interventions=False)
    assert ([i.kind for i in procedures.interventions], procedures.marks) == (["injection"], ())
    assert (marks.interventions, [m.symptom for m in marks.marks]) == ((), ["both_legs"])


# --------------------------------------------------------------------------- the request


@pytest.mark.parametrize(
    ("safety", "queries", "rules", "reminder"),
    [
        # A quiet check reads no record at all: neither fact can change its evaluation.
        ({}, 0, (), False),
        ({"weakness": "one_leg_new", "temperature_c": 37.9}, 0, ("RF-NEU-01",), False),
        ({"fever": True}, 1, ("RF-INF-02",), False),
        ({"both_legs": "unchanged_assessed"}, 1, ("RF-CES-06",), True),
        ({"temperature_c": 38.5, "both_legs": "unchanged_assessed"}, 2, None, True),
    ],
)
def test_it_reads_in_the_request_only_the_record_a_log_needs(
    patient, django_assert_num_queries, safety, queries, rules, reminder
):
    from rehab.services.safety import evaluate_inline

    InterventionFactory.create(patient=patient, date=ON - dt.timedelta(days=2), kind="injection")
    AssessedMarkFactory.create(patient=patient, symptom="both_legs", until=ON)
    content = {"date": ON, "pain": 5, "safety": safety}
    with django_assert_num_queries(queries):
        evaluation = evaluate_inline(patient=patient, content=content)
    if rules is not None:
        assert evaluation.rule_ids == rules
    else:
        assert {"RF-INF-02", "RF-CES-06"} <= set(evaluation.rule_ids)
    assert (evaluation.reminder is not None) == reminder


# --------------------------------------------------------------------------- as of a log

SUBMITTED = dt.datetime(2026, 6, 15, 9, 0, tzinfo=dt.UTC)


def _mark_at(patient, *, created, revoked=None, until=ON, symptom="both_legs"):
    mark = AssessedMarkFactory.create(patient=patient, symptom=symptom, until=until)
    # created_at is auto_now_add: set the clock after the insert.
    AssessedMark.objects.filter(pk=mark.pk).update(created_at=created, revoked_at=revoked)
    return mark


def _symptoms(patient, *, as_of, on=ON):
    facts = safety_facts_for_log(patient_id=patient.pk, on=on, as_of=as_of)
    return [m.symptom for m in facts.marks]


def test_it_holds_a_mark_revoked_after_the_log_was_submitted_for_that_log(patient):
    _mark_at(
        patient,
        created=SUBMITTED - dt.timedelta(days=2),
        revoked=SUBMITTED + dt.timedelta(minutes=5),
    )
    assert _symptoms(patient, as_of=SUBMITTED) == ["both_legs"]
    # A log submitted after the revocation (and the request's "now") no longer has it.
    assert _symptoms(patient, as_of=SUBMITTED + dt.timedelta(minutes=5)) == []
    assert _symptoms(patient, as_of=None) == []


def test_it_ignores_a_mark_made_after_the_log_was_submitted(patient):
    _mark_at(patient, created=SUBMITTED + dt.timedelta(seconds=1))
    assert _symptoms(patient, as_of=SUBMITTED) == []
    assert _symptoms(patient, as_of=None) == ["both_legs"]


def test_it_holds_a_mark_made_at_the_moment_the_log_was_submitted(patient):
    _mark_at(patient, created=SUBMITTED)
    assert _symptoms(patient, as_of=SUBMITTED) == ["both_legs"]


def test_it_reads_the_mark_that_replaced_another_as_of_the_log(patient):
    replaced_at = SUBMITTED - dt.timedelta(hours=1)
    _mark_at(patient, created=SUBMITTED - dt.timedelta(days=3), revoked=replaced_at, until=ON)
    _mark_at(patient, created=replaced_at, until=ON + dt.timedelta(days=5))
    facts = safety_facts_for_log(patient_id=patient.pk, on=ON, as_of=SUBMITTED)
    assert [m.until for m in facts.marks] == [ON + dt.timedelta(days=5)]
    earlier = safety_facts_for_log(
        patient_id=patient.pk, on=ON, as_of=replaced_at - dt.timedelta(minutes=1)
    )
    assert [m.until for m in earlier.marks] == [ON]


def test_it_still_ends_a_mark_after_its_until_date_as_of_a_log(patient):
    _mark_at(patient, created=SUBMITTED - dt.timedelta(days=2), until=ON)
    _mark_at(
        patient,
        created=SUBMITTED - dt.timedelta(days=2),
        until=ON - dt.timedelta(days=1),
        symptom="bladder_change",
    )
    assert _symptoms(patient, as_of=SUBMITTED) == ["both_legs"]
    assert _symptoms(patient, as_of=SUBMITTED, on=ON + dt.timedelta(days=1)) == []


# --------------------------------------------------------------------------- end to end


def _log(client, patient, **safety):
    body = {"date": patient.local_today().isoformat(), "pain": 5, "safety": safety}
    response = client.post("/api/v1/logs/", body)
    assert response.status_code == 201, response.json()
    return response.json()["safety_advice"]


def test_it_lets_a_mark_turn_both_legs_from_emergency_to_urgent(
    patient_client, clinician_client, patient
):
    until = (patient.local_today() + dt.timedelta(days=30)).isoformat()
    created = clinician_client.post(
        f"/api/v1/clinician/patients/{patient.pk}/assessed-marks/",
        {"symptom": "both_legs", "until": until},
    )
    assert created.status_code == 201
    advice = _log(patient_client, patient, both_legs="unchanged_assessed")
    assert advice["severity"] == "urgent"
    assert "RF-CES-06" in advice["rules"]
    assert "RF-CES-05" not in advice["rules"]


def test_it_stops_honouring_a_revoked_mark(patient_client, clinician_client, patient):
    until = (patient.local_today() + dt.timedelta(days=30)).isoformat()
    url = f"/api/v1/clinician/patients/{patient.pk}/assessed-marks/"
    mark = clinician_client.post(url, {"symptom": "both_legs", "until": until}).json()
    assert clinician_client.delete(f"{url}{mark['id']}/").status_code == 204
    advice = _log(patient_client, patient, both_legs="unchanged_assessed")
    assert advice["severity"] == "emergency"
    assert "RF-CES-05" in advice["rules"]


def test_it_makes_fever_after_a_recorded_injection_an_emergency(
    patient_client, clinician_client, patient
):
    recorded = clinician_client.post(
        f"/api/v1/clinician/patients/{patient.pk}/interventions/",
        {
            "date": (patient.local_today() - dt.timedelta(days=10)).isoformat(),
            "kind": "prolotherapy",
        },
    )
    assert recorded.status_code == 201
    advice = _log(patient_client, patient, fever=True)
    assert advice["severity"] == "emergency"
    assert "RF-INF-02" in advice["rules"]
