"""The beat sweeps of the evaluation queue, and what operators see of it on /health/:
whatever a lost message, a killed worker or a broker outage left owed is found here in
the database and sent again (docs/safety-path.md)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from config.enqueue import (
    SWEEP_GRACE,
    SWEEP_TIME_BUDGET,
    sweep_enqueue,
)
from rehab.models import (
    DailyLog,
    Intervention,
    SafetySubmission,
)
from rehab.selectors.record import (
    fever_rechecks_owed,
)
from rehab.services.delivery import undelivered_alerts

logger = logging.getLogger(__name__)


def unevaluated_logs_sweep(*, batch: int = 1000, budget: float = SWEEP_TIME_BUDGET) -> int:
    """Re-enqueue every log still owed an evaluation (lost message, dead worker, outage).

    In batches, oldest first, until none is left or the time budget is spent: after a
    long broker outage thousands may be owed, and "evaluated within 2 minutes of the
    broker being back" must not wait for one batch per beat. The batches walk the owed
    logs by (updated_at, id), since those just enqueued stay owed until a worker runs them.
    """
    owed = DailyLog.objects.filter(
        evaluated_at__isnull=True,
        evaluation_failed_at__isnull=True,
        updated_at__lt=timezone.now() - SWEEP_GRACE,
    )
    return sweep_enqueue(
        owed, task="rehab.tasks.log_evaluate_task", by="updated_at", batch=batch, budget=budget
    )


def unevaluated_submissions_sweep(*, batch: int = 1000, budget: float = SWEEP_TIME_BUDGET) -> int:
    """Re-enqueue every submission still owed its evaluation (a lost message, a dead
    worker, a broker outage), oldest first, as `unevaluated_logs_sweep` does for logs."""
    owed = SafetySubmission.objects.filter(
        evaluated_at__isnull=True,
        evaluation_failed_at__isnull=True,
        created_at__lt=timezone.now() - SWEEP_GRACE,
    )
    return sweep_enqueue(
        owed,
        task="rehab.tasks.submission_evaluate_task",
        by="created_at",
        batch=batch,
        budget=budget,
    )


def safety_status() -> dict[str, int]:
    """What operators need to see: evaluations owed and evaluations given up on."""
    overdue = timezone.now() - timedelta(minutes=2)
    owed = DailyLog.objects.filter(evaluated_at__isnull=True, evaluation_failed_at__isnull=True)
    submissions = SafetySubmission.objects.filter(
        evaluated_at__isnull=True, evaluation_failed_at__isnull=True
    )
    return {
        "unevaluated_logs": owed.count(),
        "overdue_logs": owed.filter(updated_at__lt=overdue).count(),
        "failed_logs": DailyLog.objects.filter(evaluation_failed_at__isnull=False).count(),
        # Superseded versions and refused submissions owed their red-flag evaluation.
        "overdue_submissions": submissions.filter(created_at__lt=overdue).count(),
        "failed_submissions": SafetySubmission.objects.filter(
            evaluation_failed_at__isnull=False
        ).count(),
        # RF-INF-02's re-check of a procedure recorded late: an emergency may hang on it.
        "overdue_fever_rechecks": fever_rechecks_owed().filter(created_at__lt=overdue).count(),
        "failed_fever_rechecks": Intervention.objects.filter(
            fever_recheck_failed_at__isnull=False
        ).count(),
        # An emergency no one was told about is as bad as a log never evaluated.
        "undelivered_alerts": undelivered_alerts().count(),
    }
