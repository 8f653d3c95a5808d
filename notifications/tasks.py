"""Celery tasks: fetch by id, call one service (docs/architecture.md). Other apps publish
these by name (`config.enqueue.task_publish("notifications.tasks...", id)`), so they
import nothing of this app; a lost message is found again by the sweeps below."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from notifications import follow_ups, reminders_sweep, services
from rehab.tasks import RETRY_AT_ONCE

# A send can hang (EMAIL_TIMEOUT bounds each connection): the soft limit ends a stuck
# task, its delivery's lease runs out and a later sweep has it; the hard limit frees the
# pool slot regardless. Both below the lease (services.LEASE).
SEND_SOFT_TIME_LIMIT = 60
SEND_TIME_LIMIT = 90
SENDING: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "soft_time_limit": SEND_SOFT_TIME_LIMIT,
    "time_limit": SEND_TIME_LIMIT,
}
SWEEPING: dict[str, Any] = {"soft_time_limit": SEND_SOFT_TIME_LIMIT, "time_limit": SEND_TIME_LIMIT}


@shared_task(**SENDING, **RETRY_AT_ONCE)
def alert_notify_task(alert_id: str) -> bool:
    return services.alert_notify(alert_id=alert_id)


@shared_task(**SENDING)
def invitation_send_task(invitation_id: str) -> bool:
    return services.invitation_send(invitation_id=invitation_id)


@shared_task(**SENDING)
def missed_log_reminder_task(reminder_id: str) -> bool:
    return services.missed_log_reminder_send(reminder_id=reminder_id)


@shared_task(**SENDING)
def delivery_send_task(delivery_id: str) -> bool:
    return services.delivery_send(delivery_id=delivery_id)


@shared_task(**SWEEPING)
def alert_notifications_sweep_task() -> int:
    return services.alert_notifications_sweep()


@shared_task(**SWEEPING)
def escalations_sweep_task() -> int:
    return services.escalations_sweep()


@shared_task(**SWEEPING)
def deliveries_sweep_task() -> int:
    return services.deliveries_sweep()


@shared_task(**SWEEPING)
def follow_ups_sweep_task() -> int:
    return follow_ups.follow_ups_sweep()


@shared_task(**SWEEPING)
def reminders_sweep_task() -> int:
    return reminders_sweep.reminders_sweep(budget=reminders_sweep.SWEEP_BUDGET)
