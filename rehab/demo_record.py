"""Demo data for the clinical record: the two stories of issue 5, told in full.

1. A 51-year-old with deep gluteal syndrome from a calcified sacrospinous ligament, seen
   on a radiograph and musculoskeletal ultrasound, with FAIR, Pace and seated piriformis
   stretch positive; three ultrasound-guided prolotherapy sessions (dextrose 10% with
   lidocaine) 2-3 weeks apart; pain 10/10 -> 1/10 within a month and every test negative.
2. A patient a year after an L4-L5 decompression who fell down ten marble steps: straight
   leg raise, slump and crossed straight leg raise all negative; an MRI showing a
   Morel-Lavallee lesion, not a re-herniation.

All dates are relative to `today`, so the demo always looks current. `seed_demo` (the
demo command) calls `seed_record_demo`; it is idempotent: patients that exist are left
alone. Rows are written directly rather than through the services, because these are
not clinical acts to audit and they lie in the past, where the services' "not in the
future / not more than 14 days back" guards rightly refuse them; questionnaire scores
still come from `rehab.scoring`, and windows still ahead are scheduled by the services.

One module, though over 500 lines: two patients' stories told in full, each read top to
bottom; splitting a story would make it harder to check against the clinical narrative.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction

from patients.models import Clinic, Clinician, Patient, User
from rehab import scoring
from rehab.models import (
    Alert,
    DailyLog,
    Diagnosis,
    ImagingFinding,
    Intervention,
    ProvocativeTest,
    QuestionnaireResponse,
)
from rehab.safety import SafetyAnswers
from rehab.selectors import safety_inputs
from rehab.services import alerts as alert_services
from rehab.services import record as record_services

DGS_EMAIL = "helen.carter@demo.example"
POST_OP_EMAIL = "david.okafor@demo.example"
TIMEZONE = "Europe/London"


def _at(patient: Patient, day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=patient.tz)


def _patient(
    *,
    clinic: Clinic,
    clinician: Clinician,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    date_of_birth: date,
    condition: str,
    affected_side: str,
    previous_spine_surgery: bool = False,
) -> Patient:
    user = User.objects.create_user(email, password, first_name=first_name, last_name=last_name)
    patient = Patient.objects.create(
        user=user,
        clinic=clinic,
        email=email,
        first_name=first_name,
        last_name=last_name,
        date_of_birth=date_of_birth,
        timezone=TIMEZONE,
        condition=condition,
        affected_side=affected_side,
        history_previous_spine_surgery=previous_spine_surgery,
    )
    patient.care_team.add(clinician)
    return patient


@dataclass(frozen=True)
class _Day:
    pain: int
    leg_pain: int
    back_pain: int
    worst_pain: int
    function: int
    sleep: str


def _logs(patient: Patient, start: date, days: Sequence[_Day], side: str) -> None:
    no_flags = SafetyAnswers.from_mapping({}).as_dict()
    DailyLog.objects.bulk_create(
        DailyLog(
            patient=patient,
            date=start + timedelta(days=i),
            pain=d.pain,
            leg_pain=d.leg_pain,
            back_pain=d.back_pain,
            worst_pain=d.worst_pain,
            leg_pain_side=side if d.leg_pain else "none",
            function=d.function,
            sleep=d.sleep,
            safety=no_flags,
        )
        for i, d in enumerate(days)
    )


def _intervention(**fields: Any) -> Intervention:
    """Save an intervention; without a `course_id` it starts a course of its own."""
    intervention = Intervention(id=uuid.uuid4(), **fields)
    intervention.course_id = intervention.course_id or intervention.id
    intervention.save(force_insert=True)
    return intervention


def _years_ago(today: date, years: float) -> date:
    return today - timedelta(days=round(years * 365.25))


def _clamp(value: float) -> int:
    return max(0, min(10, round(value)))


def _exam(
    patient: Patient,
    clinician: Clinician,
    day: date,
    results: Sequence[tuple[str, str, str, dict[str, Any]]],
) -> None:
    performed_at = _at(patient, day, 10)
    ProvocativeTest.objects.bulk_create(
        ProvocativeTest(
            patient=patient,
            performed_at=performed_at,
            examiner=clinician,
            created_by=clinician,
            test=test,
            side=side,
            result=result,
            **extra,
        )
        for test, side, result, extra in results
    )


def _answers(patient: Patient, day: date, instrument: str, answers: dict[str, Any]) -> None:
    scored = scoring.score_answers(instrument, answers)
    definition = scoring.INSTRUMENTS[instrument]
    QuestionnaireResponse.objects.create(
        patient=patient,
        instrument=instrument,
        instrument_version=definition.version,
        scoring_version=definition.scoring_version,
        answers=scored.answers,
        score=scored.score,
        items_missing=scored.items_missing,
        date=day,
        submitted_at=_at(patient, day, 19),
        submitted_by=patient.user,
    )


def _psfs(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"activities": [{"activity": name, "score": score} for name, score in pairs]}


def _sbi(leg: int, numbness: int, weakness: int, sitting: int) -> dict[str, Any]:
    return {
        "leg_pain": leg,
        "numbness_tingling": numbness,
        "weakness": weakness,
        "sitting_pain": sitting,
    }


def _rmdq(count: int, rng: random.Random) -> dict[str, Any]:
    return {"ticked": sorted(rng.sample(range(1, scoring.RMDQ_ITEMS + 1), count))}


# --------------------------------------------------------------------------- story 1


def _deep_gluteal_syndrome(
    *, clinic: Clinic, clinician: Clinician, today: date, rng: random.Random, password: str
) -> Patient:
    first_visit = today - timedelta(days=48)
    patient = _patient(
        clinic=clinic,
        clinician=clinician,
        email=DGS_EMAIL,
        password=password,
        first_name="Helen",
        last_name="Carter",
        date_of_birth=_years_ago(today, 51.3),
        condition="Deep gluteal syndrome (right), calcified sacrospinous ligament",
        affected_side=Patient.Side.RIGHT,
    )

    # Pain 10 at the first visit, a short flare after the first injection, then down to
    # 1 within a month, and staying there.
    days = []
    for i in range((today - first_visit).days + 1):
        if i <= 4:
            level = 10.0 if i != 3 else 9.0
        elif i <= 30:
            level = 9.0 - 8.0 * (i - 4) / 26
        else:
            level = 1.0 if rng.random() < 0.7 else 0.0
        pain = _clamp(level + (rng.choice((-1, 0, 0, 1)) if 4 < i < 28 else 0))
        days.append(
            _Day(
                pain=pain,
                leg_pain=pain,
                back_pain=_clamp(pain / 3),
                worst_pain=_clamp(pain + (1 if pain < 10 else 0)),
                function=_clamp(10 - pain),
                sleep="disturbed" if pain >= 5 else "undisturbed",
            )
        )
    _logs(patient, first_visit, days, side="right")

    ImagingFinding.objects.bulk_create(
        [
            ImagingFinding(
                patient=patient,
                modality=ImagingFinding.Modality.RADIOGRAPH,
                date=first_visit - timedelta(days=9),
                body_region="Pelvis (AP)",
                finding=(
                    "Linear calcification along the course of the right sacrospinous ligament. "
                    "Hip joints and sacroiliac joints unremarkable."
                ),
                created_by=clinician,
            ),
            ImagingFinding(
                patient=patient,
                modality=ImagingFinding.Modality.ULTRASOUND,
                date=first_visit,
                body_region="Right deep gluteal space",
                finding=(
                    "Thickened, calcified right sacrospinous ligament with acoustic shadowing. "
                    "The sciatic nerve runs against it and is swollen proximally; pressure "
                    "with the probe reproduces the familiar buttock and leg pain."
                ),
                created_by=clinician,
            ),
        ]
    )
    Diagnosis.objects.create(
        patient=patient,
        name="Deep gluteal syndrome: sciatic nerve entrapment at a calcified sacrospinous ligament",
        date_from=first_visit,
        notes="Right side. Radiograph and MSK ultrasound; FAIR, Pace and seated piriformis +.",
        created_by=clinician,
    )

    concordant = {"concordant": True, "symptom_location": "Right buttock, posterior thigh"}
    _exam(
        patient,
        clinician,
        first_visit,
        [
            ("fair", "right", "positive", {**concordant, "provoked_pain": 8}),
            ("fair", "left", "negative", {}),
            ("pace", "right", "positive", {**concordant, "provoked_pain": 7}),
            ("pace", "left", "negative", {}),
            ("seated_piriformis_stretch", "right", "positive", {**concordant, "provoked_pain": 8}),
            ("seated_piriformis_stretch", "left", "negative", {}),
            ("sciatic_notch_tenderness", "right", "positive", {**concordant, "provoked_pain": 6}),
            ("slr", "right", "negative", {"angle_deg": 75}),
            ("slr", "left", "negative", {"angle_deg": 80}),
        ],
    )
    _exam(
        patient,
        clinician,
        first_visit + timedelta(days=16),
        [
            ("fair", "right", "negative", {}),
            ("pace", "right", "positive", {**concordant, "provoked_pain": 3}),
            ("seated_piriformis_stretch", "right", "equivocal", {"provoked_pain": 2}),
        ],
    )
    _exam(
        patient,
        clinician,
        first_visit + timedelta(days=30),
        [
            ("fair", "right", "negative", {}),
            ("pace", "right", "negative", {}),
            ("seated_piriformis_stretch", "right", "negative", {}),
            ("sciatic_notch_tenderness", "right", "negative", {}),
        ],
    )

    sessions: list[Intervention] = []
    for number, offset in enumerate((2, 16, 37), start=1):
        intervention = _intervention(
            patient=patient,
            date=first_visit + timedelta(days=offset),
            kind=Intervention.Kind.PROLOTHERAPY,
            description=f"Prolotherapy session {number} of 3, followed by structured rehab.",
            agent="Dextrose 10% with lidocaine",
            target="Right sacrospinous ligament",
            side=Intervention.Side.RIGHT,
            guidance=Intervention.Guidance.ULTRASOUND,
            performed_by="Dr R. Moreno, sports and exercise medicine",
            session_number=number,
            course_id=sessions[0].course_id if sessions else None,
            created_by=clinician,
        )
        sessions.append(intervention)

    sitting, driving, walking = "Sitting for 30 minutes", "Driving to work", "Walking 2 km"
    for offset, psfs, sbi, rmdq in (
        (0, _psfs((sitting, 1), (driving, 2), (walking, 1)), _sbi(6, 4, 3, 6), 15),
        (14, _psfs((sitting, 4), (driving, 5), (walking, 4)), _sbi(4, 3, 2, 4), 9),
        (30, _psfs((sitting, 8), (driving, 9), (walking, 8)), _sbi(1, 1, 1, 2), 3),
    ):
        day = first_visit + timedelta(days=offset)
        _answers(patient, day, "psfs", psfs)
        _answers(patient, day, "sbi", sbi)
        _answers(patient, day, "rmdq", _rmdq(rmdq, rng))

    # The follow-ups still ahead (or open now: 6 weeks after the first session).
    now = _at(patient, today, 12)
    for intervention in sessions:
        record_services.questionnaires_schedule_for_intervention(intervention=intervention, now=now)
    return patient


# --------------------------------------------------------------------------- story 2


def _fall_after_decompression(
    *, clinic: Clinic, clinician: Clinician, today: date, rng: random.Random, password: str
) -> Patient:
    surgery = today - timedelta(days=395)
    fall = today - timedelta(days=25)
    first_visit = fall + timedelta(days=3)
    mri = first_visit + timedelta(days=7)
    patient = _patient(
        clinic=clinic,
        clinician=clinician,
        email=POST_OP_EMAIL,
        password=password,
        first_name="David",
        last_name="Okafor",
        date_of_birth=_years_ago(today, 58.5),
        condition="Low back pain after a fall, one year after L4-L5 decompression",
        affected_side=Patient.Side.RIGHT,
        previous_spine_surgery=True,
    )

    days = []
    for i in range((today - first_visit).days + 1):
        back = _clamp(7 - 4 * i / 22 + rng.choice((-1, 0, 0, 0, 1)))
        days.append(
            _Day(
                pain=back,
                leg_pain=rng.choice((0, 1, 1, 2)) if i < 12 else rng.choice((0, 0, 1)),
                back_pain=back,
                worst_pain=_clamp(back + 2),
                function=_clamp(9 - back),
                sleep="disturbed" if back >= 6 else "undisturbed",
            )
        )
    _logs(patient, first_visit, days, side="right")
    _falls_again(patient, clinician, today)

    _intervention(
        patient=patient,
        date=surgery,
        kind=Intervention.Kind.SURGERY,
        description="L4-L5 decompression (laminectomy) for lumbar stenosis with L5 radiculopathy.",
        target="L4-L5",
        side=Intervention.Side.MIDLINE,
        performed_by="Spinal surgery team, regional hospital",
        created_by=clinician,
    )
    Diagnosis.objects.bulk_create(
        [
            Diagnosis(
                patient=patient,
                name="Status after L4-L5 decompression",
                date_from=surgery,
                created_by=clinician,
            ),
            Diagnosis(
                patient=patient,
                name="Suspected recurrent disc herniation L4-L5",
                date_from=first_visit,
                date_to=mri,
                notes=(
                    "Fell down ten marble steps three days before. Excluded on MRI: no "
                    "re-herniation, no root compression."
                ),
                created_by=clinician,
            ),
            Diagnosis(
                patient=patient,
                name="Morel-Lavallee lesion, right lumbosacral region",
                date_from=mri,
                notes="Closed degloving injury from the fall. Compression, load as tolerated.",
                created_by=clinician,
            ),
        ]
    )
    ImagingFinding.objects.bulk_create(
        [
            ImagingFinding(
                patient=patient,
                modality=ImagingFinding.Modality.RADIOGRAPH,
                date=fall + timedelta(days=1),
                body_region="Lumbar spine and pelvis",
                finding="No fracture. Post-operative changes at L4-L5.",
                created_by=clinician,
            ),
            ImagingFinding(
                patient=patient,
                modality=ImagingFinding.Modality.MRI,
                date=mri,
                body_region="Lumbar spine",
                finding=(
                    "Post-operative changes at L4-L5 after decompression. No recurrent disc "
                    "herniation and no nerve root compression. Fluid collection between the "
                    "subcutaneous fat and the thoracolumbar fascia over the right lumbosacral "
                    "region, consistent with a Morel-Lavallee lesion."
                ),
                created_by=clinician,
            ),
        ]
    )
    _exam(
        patient,
        clinician,
        first_visit,
        [
            ("slr", "left", "negative", {"angle_deg": 85}),
            (
                "slr",
                "right",
                "negative",
                {"angle_deg": 80, "notes": "Back pain only, at end range."},
            ),
            ("crossed_slr", "left", "negative", {}),
            ("crossed_slr", "right", "negative", {}),
            ("slump", "left", "negative", {}),
            ("slump", "right", "negative", {}),
        ],
    )

    shoes, sitting = "Bending to put on shoes", "Sitting at work for an hour"
    sleeping = "Sleeping on my right side"
    for offset, psfs, sbi, rmdq in (
        (0, _psfs((shoes, 3), (sitting, 4), (sleeping, 2)), _sbi(1, 1, 0, 4), 12),
        (14, _psfs((shoes, 6), (sitting, 7), (sleeping, 5)), _sbi(0, 1, 0, 2), 6),
    ):
        day = first_visit + timedelta(days=offset)
        _answers(patient, day, "psfs", psfs)
        _answers(patient, day, "sbi", sbi)
        _answers(patient, day, "rmdq", _rmdq(rmdq, rng))
    return patient


def _falls_again(patient: Patient, clinician: Clinician, today: date) -> None:
    """Six days ago he slipped on a wet floor (a minor fall after spine surgery: RF-FX-04,
    and the fall reminder); the next day the fall came with numbness down his right leg
    (RF-FX-03, an emergency). Both alerts were dealt with by the physio."""
    from rehab.services import safety

    answers = {
        today - timedelta(days=6): {"injury": "minor"},
        today - timedelta(days=5): {"injury": "minor", "numbness_spread": "one_leg"},
    }
    for day, safety_answers in answers.items():
        log = DailyLog.objects.filter(patient=patient, date=day).first()
        if log is None:
            continue
        log.safety = SafetyAnswers.from_mapping(safety_answers).as_dict()
        evaluation = safety.evaluate_inline(patient=patient, content=safety_inputs.log_content(log))
        log.safety_advice = safety.advice_json(evaluation)
        log.safety_reminder = safety.reminder_text(evaluation)
        log.save(update_fields=["safety", "safety_advice", "safety_reminder"])
        safety.log_evaluate(log_id=log.pk)
    notes = {
        "RF-FX-04": ("phoned_patient", "Phoned: bruised, no new leg symptoms. GP review booked."),
        "RF-FX-03": ("advised_ed", "Seen in the ED the same evening: no new deficit on exam."),
    }
    for alert in Alert.objects.filter(patient=patient, rule__in=notes):
        disposition, note = notes[alert.rule]
        alert_services.alert_resolve(
            alert=alert, actor=clinician.user, disposition=disposition, note=note
        )


# --------------------------------------------------------------------------- entry point


@transaction.atomic
def seed_record_demo(
    *,
    clinic: Clinic,
    clinician: Clinician,
    today: date,
    rng: random.Random,
    password: str,
) -> list[Patient]:
    """Create the two demo patients (who can sign in with `password`) and their records.

    Idempotent: a patient who already exists at `clinic` is returned as is.
    """
    stories = (
        (DGS_EMAIL, _deep_gluteal_syndrome),
        (POST_OP_EMAIL, _fall_after_decompression),
    )
    patients = []
    for email, story in stories:
        existing = Patient.objects.filter(clinic=clinic, email=email).first()
        if existing is None:
            existing = story(
                clinic=clinic, clinician=clinician, today=today, rng=rng, password=password
            )
        patients.append(existing)
    return patients
