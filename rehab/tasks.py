"""Celery tasks of the rehab app: each fetches by id (or sweeps) and calls one service."""

from __future__ import annotations

from celery import shared_task

# --- clinical record ---
from rehab.services import record as record_services


@shared_task(name="rehab.tasks.questionnaires_expire_task")
def questionnaires_expire_task() -> int:
    """Stamp unanswered questionnaires whose window closed; run by beat every 5 minutes.

    Schedule it with `CELERY_BEAT_SCHEDULE = {"rehab-questionnaires-expire": {"task":
    "rehab.tasks.questionnaires_expire_task", "schedule": 300.0}}` (or a django-celery-beat
    PeriodicTask). Idempotent and set-based, so a late, duplicate or concurrent run is
    harmless; and nothing depends on its timing: the app never offers a closed window,
    whether or not this has run. It only records what was missed.
    """
    return record_services.questionnaires_expire()


# --- end clinical record ---
