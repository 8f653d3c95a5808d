"""The patient page's program and clinical-record sections (dashboard/sections.py)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from dashboard import selectors
from patients.models import Clinician, Patient
from programs import services as program_services
from programs.models import AssignedExercise, ExerciseLog, ProgramAssignment, ProgressionProposal
from programs.selectors import adherence_weeks_for_patients
from rehab import scoring
from rehab.demo import PHYSIO_EMAIL, seed_demo
from rehab.demo_record import DGS_EMAIL
from rehab.models import DailyLog, Intervention, ProvocativeTest, QuestionnaireResponse
from tests.programs.factories import make_template
from tests.rehab.factories_record import (
    DiagnosisFactory,
    ImagingFindingFactory,
    InterventionFactory,
    ProvocativeTestFactory,
)

pytestmark = pytest.mark.django_db

DASH = "\u2013"  # what the page shows for an empty cell

BAND = re.compile(r'<g data-kind="phase" data-start="([\d-]+)" data-end="([\d-]+)" class="band ')
MARKER = re.compile(r'<g data-kind="([\w-]+)" data-date="([\d-]+)" class="marker ')


def page(client: Client, patient: Patient, query: str = "") -> str:
    response = client.get(f"/dashboard/patients/{patient.pk}/{query}")
    assert response.status_code == 200
    return re.sub(r"\s+", " ", response.content.decode())


def section(content: str, key: str) -> str:
    """The HTML of one section of the page ('' if it is not there)."""
    start = content.find(f'<section aria-labelledby="section-{key}"')
    if start < 0:
        return ""
    end = content.find('<section aria-labelledby="section-', start + 1)
    return content[start : end if end > 0 else len(content)]


def add_logs(patient: Patient, days: int, pain: int = 5) -> None:
    today = patient.local_today()
    DailyLog.objects.bulk_create(
        DailyLog(patient=patient, date=today - timedelta(days=n), pain=pain) for n in range(days)
    )


def at(patient: Patient, day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=patient.tz)


def respond(
    patient: Patient, day: date, instrument: str, answers: dict[str, Any], hour: int = 19
) -> None:
    scored = scoring.score_answers(instrument, answers)
    QuestionnaireResponse.objects.create(
        patient=patient,
        instrument=instrument,
        instrument_version="1",
        scoring_version="1",
        answers=scored.answers,
        score=scored.score,
        date=day,
        submitted_at=at(patient, day, hour),
    )


def rmdq(ticked: int) -> dict[str, Any]:
    return {"ticked": list(range(1, ticked + 1)), "unanswered": []}


def on_program(patient: Patient, clinician: Clinician) -> ProgramAssignment:
    """Phase 1 (2 weeks: A daily, B 3x/week) from 20 days ago, moved on to phase 2 (1 week:
    C daily) 5 days ago by an accepted proposal; phase 2's own proposal is pending; C done
    on each of the last 5 days."""
    today = patient.local_today()
    template = make_template(
        clinic=clinician.clinic,
        name=f"Gluteal plan for {patient.first_name}",
        phases=[(2, [7, 3]), (1, [7]), (1, [7])],
    )
    assignment = program_services.assignment_create(
        patient=patient,
        template=template,
        by=clinician,
        start_date=today - timedelta(days=20),
        today=today - timedelta(days=20),
    )
    one, two, three = assignment.phases.order_by("position")
    moved = today - timedelta(days=5)
    proposal = ProgressionProposal.objects.create(
        assignment=assignment, from_phase=one, to_phase=two, evaluated_on=moved
    )
    program_services.proposal_accept(proposal=proposal, by=clinician, on=moved, today=moved)
    ProgressionProposal.objects.create(
        assignment=assignment,
        from_phase=two,
        to_phase=three,
        evaluated_on=today,
        basis={"sessions_prescribed": 7, "sessions_done": 7, "pain_ceiling": 3},
    )
    exercise_c = AssignedExercise.objects.get(phase=two)
    ExerciseLog.objects.bulk_create(
        ExerciseLog(
            patient=patient,
            assigned_exercise=exercise_c,
            date=today - timedelta(days=n),
            sets_done=3,
            reps_done=10,
            pain_during=2,
            difficulty=4,
        )
        for n in range(1, 6)
    )
    return assignment


def test_it_shows_the_program_phase_week_exercises_and_adherence(web, clinician, patient):
    add_logs(patient, 21)
    on_program(patient, clinician)
    today = patient.local_today()
    content = page(web, patient)
    program = section(content, "program")
    assert '<h2 id="section-program">Exercise program</h2>' in program
    assert f"Gluteal plan for {patient.first_name}" in program
    assert "2 of 3: Phase 2" in program
    assert "Week of the phase</dt><dd>1" in program
    # Phase 2 has one exercise, daily: C, 3 x 10, due today.
    assert re.findall(r'<th scope="row">(P\d exercise \d)<span', program) == ["P2 exercise 1"]
    assert "3 \u00d7 10 reps" in program
    assert "<td>Due</td>" in program
    # The same weekly shares as the programs app's own selector (the API's caseload figure).
    weeks = adherence_weeks_for_patients([patient.pk], weeks=4, on=today)[patient.pk]
    shown = re.findall(
        r'data-week-start="([\d-]+)"> <th scope="row">[^<]*</th> <td class="num">([^<]*)<', program
    )
    assert shown == [
        (w.start.isoformat(), f"{w.done} of {w.prescribed}" if w.prescribed else "") for w in weeks
    ]
    assert f"{weeks[0].done} of {weeks[0].prescribed} sessions" in program
    # The pending proposal, without a form: decisions go through the API.
    assert "Ready to move from phase 2 (Phase 2) to phase 3 (Phase 3)" in program
    assert "7 of 7 sessions done" in program
    assert "<form" not in program


def test_it_draws_each_phase_as_it_actually_ran(web, clinician, patient):
    add_logs(patient, 21)
    on_program(patient, clinician)
    today = patient.local_today()
    bands = BAND.findall(page(web, patient))
    # Phase 1 ran past its planned two weeks, until the day before the accepted progression.
    assert bands == [
        ((today - timedelta(days=20)).isoformat(), (today - timedelta(days=6)).isoformat()),
        ((today - timedelta(days=5)).isoformat(), today.isoformat()),
    ]


def test_it_shows_interventions_in_a_table_and_as_chart_markers(web, clinician, patient):
    add_logs(patient, 30)
    today = patient.local_today()
    first = InterventionFactory.create(
        patient=patient, date=today - timedelta(days=20), performed_by="Dr Moreno"
    )
    InterventionFactory.create(
        patient=patient,
        date=today - timedelta(days=6),
        course_id=first.course_id,
        session_number=2,
    )
    InterventionFactory.create(
        patient=patient,
        date=today - timedelta(days=400),  # outside the chart, still in the table
        kind=Intervention.Kind.SURGERY,
        agent="",
        target="L4-L5",
        side=Intervention.Side.MIDLINE,
        guidance="",
    )
    content = page(web, patient)
    table = section(content, "interventions")
    rows = re.findall(r'<tr data-intervention-id="[^"]+" data-date="([\d-]+)">(.*?)</tr>', table)
    assert [day for day, _ in rows] == [
        (today - timedelta(days=n)).isoformat() for n in (6, 20, 400)
    ]
    cells = [re.findall(r"<td>(.*?)</td>", row) for _, row in rows]
    assert cells[0][:6] == [
        "Prolotherapy",
        "2",
        "dextrose 10% + lidocaine",
        "sacrospinous ligament",
        "Right",
        "Ultrasound",
    ]
    assert cells[1][-1] == "Dr Moreno"
    assert cells[2][:3] == ["Surgery", DASH, DASH]
    markers = [(kind, day) for kind, day in MARKER.findall(content) if kind == "intervention"]
    assert markers == [("intervention", (today - timedelta(days=n)).isoformat()) for n in (6, 20)]
    assert "Prolotherapy 2</text>" in content


def test_it_shows_each_test_over_time_and_marks_examinations(web, clinician, patient):
    add_logs(patient, 30)
    today = patient.local_today()
    first, second = today - timedelta(days=20), today - timedelta(days=3)
    for day, fair, pace in ((first, "positive", "positive"), (second, "negative", "equivocal")):
        for test, result in (("fair", fair), ("pace", pace)):
            ProvocativeTestFactory.create(
                patient=patient, test=test, result=result, performed_at=at(patient, day)
            )
    ProvocativeTestFactory.create(
        patient=patient,
        test="slr",
        side="left",
        result="negative",
        angle_deg=80,
        concordant=None,
        performed_at=at(patient, first),
    )
    content = page(web, patient)
    tests = section(content, "provocative-tests")
    assert re.findall(r'data-exam-date="([\d-]+)"', tests) == [
        first.isoformat(),
        second.isoformat(),
    ]
    rows = dict(
        ((test, side), re.findall(r'data-result="(\w+)"|result-none', row))
        for test, side, row in re.findall(
            r'<tr data-test="(\w+)" data-side="(\w+)"[^>]*>(.*?)</tr>', tests
        )
    )
    assert rows == {
        ("fair", "right"): ["positive", "negative"],
        ("pace", "right"): ["positive", "equivocal"],
        ("slr", "left"): ["negative", ""],  # not examined the second time
    }
    assert re.findall(r'<tr data-test="(\w+)" data-side="\w+" class="turned-negative">', tests) == [
        "fair"
    ]
    assert "80°" in tests
    markers = [day for kind, day in MARKER.findall(content) if kind == "provocative-tests"]
    assert markers == [first.isoformat(), second.isoformat()]
    assert "Tests: 2 positive" in content


def test_it_shows_questionnaire_scores_against_the_thresholds(web, patient):
    today = patient.local_today()
    respond(patient, today - timedelta(days=28), "rmdq", rmdq(15))
    respond(patient, today - timedelta(days=14), "rmdq", rmdq(12))
    respond(patient, today - timedelta(days=1), "rmdq", rmdq(2))
    respond(
        patient,
        today - timedelta(days=28),
        "sbi",
        {"leg_pain": 6, "numbness_tingling": 4, "weakness": 3, "sitting_pain": 6},
    )
    respond(
        patient,
        today - timedelta(days=1),
        "sbi",
        {"leg_pain": 1, "numbness_tingling": 1, "weakness": 1, "sitting_pain": 2},
    )
    content = section(page(web, patient), "questionnaires")
    assert re.findall(r'data-instrument="(\w+)"', content) == ["sbi", "rmdq"]  # PSFS unanswered
    assert (
        "Meaningful change: 5 points or 30 % of the baseline; recovered at or below 2." in content
    )
    assert (
        "No meaningful-change threshold is defined for this questionnaire; success at or below 6.5."
        in content
    )
    rmdq_rows = re.findall(r'data-instrument="rmdq".*', content)[0]
    # 15 -> 12 is 3 points and 20 %: not meaningful; 15 -> 2 is both, and recovered.
    assert re.findall(r'data-meaningful="(\w+)"', rmdq_rows) == ["no", "yes"]
    assert "-13 (-86.7 %), improved" in rmdq_rows
    sbi_rows = content[: content.index('data-instrument="rmdq"')]
    assert re.findall(r'data-meaningful="(\w+)"', sbi_rows) == ["none"]
    assert "No threshold" in sbi_rows


def test_it_shows_imaging_and_current_and_past_diagnoses(web, patient):
    today = patient.local_today()
    DiagnosisFactory.create(
        patient=patient,
        name="Suspected re-herniation",
        date_from=today - timedelta(days=20),
        date_to=today - timedelta(days=10),
    )
    DiagnosisFactory.create(
        patient=patient, name="Morel-Lavallee lesion", date_from=today - timedelta(days=10)
    )
    ImagingFindingFactory.create(
        patient=patient, modality="mri", finding="No recurrent herniation."
    )
    content = page(web, patient)
    diagnoses = section(content, "diagnoses")
    assert re.findall(r'class="(current|past)"> <th scope="row">([^<]+)</th>', diagnoses) == [
        ("current", "Morel-Lavallee lesion"),
        ("past", "Suspected re-herniation"),
    ]
    imaging = section(content, "imaging")
    assert "<td>MRI</td>" in imaging
    assert "No recurrent herniation." in imaging
    # The working diagnosis comes right after the alerts, before the program and scores.
    assert content.index("section-alerts") < content.index("section-diagnoses")


def test_it_shows_no_program_or_record_section_without_data(web, patient):
    add_logs(patient, 10)
    content = page(web, patient)
    for key in (
        "program",
        "diagnoses",
        "questionnaires",
        "provocative-tests",
        "interventions",
        "imaging",
    ):
        assert f'id="section-{key}"' not in content, key
    assert "band-phase" not in content
    assert 'class="marker ' not in content
    assert '<h2 id="section-alerts">' in content  # the built-in sections still are


def test_another_clinics_record_never_appears(
    web, other_web, clinician, patient, other_patient, other_clinic_clinician
):
    add_logs(patient, 10)
    today = other_patient.local_today()
    InterventionFactory.create(patient=other_patient, target="OTHER-CLINIC-TARGET")
    ProvocativeTestFactory.create(patient=other_patient, notes="OTHER-CLINIC-TEST")
    DiagnosisFactory.create(patient=other_patient, name="OTHER-CLINIC-DIAGNOSIS")
    ImagingFindingFactory.create(patient=other_patient, finding="OTHER-CLINIC-IMAGING")
    respond(other_patient, today, "rmdq", rmdq(9))
    template = make_template(
        clinic=other_clinic_clinician.clinic, name="OTHER-CLINIC-PROGRAM", phases=[(2, [7])]
    )
    program_services.assignment_create(
        patient=other_patient, template=template, by=other_clinic_clinician
    )

    content = page(web, patient)
    assert "OTHER-CLINIC" not in content
    assert "section-program" not in content
    assert "OTHER-CLINIC" not in web.get("/dashboard/").content.decode()
    assert web.get(f"/dashboard/patients/{other_patient.pk}/").status_code == 404
    assert other_web.get(f"/dashboard/patients/{patient.pk}/").status_code == 404
    # The reads themselves are scoped: handed a patient outside the clinic, they find nothing.
    user = clinician.user
    assert selectors.patient_program(user=user, patient=other_patient, today=today) is None
    assert selectors.patient_interventions(user=user, patient=other_patient) == []
    assert selectors.patient_provocative_tests(user=user, patient=other_patient).examinations == []
    assert selectors.patient_diagnoses(user=user, patient=other_patient) == []
    assert selectors.patient_imaging(user=user, patient=other_patient) == []
    assert selectors.patient_questionnaire_scores(user=user, patient=other_patient) == []


def _record(patient: Patient, clinician: Clinician, n: int) -> None:
    """`n` interventions, examinations, questionnaire responses, diagnoses and findings."""
    today = patient.local_today()
    first = InterventionFactory.create(patient=patient, date=today - timedelta(days=n))
    for k in range(1, n):
        InterventionFactory.create(
            patient=patient,
            date=today - timedelta(days=n - k),
            course_id=first.course_id,
            session_number=k + 1,
        )
    for k in range(n):
        day = today - timedelta(days=k)
        for test in ("fair", "pace"):
            ProvocativeTestFactory.create(
                patient=patient, test=test, performed_at=at(patient, day, n), examiner=clinician
            )
        respond(patient, day, "rmdq", rmdq(k % 24))
        DiagnosisFactory.create(patient=patient, name=f"Diagnosis {k}", date_from=day)
        ImagingFindingFactory.create(patient=patient, date=day)


def test_the_patient_page_costs_the_same_queries_for_a_small_or_large_record(
    web, clinician, patient
):
    add_logs(patient, 30)
    on_program(patient, clinician)
    _record(patient, clinician, 2)
    url = f"/dashboard/patients/{patient.pk}/?range=all"
    web.get(url)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as small:
        assert web.get(url).status_code == 200
    _record(patient, clinician, 20)
    with CaptureQueriesContext(connection) as large:
        content = web.get(url).content.decode()
    assert content.count('data-kind="intervention"') > 2
    assert len(large) == len(small)


def test_the_deep_gluteal_syndrome_demo_reads_as_its_story():
    seed_demo()
    physio = Clinician.objects.get(user__email=PHYSIO_EMAIL)
    helen = Patient.objects.get(clinic=physio.clinic, email=DGS_EMAIL)
    client = Client()
    client.force_login(physio.user)
    content = page(client, helen)
    # FAIR, Pace and the seated piriformis stretch turn negative on the affected side.
    tests = section(content, "provocative-tests")
    turned = re.findall(r'<tr data-test="(\w+)" data-side="(\w+)" class="turned-negative">', tests)
    assert set(turned) >= {
        ("fair", "right"),
        ("pace", "right"),
        ("seated_piriformis_stretch", "right"),
    }
    # Three ultrasound-guided prolotherapy sessions, each a marker on the chart.
    markers = [day for kind, day in MARKER.findall(content) if kind == "intervention"]
    sessions = Intervention.objects.filter(patient=helen).order_by("date")
    assert markers == sorted({i.date.isoformat() for i in sessions}, reverse=True)
    assert len(markers) == 3
    # The program's phases, as accepted progressions moved them.
    assert BAND.findall(content)
    assert "section-program" in content
    # RMDQ 15 -> 3: meaningful; the calcified ligament on imaging, the working diagnosis.
    assert 'data-meaningful="yes"' in section(content, "questionnaires")
    assert "calcified" in section(content, "imaging").lower()
    assert "Deep gluteal syndrome" in section(content, "diagnoses")
    assert ProvocativeTest.objects.filter(patient=helen).exists()
