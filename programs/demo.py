"""Demo data for `make run`: the demo patients follow the seeded programs.

`seed_programs_demo` is called by the project's `seed_demo` command. It draws the seeded
exercises' demonstration figures (`seed_exercise_media`, programs/demo_figures.py) and runs the real
services in simulated time (assigning, logging, proposing, accepting), so the demo shows
what the product would have recorded, including at least one pending proposal.
"""

from __future__ import annotations

import importlib
import io
import random
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from uuid import UUID

from django.apps import apps
from django.db import transaction

from patients.models import Clinician, Patient
from programs import rules, selectors, services
from programs.demo_figures import figure_png
from programs.education import content as education_content
from programs.education import selectors as education_selectors
from programs.education import services as education_services
from programs.media.services import media_create
from programs.models import (
    EducationCard,
    Exercise,
    ExerciseLog,
    ExerciseMedia,
    PrescribedExercise,
    ProgramAssignment,
    ProgramTemplate,
    ProgressionProposal,
)

TEMPLATE_SLUGS = ("deep-gluteal-syndrome", "sciatica")
# Share of due sessions each demo patient does: mostly adherent, some not.
ADHERENCE_PROFILES = (0.95, 0.9, 0.85, 0.7, 0.5, 0.3)
# New patients tried in turn for the demo's pending proposal before falling back.
PENDING_CANDIDATES = 3


def _templates() -> dict[str, ProgramTemplate]:
    found = {
        t.slug: t
        for t in ProgramTemplate.objects.filter(clinic__isnull=True, slug__in=TEMPLATE_SLUGS)
    }
    if len(found) < len(TEMPLATE_SLUGS):
        # As the migrations left them (a flushed database has lost the seeded rows).
        importlib.import_module("programs.migrations.0002_seed_templates").seed(apps)
        importlib.import_module("programs.migrations.0003_seed_templates_source_ranges").apply(apps)
        return _templates()
    return found


def seed_exercise_media() -> int:
    """A line drawing of every exercise of the seeded templates that has no shared image
    yet, stored as shared media through the same checks as an upload. Returns how many."""
    exercise_ids = PrescribedExercise.objects.filter(
        phase__template__clinic__isnull=True, phase__template__slug__in=TEMPLATE_SLUGS
    ).values("exercise_id")
    illustrated = ExerciseMedia.objects.filter(
        clinic__isnull=True, kind=ExerciseMedia.Kind.IMAGE
    ).values("exercise_id")
    made = 0
    for exercise in Exercise.objects.filter(pk__in=exercise_ids).exclude(pk__in=illustrated):
        media_create(
            exercise=exercise,
            clinic=None,
            upload=io.BytesIO(figure_png(exercise.slug, exercise.name)),
            alt_text=f"Line drawing of the {exercise.name.lower()} exercise.",
            actor=None,
        )
        made += 1
    return made


def _clinician_for(patient: Patient) -> Clinician | None:
    clinician: Clinician | None = (
        patient.care_team.order_by("created_at").first()
        or Clinician.objects.filter(clinic_id=patient.clinic_id).order_by("created_at").first()
    )
    return clinician


def _easing_pain(start: date, end: date, rng: random.Random) -> dict[date, int]:
    """A non-increasing daily pain series (7 -> 3): next-day pain is never above the mean.
    Used only where the caller has no daily logs to give."""
    total = max((end - start).days, 1)
    high = rng.choice((6, 7))
    return {
        day: max(2, round(high - (high - 3) * (day - start).days / total))
        for day in rules.days(start, end)
    }


def _reload(assignment: ProgramAssignment) -> rules.ProgramPlan:
    return selectors.plan_of(
        selectors.assignments_between(
            [assignment.patient_id], start=assignment.start_date, end=assignment.start_date
        )[assignment.patient_id][-1]
    )


@transaction.atomic
def seed_programs_demo(
    *,
    patients: Sequence[Patient],
    today: date,
    rng: random.Random,
    daily_pain: Mapping[UUID, Mapping[date, int]] | None = None,
) -> None:
    """Assign the seeded templates to `patients` (started 3-6 weeks before `today`), write
    realistic exercise logs, move good progressors on through accepted proposals, and leave
    a pending proposal (always, when a new patient has a clinician). Patients with any
    assignment already are skipped.

    `daily_pain` (optional): the demo's daily-log pain per patient, if the caller made it
    first; patients without it get an easing series for the progression rule.
    """
    templates = _templates()
    # The seeded cards, as migration 0005 left them (a flushed database has lost them).
    education_content.seed_cards(apps)
    seed_exercise_media()
    taken = set(
        ProgramAssignment.objects.filter(patient__in=patients).values_list("patient_id", flat=True)
    )
    todo = [p for p in patients if p.pk not in taken]
    # The demo must show a pending proposal. A candidate is adherent, with low pain during,
    # in phase 1 past its planned two weeks; whether the rule then fires depends only on
    # the next-day pain, which for the caller's patients is their real daily logs. So the
    # first few new patients are candidates in turn until one qualifies.
    candidates_left = PENDING_CANDIDATES
    first_candidate: tuple[Patient, date] | None = None
    pending_made = False
    for patient in todo:
        clinician = _clinician_for(patient)
        if clinician is None:
            continue
        pending_demo = not pending_made and candidates_left > 0
        slug = "deep-gluteal-syndrome" if "gluteal" in patient.condition.lower() else "sciatica"
        if pending_demo:
            candidates_left -= 1
            start = today - timedelta(days=rng.randint(16, 19))
        else:
            start = today - timedelta(days=7 * rng.randint(3, 6) + rng.randint(0, 3))
        share = 1.0 if pending_demo else rng.choice(ADHERENCE_PROFILES)
        progressor = not pending_demo and share >= 0.85
        pain = {
            **_easing_pain(start - timedelta(days=7), today, rng),
            **(daily_pain or {}).get(patient.pk, {}),
        }
        assignment = services.assignment_create(
            patient=patient, template=templates[slug], by=clinician, start_date=start, today=start
        )
        _simulate(
            assignment=assignment,
            clinician=clinician,
            today=today,
            rng=rng,
            share=share,
            progressor=progressor,
            careful=pending_demo,
            pain=pain,
        )
        _demo_cards(patient=patient, clinician=clinician, slug=slug, rng=rng)
        if pending_demo:
            first_candidate = first_candidate or (patient, start)
            pending_made = bool(
                services.progression_proposals_generate(on=today, daily_pain={patient.pk: pain})
            )
    if not pending_made and first_candidate is not None:
        # Every candidate's logged pain rose the day after exercising. The first candidate
        # met every other condition, so the rule fires on an easing series (which never
        # rises above its 7-day mean); its basis shows that series.
        patient, start = first_candidate
        eased = _easing_pain(start - timedelta(days=7), today, rng)
        services.progression_proposals_generate(on=today, daily_pain={patient.pk: eased})


def _simulate(
    *,
    assignment: ProgramAssignment,
    clinician: Clinician,
    today: date,
    rng: random.Random,
    share: float,
    progressor: bool,
    careful: bool,
    pain: Mapping[date, int],
) -> None:
    patient = assignment.patient
    plan = _reload(assignment)
    pending: list[ExerciseLog] = []
    for day in rules.days(assignment.start_date, today - timedelta(days=1)):
        phase = plan.phase_on(day)
        if phase is None or phase.started_on is None:
            continue
        planned_end = phase.started_on + timedelta(days=rules.WEEK * phase.length_weeks)
        if progressor and day >= planned_end:
            ExerciseLog.objects.bulk_create(pending)
            pending = []
            if services.progression_proposals_generate(on=day, daily_pain={patient.pk: pain}):
                proposal = ProgressionProposal.objects.get(assignment=assignment, status="pending")
                services.proposal_accept(proposal=proposal, by=clinician, on=day, today=day)
                plan = _reload(assignment)
                phase = plan.phase_on(day) or phase
        phase_start = phase.started_on or day
        # Good progressors do every session of a phase's last planned week (so the rule
        # can hold); the others skip sessions at random.
        final_week = day >= phase_start + timedelta(days=rules.WEEK * (phase.length_weeks - 1))
        for item in plan.due_on(day):
            if (careful or (progressor and final_week)) or rng.random() < share:
                easy = careful or progressor
                pain_during = rng.choice((0, 1, 1, 2, 2, 3) if easy else (1, 2, 3, 3, 4, 5, 6))
                dosage = item.dosage
                pending.append(
                    ExerciseLog(
                        patient=patient,
                        assigned_exercise_id=item.exercise.id,
                        date=day,
                        sets_done=dosage.sets,
                        reps_done=dosage.reps,
                        hold_seconds_done=dosage.hold_seconds,
                        duration_minutes_done=dosage.duration_minutes,
                        pain_during=pain_during,
                        difficulty=rng.randint(2, 7),
                        stopped_for_pain=pain_during >= 6 and rng.random() < 0.5,
                    )
                )
    ExerciseLog.objects.bulk_create(pending)


def _demo_cards(*, patient: Patient, clinician: Clinician, slug: str, rng: random.Random) -> None:
    """The program brought its phases' cards; a deep gluteal syndrome patient is also given
    the prolotherapy card by hand, and most cards have been read (receipts to look at)."""
    if slug == "deep-gluteal-syndrome":
        card = EducationCard.objects.get(clinic__isnull=True, slug="after-prolotherapy")
        education_services.card_assign(patient=patient, card=card, by=clinician)
    for item in education_selectors.patient_cards(
        user=clinician.user, patient=patient, language="en"
    ):
        if rng.random() < 0.7:
            education_services.card_mark_read(patient=patient, version=item.version)
