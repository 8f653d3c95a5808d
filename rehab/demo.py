"""Demo data for `make run`: a clinic, a physiotherapist, and patients whose logs tell the
cohort stories of docs/clinical-record.md § Demo data (responders, slow and non-responders, a flare,
missed logs, and red-flag events, one still open)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone, translation

from patients.models import Clinic, Clinician, Patient, User
from patients.services import clinician_create_or_update
from programs.demo import seed_programs_demo
from rehab.demo_record import DGS_EMAIL, POST_OP_EMAIL, seed_record_demo
from rehab.models import Alert, DailyLog
from rehab.safety import ESCALATION
from rehab.selectors import safety_inputs
from rehab.services import alerts as alert_services
from rehab.services import safety
from rehab.services.review import review_rules_run

DEMO_PASSWORD = "rehab-demo-2026"  # noqa: S105 - printed on screen by `make run`
CLINIC = "Riverside Physio (demo)"
PHYSIO_EMAIL = "physio@riverside.demo"
ADMIN_EMAIL = "admin@riverside.demo"


@dataclass(frozen=True)
class Story:
    email: str
    first_name: str
    last_name: str
    born: date
    condition: str
    side: str
    days: int
    # pain on day i of `days` (0 = first log); None = no log that day
    pain: Callable[[int, random.Random], int | None]
    safety_on: dict[int, dict[str, Any]]
    history: dict[str, bool]
    # The patient's profile language (docs/app-developers.md § Languages); blank: English.
    language: str = ""
    timezone: str = "Europe/London"


def _trend(start: float, end: float, days: int, noise: float = 0.8) -> Callable[..., int | None]:
    def pain(i: int, rng: random.Random) -> int | None:
        value = start + (end - start) * min(1.0, i / max(1, days - 1)) + rng.uniform(-noise, noise)
        return max(0, min(10, round(value)))

    return pain


def _with_gap(inner: Callable[..., int | None], gap_from: int) -> Callable[..., int | None]:
    def pain(i: int, rng: random.Random) -> int | None:
        return None if i >= gap_from else inner(i, rng)

    return pain


def _with_flare(
    inner: Callable[..., int | None], at: int, length: int
) -> Callable[..., int | None]:
    def pain(i: int, rng: random.Random) -> int | None:
        value = inner(i, rng)
        return min(10, value + 3) if value is not None and at <= i < at + length else value

    return pain


STORIES: tuple[Story, ...] = (
    Story(
        "priya@patient.demo",
        "Priya",
        "Shah",
        date(1984, 3, 2),
        "Sciatica, L5 radiculopathy (disc herniation)",
        "left",
        49,
        _trend(7.5, 2.0, 42),
        {},
        {},
    ),
    Story(
        "tom@patient.demo",
        "Tom",
        "Becker",
        date(1969, 7, 19),
        "Sciatica, S1 radiculopathy",
        "right",
        49,
        _trend(7.0, 5.5, 49),
        {},
        {},
    ),
    Story(
        "maria@patient.demo",
        "Maria",
        "Lopez",
        date(1977, 11, 5),
        "Deep gluteal syndrome (piriformis)",
        "right",
        42,
        _with_flare(_trend(6.0, 6.5, 42), at=38, length=4),
        {},
        {},
    ),
    Story(
        "james@patient.demo",
        "James",
        "O'Neill",
        date(1990, 1, 27),
        "Sciatica after L4-L5 microdiscectomy",
        "left",
        40,
        _with_gap(_trend(6.0, 4.0, 40), gap_from=31),
        {},
        {"previous_spine_surgery": True},
    ),
    Story(
        "daniel@patient.demo",
        "Daniel",
        "Evans",
        date(1958, 6, 11),
        "Sciatica, bilateral L5",
        "both",
        35,
        _trend(6.5, 4.0, 35),
        {24: {"saddle_numbness": "new_or_worse"}},
        {},
    ),
    Story(
        "grace@patient.demo",
        "Grace",
        "Kim",
        date(1972, 9, 30),
        "Sciatica, L4 radiculopathy",
        "left",
        30,
        _trend(6.0, 5.0, 30),
        {29: {"weakness": "foot_drop"}},
        {},
    ),
    Story(
        "helen@patient.demo",
        "Helen",
        "Moore",
        date(1961, 4, 14),
        "Sciatica; breast cancer 2019, in remission",
        "right",
        28,
        _trend(5.0, 5.5, 28),
        {26: {"thoracic_or_band_pain": True}},
        {"cancer": True},
    ),
    # Reads the app in Spanish: her advice, reminders and emails are in Spanish, with the
    # English beside each safety text until a clinician marks its translation reviewed.
    Story(
        "lucia@patient.demo",
        "Lucía",
        "Fernández",
        date(1980, 2, 17),
        "Sciatica, L5 radiculopathy",
        "left",
        21,
        _trend(6.5, 4.5, 21),
        {19: {"injury": "minor"}, 20: {"weakness": "one_leg_new"}},
        {},
        language="es",
        timezone="Europe/Madrid",
    ),
)


def _user(email: str, first: str, last: str) -> User:
    user = User.objects.filter(email=email).first() or User(email=email)
    user.first_name, user.last_name = first, last
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user


def _patient(story: Story, clinic: Clinic, physio: Clinician, today: date) -> Patient | None:
    if Patient.objects.filter(clinic=clinic, email=story.email).exists():
        return None
    patient = Patient.objects.create(
        user=_user(story.email, story.first_name, story.last_name),
        clinic=clinic,
        email=story.email,
        first_name=story.first_name,
        last_name=story.last_name,
        date_of_birth=story.born,
        timezone=story.timezone,
        language=story.language,
        condition=story.condition,
        affected_side=story.side,
        **{f"history_{flag}": value for flag, value in story.history.items()},
    )
    patient.care_team.add(physio)
    return patient


def _logs(patient: Patient, story: Story, today: date, rng: random.Random) -> list[DailyLog]:
    start = today - timedelta(days=story.days - 1)
    logs = []
    for i in range(story.days):
        pain = story.pain(i, rng)
        forgotten = rng.random() < 0.06 and i not in story.safety_on  # the odd missed day
        if pain is None or forgotten:
            continue
        answers = {**story.safety_on.get(i, {})}
        leg = max(0, min(10, pain + rng.choice((0, 1, 1, 2))))
        logs.append(
            DailyLog(
                patient=patient,
                date=start + timedelta(days=i),
                pain=pain,
                leg_pain=leg,
                back_pain=max(0, pain - rng.choice((1, 2, 3))),
                worst_pain=min(10, leg + rng.choice((0, 1, 2))),
                leg_pain_side=story.side if story.side != "both" else "both",
                function=max(0, min(10, 10 - pain + rng.choice((-1, 0, 1)))),
                sleep=rng.choice(("undisturbed", "disturbed", "disturbed"))
                if pain > 4
                else "undisturbed",
                notes="",
                safety=safety.SafetyAnswers.from_mapping(answers).as_dict(),
            )
        )
    # As the app would have been answered: in the patient's language.
    with translation.override(patient.language or "en"):
        for log in logs:
            content = safety_inputs.log_content(log)
            evaluation = safety.evaluate_inline(patient=patient, content=content)
            log.safety_advice = safety.advice_json(evaluation)
            log.safety_reminder = safety.reminder_text(evaluation)
    return DailyLog.objects.bulk_create(logs)


def _evening_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time())) + timedelta(hours=20)


def _evaluate(patient: Patient, logs: list[DailyLog]) -> None:
    """Run the background evaluation as the worker would have, then date the alerts to the
    evening of the log that raised them, as if the worker had run then."""
    for log in sorted(logs, key=lambda item: item.date):
        safety.log_evaluate(log_id=log.pk)
    for alert in Alert.objects.filter(patient=patient).select_related("log"):
        # Never in the future: today's evening has not come yet when the demo is seeded.
        now = timezone.now()
        raised = min(_evening_of(alert.log.date), now) if alert.log else now
        Alert.objects.filter(pk=alert.pk).update(
            created_at=raised,
            opened_at=raised,
            last_fired_at=raised,
            # The care team was emailed back then; a demo start must not mail them again.
            notified_at=raised if alert.notify_due else None,
            escalation_due_at=ESCALATION.due_at(alert.severity, raised),
        )


def seed_demo(*, today: date | None = None, seed: int = 7) -> dict[str, Any]:
    """Create the demo clinic and patients; idempotent (existing demo patients are kept)."""
    rng = random.Random(seed)
    today = today or timezone.localdate()
    with transaction.atomic():
        physio = clinician_create_or_update(
            email=PHYSIO_EMAIL,
            password=DEMO_PASSWORD,
            clinic_name=CLINIC,
            first_name="Alex",
            last_name="Morgan",
        )
        clinic = physio.clinic
        if not clinic.escalation_email:
            clinic.escalation_email = "on-call@riverside.demo"
            clinic.save(update_fields=["escalation_email"])
        admin = _user(ADMIN_EMAIL, "Sam", "Operator")
        admin.is_staff = admin.is_superuser = True
        admin.save()
        created = []
        for story in STORIES:
            patient = _patient(story, clinic, physio, today)
            if patient is None:
                continue
            _evaluate(patient, _logs(patient, story, today, rng))
            created.append(patient)
        existing = set(Patient.objects.filter(clinic=clinic).values_list("pk", flat=True))
        for patient in seed_record_demo(
            clinic=clinic, clinician=physio, today=today, rng=rng, password=DEMO_PASSWORD
        ):
            if patient.pk not in existing:
                _evaluate(patient, list(DailyLog.objects.filter(patient=patient)))
                created.append(patient)
        _acknowledge_past_red_flags(physio=physio, today=today)
        pain: dict[Any, dict[date, int]] = {p.pk: {} for p in created}
        for patient_id, day, value in DailyLog.objects.filter(patient__in=created).values_list(
            "patient_id", "date", "pain"
        ):
            pain[patient_id][day] = value
        seed_programs_demo(patients=created, today=today, rng=rng, daily_pain=pain)
    if created:
        # The review rules (§3) as the hourly beat job would find them on this data.
        review_rules_run()
    return {
        "clinic": clinic.name,
        "clinician": PHYSIO_EMAIL,
        "admin": ADMIN_EMAIL,
        "patients": [*(s.email for s in STORIES), DGS_EMAIL, POST_OP_EMAIL],
        "languages": {s.email: s.language for s in STORIES if s.language},
        "password": DEMO_PASSWORD,
        "created": len(created),
        # From MFA_REQUIRED_DEFAULT when the clinic was made: off with DJANGO_DEBUG=true.
        "two_factor_required": clinic.two_factor_required,
    }


def _acknowledge_past_red_flags(*, physio: Clinician, today: date) -> None:
    """Red flags older than two days were handled; the newest stays open for the demo."""
    cutoff = today - timedelta(days=2)
    for alert in Alert.objects.filter(
        patient__clinic=physio.clinic, status=Alert.Status.OPEN, log__date__lt=cutoff
    ):
        alert_services.alert_acknowledge(alert=alert, actor=physio.user, note="Phoned the patient.")
        alert_services.alert_resolve(
            alert=alert,
            actor=physio.user,
            disposition=Alert.Disposition.ADVISED_ED,
            note="Seen in ED the same day; MRI clear. Resuming rehab.",
        )
