"""Celery tasks: fetch by id, call one service (docs/architecture.md). Services publish
them by name after commit (config/enqueue.py); only the tasks import the services."""

from __future__ import annotations

from celery import shared_task

from patients import services
from patients.throttling import purge_sign_in_failures


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
