"""Questionnaire schedules, windows, expiry and the patient's answers."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from patients.models import AuditEvent
from programs import services as program_services
from rehab import tasks
from rehab.models import Intervention, QuestionnaireDue, QuestionnaireResponse
from rehab.services import record as services
from tests.programs.factories import make_template
from tests.rehab.factories_record import (
    DailyLogFactory,
    QuestionnaireDueFactory,
    QuestionnaireResponseFactory,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC
ME = "/api/v1/me/questionnaires/"
SUBMIT = "/api/v1/me/questionnaires/{}/responses/"

# The cast's patient lives in Europe/London: in July that is UTC+1, so local midnight
# is 23:00 UTC the day before.
PROCEDURE_DAY = dt.date(2026, 7, 10)


def _london_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC) - dt.timedelta(hours=1)


def _record_procedure(patient, clinician, *, now, day=PROCEDURE_DAY, **kwargs):
    return services.intervention_create(
        patient=patient, clinician=clinician, date=day, kind="injection", now=now, **kwargs
    )


def _windows(patient):
    return sorted(
        {
            (d.reason, d.due_from, d.expires_at)
            for d in QuestionnaireDue.objects.filter(patient=patient)
        },
        key=lambda w: w[1],
    )


def _sbi(leg=4):
    return {"leg_pain": leg, "numbness_tingling": 3, "weakness": 1, "sitting_pain": 5}


# --------------------------------------------------------------------------- schedules


def test_it_schedules_before_one_week_and_six_weeks_after_a_planned_procedure(patient, clinician):
    now = dt.datetime(2026, 7, 1, 12, tzinfo=UTC)
    intervention = _record_procedure(patient, clinician, now=now)

    m = _london_midnight
    assert _windows(patient) == [
        # Opens a week before; closes at the start of the procedure day (local time).
        ("pre_intervention", m(dt.date(2026, 7, 3)), m(dt.date(2026, 7, 10))),
        # Days 7-10 after.
        ("post_intervention_1w", m(dt.date(2026, 7, 17)), m(dt.date(2026, 7, 21))),
        # Days 42-48 after.
        ("post_intervention_6w", m(dt.date(2026, 8, 21)), m(dt.date(2026, 8, 28))),
    ]
    dues = QuestionnaireDue.objects.filter(patient=patient)
    assert dues.count() == 9  # three occasions x PSFS, SBI, RMDQ
    assert {d.intervention_id for d in dues} == {intervention.pk}


def test_it_asks_nothing_before_a_procedure_recorded_on_its_day(patient, clinician):
    # 08:00 in London on the procedure day: "before" answers could follow the injection.
    _record_procedure(patient, clinician, now=dt.datetime(2026, 7, 10, 7, tzinfo=UTC))
    assert {d.reason for d in QuestionnaireDue.objects.filter(patient=patient)} == {
        "post_intervention_1w",
        "post_intervention_6w",
    }


def test_it_keeps_the_before_window_open_until_the_procedure_day_starts(patient, clinician):
    # 22:59 in London the evening before: the window is still open for a minute.
    _record_procedure(patient, clinician, now=dt.datetime(2026, 7, 9, 21, 59, tzinfo=UTC))
    pre = QuestionnaireDue.objects.filter(patient=patient, reason="pre_intervention")
    assert pre.count() == 3
    assert {d.expires_at for d in pre} == {_london_midnight(PROCEDURE_DAY)}


def test_it_skips_windows_that_closed_before_a_procedure_was_recorded(patient, clinician):
    # Recorded 20 days after the fact: only the 6-week follow-up is still ahead.
    _record_procedure(patient, clinician, now=dt.datetime(2026, 7, 30, 12, tzinfo=UTC))
    assert {d.reason for d in QuestionnaireDue.objects.filter(patient=patient)} == {
        "post_intervention_6w"
    }


def test_it_schedules_nothing_for_a_procedure_recorded_after_all_its_windows(patient, clinician):
    _record_procedure(patient, clinician, now=dt.datetime(2026, 8, 28, 0, tzinfo=UTC))
    assert not QuestionnaireDue.objects.filter(patient=patient).exists()


def test_it_keeps_a_window_that_closes_a_moment_after_recording(patient, clinician):
    # The 6-week window closes at local midnight starting 28 August (23:00 UTC on the 27th).
    _record_procedure(patient, clinician, now=dt.datetime(2026, 8, 27, 22, 59, tzinfo=UTC))
    assert QuestionnaireDue.objects.filter(patient=patient).count() == 3


def test_it_rolls_back_the_schedule_with_a_failed_intervention(patient, clinician):
    with pytest.raises(ValidationError):
        _record_procedure(
            patient,
            clinician,
            now=dt.datetime(2026, 7, 1, tzinfo=UTC),
            course_id=patient.pk,  # not a course of this patient: refused
        )
    assert not Intervention.objects.exists()
    assert not QuestionnaireDue.objects.exists()


def test_it_schedules_the_baseline_only_once(patient):
    now = dt.datetime(2026, 9, 1, tzinfo=UTC)
    services.questionnaires_schedule_baseline(patient=patient, start=dt.date(2026, 9, 1), now=now)
    services.questionnaires_schedule_baseline(patient=patient, start=dt.date(2026, 9, 20), now=now)
    baseline = QuestionnaireDue.objects.filter(patient=patient, reason="baseline")
    assert baseline.count() == 3
    assert {d.due_from for d in baseline} == {_london_midnight(dt.date(2026, 9, 1))}


def test_it_gives_no_new_baseline_for_an_instrument_already_answered(patient):
    QuestionnaireResponseFactory.create(patient=patient, instrument="rmdq")
    QuestionnaireResponseFactory.create(patient=patient, instrument="rmdq")
    now = dt.datetime(2026, 9, 1, tzinfo=UTC)
    services.questionnaires_schedule_baseline(patient=patient, start=dt.date(2026, 9, 1), now=now)
    assert set(QuestionnaireDue.objects.values_list("instrument", flat=True)) == {"psfs", "sbi"}


def _baseline_days(patient):
    london = zoneinfo.ZoneInfo("Europe/London")
    return {
        (d.instrument, d.due_from.astimezone(london).date())
        for d in QuestionnaireDue.objects.filter(patient=patient, reason="baseline")
    }


def test_it_schedules_the_baseline_of_a_patient_who_logs_from_the_periodic_job(
    patient, other_patient
):
    first_log = patient.local_today() - dt.timedelta(days=2)
    DailyLogFactory.create(patient=patient, date=first_log)
    DailyLogFactory.create(patient=patient, date=patient.local_today())
    # The app never asked what is due; the hourly job gives the baseline all the same.
    tasks.questionnaires_schedule_programs_task()
    tasks.questionnaires_schedule_programs_task()
    assert _baseline_days(patient) == {(i, first_log) for i in ("psfs", "sbi", "rmdq")}
    # A patient who has neither logged nor started a program is not asked yet.
    assert not QuestionnaireDue.objects.filter(patient=other_patient).exists()


def test_it_schedules_the_baseline_from_the_start_of_a_program(patient, clinician):
    start = patient.local_today() - dt.timedelta(days=1)
    _program(patient, clinician, start=start)
    services.questionnaires_schedule_baselines()
    assert _baseline_days(patient) == {(i, start) for i in ("psfs", "sbi", "rmdq")}


def test_it_opens_a_late_baseline_today_rather_than_never(patient):
    DailyLogFactory.create(patient=patient, date=patient.local_today() - dt.timedelta(days=30))
    services.questionnaires_schedule_baselines()
    today = patient.local_today()
    assert _baseline_days(patient) == {(i, today) for i in ("psfs", "sbi", "rmdq")}


def test_it_leaves_the_baseline_the_patient_already_has(patient, patient_client):
    patient_client.get(ME)  # the app scheduled the baseline, from today
    DailyLogFactory.create(patient=patient, date=patient.local_today() - dt.timedelta(days=3))
    QuestionnaireResponseFactory.create(patient=patient, instrument="rmdq")
    QuestionnaireDue.objects.filter(patient=patient, instrument="rmdq").delete()
    assert services.questionnaires_schedule_baselines() == 0
    today = patient.local_today()
    assert _baseline_days(patient) == {("psfs", today), ("sbi", today)}


def _program(patient, clinician, *, start):
    template = make_template(clinic=patient.clinic, phases=[(2, [3]), (4, [3])])  # 6 weeks
    return program_services.assignment_create(
        patient=patient, template=template, by=clinician, start_date=start, today=start
    )


def test_it_schedules_every_two_weeks_of_a_program_once_across_the_clock_change(patient, clinician):
    start = dt.date(2026, 9, 7)
    _program(patient, clinician, start=start)  # 6 weeks: occasions at weeks 0, 2, 4, 6
    # The hourly sweep, run (twice) in the week before each fortnight opens.
    for week in (0, 2, 4, 6):
        now = _london_midnight(start + dt.timedelta(weeks=week, days=-3))
        services.questionnaires_schedule_programs(now=now)
        services.questionnaires_schedule_programs(now=now)

    windows = [w for w in _windows(patient) if w[0] == "program_fortnightly"]
    assert [w[1] for w in windows] == [
        _london_midnight(start + dt.timedelta(weeks=week)) for week in (0, 2, 4, 6)
    ]
    # Seven local days each, including the one across the October clock change.
    london = zoneinfo.ZoneInfo("Europe/London")
    assert [
        (w[2].astimezone(london).date() - w[1].astimezone(london).date()).days for w in windows
    ] == [7, 7, 7, 7]
    assert windows[-1][2] - windows[-1][1] == dt.timedelta(days=7, hours=1)
    assert (
        QuestionnaireDue.objects.filter(patient=patient, reason="program_fortnightly").count() == 12
    )


def test_it_picks_up_the_next_fortnight_of_every_active_program(patient, clinician):
    today = patient.local_today()
    _program(patient, clinician, start=today - dt.timedelta(days=13))
    # Week 0's window has closed, week 2 opens tomorrow, week 4 is beyond the look-ahead.
    services.questionnaires_schedule_programs()
    services.questionnaires_schedule_programs()
    dues = QuestionnaireDue.objects.filter(patient=patient, reason="program_fortnightly")
    assert dues.count() == 3
    london = zoneinfo.ZoneInfo("Europe/London")
    assert {d.due_from.astimezone(london).date() for d in dues} == {today + dt.timedelta(days=1)}


def test_it_schedules_nothing_for_an_ended_program(patient, clinician):
    today = patient.local_today()
    program = _program(patient, clinician, start=today - dt.timedelta(days=3))
    program_services.assignment_end(assignment=program, by=clinician, on=today, today=today)
    services.questionnaires_schedule_programs()
    assert not QuestionnaireDue.objects.filter(reason="program_fortnightly").exists()


def test_it_asks_about_a_program_as_soon_as_it_is_assigned(patient_client, patient, clinician):
    _program(patient, clinician, start=patient.local_today())
    sbi = next(q for q in patient_client.get(ME).json()["results"] if q["instrument"] == "sbi")
    assert set(sbi["reasons"]) == {"baseline", "program_fortnightly"}


# --------------------------------------------------------------------------- windows, expiry


def test_it_opens_and_closes_a_window_at_its_edges(patient, clinician):
    _record_procedure(patient, clinician, now=dt.datetime(2026, 7, 1, tzinfo=UTC))
    due = QuestionnaireDue.objects.get(
        patient=patient, instrument="sbi", reason="post_intervention_1w"
    )
    tick = dt.timedelta(microseconds=1)
    assert due.state(due.due_from - tick) == "upcoming"
    assert due.state(due.due_from) == "open"
    assert due.state(due.expires_at - tick) == "open"
    assert due.state(due.expires_at) == "expired"


def test_it_expires_only_unanswered_items_whose_window_closed(patient, clinician):
    _record_procedure(patient, clinician, now=dt.datetime(2026, 7, 1, tzinfo=UTC))
    pre = QuestionnaireDue.objects.filter(patient=patient, reason="pre_intervention")
    answered = pre.get(instrument="sbi")
    answered.response = QuestionnaireResponseFactory.create(patient=patient, instrument="sbi")
    answered.save()
    closes = answered.expires_at

    assert services.questionnaires_expire(now=closes - dt.timedelta(seconds=1)) == 0
    assert services.questionnaires_expire(now=closes) == 2  # PSFS and RMDQ; SBI was answered
    assert services.questionnaires_expire(now=closes) == 0  # a second sweep finds nothing
    assert set(pre.filter(expired_at=closes).values_list("instrument", flat=True)) == {
        "psfs",
        "rmdq",
    }
    assert pre.get(instrument="sbi").expired_at is None
    # The follow-ups are still ahead.
    assert not QuestionnaireDue.objects.filter(
        reason__startswith="post", expired_at__isnull=False
    ).exists()


def test_it_expires_in_a_single_update_whatever_the_number_of_items(
    patient, other_patient, django_assert_num_queries
):
    past = dt.datetime(2026, 1, 1, tzinfo=UTC)
    for who in (patient, other_patient):
        for instrument in ("psfs", "sbi", "rmdq"):
            QuestionnaireDueFactory.create(
                patient=who,
                instrument=instrument,
                due_from=past,
                expires_at=past + dt.timedelta(days=7),
            )
    with django_assert_num_queries(1):
        assert tasks.questionnaires_expire_task() == 6


# --------------------------------------------------------------------------- the app's list


def test_it_lists_the_baseline_questionnaires_of_a_new_patient(patient_client, patient):
    response = patient_client.get(ME)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [q["instrument"] for q in body["results"]] == ["psfs", "sbi", "rmdq"]
    sbi = body["results"][1]
    assert sbi["reasons"] == ["baseline"]
    assert len(sbi["definition"]["items"]) == 4
    # A second look does not schedule the baseline again.
    patient_client.get(ME)
    assert QuestionnaireDue.objects.filter(patient=patient).count() == 3


def test_it_shows_overlapping_occasions_of_one_instrument_once(patient_client, patient, clinician):
    patient_client.get(ME)  # baseline
    tomorrow = patient.local_today() + dt.timedelta(days=1)
    services.intervention_create(
        patient=patient, clinician=clinician, date=tomorrow, kind="injection"
    )
    body = patient_client.get(ME).json()
    assert body["count"] == 3
    sbi = next(q for q in body["results"] if q["instrument"] == "sbi")
    assert set(sbi["reasons"]) == {"baseline", "pre_intervention"}
    assert len(sbi["covers"]) == 2


def test_it_does_not_list_closed_or_upcoming_windows(patient_client, patient):
    now = dt.datetime.now(tz=UTC)
    QuestionnaireDue.objects.bulk_create(
        [
            # Closed a minute ago; the sweeper has not been by yet.
            QuestionnaireDue(
                patient=patient,
                instrument="rmdq",
                reason="program_fortnightly",
                due_from=now - dt.timedelta(days=7),
                expires_at=now - dt.timedelta(minutes=1),
            ),
            QuestionnaireDue(
                patient=patient,
                instrument="rmdq",
                reason="post_intervention_1w",
                due_from=now + dt.timedelta(days=1),
                expires_at=now + dt.timedelta(days=5),
            ),
        ]
    )
    # Baseline already done, so only the two above could show.
    QuestionnaireDueFactory.create(
        patient=patient,
        instrument="psfs",
        reason="baseline",
        expired_at=now,
        due_from=now - dt.timedelta(days=30),
        expires_at=now - dt.timedelta(days=23),
    )
    for instrument in ("sbi", "rmdq"):
        QuestionnaireDueFactory.create(
            patient=patient,
            instrument=instrument,
            reason="baseline",
            due_from=now - dt.timedelta(days=30),
            expires_at=now - dt.timedelta(days=23),
        )
    assert patient_client.get(ME).json()["count"] == 0


def test_it_offers_the_psfs_activities_named_last_time(patient_client, patient):
    QuestionnaireResponseFactory.create(
        patient=patient,
        instrument="psfs",
        score=Decimal(3),
        answers={
            "activities": [
                {"activity": "Sitting", "score": 2},
                {"activity": "Driving", "score": 3},
                {"activity": "Walking", "score": 4},
            ]
        },
    )
    QuestionnaireDueFactory.create(patient=patient, instrument="psfs", reason="program_fortnightly")
    psfs = patient_client.get(ME).json()["results"][0]
    assert psfs["instrument"] == "psfs"
    assert psfs["previous_activities"] == ["Sitting", "Driving", "Walking"]


def test_it_audits_the_patient_reading_their_questionnaires(patient_client, patient):
    patient_client.get(ME)
    assert AuditEvent.objects.filter(
        patient=patient, actor=patient.user, action="read", object_type="questionnairedue"
    ).exists()


# --------------------------------------------------------------------------- answers


def test_it_scores_submitted_answers_on_the_server(patient_client, patient):
    due = QuestionnaireDueFactory.create(patient=patient, instrument="sbi")
    response = patient_client.post(SUBMIT.format(due.pk), {"answers": _sbi()})
    assert response.status_code == 201
    body = response.json()
    assert body["score"] == 13.0
    assert body["instrument_version"] == "1"
    assert body["scoring_version"] == "1"
    stored = QuestionnaireResponse.objects.get(pk=body["id"])
    assert stored.answers == _sbi()
    due.refresh_from_db()
    assert due.response_id == stored.pk
    assert AuditEvent.objects.filter(
        patient=patient, action="create", object_type="questionnaireresponse"
    ).exists()


def test_it_answers_a_retry_with_the_stored_response(patient_client, patient):
    due = QuestionnaireDueFactory.create(patient=patient, instrument="sbi")
    first = patient_client.post(SUBMIT.format(due.pk), {"answers": _sbi()})
    again = patient_client.post(SUBMIT.format(due.pk), {"answers": _sbi()})
    assert again.status_code == 200
    assert again.json() == first.json()
    assert QuestionnaireResponse.objects.count() == 1


def test_it_refuses_different_answers_to_an_answered_questionnaire(patient_client, patient):
    due = QuestionnaireDueFactory.create(patient=patient, instrument="sbi")
    first = patient_client.post(SUBMIT.format(due.pk), {"answers": _sbi(leg=4)})
    response = patient_client.post(SUBMIT.format(due.pk), {"answers": _sbi(leg=5)})
    assert response.status_code == 409
    assert response.json()["existing_id"] == first.json()["id"]
    assert response.json()["code"] == "already_answered"  # docs/errors.md
    assert QuestionnaireResponse.objects.count() == 1


def test_it_completes_every_open_occasion_of_the_instrument_with_one_answer(
    patient_client, patient
):
    baseline = QuestionnaireDueFactory.create(patient=patient, instrument="sbi", reason="baseline")
    pre = QuestionnaireDueFactory.create(
        patient=patient, instrument="sbi", reason="pre_intervention"
    )
    other_instrument = QuestionnaireDueFactory.create(patient=patient, instrument="rmdq")
    body = patient_client.post(SUBMIT.format(pre.pk), {"answers": _sbi()}).json()
    baseline.refresh_from_db()
    other_instrument.refresh_from_db()
    assert str(baseline.response_id) == body["id"]
    assert other_instrument.response_id is None
    # Answering the other one now is a retry of the same response.
    again = patient_client.post(SUBMIT.format(baseline.pk), {"answers": _sbi()})
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]


def test_it_refuses_answers_after_the_window_closed(patient_client, patient):
    now = dt.datetime.now(tz=UTC)
    due = QuestionnaireDueFactory.create(
        patient=patient,
        instrument="sbi",
        due_from=now - dt.timedelta(days=8),
        expires_at=now - dt.timedelta(seconds=1),
    )
    response = patient_client.post(SUBMIT.format(due.pk), {"answers": _sbi()})
    assert response.status_code == 400
    assert response.json()["state"] == "expired"
    assert not QuestionnaireResponse.objects.exists()


def test_it_refuses_answers_before_the_window_opens(patient_client, patient):
    now = dt.datetime.now(tz=UTC)
    due = QuestionnaireDueFactory.create(
        patient=patient,
        instrument="sbi",
        due_from=now + dt.timedelta(days=1),
        expires_at=now + dt.timedelta(days=5),
    )
    response = patient_client.post(SUBMIT.format(due.pk), {"answers": _sbi()})
    assert response.status_code == 400
    assert response.json()["state"] == "upcoming"


@pytest.mark.parametrize(
    ("instrument", "answers", "field"),
    [
        ("sbi", {**_sbi(), "leg_pain": 7}, "leg_pain"),
        ("sbi", {"leg_pain": 1, "numbness_tingling": 0, "weakness": 0}, "sitting_pain"),
        ("rmdq", {"ticked": [25]}, "ticked"),
        ("psfs", {"activities": [{"activity": "Sitting", "score": 3}]}, "activities"),
    ],
)  # fmt: skip
def test_it_names_the_invalid_answer(patient_client, patient, instrument, answers, field):
    due = QuestionnaireDueFactory.create(patient=patient, instrument=instrument)
    response = patient_client.post(SUBMIT.format(due.pk), {"answers": answers})
    assert response.status_code == 400
    assert field in response.json()["answers"]


def test_it_refuses_unknown_fields_in_a_submission(patient_client, patient):
    due = QuestionnaireDueFactory.create(patient=patient, instrument="sbi")
    response = patient_client.post(SUBMIT.format(due.pk), {"answers": _sbi(), "score": 3})
    assert response.status_code == 400
    assert "score" in response.json()


# --------------------------------------------------------------------------- scope


def test_it_hides_a_patients_questionnaires_from_another_patient(
    other_patient_client, patient, patient_client
):
    due = QuestionnaireDueFactory.create(patient=patient, instrument="sbi")
    response = other_patient_client.post(SUBMIT.format(due.pk), {"answers": _sbi()})
    assert response.status_code == 404
    listed = other_patient_client.get(ME).json()["results"]
    assert str(due.pk) not in {q["id"] for q in listed}
    assert all(str(due.pk) not in q["covers"] for q in listed)


def test_it_keeps_clinicians_and_strangers_out_of_the_patient_endpoints(
    clinician_client, anon_client, patient
):
    due = QuestionnaireDueFactory.create(patient=patient, instrument="sbi")
    assert clinician_client.get(ME).status_code == 403
    assert clinician_client.post(SUBMIT.format(due.pk), {"answers": _sbi()}).status_code == 403
    assert anon_client.get(ME).status_code == 401
    assert anon_client.post(SUBMIT.format(due.pk), {"answers": _sbi()}).status_code == 401
