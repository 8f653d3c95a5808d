from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.db import transaction

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


# SMTP errors are OSErrors, as are refused connections and timeouts. Bounded: six retries
# over about half an hour; past that the clinician re-invites (they saw the code in the
# response, and a new invitation replaces the unsent one).
@shared_task(
    base=RobustOnCommitTask,
    autoretry_for=(OSError,),
    max_retries=6,
    retry_backoff=30,
    retry_backoff_max=1200,
    retry_jitter=True,
)
def invitation_send_task(invitation_id: str, *_legacy: str) -> bool:
    # `_legacy`: messages queued before the upgrade also carried the code; it is ignored
    # (and never logged), the code is derived from the id (docs/security.md § Secrets).
    return services.invitation_send(invitation_id=invitation_id)
