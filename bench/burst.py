"""Enqueue a burst of default-queue tasks, as a morning's exports and reports would.

    python -m bench.burst --tasks 5000   # bench settings and the bench's broker in the env

Real tasks of the product's `default` queue, cycled: the export jobs' sweep, the
questionnaire windows' expiry, the sign-in failures' purge. Each is a few indexed
statements against the bench database; 5,000 of them keep the default workers busy for
several seconds, during which bench/run.py posts red flags and times their alerts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import django

BURST_TASKS = (
    "rights.tasks.export_jobs_sweep_task",
    "rehab.tasks.questionnaires_expire_task",
    "patients.tasks.purge_sign_in_failures_task",
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, required=True)
    args = parser.parse_args()
    django.setup()
    from config.celery import DEFAULT, app, queue_for

    assert all(queue_for(name) == DEFAULT for name in BURST_TASKS)
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for n in range(args.tasks):
            app.send_task(BURST_TASKS[n % len(BURST_TASKS)], producer=producer)
    print(json.dumps({"tasks": args.tasks, "enqueue_seconds": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
