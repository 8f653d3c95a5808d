from __future__ import annotations

from celery import shared_task

from patients.services import auth_tokens_purge_expired
from patients.throttling import purge_sign_in_failures


@shared_task
def purge_sign_in_failures_task() -> int:
    return purge_sign_in_failures()


@shared_task
def purge_expired_tokens_task() -> int:
    return auth_tokens_purge_expired()
