from __future__ import annotations

from celery import shared_task

from patients.throttling import purge_sign_in_failures


@shared_task
def purge_sign_in_failures_task() -> int:
    return purge_sign_in_failures()
