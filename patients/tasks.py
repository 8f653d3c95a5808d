from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.db import transaction

from config.enqueue import task_publish
from patients import services
from patients.throttling import purge_sign_in_failures


class RobustOnCommitTask(DjangoTask[Any, Any]):
    """`delay_on_commit` that cannot fail the request: the write has committed by then, so
    a broker outage is logged (by Django) instead of answering 500 for a saved object."""

    # celery-types says AsyncResult; Celery itself returns None (nothing is sent yet).
    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # A function, not a partial: Django names the callback by its __qualname__ when
        # it logs the failure.
        def publish() -> None:
            self.delay(*args, **kwargs)

        publish.__qualname__ = f"{self.name}.delay"
        transaction.on_commit(publish, robust=True)


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
