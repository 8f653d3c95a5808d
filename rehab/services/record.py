"""Clinical record: interventions, provocative tests, imaging, diagnoses, questionnaires, marks.

Every write is audited here, in the same transaction as the write itself, so an audit
event exists exactly when the change does.

One module, though over 500 lines: the clinical record is one aggregate per patient, and
its writes share the record's invariants (one diagnosis in force, marks that stand until
revoked, questionnaires scheduled from interventions and programs) and the fever
re-check a procedure triggers.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypedDict
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework import exceptions

from config import enqueue
from config.audit import AuditContext
from config.db import insert_unless_conflict
from config.exceptions import ApplicationError, ConflictError
from patients.models import AuditEvent, Clinician, Patient, User
from patients.restriction import patient_ensure_writable
from patients.services import audit_record
from programs.models import ProgramAssignment
from rehab import scoring
from rehab.models import (
    AssessedMark,
    DailyLog,
    Diagnosis,
    ImagingFinding,
    Instrument,
    Intervention,
    ProvocativeTest,
    QuestionnaireDue,
    QuestionnaireResponse,
)
from rehab.models.record import PROCEDURE_KINDS, RECENT_PROCEDURE_DAYS
from rehab.safety import evaluate
from rehab.safety.vocab import FEVER_THRESHOLD_C
from rehab.selectors import safety_inputs
from rehab.selectors.record import fever_rechecks_owed
from rehab.services import alerts as alert_services
from rehab.services import safety as safety_services

logger = logging.getLogger(__name__)

# Planned procedures may be recorded ahead (their pre-intervention questionnaire opens a
# week before), but not so far ahead that a typo in the year goes unnoticed.
INTERVENTION_MAX_DAYS_AHEAD = 365
# Examinations are recorded after they happen; allow for a clinician's clock being off.
EXAMINATION_CLOCK_SKEW = timedelta(minutes=10)
# No clinical record predates this: an earlier date is a typo, and one near year 1 would
# overflow the date arithmetic of the questionnaire windows and the timeline.
EARLIEST_RECORD_DATE = date(1900, 1, 1)
EARLIEST_RECORD_TIME = datetime.combine(EARLIEST_RECORD_DATE, time.min, tzinfo=UTC)


def _audit(
    *,
    actor: User,
    action: str,
    obj: models.Model,
    patient: Patient,
    changes: dict[str, Any] | None = None,
    context: AuditContext | None = None,
) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type=obj._meta.model_name or "",
        object_id=obj.pk,
        patient=patient,
        changes=changes,
        context=context,
    )


def _not_before_record_start(field: str, day: date) -> None:
    if day < EARLIEST_RECORD_DATE:
        raise ValidationError({field: f"Must not be before {EARLIEST_RECORD_DATE}."})


def _not_after_today(patient: Patient, field: str, day: date) -> None:
    _not_before_record_start(field, day)
    # The patient's local today plus one: a clinician a time zone ahead of the patient
    # may already be on the next date.
    if day > patient.local_today() + timedelta(days=1):
        raise ValidationError({field: "Must not be in the future."})


# --------------------------------------------------------------------------- interventions


@transaction.atomic
def intervention_create(
    *,
    patient: Patient,
    clinician: Clinician,
    date: date,
    kind: str,
    description: str = "",
    agent: str = "",
    target: str = "",
    side: str = "",
    guidance: str = "",
    performed_by: str = "",
    course_id: UUID | None = None,
    session_number: int | None = None,
    context: AuditContext | None = None,
    now: datetime | None = None,
) -> Intervention:
    """Record a procedure and, in the same transaction, its questionnaire schedule.

    Without `course_id` the intervention starts a course of its own (its id is the course
    id). With the `course_id` of an earlier session it joins that course, as the next
    session unless `session_number` says otherwise.
    """
    patient_ensure_writable(patient_id=patient.pk)
    _not_before_record_start("date", date)
    if date > patient.local_today() + timedelta(days=INTERVENTION_MAX_DAYS_AHEAD):
        raise ValidationError(
            {"date": f"At most {INTERVENTION_MAX_DAYS_AHEAD} days ahead for a planned procedure."}
        )
    intervention = Intervention(
        id=uuid.uuid4(),
        patient=patient,
        date=date,
        kind=kind,
        description=description,
        agent=agent,
        target=target,
        side=side,
        guidance=guidance,
        performed_by=performed_by,
        created_by=clinician,
    )
    if course_id is None:
        intervention.course_id = intervention.id
        intervention.session_number = session_number or 1
    else:
        # Serialise two clinicians adding "the next session": lock the course's first
        # session, then read the numbers in a statement of their own. A FOR UPDATE over
        # all sessions would not do: under READ COMMITTED the waiting request re-reads only
        # the rows it locked, never the session the first request inserted, and picks the
        # same number.
        first = (
            Intervention.objects.select_for_update()
            .filter(patient=patient, course_id=course_id)
            .order_by("session_number")
            .values_list("pk", flat=True)
            .first()
        )
        if first is None:
            raise ValidationError({"course_id": "This patient has no course with this id."})
        numbers = set(
            Intervention.objects.filter(course_id=course_id).values_list(
                "session_number", flat=True
            )
        )
        intervention.course_id = course_id
        intervention.session_number = session_number or max(numbers) + 1
        if intervention.session_number in numbers:
            raise ValidationError(
                {"session_number": f"Session {intervention.session_number} is already recorded."}
            )
    try:
        with transaction.atomic():
            intervention.save(force_insert=True)
    except IntegrityError as exc:
        # The lock above makes this unreachable for sessions added through here; a row
        # written by another path (the admin, a script) must still not be a 500.
        if "intervention_unique_session" not in str(exc):
            raise
        raise ConflictError(
            f"Session {intervention.session_number} of this course was recorded a moment ago; "
            "reload and retry.",
            code="concurrent_change",
            extra={"course_id": str(intervention.course_id)},
        ) from exc
    _audit(
        actor=clinician.user,
        action=AuditEvent.Action.CREATE,
        obj=intervention,
        patient=patient,
        changes={"date": date.isoformat(), "kind": kind, "course_id": str(intervention.course_id)},
        context=context,
    )
    questionnaires_schedule_for_intervention(intervention=intervention, now=now)
    if kind in PROCEDURE_KINDS:
        intervention_id = intervention.pk
        transaction.on_commit(lambda: _fever_recheck_enqueue(intervention_id=intervention_id))
    return intervention


def _fever_recheck_enqueue(*, intervention_id: UUID) -> None:
    if enqueue.task_publish("rehab.tasks.intervention_fever_recheck_task", str(intervention_id)):
        return
    # No broker: an emergency alert must not wait for one, and the re-check is quick.
    try:
        intervention_fever_recheck(intervention_id=intervention_id)
    except Exception:
        logger.exception("fever re-check of intervention %s failed", intervention_id)


# The one rule a procedure recorded after the fact can newly fire on an old log.
FEVER_AFTER_PROCEDURE_RULE = "RF-INF-02"
# As for a log's evaluation: a re-check that keeps failing is given up on and shown in
# /health/, rather than retried forever.
MAX_FEVER_RECHECK_ATTEMPTS = safety_services.MAX_EVALUATION_ATTEMPTS


def intervention_fever_recheck(*, intervention_id: UUID | str) -> int:
    """Raise RF-INF-02 on the fevers logged since a procedure that was recorded late.

    A fever logged yesterday was evaluated without the injection recorded today, so it
    raised RF-INF-01 (urgent) where RF-INF-02 (emergency) was due. Only the logs within
    RF-INF-02's 42 days after the procedure whose answers report a fever are re-run, and
    only RF-INF-02 is raised from them: re-raising other rules from old logs (alerts a
    clinician has resolved since) would be noise.

    A procedure is owed its re-check until `fever_rechecked_at` is stamped, in the
    transaction that raises the alerts, so a lost message leaves it owed for
    `fever_rechecks_sweep`. The attempt is counted first, in its own statement, so that a
    re-check that kills its worker every time is given up on rather than retried forever.
    Idempotent and safe to run twice at once: the second run waits for the patient's lock,
    then finds the stamp (and an occurrence is recorded once per log regardless). Returns
    how many logs fired it (0 when it was done already).
    """
    claimed = (
        fever_rechecks_owed()
        .filter(pk=intervention_id)
        .update(fever_recheck_attempts=F("fever_recheck_attempts") + 1)
    )
    if not claimed:
        return 0
    intervention = Intervention.objects.filter(pk=intervention_id).first()
    if intervention is None:  # its patient was deleted meanwhile
        return 0
    if intervention.fever_recheck_attempts > MAX_FEVER_RECHECK_ATTEMPTS:
        Intervention.objects.filter(pk=intervention.pk, fever_rechecked_at__isnull=True).update(
            fever_recheck_failed_at=timezone.now()
        )
        logger.error(
            "RF-INF-02 fever re-check of intervention %s failed %s times",
            intervention.pk,
            MAX_FEVER_RECHECK_ATTEMPTS,
        )
        return 0
    done = Q(pk=intervention.pk, fever_rechecked_at__isnull=True)
    fever = Q(safety__fever=True) | Q(safety__temperature_c__gte=FEVER_THRESHOLD_C)
    window = Q(
        date__gte=intervention.date,
        date__lte=intervention.date + timedelta(days=RECENT_PROCEDURE_DAYS),
    )
    if not DailyLog.objects.filter(window & fever, patient_id=intervention.patient_id).exists():
        # A fever logged from here on is evaluated with this procedure already recorded.
        Intervention.objects.filter(done).update(fever_rechecked_at=timezone.now())
        return 0
    fired = 0
    with transaction.atomic():
        # The lock `log_evaluate` takes: alert_raise reads then writes the patient's alerts.
        patient = Patient.objects.select_for_update(no_key=True).get(pk=intervention.patient_id)
        # A second run of this re-check waited for that lock; the first has stamped it.
        if not Intervention.objects.filter(done).exists():
            return 0
        logs = (
            DailyLog.objects.filter(window & fever, patient=patient)
            .select_related("patient")
            .order_by("date")
        )
        for log in logs:
            evaluation = evaluate(
                safety_inputs.log_facts(safety_inputs.log_content(log)),
                safety_inputs.full_context(log=log),
            )
            for firing in evaluation.firings:
                if firing.rule_id != FEVER_AFTER_PROCEDURE_RULE:
                    continue
                alert_services.alert_raise(
                    patient=patient,
                    firing=firing,
                    log=log,
                    fired_on=log.date,
                    title=safety_services.RULES_BY_ID[firing.rule_id].title,
                )
                fired += 1
        Intervention.objects.filter(done).update(fever_rechecked_at=timezone.now())
    return fired


def fever_rechecks_sweep(*, batch: int = 500, budget: float = enqueue.SWEEP_TIME_BUDGET) -> int:
    """Re-enqueue every procedure still owed its fever re-check (a web process that died
    before the after-commit enqueue, a lost message, a killed worker, a broker outage).

    Procedures recorded in the last `SWEEP_GRACE` are left to their own message. In
    batches, oldest first, until none is left or the time budget is spent, walking the
    owed rows by (created_at, id) as those just enqueued stay owed until a worker runs
    them. A duplicate message is harmless: the re-check is claimed. Returns how many were
    enqueued.
    """
    owed = fever_rechecks_owed().filter(created_at__lt=timezone.now() - enqueue.SWEEP_GRACE)
    return enqueue.sweep_enqueue(
        owed,
        task="rehab.tasks.intervention_fever_recheck_task",
        by="created_at",
        batch=batch,
        budget=budget,
    )


# --------------------------------------------------------------------------- provocative tests


class ProvocativeTestData(TypedDict, total=False):
    test: str  # required
    side: str  # required
    result: str  # required
    concordant: bool | None
    symptom_location: str
    provoked_pain: int | None
    angle_deg: int | None
    notes: str


@transaction.atomic
def provocative_tests_record(
    *,
    patient: Patient,
    clinician: Clinician,
    performed_at: datetime,
    tests: Sequence[ProvocativeTestData],
    examiner_id: UUID | None = None,
    context: AuditContext | None = None,
) -> list[ProvocativeTest]:
    """Record one examination: one row per test per side (docs/clinical-record.md)."""
    patient_ensure_writable(patient_id=patient.pk)
    if performed_at > timezone.now() + EXAMINATION_CLOCK_SKEW:
        raise ValidationError({"performed_at": "Must not be in the future."})
    if performed_at < EARLIEST_RECORD_TIME:
        raise ValidationError({"performed_at": f"Must not be before {EARLIEST_RECORD_DATE}."})
    examiner = clinician
    if examiner_id is not None:
        found = Clinician.objects.filter(pk=examiner_id, clinic_id=patient.clinic_id).first()
        if found is None:
            raise ValidationError({"examiner_id": "No clinician with this id at this clinic."})
        examiner = found
    rows = [
        ProvocativeTest(
            patient=patient,
            performed_at=performed_at,
            examiner=examiner,
            created_by=clinician,
            test=t["test"],
            side=t["side"],
            result=t["result"],
            concordant=t.get("concordant"),
            symptom_location=t.get("symptom_location") or "",
            provoked_pain=t.get("provoked_pain"),
            angle_deg=t.get("angle_deg"),
            notes=t.get("notes") or "",
        )
        for t in tests
    ]
    # A second submission of the same examination (a double tap, a retry) is a normal
    # path: asked first, under the patient's row lock so that two recordings of one
    # patient take turns, never left to the unique index, whose violation PostgreSQL would
    # log with the notes in it (docs/safety-path.md). The index stays the backstop.
    list(Patient.objects.select_for_update(no_key=True).filter(pk=patient.pk).values("pk"))
    pairs = [(row.test, row.side) for row in rows]
    same_time = Q()
    for test, side in set(pairs):
        same_time |= Q(test=test, side=side)
    if (
        len(set(pairs)) < len(pairs)
        or ProvocativeTest.objects.filter(
            same_time, patient=patient, performed_at=performed_at
        ).exists()
    ):
        raise ConflictError(
            "A test in this list is already recorded for that side at that time.",
            code="already_recorded",
        )
    try:
        with transaction.atomic():
            ProvocativeTest.objects.bulk_create(rows)
    except IntegrityError as exc:
        raise ConflictError(
            "A test in this list is already recorded for that side at that time.",
            code="already_recorded",
        ) from exc
    audit_record(
        actor=clinician.user,
        action=AuditEvent.Action.CREATE,
        object_type="provocativetest",
        patient=patient,
        changes={
            "performed_at": performed_at.isoformat(),
            "tests": [f"{r.test}/{r.side}/{r.result}" for r in rows],
            "ids": [str(r.pk) for r in rows],
        },
        context=context,
    )
    return rows


# --------------------------------------------------------------------------- imaging, diagnoses


@transaction.atomic
def imaging_finding_create(
    *,
    patient: Patient,
    clinician: Clinician,
    modality: str,
    date: date,
    body_region: str,
    finding: str,
    context: AuditContext | None = None,
) -> ImagingFinding:
    patient_ensure_writable(patient_id=patient.pk)
    _not_after_today(patient, "date", date)
    imaging = ImagingFinding.objects.create(
        patient=patient,
        modality=modality,
        date=date,
        body_region=body_region,
        finding=finding,
        created_by=clinician,
    )
    _audit(
        actor=clinician.user,
        action=AuditEvent.Action.CREATE,
        obj=imaging,
        patient=patient,
        changes={"modality": modality, "date": date.isoformat(), "body_region": body_region},
        context=context,
    )
    return imaging


@transaction.atomic
def diagnosis_create(
    *,
    patient: Patient,
    clinician: Clinician,
    name: str,
    date_from: date,
    date_to: date | None = None,
    notes: str = "",
    context: AuditContext | None = None,
) -> Diagnosis:
    patient_ensure_writable(patient_id=patient.pk)
    _not_after_today(patient, "date_from", date_from)
    if date_to is not None:
        _check_end(date_from=date_from, date_to=date_to)
        _not_after_today(patient, "date_to", date_to)
    diagnosis = Diagnosis.objects.create(
        patient=patient,
        name=name,
        date_from=date_from,
        date_to=date_to,
        notes=notes,
        created_by=clinician,
    )
    _audit(
        actor=clinician.user,
        action=AuditEvent.Action.CREATE,
        obj=diagnosis,
        patient=patient,
        changes={"name": name, "date_from": date_from.isoformat()},
        context=context,
    )
    return diagnosis


def _check_end(*, date_from: date, date_to: date) -> None:
    if date_to < date_from:
        raise ValidationError({"date_to": f"Must not be before date_from ({date_from})."})


@transaction.atomic
def diagnosis_end(
    *,
    diagnosis: Diagnosis,
    clinician: Clinician,
    date_to: date,
    notes: str | None = None,
    context: AuditContext | None = None,
) -> Diagnosis:
    """Close a working diagnosis (resolved, or excluded as a re-herniation can be)."""
    patient_ensure_writable(patient_id=diagnosis.patient_id)
    diagnosis = Diagnosis.objects.select_for_update().select_related("patient").get(pk=diagnosis.pk)
    if diagnosis.date_to is not None:
        raise ConflictError(
            "This diagnosis has already ended.",
            code="already_ended",
            extra={"date_to": diagnosis.date_to.isoformat()},
        )
    _check_end(date_from=diagnosis.date_from, date_to=date_to)
    _not_after_today(diagnosis.patient, "date_to", date_to)
    diagnosis.date_to = date_to
    fields = ["date_to"]
    if notes:
        diagnosis.notes = f"{diagnosis.notes}\n{notes}".strip()
        fields.append("notes")
    diagnosis.save(update_fields=fields)
    _audit(
        actor=clinician.user,
        action=AuditEvent.Action.UPDATE,
        obj=diagnosis,
        patient=diagnosis.patient,
        changes={"date_to": {"from": None, "to": date_to.isoformat()}},
        context=context,
    )
    return diagnosis


# --------------------------------------------------------------------------- assessed marks


@transaction.atomic
def assessed_mark_create(
    *,
    patient: Patient,
    clinician: Clinician,
    symptom: str,
    until: date,
    note: str = "",
    context: AuditContext | None = None,
) -> AssessedMark:
    """Mark a safety symptom assessed and stable until a date (docs/clinical-record.md).

    A new mark for a symptom replaces (revokes) the one in force, so the clinician's
    latest judgement is the one the rules read.
    """
    patient_ensure_writable(patient_id=patient.pk)
    today = patient.local_today()
    if until < today:
        raise ValidationError({"until": "Must be today or later."})
    limit = today + timedelta(days=AssessedMark.MAX_DAYS_AHEAD)
    if until > limit:
        raise ValidationError(
            {"until": f"At most {AssessedMark.MAX_DAYS_AHEAD} days ahead (latest {limit})."}
        )
    now = timezone.now()
    replaced = list(
        AssessedMark.objects.select_for_update()
        .filter(patient=patient, symptom=symptom)
        .unrevoked()
        .values_list("pk", flat=True)
    )
    AssessedMark.objects.filter(pk__in=replaced).update(revoked_at=now, revoked_by=clinician)
    mark = AssessedMark(
        patient=patient, symptom=symptom, until=until, note=note, created_by=clinician
    )
    if not insert_unless_conflict(mark):
        # A concurrent request marked the same symptom between our read and our insert.
        raise ConflictError(
            "This symptom was marked a moment ago; reload and retry.", code="concurrent_change"
        )
    _audit(
        actor=clinician.user,
        action=AuditEvent.Action.CREATE,
        obj=mark,
        patient=patient,
        changes={
            "symptom": symptom,
            "until": until.isoformat(),
            "replaces": [str(pk) for pk in replaced],
        },
        context=context,
    )
    return mark


@transaction.atomic
def assessed_mark_revoke(
    *, mark: AssessedMark, clinician: Clinician, context: AuditContext | None = None
) -> bool:
    """Revoke a mark (DELETE in the API; the row stays). False if it was already revoked."""
    patient_ensure_writable(patient_id=mark.patient_id)
    # Conditional UPDATE: of two concurrent revocations, exactly one wins and is audited.
    revoked = AssessedMark.objects.filter(pk=mark.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=clinician
    )
    if not revoked:
        return False
    _audit(
        actor=clinician.user,
        action=AuditEvent.Action.DELETE,
        obj=mark,
        patient=mark.patient,
        changes={"symptom": mark.symptom, "until": mark.until.isoformat(), "revoked": True},
        context=context,
    )
    return True


# --------------------------------------------------------------------------- questionnaire schedule

# Every occasion asks all three instruments: a few minutes for the patient in all.
SCHEDULED_INSTRUMENTS: tuple[str, ...] = (Instrument.PSFS, Instrument.SBI, Instrument.RMDQ)

# Windows in the patient's local days, first and last day inclusive [D]. A window closes
# before the next occasion of its kind could open, so a patient never owes the same
# questionnaire twice for one reason.
BASELINE_WINDOW_DAYS = 7
FORTNIGHTLY_WINDOW_DAYS = 7
# Opens a week before and closes at the start of the procedure day: "before" answers given
# on the day could come after the injection. A procedure recorded on its day or later has
# no "before" occasion (its window closed before it was scheduled).
PRE_INTERVENTION_LEAD_DAYS = 7
POST_1W_START_DAYS, POST_1W_WINDOW_DAYS = 7, 4  # days 7-10 after the procedure
POST_6W_START_DAYS, POST_6W_WINDOW_DAYS = 42, 7  # days 42-48
PROGRAM_MAX_WEEKS = 52


@dataclass(frozen=True)
class Occasion:
    reason: str
    first_day: date
    last_day: date
    intervention: Intervention | None = None


def _local_midnight(patient: Patient, day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=patient.tz)


def _due_rows(
    *,
    patient: Patient,
    occasions: Iterable[Occasion],
    now: datetime,
    instruments: Iterable[str] = SCHEDULED_INSTRUMENTS,
) -> list[QuestionnaireDue]:
    """The due items of `occasions` whose window has not closed at `now`."""
    instruments = tuple(instruments)
    rows: list[QuestionnaireDue] = []
    for occasion in occasions:
        due_from = _local_midnight(patient, occasion.first_day)
        expires_at = _local_midnight(patient, occasion.last_day + timedelta(days=1))
        # A window that closed before it was scheduled (a procedure recorded weeks after
        # the fact) is not an obligation the patient ever had.
        if expires_at <= now:
            continue
        rows.extend(
            QuestionnaireDue(
                patient=patient,
                instrument=instrument,
                reason=occasion.reason,
                intervention=occasion.intervention,
                due_from=due_from,
                expires_at=expires_at,
            )
            for instrument in instruments
        )
    return rows


def _insert(rows: list[QuestionnaireDue]) -> int:
    # ON CONFLICT DO NOTHING on the occasion key: scheduling twice is harmless.
    return len(QuestionnaireDue.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000))


def _schedule(
    *,
    patient: Patient,
    occasions: Iterable[Occasion],
    now: datetime | None,
    instruments: Iterable[str] = SCHEDULED_INSTRUMENTS,
) -> int:
    """Insert the due items of `occasions` whose window has not closed; idempotent."""
    rows = _due_rows(
        patient=patient,
        occasions=occasions,
        now=now or timezone.now(),
        instruments=instruments,
    )
    return _insert(rows)


def questionnaires_schedule_baseline(
    *, patient: Patient, start: date, now: datetime | None = None
) -> int:
    """Baseline questionnaires, once per patient (on registration or the first log).

    An instrument the patient has already answered (a paper form typed in, an earlier
    schedule) has its baseline: the first response is what later scores are compared with.
    Returns how many due items were offered for insertion (existing ones are kept).
    """
    answered = set(
        QuestionnaireResponse.objects.filter(patient=patient)
        .order_by()
        .values_list("instrument", flat=True)
        .distinct()
    )
    occasion = Occasion(
        reason=QuestionnaireDue.Reason.BASELINE,
        first_day=start,
        last_day=start + timedelta(days=BASELINE_WINDOW_DAYS - 1),
    )
    return _schedule(
        patient=patient,
        occasions=[occasion],
        now=now,
        instruments=[i for i in SCHEDULED_INSTRUMENTS if i not in answered],
    )


def questionnaires_schedule_baselines(*, now: datetime | None = None) -> int:
    """The baseline of every patient who has started (logs or a program) but has none.

    The app schedules a baseline when it first asks what is due; a patient whose app never
    asked (an old version, logs typed in by the clinic) would have no baseline at all, so
    beat runs this with the program sweep. The window opens at the first log or program
    start, whichever came first; when that window has already closed, it opens today:
    a late baseline is still what later scores are compared with, and no baseline at all
    would leave every later score without one. Three statements whatever the caseload;
    patients with a complete baseline are not read again, so repeated runs cost little.
    """
    now = now or timezone.now()
    complete = (
        QuestionnaireDue.objects.filter(reason=QuestionnaireDue.Reason.BASELINE)
        .order_by()
        .values("patient_id")
        .annotate(n=Count("instrument", distinct=True))
        .filter(n__gte=len(SCHEDULED_INSTRUMENTS))
        .values("patient_id")
    )
    candidates = list(
        Patient.objects.active()
        .annotate(
            first_log=Subquery(
                DailyLog.objects.filter(patient=OuterRef("pk")).order_by("date").values("date")[:1]
            ),
            first_program=Subquery(
                ProgramAssignment.objects.filter(patient=OuterRef("pk"))
                .order_by("start_date")
                .values("start_date")[:1]
            ),
        )
        .filter(Q(first_log__isnull=False) | Q(first_program__isnull=False))
        .exclude(pk__in=complete)
        .order_by()
    )
    if not candidates:
        return 0
    ids = [p.pk for p in candidates]
    covered: dict[UUID, set[str]] = defaultdict(set)
    for patient_id, instrument in (
        QuestionnaireDue.objects.filter(patient_id__in=ids, reason=QuestionnaireDue.Reason.BASELINE)
        .order_by()
        .values_list("patient_id", "instrument")
        .union(
            QuestionnaireResponse.objects.filter(patient_id__in=ids)
            .order_by()
            .values_list("patient_id", "instrument")
        )
    ):
        covered[patient_id].add(instrument)
    rows: list[QuestionnaireDue] = []
    for patient in candidates:
        missing = [i for i in SCHEDULED_INSTRUMENTS if i not in covered[patient.pk]]
        if not missing:
            continue
        started = min(d for d in (patient.first_log, patient.first_program) if d is not None)
        today = patient.local_today(now)
        if started + timedelta(days=BASELINE_WINDOW_DAYS - 1) < today:
            started = today
        occasion = Occasion(
            reason=QuestionnaireDue.Reason.BASELINE,
            first_day=started,
            last_day=started + timedelta(days=BASELINE_WINDOW_DAYS - 1),
        )
        rows += _due_rows(patient=patient, occasions=[occasion], now=now, instruments=missing)
    return _insert(rows)


def _program_occasions(*, start: date, weeks: int, last: date | None = None) -> list[Occasion]:
    """At the start of a program and every 2 weeks of it (up to `last`, if given)."""
    return [
        Occasion(
            reason=QuestionnaireDue.Reason.PROGRAM_FORTNIGHTLY,
            first_day=start + timedelta(weeks=week),
            last_day=start + timedelta(weeks=week, days=FORTNIGHTLY_WINDOW_DAYS - 1),
        )
        for week in range(0, weeks + 1, 2)
        if last is None or start + timedelta(weeks=week) <= last
    ]


# How far ahead the sweep below creates a program's occasions: far enough for the patient
# and the clinician to see the next one coming, near enough to follow a program's edits.
PROGRAM_LOOKAHEAD_DAYS = 7


def questionnaires_schedule_programs(
    *, now: datetime | None = None, patient: Patient | None = None
) -> int:
    """Schedule the fortnightly questionnaires of every active program (or `patient`'s).

    The programs app cannot call into rehab (dependencies point the other way), so rehab
    picks programs up itself: beat runs this hourly, and the patient's list of what is due
    runs it for them, so a program assigned a moment ago is asked about at once. Only
    occasions opening within the next week are created, one bulk insert for all patients;
    it is idempotent, so a missed or doubled run changes nothing.
    """
    now = now or timezone.now()
    programs = (
        ProgramAssignment.objects.filter(ended_on__isnull=True)
        .of_active_patients()
        .select_related("patient")
        .annotate(weeks=Sum("phases__length_weeks"))
    )
    if patient is not None:
        programs = programs.filter(patient=patient)
    rows: list[QuestionnaireDue] = []
    for program in programs:
        horizon = program.patient.local_today(now) + timedelta(days=PROGRAM_LOOKAHEAD_DAYS)
        occasions = _program_occasions(
            start=program.start_date,
            weeks=min(program.weeks or 0, PROGRAM_MAX_WEEKS),
            last=horizon,
        )
        rows += _due_rows(patient=program.patient, occasions=occasions, now=now)
    return _insert(rows)


def questionnaires_schedule_for_intervention(
    *, intervention: Intervention, now: datetime | None = None
) -> int:
    """Before, 1 week after and 6 weeks after a procedure (called by `intervention_create`)."""
    day = intervention.date
    occasions = [
        Occasion(
            reason=QuestionnaireDue.Reason.PRE_INTERVENTION,
            first_day=day - timedelta(days=PRE_INTERVENTION_LEAD_DAYS),
            last_day=day - timedelta(days=1),
            intervention=intervention,
        ),
        Occasion(
            reason=QuestionnaireDue.Reason.POST_INTERVENTION_1W,
            first_day=day + timedelta(days=POST_1W_START_DAYS),
            last_day=day + timedelta(days=POST_1W_START_DAYS + POST_1W_WINDOW_DAYS - 1),
            intervention=intervention,
        ),
        Occasion(
            reason=QuestionnaireDue.Reason.POST_INTERVENTION_6W,
            first_day=day + timedelta(days=POST_6W_START_DAYS),
            last_day=day + timedelta(days=POST_6W_START_DAYS + POST_6W_WINDOW_DAYS - 1),
            intervention=intervention,
        ),
    ]
    return _schedule(patient=intervention.patient, occasions=occasions, now=now)


def questionnaires_expire(*, now: datetime | None = None) -> int:
    """Stamp `expired_at` on every due item whose window closed unanswered (beat sweeper).

    One conditional UPDATE: a second sweeper running at the same time finds nothing left,
    and a response racing the sweeper either lands first (the row is no longer waiting)
    or finds the window closed.
    """
    now = now or timezone.now()
    return QuestionnaireDue.objects.overdue(now).update(expired_at=now)


# --------------------------------------------------------------------------- questionnaire answers


def _translated(message: str) -> str:
    """A scoring message (rehab/scoring.py, pure) in the active language, by its msgid."""
    if isinstance(message, scoring.Message):
        return gettext(message.msgid) % message.params if message.params else gettext(message.msgid)
    return message


@transaction.atomic
def questionnaire_response_submit(
    *,
    due: QuestionnaireDue,
    answers: Any,
    user: User,
    context: AuditContext | None = None,
    now: datetime | None = None,
) -> tuple[QuestionnaireResponse, bool]:
    """Score and store the answers to a due questionnaire; returns (response, created).

    Retry-safe: the same answers again return the stored response (created False);
    different answers to an answered questionnaire are a conflict. The response completes
    every open due item of the instrument, so overlapping occasions are answered once.
    """
    now = now or timezone.now()
    instrument = scoring.INSTRUMENTS[due.instrument]
    try:
        scored = instrument.score(answers)
    except scoring.InvalidAnswers as exc:
        raise exceptions.ValidationError(
            {"answers": {path: [_translated(m) for m in ms] for path, ms in exc.errors.items()}}
        ) from exc

    # Lock this item and every other waiting one of the instrument, in id order, so that
    # two devices answering overlapping occasions cannot deadlock.
    locked = list(
        QuestionnaireDue.objects.select_for_update()
        .filter(
            Q(pk=due.pk)
            | Q(
                patient_id=due.patient_id,
                instrument=due.instrument,
                response__isnull=True,
                expired_at__isnull=True,
            )
        )
        .order_by("pk")
    )
    due = next(d for d in locked if d.pk == due.pk)
    if due.response_id is not None:
        existing = QuestionnaireResponse.objects.get(pk=due.response_id)
        if existing.answers == scored.answers:
            return existing, False
        raise ConflictError(
            gettext("This questionnaire has already been answered with different answers."),
            code="already_answered",
            extra={"existing_id": str(existing.pk)},
        )
    state = due.state(now)
    if state == "expired":
        raise ApplicationError(
            gettext("This questionnaire's window has closed."),
            code="window_closed",
            extra={"state": state},
        )
    if state == "upcoming":
        raise ApplicationError(
            gettext("This questionnaire is not open yet."),
            code="not_open_yet",
            extra={"state": state, "due_from": due.due_from.isoformat()},
        )
    patient = Patient.objects.get(pk=due.patient_id)
    response = QuestionnaireResponse.objects.create(
        patient=patient,
        instrument=due.instrument,
        instrument_version=instrument.version,
        scoring_version=instrument.scoring_version,
        answers=scored.answers,
        score=scored.score,
        items_missing=scored.items_missing,
        date=patient.local_today(now),
        submitted_at=now,
        submitted_by=user,
    )
    completed = [d.pk for d in locked if d.state(now) == "open"]
    QuestionnaireDue.objects.filter(pk__in=completed).update(response=response)
    _audit(
        actor=user,
        action=AuditEvent.Action.CREATE,
        obj=response,
        patient=patient,
        changes={
            "instrument": due.instrument,
            "score": str(scored.score),
            "completes": [str(pk) for pk in completed],
        },
        context=context,
    )
    return response, True
