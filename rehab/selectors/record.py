"""Clinical record reads: lists for the clinician API, what a patient owes, scores over time,
the patient timeline, and the facts the safety engine needs.

Timeline: `timeline_list` merges the entries of every function in `TIMELINE_SOURCES`. A
source takes the patient and returns `TimelineEntry` items in any order, with a fixed
number of queries (one, for every source here) whatever the size of the record, so a page
of the timeline costs the same number of queries however long the record is. To add a
kind of event, write one function, as `_alerts` and `_program_phases` below were added:

    def _messages(patient: Patient) -> list[TimelineEntry]:
        return [
            TimelineEntry(kind="message", date=m.sent_at.astimezone(patient.tz).date(),
                          id=str(m.pk), title=m.subject, data={"from": m.sender},
                          at=m.sent_at)
            for m in Message.objects.filter(patient=patient)
        ]

append it to `TIMELINE_SOURCES`, and its kind to `TIMELINE_KINDS` (which documents the
API's `kind` values). Nothing else changes: the merge, ordering and pagination are shared.

A patient's whole record is small (a year is 52 weekly log summaries and some tens of
clinical entries), so the sources read all of it and the page is cut in Python; this is
cheaper and much simpler than a SQL UNION across tables of different shapes. If a record
ever grows past a few thousand entries, give the sources a date window.

One module, though over 500 lines: the reads of the one clinical record, which the
timeline merges from every part of it; the parts share the scoping and the score series.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, cast
from uuid import UUID

from django.db.models import Avg, Count, Max, Min, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.shortcuts import get_object_or_404
from django.utils import timezone

from patients.models import Patient, User
from programs.models import AssignedPhase, ProgramAssignment
from rehab import scoring
from rehab.models import (
    Alert,
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
from rehab.querysets import log_date
from rehab.safety import InterventionFact, MarkFact
from rehab.safety.vocab import InterventionKind, MarkableSymptom

# --------------------------------------------------------------------------- clinician lists


def intervention_list(*, user: User, patient: Patient) -> QuerySet[Intervention]:
    return (
        Intervention.objects.visible_to(user)
        .filter(patient=patient)
        .select_related("created_by__user")
    )


def provocative_test_list(
    *, user: User, patient: Patient, test: str | None = None
) -> QuerySet[ProvocativeTest]:
    tests = (
        ProvocativeTest.objects.visible_to(user)
        .filter(patient=patient)
        .select_related("examiner__user")
    )
    return tests.filter(test=test) if test else tests


def imaging_finding_list(*, user: User, patient: Patient) -> QuerySet[ImagingFinding]:
    return ImagingFinding.objects.visible_to(user).filter(patient=patient)


def diagnosis_list(
    *, user: User, patient: Patient, current: bool | None = None
) -> QuerySet[Diagnosis]:
    diagnoses = Diagnosis.objects.visible_to(user).filter(patient=patient)
    if current is None:
        return diagnoses
    return diagnoses.filter(date_to__isnull=current)


def diagnosis_get(*, user: User, patient_id: UUID, diagnosis_id: UUID) -> Diagnosis:
    diagnosis: Diagnosis = get_object_or_404(
        Diagnosis.objects.visible_to(user).select_related("patient"),
        pk=diagnosis_id,
        patient_id=patient_id,
    )
    return diagnosis


def assessed_mark_list(*, user: User, patient: Patient) -> QuerySet[AssessedMark]:
    """Marks in force today (the patient's local date)."""
    return (
        AssessedMark.objects.filter(patient=patient)
        .holding_on(patient.local_today())
        .select_related("created_by__user")
        .visible_to(user)
    )


def assessed_mark_get(*, user: User, patient_id: UUID, mark_id: UUID) -> AssessedMark:
    """An unrevoked mark (expired or not); a revoked one is gone as far as the API goes."""
    mark: AssessedMark = get_object_or_404(
        AssessedMark.objects.unrevoked().select_related("patient").visible_to(user),
        pk=mark_id,
        patient_id=patient_id,
    )
    return mark


def questionnaire_due_schedule(*, user: User, patient: Patient) -> QuerySet[QuestionnaireDue]:
    """Every due item of the patient, newest window first, for the clinician."""
    return (
        QuestionnaireDue.objects.visible_to(user)
        .filter(patient=patient)
        .order_by("-due_from", "instrument")
    )


# --------------------------------------------------------------------------- the patient's own


@dataclass(frozen=True)
class DueQuestionnaire:
    """What the app shows: one entry per instrument, however many occasions it answers."""

    id: UUID
    instrument: str
    name: str
    instrument_version: str
    due_from: datetime
    expires_at: datetime
    reasons: list[str]
    covers: list[UUID]
    definition: dict[str, Any]
    previous_activities: list[str] = field(default_factory=list)


def questionnaire_due_get(*, user: User, due_id: UUID) -> QuestionnaireDue:
    due: QuestionnaireDue = get_object_or_404(QuestionnaireDue.objects.visible_to(user), pk=due_id)
    return due


def questionnaire_due_list(
    *, user: User, patient: Patient, now: datetime | None = None
) -> list[DueQuestionnaire]:
    """What `patient` should fill in now, in two queries.

    Occasions of one instrument whose windows overlap are shown once, under the item that
    closes first: one response completes all of them (services.record).
    """
    now = now or timezone.now()
    by_instrument: dict[str, list[QuestionnaireDue]] = defaultdict(list)
    for due in (
        QuestionnaireDue.objects.filter(patient=patient)
        .open_at(now)
        .order_by("expires_at", "pk")
        .visible_to(user)
    ):
        by_instrument[due.instrument].append(due)
    previous_activities: list[str] = []
    if Instrument.PSFS in by_instrument:
        # PSFS re-rates the activities the patient named before; offer them again.
        last = (
            QuestionnaireResponse.objects.filter(patient=patient, instrument=Instrument.PSFS)
            .order_by("-submitted_at")
            .values_list("answers", flat=True)
            .first()
        )
        previous_activities = [a["activity"] for a in (last or {}).get("activities", [])]
    items = []
    for code in Instrument.values:
        dues = by_instrument.get(code)
        if not dues:
            continue
        first, definition = dues[0], scoring.INSTRUMENTS[code]
        items.append(
            DueQuestionnaire(
                id=first.pk,
                instrument=code,
                name=definition.name,
                instrument_version=definition.version,
                due_from=min(d.due_from for d in dues),
                expires_at=first.expires_at,
                reasons=list(dict.fromkeys(d.reason for d in dues)),
                covers=[d.pk for d in dues],
                definition=definition.definition,
                previous_activities=previous_activities if code == Instrument.PSFS else [],
            )
        )
    return items


# --------------------------------------------------------------------------- scores over time


@dataclass(frozen=True)
class ScorePoint:
    response: QuestionnaireResponse
    change: scoring.Change | None
    """Against the baseline (the first response); None for the baseline itself."""
    recovered: bool | None
    success: bool | None


@dataclass(frozen=True)
class InstrumentScores:
    instrument: scoring.Instrument
    baseline: QuestionnaireResponse | None
    series: list[ScorePoint]


def _at_or_below(score: Decimal, threshold: Decimal | None) -> bool | None:
    return None if threshold is None else score <= threshold


def _score_points(responses: Sequence[QuestionnaireResponse]) -> list[ScorePoint]:
    """`responses` of one instrument, oldest first; the first is the baseline."""
    points = []
    baseline = responses[0] if responses else None
    for response in responses:
        thresholds = scoring.INSTRUMENTS[response.instrument].thresholds
        change = None
        if baseline is not None and response is not baseline:
            change = scoring.assess_change(
                response.instrument,
                baseline_score=baseline.score,
                score=response.score,
                baseline_answers=baseline.answers,
                answers=response.answers,
            )
        points.append(
            ScorePoint(
                response=response,
                change=change,
                recovered=_at_or_below(response.score, thresholds.recovered_at_or_below),
                success=scoring.success(
                    thresholds,
                    score=response.score,
                    baseline_date=baseline.date if baseline is not None else None,
                    on=response.date,
                ),
            )
        )
    return points


def _responses_by_instrument(patient: Patient) -> dict[str, list[QuestionnaireResponse]]:
    grouped: dict[str, list[QuestionnaireResponse]] = defaultdict(list)
    for response in QuestionnaireResponse.objects.filter(patient=patient).order_by(
        "submitted_at", "pk"
    ):
        grouped[response.instrument].append(response)
    return grouped


def questionnaire_scores(*, user: User, patient: Patient) -> list[InstrumentScores]:
    """Each instrument's scores over time against §5's thresholds, in one query.

    `patient` comes from `patient_get(user=...)`, which already scoped it to `user`.
    """
    grouped = _responses_by_instrument(patient)
    return [
        InstrumentScores(
            instrument=scoring.INSTRUMENTS[code],
            baseline=grouped[code][0] if grouped.get(code) else None,
            series=_score_points(grouped.get(code, [])),
        )
        for code in Instrument.values
    ]


# --------------------------------------------------------------------------- timeline

TIMELINE_KINDS: tuple[str, ...] = (
    "logs_week",
    "intervention",
    "provocative_tests",
    "imaging",
    "diagnosis",
    "diagnosis_ended",
    "questionnaire",
    "program_phase",
    "program_ended",
    "alert",
)


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    date: date
    id: str
    title: str
    data: dict[str, Any]
    at: datetime | None = None
    """When within `date`, if the event has a time (an examination, a submission): timed
    entries of a day come first, newest first; then the day's undated ones."""

    def sort_key(self) -> tuple[dt.date, float, str, str]:
        return (self.date, self.at.timestamp() if self.at else 0.0, self.kind, self.id)


TimelineSource = Callable[[Patient], Iterable[TimelineEntry]]


def _num(value: float | Decimal | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _log_weeks(patient: Patient) -> list[TimelineEntry]:
    """One entry per week with logs (Monday to Sunday), dated by its latest log."""
    weeks = (
        DailyLog.objects.filter(patient=patient)
        .annotate(week=TruncWeek("date"))
        .values("week")
        .annotate(
            days_logged=Count("id"),
            mean_pain=Avg("pain"),
            mean_leg_pain=Avg("leg_pain"),
            mean_back_pain=Avg("back_pain"),
            max_worst_pain=Max("worst_pain"),
            min_pain=Min("pain"),
            max_pain=Max("pain"),
            last=Max("date"),
        )
        .order_by("week")
    )
    return [
        TimelineEntry(
            kind="logs_week",
            date=w["last"],
            id=f"week-{w['week']:%Y-%m-%d}",
            title=f"{w['days_logged']} day(s) logged, mean pain {_num(w['mean_pain'])}",
            data={
                "week_start": w["week"].isoformat(),
                "week_end": (w["week"] + timedelta(days=6)).isoformat(),
                "days_logged": w["days_logged"],
                "mean_pain": _num(w["mean_pain"]),
                "mean_leg_pain": _num(w["mean_leg_pain"]),
                "mean_back_pain": _num(w["mean_back_pain"]),
                "min_pain": w["min_pain"],
                "max_pain": w["max_pain"],
                "max_worst_pain": w["max_worst_pain"],
            },
        )
        for w in weeks
    ]


def _interventions(patient: Patient) -> list[TimelineEntry]:
    interventions = list(Intervention.objects.filter(patient=patient))
    course_sizes = Counter(i.course_id for i in interventions)
    entries = []
    for i in interventions:
        title = i.get_kind_display()
        if course_sizes[i.course_id] > 1 or i.session_number > 1:
            title += f", session {i.session_number}"
        if i.target:
            title += f", {i.target}"
        entries.append(
            TimelineEntry(
                kind="intervention",
                date=i.date,
                id=str(i.pk),
                title=title,
                data={
                    "kind": i.kind,
                    "description": i.description,
                    "agent": i.agent,
                    "target": i.target,
                    "side": i.side,
                    "guidance": i.guidance,
                    "performed_by": i.performed_by,
                    "course_id": str(i.course_id),
                    "session_number": i.session_number,
                },
            )
        )
    return entries


def _provocative_tests(patient: Patient) -> list[TimelineEntry]:
    """One entry per examination: the tests recorded together at one time."""
    exams: dict[datetime, list[ProvocativeTest]] = defaultdict(list)
    for t in ProvocativeTest.objects.filter(patient=patient).order_by(
        "performed_at", "test", "side"
    ):
        exams[t.performed_at].append(t)
    entries = []
    for performed_at, tests in exams.items():
        positive = [t for t in tests if t.result == ProvocativeTest.Result.POSITIVE]
        entries.append(
            TimelineEntry(
                kind="provocative_tests",
                date=performed_at.astimezone(patient.tz).date(),
                id=f"exam-{performed_at.isoformat()}",
                title=(
                    f"{len(positive)} of {len(tests)} test(s) positive: "
                    + ", ".join(f"{t.get_test_display()} {t.side}" for t in positive)
                    if positive
                    else f"All {len(tests)} test(s) negative or not positive"
                ),
                data={
                    "performed_at": performed_at.isoformat(),
                    "positive": len(positive),
                    "tests": [
                        {
                            "id": str(t.pk),
                            "test": t.test,
                            "side": t.side,
                            "result": t.result,
                            "concordant": t.concordant,
                            "provoked_pain": t.provoked_pain,
                            "angle_deg": t.angle_deg,
                        }
                        for t in tests
                    ],
                },
                at=performed_at,
            )
        )
    return entries


def _imaging(patient: Patient) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            kind="imaging",
            date=f.date,
            id=str(f.pk),
            title=f"{f.get_modality_display()} {f.body_region}",
            data={"modality": f.modality, "body_region": f.body_region, "finding": f.finding},
        )
        for f in ImagingFinding.objects.filter(patient=patient)
    ]


def _diagnoses(patient: Patient) -> list[TimelineEntry]:
    entries = []
    for d in Diagnosis.objects.filter(patient=patient):
        data = {
            "diagnosis_id": str(d.pk),
            "name": d.name,
            "date_from": d.date_from.isoformat(),
            "date_to": d.date_to.isoformat() if d.date_to else None,
            "notes": d.notes,
        }
        entries.append(
            TimelineEntry(kind="diagnosis", date=d.date_from, id=str(d.pk), title=d.name, data=data)
        )
        if d.date_to is not None:
            entries.append(
                TimelineEntry(
                    kind="diagnosis_ended",
                    date=d.date_to,
                    id=f"{d.pk}-ended",
                    title=f"{d.name}: ended",
                    data=data,
                )
            )
    return entries


def _questionnaires(patient: Patient) -> list[TimelineEntry]:
    entries = []
    for code, responses in _responses_by_instrument(patient).items():
        name = scoring.INSTRUMENTS[code].name
        for point in _score_points(responses):
            r, change = point.response, point.change
            entries.append(
                TimelineEntry(
                    kind="questionnaire",
                    date=r.date,
                    id=str(r.pk),
                    title=f"{name}: {r.score}",
                    data={
                        "instrument": code,
                        "score": float(r.score),
                        "baseline": change is None,
                        "change": float(change.points) if change else None,
                        "meaningful_change": change.meaningful if change else None,
                        "direction": change.direction if change else None,
                    },
                    at=r.submitted_at,
                )
            )
    return entries


def _program_phases(patient: Patient) -> list[TimelineEntry]:
    """Each phase a program started (the first on assignment, later ones on a clinician's
    acceptance of a progression), and each program's end."""
    entries = []
    ended: dict[UUID, ProgramAssignment] = {}
    for phase in (
        AssignedPhase.objects.filter(assignment__patient=patient, started_on__isnull=False)
        .select_related("assignment")
        .order_by("started_on", "position")
    ):
        program = phase.assignment
        assert phase.started_on is not None  # filtered above
        entries.append(
            TimelineEntry(
                kind="program_phase",
                date=phase.started_on,
                id=str(phase.pk),
                title=f"{program.name}: phase {phase.position}, {phase.name}",
                data={
                    "assignment_id": str(program.pk),
                    "program": program.name,
                    "position": phase.position,
                    "phase": phase.name,
                    "length_weeks": phase.length_weeks,
                },
            )
        )
        if program.ended_on is not None:
            ended[program.pk] = program
    entries.extend(
        TimelineEntry(
            kind="program_ended",
            date=program.ended_on,
            id=f"{program.pk}-ended",
            title=f"{program.name}: ended",
            data={"assignment_id": str(program.pk), "program": program.name},
        )
        for program in ended.values()
        if program.ended_on is not None
    )
    return entries


def _alerts(patient: Patient) -> list[TimelineEntry]:
    """Safety and review alerts, on the date of the log that raised them (else when raised)."""
    return [
        TimelineEntry(
            kind="alert",
            date=a.log_date or a.created_at.astimezone(patient.tz).date(),
            id=str(a.pk),
            title=f"{a.rule} ({a.severity}){': ' + a.title if a.title else ''}",
            data={
                "alert_id": str(a.pk),
                "rule": a.rule,
                "severity": a.severity,
                "status": a.status,
                "occurrences": a.occurrence_count,
                "log_id": str(a.log_id) if a.log_id else None,
            },
            at=a.created_at,
        )
        # The log's date from the claimed ids, not a join of every monthly partition.
        for a in Alert.objects.filter(patient=patient).annotate(log_date=log_date())
    ]


TIMELINE_SOURCES: tuple[TimelineSource, ...] = (
    _log_weeks,
    _interventions,
    _provocative_tests,
    _imaging,
    _diagnoses,
    _questionnaires,
    _program_phases,
    _alerts,
)


def timeline_list(
    *, user: User, patient: Patient, sources: Sequence[TimelineSource] = TIMELINE_SOURCES
) -> list[TimelineEntry]:
    """The patient's record, newest first; one query per source whatever its length.

    `patient` comes from `patient_get(user=...)`, which already scoped it to `user`.
    """
    entries = [entry for source in sources for entry in source(patient)]
    entries.sort(key=TimelineEntry.sort_key, reverse=True)
    return entries


# --------------------------------------------------------------------------- safety engine


class SafetyFacts(NamedTuple):
    """What the safety rules read from the clinical record for one log."""

    interventions: tuple[InterventionFact, ...]
    """Every intervention dated within the 42 days before the log's date, inclusive of it
    (RF-INF-02 counts the `PROCEDURE_KINDS` among them), newest first."""
    marks: tuple[MarkFact, ...]
    """Assessed marks holding on the log's date (`until` not passed) and in force when the
    log was submitted (created by then, not revoked by then)."""


# (patient id, log date); the id may be a UUID or its string, and comes back as given.
LogKey = tuple[UUID | str, date]


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def safety_facts_for_log(
    *,
    patient_id: UUID | str,
    on: date,
    as_of: datetime | None = None,
    read_interventions: bool = True,
    read_marks: bool = True,
) -> SafetyFacts:
    """The record facts for a log of `patient_id` dated `on`, in two queries (one for each
    kind read; a kind not read comes back empty)."""
    return safety_facts_for_logs(
        keys=[(patient_id, on)],
        as_of=as_of,
        read_interventions=read_interventions,
        read_marks=read_marks,
    )[(patient_id, on)]


def _marks_in_force(as_of: datetime | None) -> QuerySet[AssessedMark]:
    """Marks in force at `as_of` (None: now).

    A mark is the clinician's judgement as it stood when the patient answered
    (docs/clinical-record.md): a log evaluated late by the sweeper, or re-evaluated after an
    edit, is judged with the marks of its submission, not with one revoked since (the
    answers were given under it) nor one made since (it was not there to lean on).
    """
    if as_of is None:
        return AssessedMark.objects.unrevoked()
    return AssessedMark.objects.filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gt=as_of), created_at__lte=as_of
    )


def safety_facts_for_logs(
    *,
    keys: Iterable[LogKey],
    as_of: datetime | None = None,
    as_of_each: Mapping[LogKey, datetime] | None = None,
    read_interventions: bool = True,
    read_marks: bool = True,
) -> dict[LogKey, SafetyFacts]:
    """`safety_facts_for_log` for many (patient, log date) pairs in two queries (the
    worker's batches, backtests).

    Reads one span per batch (earliest date minus 42 days to the latest date) and sorts
    the rows out in Python, so keep a batch to a few thousand logs. The marks are those in
    force at `as_of` (None: now) whose `until` is on or after the log's date; with
    `as_of_each`, each key's own moment instead (every log's submission time), still in
    the same two queries.
    """
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    # Callers may hold ids as strings; the rows come back as UUIDs.
    patient_ids = {_uuid(pid) for pid, _ in wanted}
    first, last = min(on for _, on in wanted), max(on for _, on in wanted)

    interventions: dict[UUID, list[tuple[date, str]]] = defaultdict(list)
    if read_interventions:
        for pid, day, kind in (
            Intervention.objects.filter(
                patient_id__in=patient_ids,
                date__gte=first - timedelta(days=RECENT_PROCEDURE_DAYS),
                date__lte=last,
            )
            .order_by("-date", "-created_at")
            .values_list("patient_id", "date", "kind")
        ):
            interventions[pid].append((day, kind))

    marks: dict[UUID, list[_Mark]] = defaultdict(list)
    if read_marks:
        if as_of_each is not None:
            moments = [as_of_each[key] for key in wanted]
            # Every mark in force at one of the moments; each key keeps its own below.
            in_force: QuerySet[AssessedMark] = AssessedMark.objects.filter(
                Q(revoked_at__isnull=True) | Q(revoked_at__gt=min(moments)),
                created_at__lte=max(moments),
            )
        else:
            in_force = _marks_in_force(as_of)
        for pid, symptom, until, created_at, revoked_at in (
            in_force.filter(patient_id__in=patient_ids, until__gte=first)
            .order_by("symptom")
            .values_list("patient_id", "symptom", "until", "created_at", "revoked_at")
        ):
            marks[pid].append(_Mark(symptom, until, created_at, revoked_at))

    def held(mark: _Mark, key: LogKey) -> bool:
        if mark.until < key[1]:
            return False
        if as_of_each is None:
            return True
        moment = as_of_each[key]
        return mark.created_at <= moment and (mark.revoked_at is None or mark.revoked_at > moment)

    return {
        (pid, on): SafetyFacts(
            interventions=tuple(
                InterventionFact(date=day, kind=cast("InterventionKind", kind))
                for day, kind in interventions[_uuid(pid)]
                if on - timedelta(days=RECENT_PROCEDURE_DAYS) <= day <= on
            ),
            marks=tuple(
                MarkFact(symptom=cast("MarkableSymptom", mark.symptom), until=mark.until)
                for mark in marks[_uuid(pid)]
                if held(mark, (pid, on))
            ),
        )
        for pid, on in wanted
    }


class _Mark(NamedTuple):
    symptom: str
    until: date
    created_at: datetime
    revoked_at: datetime | None


# --------------------------------------------------------------------------- fever re-checks


def fever_rechecks_owed() -> QuerySet[Intervention]:
    """Procedures still owed RF-INF-02's fever re-check, and not given up on."""
    return Intervention.objects.filter(
        kind__in=PROCEDURE_KINDS,
        fever_rechecked_at__isnull=True,
        fever_recheck_failed_at__isnull=True,
    )
