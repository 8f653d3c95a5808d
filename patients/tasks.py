"""Celery tasks: fetch by id, call one service (docs/architecture.md). Services publish
them by name after commit (config/enqueue.py); only the tasks import the services."""

from __future__ import annotations

from celery import shared_task

from config.enqueue import task_publish
from patients import services
from patients.throttling import purge_sign_in_failures


@shared_task
def purge_sign_in_failures_task() -> int:
    return purge_sign_in_failures()


@shared_task
def purge_expired_tokens_task() -> int:
    return services.auth_tokens_purge_expired()


# Invitation emails are the notifications app's (`notifications.tasks.invitation_send_task`).
# Messages queued under this name before the upgrade are handed on to it by name, the
# invitation's id only: an older message also carried the code, which is ignored (and
# never logged); the code is derived from the id (docs/security.md § Secrets).
@shared_task
def invitation_send_task(invitation_id: str, *_legacy: str) -> bool:
    return task_publish(services.INVITATION_SEND_TASK, invitation_id)
