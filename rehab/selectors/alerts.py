"""Alerts and notifications, as clinicians see them."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Case, IntegerField, Prefetch, QuerySet, Value, When
from django.shortcuts import get_object_or_404

from patients.models import User
from rehab.models import Alert, AlertEvent, Notification
from rehab.models.alerts import SEVERITY_RANK


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
    alert: Alert = get_object_or_404(
        Alert.objects.visible_to(user)
        .select_related("patient", "acknowledged_by", "resolved_by")
        .prefetch_related(
            "occurrences", Prefetch("events", queryset=AlertEvent.objects.select_related("actor"))
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
