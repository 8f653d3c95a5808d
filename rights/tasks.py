"""Celery tasks: fetch by id, call one service (docs/architecture.md)."""

from __future__ import annotations

from celery import shared_task

from rights import erasure, services


# Published on commit (config/enqueue.py); after a broker outage the sweeper builds the
# job later.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=120,
    time_limit=150,
)
def export_job_build_task(job_id: str) -> str:
    return services.export_job_build(job_id=job_id)


@shared_task
def export_jobs_sweep_task() -> int:
    return services.export_jobs_sweep()


@shared_task
def retention_sweep_task() -> int:
    return erasure.retention_sweep()
