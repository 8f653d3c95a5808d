"""Alerts and notifications, as clinicians see them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Case, IntegerField, Prefetch, QuerySet, Value, When
from django.shortcuts import get_object_or_404

from patients.models import User
from rehab.models import Alert, AlertEvent, AlertOccurrence, DailyLog, DailyLogId, Notification
from rehab.models.alerts import SEVERITY_RANK
from rehab.querysets import log_date


def severity_rank(field: str = "severity") -> Case:
    return Case(
        *(When(**{field: sev}, then=Value(rank)) for sev, rank in SEVERITY_RANK.items()),
        default=Value(len(SEVERITY_RANK)),
        output_field=IntegerField(),
    )


def alert_list(
    *,
    user: User,
    status: str | None = None,
    severity: str | None = None,
    patient_id: UUID | None = None,
) -> QuerySet[Alert]:
    """Most severe first, then the one waiting longest."""
    alerts = Alert.objects.visible_to(user).select_related("patient")
    if status:
        alerts = alerts.filter(status=status)
    if severity:
        alerts = alerts.filter(severity=severity)
    if patient_id:
        alerts = alerts.filter(patient_id=patient_id)
    ordered: QuerySet[Alert] = alerts.annotate(rank=severity_rank()).order_by(
        "rank", "opened_at", "id"
    )
    return ordered


def alert_get(*, user: User, alert_id: UUID) -> Alert:
    """The alert with its occurrences and events; it and each occurrence carry
    `log_date`, their log's date from the claimed ids (`rehab.querysets.log_date`): no
    join of the partitioned log table, whose every month a join by id alone would plan.
    Read an occurrence's log through `alert_occurrence_logs`, not `occurrence.log`."""
    alert: Alert = get_object_or_404(
        Alert.objects.visible_to(user)
        .annotate(log_date=log_date())
        .select_related("patient", "acknowledged_by", "resolved_by")
        .prefetch_related(
            Prefetch("occurrences", queryset=AlertOccurrence.objects.annotate(log_date=log_date())),
            Prefetch("events", queryset=AlertEvent.objects.select_related("actor")),
        ),
        pk=alert_id,
    )
    return alert


def notification_list(*, user: User, unread: bool | None = None) -> QuerySet[Notification]:
    notifications = Notification.objects.visible_to(user).select_related("alert", "alert__patient")
    if unread is True:
        notifications = notifications.filter(read_at__isnull=True)
    elif unread is False:
        notifications = notifications.filter(read_at__isnull=False)
    return notifications.order_by("-created_at")


def notification_get(*, user: User, notification_id: UUID) -> Notification:
    notification: Notification = get_object_or_404(
        Notification.objects.visible_to(user), pk=notification_id
    )
    return notification


@dataclass(frozen=True)
class AnswerChange:
    """One answer as the patient first sent it and as the stored log holds it now."""

    field: str
    said: Any
    now: Any


@dataclass(frozen=True)
class SubmissionStory:
    """An occurrence fired by answers that are not the log's current version."""

    source: str
    version: int | None
    submitted_at: str
    changes: tuple[AnswerChange, ...]


def _flat(content: dict[str, Any]) -> dict[str, Any]:
    out = {name: value for name, value in content.items() if name != "safety"}
    out.update({f"safety.{name}": value for name, value in (content.get("safety") or {}).items()})
    return out


def alert_submission_stories(alert: Alert) -> list[SubmissionStory]:
    """For each occurrence raised from a superseded version or a refused (409) submission,
    what the patient first said and what the stored log says now, answer by answer (only
    the answers that differ). Reads the alert's prefetched occurrences (`alert_get`), and
    their logs in one query, from their months alone (`alert_occurrence_logs`)."""
    told = [
        occurrence
        for occurrence in alert.occurrences.all()
        if occurrence.source in ("superseded", "refused")
        and (occurrence.basis or {}).get("submission")
    ]
    logs = alert_occurrence_logs(told)
    stories = []
    for occurrence in told:
        submission = occurrence.basis["submission"]
        said = _flat(submission.get("answers") or {})
        log = logs.get(occurrence.log_id) if occurrence.log_id else None
        now = _flat({**log_rule_inputs(log), "date": log.date.isoformat()}) if log else {}
        changes = tuple(
            AnswerChange(field=name, said=said.get(name), now=now.get(name))
            for name in sorted(set(said) | set(now))
            if said.get(name) != now.get(name)
        )
        stories.append(
            SubmissionStory(
                source=occurrence.source,
                version=submission.get("version"),
                submitted_at=str(submission.get("submitted_at") or ""),
                changes=changes,
            )
        )
    return stories


def alert_occurrence_logs(occurrences: Iterable[AlertOccurrence]) -> dict[UUID, DailyLog]:
    """{log id: log} for the occurrences' logs, in one query over their months'
    partitions alone: by id and date, the date from each occurrence's `log_date`
    annotation (`alert_get`), else from the claimed ids."""
    dates = {
        occurrence.log_id: getattr(occurrence, "log_date", None)
        for occurrence in occurrences
        if occurrence.log_id is not None
    }
    if not dates:
        return {}
    unknown = [log_id for log_id, day in dates.items() if day is None]
    if unknown:
        dates.update(DailyLogId.objects.filter(pk__in=unknown).values_list("pk", "date"))
    return DailyLog.objects.by_dated_ids(dates)


def log_rule_inputs(log: DailyLog) -> dict[str, Any]:
    return {name: getattr(log, name) for name in DailyLog.CONTENT_FIELDS if name != "notes"}
