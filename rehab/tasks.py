"""Celery tasks: fetch by id, call one service (STYLE.md). No retries with countdowns:
what is owed is a column, and the sweepers below find it."""

from __future__ import annotations

from celery import shared_task

from rehab.services import safety


@shared_task(acks_late=True, reject_on_worker_lost=True)
def log_evaluate_task(log_id: str) -> str:
    return safety.log_evaluate(log_id=log_id).status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def alert_notify_task(alert_id: str) -> bool:
    return safety.alert_notify(alert_id=alert_id)


@shared_task
def unevaluated_logs_sweep_task() -> int:
    return safety.unevaluated_logs_sweep()


@shared_task
def notifications_sweep_task() -> int:
    return safety.notifications_sweep()


@shared_task
def escalations_sweep_task() -> int:
    return safety.escalations_sweep()


@shared_task
def review_rules_task() -> int:
    """The §3 review rules over every patient; returns how many (patient, rule) fire.

    Fetches nothing: the service is one set-based run, and safe to run twice.
    """
    from rehab.services import review

    return sum(stats.firing for stats in review.review_rules_run().values())


@shared_task
def progression_proposals_task() -> int:
    from rehab.services.progression import progression_proposals_run

    return progression_proposals_run()
