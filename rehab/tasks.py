"""Celery tasks: fetch by id, call one service (docs/architecture.md). No retries with countdowns:
what is owed is a column, and the sweepers below find it. The one retry is immediate: a
safety task whose database connection dropped (`RETRY_AT_ONCE`)."""

from __future__ import annotations

from typing import Any

import psycopg
from celery import shared_task
from django import db

from rehab.services import partitions, safety
from rehab.services import sweeps as sweep_services

# A safety task whose database connection dropped mid-task (a PostgreSQL restart or
# failover, a terminated backend) is sent again at once, rather than leaving the red flag
# to the next sweep. Safe: the services are idempotent. `countdown` 0 is no delay; after a
# few attempts the sweepers have it. docs/security.md.
CONNECTION_LOST = (
    db.OperationalError,
    db.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
RETRY_AT_ONCE: dict[str, Any] = {
    "autoretry_for": CONNECTION_LOST,
    "max_retries": 3,
    "retry_kwargs": {"countdown": 0},
}


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY_AT_ONCE)
def log_evaluate_task(log_id: str) -> str:
    return safety.log_evaluate(log_id=log_id).status


@shared_task(
    acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90, **RETRY_AT_ONCE
)
def quiet_logs_evaluate_task() -> int:
    """The quiet logs' batches (`safety.quiet_logs_evaluate`); no id: it takes what is owed."""
    return safety.quiet_logs_evaluate()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def submission_evaluate_task(submission_id: str) -> str:
    """A superseded version or a refused submission: its red flags, as a log's."""
    return safety.submission_evaluate(submission_id=submission_id).status


@shared_task
def unevaluated_logs_sweep_task() -> int:
    """Logs, and the superseded versions and refused submissions, still owed."""
    return sweep_services.unevaluated_logs_sweep() + sweep_services.unevaluated_submissions_sweep()


@shared_task
def dailylog_partitions_ensure_task() -> int:
    """The daily log partitions of the coming months; how many it created."""
    return partitions.partitions_ensure()


@shared_task
def review_rules_task() -> int:
    """The §3 review rules over every patient; returns how many (patient, rule) fire.

    Fetches nothing: the service is one set-based run, and safe to run twice.
    """
    from rehab.services import review

    return sum(stats.firing for stats in review.review_rules_run().values())


@shared_task
def missed_log_reminders_task() -> int:
    """NR-LOG-01's patient reminders, recorded and handed to the notifications app; for
    beat, hourly. Idempotent (one per streak)."""
    from rehab.services import review

    return review.missed_log_reminders_send()


@shared_task
def progression_proposals_task() -> int:
    from rehab.services.progression import progression_proposals_run

    return progression_proposals_run()


# --- clinical record ---


@shared_task
def questionnaires_expire_task() -> int:
    """Stamp unanswered questionnaires whose window closed; for beat, every 5 minutes.

    Schedule: `"rehab-questionnaires-expire": {"task":
    "rehab.tasks.questionnaires_expire_task", "schedule": 300.0}` in CELERY_BEAT_SCHEDULE.
    Set-based and idempotent, so a late, duplicate or concurrent run is harmless; and
    nothing depends on its timing: the app never offers a closed window whether or not
    this has run. It records what was missed.
    """
    from rehab.services import record as record_services

    return record_services.questionnaires_expire()


@shared_task
def questionnaires_schedule_programs_task() -> int:
    """Create the fortnightly questionnaires of active programs, and the baseline of every
    patient who started without one; for beat, hourly.

    Schedule: `"rehab-questionnaires-programs": {"task":
    "rehab.tasks.questionnaires_schedule_programs_task", "schedule": 3600.0}`. Idempotent.
    """
    from rehab.services import record as record_services

    baselines = record_services.questionnaires_schedule_baselines()
    return baselines + record_services.questionnaires_schedule_programs()


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY_AT_ONCE)
def intervention_fever_recheck_task(intervention_id: str) -> int:
    """RF-INF-02 on the fevers logged since a procedure recorded after the fact."""
    from rehab.services import record as record_services

    return record_services.intervention_fever_recheck(intervention_id=intervention_id)


@shared_task
def fever_rechecks_sweep_task() -> int:
    """Re-enqueue the procedures still owed their fever re-check; for beat, every minute.

    Schedule: `"safety-fever-rechecks-sweep"` in CELERY_BEAT_SCHEDULE. Idempotent.
    """
    from rehab.services import record as record_services

    return record_services.fever_rechecks_sweep()


# --- end clinical record ---
