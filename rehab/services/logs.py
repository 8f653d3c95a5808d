"""Daily logs: create (retry-safe), edit (history kept), with inline safety advice."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from config.audit import AuditContext
from config.db import insert_unless_conflict
from config.exceptions import ApplicationError, ConflictError
from patients.models import AuditEvent, ConsentKind, Patient, User
from patients.services import audit_event, audit_record
from rehab.models import DailyLog, DailyLogRevision
from rehab.safety import Evaluation, SafetyAnswers
from rehab.services import safety as safety_services
from rehab.services.partitions import log_id_release_unused

# How far back a patient may log (docs/app-developers.md, "Time zones and local dates"):
# two weeks of catching up after a flat battery or a hospital stay, no more.
MAX_BACKFILL_DAYS = 14

CONTENT_FIELDS = DailyLog.CONTENT_FIELDS
# What an edit writes besides the content: the advice, the version, and the evaluation
# bookkeeping it resets.
EDIT_RESETS = (
    "safety_advice",
    "safety_reminder",
    "version",
    "updated_at",
    "evaluated_at",
    "evaluation_attempts",
    "evaluation_failed_at",
    "evaluation_error",
)

# The daily log's optional sensitive questions: asked, and their answers stored, only
# while the patient consents to the clinic's `sensitive_questions` purpose (when the
# clinic publishes one). "no" and an absent answer are the stored default, not an answer
# (docs/data-rights.md § What depends on an optional consent).
SENSITIVE_ANSWERS: tuple[str, ...] = ("sexual_function_change",)


def sensitive_answers_check(*, patient: Patient, safety: Mapping[str, Any] | None) -> None:
    """A 400 `consent_sensitive_questions` when the body answers a sensitive question the
    patient has not consented to (withdrawn, declined or not yet decided): nothing of the
    log is stored, and the app, told by `GET /api/v1/me/`, stops asking. Costs a query
    only for a body that carries such an answer."""
    answered = [n for n in SENSITIVE_ANSWERS if (safety or {}).get(n) not in (None, "no")]
    if not answered:
        return
    from patients.consent import consent_allows

    if consent_allows(patient=patient, kind=ConsentKind.SENSITIVE_QUESTIONS):
        return
    raise ApplicationError(
        "You have not agreed to the optional sensitive questions: leave "
        + ", ".join(answered)
        + " out (or change your choice in the consents).",
        code="consent_sensitive_questions",
        extra={"fields": [f"safety.{n}" for n in answered]},
    )


def normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    """A log's content with the contract's defaults applied.

    Two bodies are "the same" (a retry) exactly when their normalised forms are equal:
    an absent field and null are one thing, and so are an absent safety answer and
    "no"/"none"/false.
    """
    out: dict[str, Any] = {name: data.get(name) for name in CONTENT_FIELDS}
    out["notes"] = out["notes"] or ""
    out["safety"] = SafetyAnswers.from_mapping(data.get("safety")).as_dict()
    return out


def _stored_content(log: DailyLog) -> dict[str, Any]:
    return {name: getattr(log, name) for name in CONTENT_FIELDS}


def _check_date(*, patient: Patient, day: date) -> None:
    today = patient.local_today()
    if day > today:
        raise ValidationError(
            {
                "date": gettext("Date is after your local today (%(today)s).")
                % {"today": today.isoformat()}
            }
        )
    if day < today - timedelta(days=MAX_BACKFILL_DAYS):
        raise ValidationError(
            {
                "date": gettext("Logs can be added up to %(days)s days back, not earlier.")
                % {"days": MAX_BACKFILL_DAYS}
            }
        )


class _StaleClaim(Exception):
    """The insert met only an id claimed by no log: it may be tried again."""


@dataclass(frozen=True)
class LogWrite:
    log: DailyLog
    created: bool


def _conflict(
    *,
    patient: Patient,
    actor: User,
    log_id: uuid.UUID,
    content: dict[str, Any],
    context: AuditContext | None,
    evaluation: Evaluation | None = None,
    stale_claim_retried: bool = True,
) -> LogWrite:
    """Decide what an insert that met an existing row was: a retry, or a conflict.

    A conflict is answered 409 naming the stored log, and still heard: the body's advice
    travels in the answer, and its urgent and emergency red flags are kept, owed an
    evaluation, to be raised on that log (docs/safety-path.md, "Refused submissions").
    """
    # A retry repeats its date: the look-up reads that month's partition alone. An id met
    # under another date (a clash) finds its log's month from the claimed ids first.
    same_id = (
        DailyLog.objects.filter(pk=log_id, date=content["date"]).first()
        or DailyLog.objects.by_id(log_id).first()
    )
    # An id claimed by no log (rehab/services/partitions.py): the claim this insert made
    # before its (patient, date) clash, now released. If no log holds the date either, a
    # stale claim alone stopped the insert: it is tried once more.
    if (
        same_id is None
        and log_id_release_unused(log_id)
        and not stale_claim_retried
        and not DailyLog.objects.filter(patient=patient, date=content["date"]).exists()
    ):
        raise _StaleClaim
    if (
        same_id is not None
        and same_id.patient_id == patient.pk
        and _stored_content(same_id) == content
    ):
        # A retry stores nothing but shows the stored log again: that is a read.
        audit_record(
            actor=actor,
            action=AuditEvent.Action.READ,
            object_type="daily_log",
            object_id=same_id.pk,
            patient=patient,
            changes={"retry": True},
            context=context,
        )
        return LogWrite(log=same_id, created=False)
    if same_id is not None:
        message = gettext("A log with this id already exists with different content.")
        existing: DailyLog | None = same_id
    else:
        message = gettext("A log already exists for this date; edit it instead.")
        existing = DailyLog.objects.filter(patient=patient, date=content["date"]).first()
    if evaluation is None:
        evaluation = safety_services.evaluate_inline(patient=patient, content=content)
    # Only a log of this patient's may carry their alerts (an id clash with another
    # patient's log names a log that is not theirs).
    own = existing if existing is not None and existing.patient_id == patient.pk else None
    if own is None and same_id is not None:
        own = DailyLog.objects.filter(patient=patient, date=content["date"]).first()
    submission = safety_services.submission_refuse(
        patient=patient, log=own, content=content, evaluation=evaluation
    )
    if submission is not None:
        audit_record(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            object_type="safety_submission",
            object_id=submission.pk,
            patient=patient,
            changes={"kind": submission.kind, "log": str(own.pk) if own else None},
            context=context,
        )
    raise ConflictError(
        message,
        extra={
            "existing_id": str(existing.pk) if existing else None,
            "safety_advice": safety_services.advice_json(evaluation),
            "safety_reminder": safety_services.reminder_text(evaluation),
        },
    )


def log_create(
    *,
    patient: Patient,
    actor: User,
    data: Mapping[str, Any],
    log_id: uuid.UUID | None = None,
    context: AuditContext | None = None,
) -> LogWrite:
    """Store one daily log exactly once, whatever the phone's retries.

    Uniqueness is enforced by the database (primary key and one-per-day), never by a
    check-then-insert: two racing identical POSTs both try to insert, one goes in, and
    the other finds the winner's row and answers it as a retry. The insert never raises
    on a duplicate (`ON CONFLICT DO NOTHING`), so no failed statement carrying the
    patient's answers reaches the database server's log.
    """
    sensitive_answers_check(patient=patient, safety=data.get("safety"))
    content = normalise(data)
    log_id = log_id or uuid.uuid4()
    try:
        _check_date(patient=patient, day=content["date"])
    except ValidationError:
        # A retry can arrive after the window has moved on (a phone that was offline for
        # days): the log it repeats was stored in time, so it is answered as a retry
        # (200, or 409 if the body differs), not refused. Only this error path pays for
        # the look-up.
        if not DailyLog.objects.by_id(log_id).exists():
            raise
        return _conflict(
            patient=patient, actor=actor, log_id=log_id, content=content, context=context
        )
    # No look-up of the id first: a retry (or a clash) inserts nothing and is sorted out
    # by `_conflict`, so a new log, by far the common case, saves a query. The log and its
    # audit event go in one statement: both or neither, and outside a transaction no
    # BEGIN and COMMIT (three round trips fewer on every new log).
    # A log the request decides (every rule known, none firing) is stored evaluated, its
    # first version: no worker is owed anything for it (docs/safety-path.md).
    outcome = safety_services.evaluate_in_request(patient=patient, content=content)
    evaluation = outcome.evaluation
    log = DailyLog(
        id=log_id,
        patient=patient,
        safety_advice=safety_services.advice_json(evaluation),
        safety_reminder=safety_services.reminder_text(evaluation),
        **content,
    )
    if outcome.decided:
        log.evaluated_at, log.evaluated_version = timezone.now(), log.version
    event = audit_event(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        object_type="daily_log",
        object_id=log.pk,
        patient=patient,
        context=context,
    )
    for retried in (False, True):
        if insert_unless_conflict(log, event):
            break
        try:
            return _conflict(
                patient=patient,
                actor=actor,
                log_id=log_id,
                content=content,
                context=context,
                evaluation=evaluation,
                stale_claim_retried=retried,
            )
        except _StaleClaim:
            continue
    # After the commit (at once outside a transaction, at its end inside one).
    safety_services.log_evaluation_enqueue(log=log)
    return LogWrite(log=log, created=True)


def log_update(
    *,
    log: DailyLog,
    actor: User,
    data: Mapping[str, Any],
    context: AuditContext | None = None,
) -> DailyLog:
    """Edit a log: the previous version is kept, and the safety rules run again."""
    with transaction.atomic():
        log = (
            DailyLog.objects.select_for_update(of=("self",))
            .select_related("patient")
            .get_by_id(log.pk)
        )
        # Only what this edit sends: an answer stored before a withdrawal stays (history).
        sensitive_answers_check(patient=log.patient, safety=data.get("safety"))
        before = _stored_content(log)
        merged = {**before, **{k: v for k, v in data.items() if k != "safety"}}
        if "safety" in data:
            # Like the patient's `history`, answers not sent keep their stored values.
            merged["safety"] = {**before["safety"], **(data["safety"] or {})}
        content = normalise(merged)
        changed = [name for name in CONTENT_FIELDS if content[name] != before[name]]
        if not changed:
            # Audited as a read, not as an update with no fields: nothing was written and
            # the version did not move, so every UPDATE event keeps matching one kept
            # revision, and the caller was shown the log, which is what a read records.
            audit_record(
                actor=actor,
                action=AuditEvent.Action.READ,
                object_type="daily_log",
                object_id=log.pk,
                patient=log.patient,
                changes={"unchanged_edit": True},
                context=context,
            )
            return log
        if "date" in changed:
            _check_date(patient=log.patient, day=content["date"])
            # Asked before writing, not caught as a unique violation (which PostgreSQL
            # would log with the answers in it); the one-per-day index stays the backstop.
            other = (
                DailyLog.objects.filter(patient=log.patient, date=content["date"])
                .exclude(pk=log.pk)
                .values_list("pk", flat=True)
                .first()
            )
            if other is not None:
                raise ConflictError(
                    gettext("A log already exists for this date."),
                    extra={"existing_id": str(other)},
                )
        # The version being replaced, if no worker has evaluated it yet, stays owed: the
        # patient was shown its advice, so its red flags must become alerts.
        safety_services.submission_supersede(log=log)
        DailyLogRevision.objects.create(
            log=log,
            version=log.version,
            data=log.snapshot(),
            changed_fields=changed,
            changed_by=actor,
        )
        evaluation = safety_services.evaluate_inline(patient=log.patient, content=content)
        stored_date = log.date
        for name in CONTENT_FIELDS:
            setattr(log, name, content[name])
        log.safety_advice = safety_services.advice_json(evaluation)
        log.safety_reminder = safety_services.reminder_text(evaluation)
        log.version += 1
        # An edit is a new set of answers: the background rules owe it a fresh evaluation.
        log.evaluated_at = None
        log.evaluation_attempts = 0
        log.evaluation_failed_at = None
        log.evaluation_error = ""
        log.updated_at = timezone.now()
        written = {name: getattr(log, name) for name in (*CONTENT_FIELDS, *EDIT_RESETS)}
        try:
            with transaction.atomic():
                # What `save()` would write, but found by id and stored date (the row is
                # locked above): planned over its month's partition alone
                # (docs/clinical-record.md). A new date moves it to its new month.
                DailyLog.objects.filter(pk=log.pk, date=stored_date).update(**written)
        except IntegrityError as exc:
            other = DailyLog.objects.filter(patient=log.patient, date=content["date"]).first()
            raise ConflictError(
                gettext("A log already exists for this date."),
                extra={"existing_id": str(other.pk) if other else None},
            ) from exc
        audit_record(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            object_type="daily_log",
            object_id=log.pk,
            patient=log.patient,
            changes={"fields": changed, "version": log.version},
            context=context,
        )
        safety_services.log_evaluation_enqueue(log=log)
    return log
