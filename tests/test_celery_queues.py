"""The two Celery queues (docs/deployment.md § Queues): every task is routed by its name,
the safety path's tasks to `safety`, everything else to `default`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings

from config.celery import DEFAULT, SAFETY, TASK_QUEUE_PATTERNS, app, queue_for
from tests.rehab.worker_support import RedisServer, producer_broker

SAFETY_TASKS = {
    "rehab.tasks.log_evaluate_task",
    "rehab.tasks.quiet_logs_evaluate_task",
    "rehab.tasks.unevaluated_logs_sweep_task",
    "rehab.tasks.submission_evaluate_task",
    "notifications.tasks.alert_notify_task",
    "notifications.tasks.alert_notifications_sweep_task",
    "notifications.tasks.escalations_sweep_task",
    "notifications.tasks.delivery_send_task",
    "notifications.tasks.deliveries_sweep_task",
    "rehab.tasks.intervention_fever_recheck_task",
    "rehab.tasks.fever_rechecks_sweep_task",
}


def _our_tasks() -> set[str]:
    app.loader.import_default_modules()  # what a worker imports: every app's tasks.py
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_it_names_a_queue_for_every_task_defined():
    tasks = _our_tasks()
    assert tasks >= SAFETY_TASKS
    unrouted = sorted(name for name in tasks if queue_for(name) is None)
    assert not unrouted, f"add a line to config.celery.TASK_QUEUE_PATTERNS for {unrouted}"


def test_it_sends_the_safety_path_to_safety_and_the_rest_to_default():
    for name in _our_tasks():
        expected = SAFETY if name in SAFETY_TASKS else DEFAULT
        assert queue_for(name) == expected, name
        # Celery's own router agrees (what a publish actually uses).
        assert app.amqp.router.route({}, name)["queue"].name == expected, name


def test_it_routes_every_beat_entry_to_its_queue():
    names = [str(entry["task"]) for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    assert "notifications.tasks.escalations_sweep_task" in names
    for name in names:
        assert queue_for(name) == (SAFETY if name in SAFETY_TASKS else DEFAULT), name


def test_it_routes_the_notifications_apps_tasks_by_pattern():
    # Tasks of the notifications app get their queue from their name, with no new line.
    assert queue_for("notifications.tasks.alert_deliver_task") == SAFETY
    assert queue_for("notifications.tasks.escalation_email_task") == SAFETY
    assert queue_for("notifications.tasks.invitation_email_task") == DEFAULT
    assert queue_for("somewhere.tasks.unknown_task") is None


def test_its_patterns_all_name_a_known_queue():
    assert {queue for _, queue in TASK_QUEUE_PATTERNS} == {SAFETY, DEFAULT}
    assert {queue.name for queue in app.conf.task_queues} == {SAFETY, DEFAULT}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        with producer_broker(server.url):
            yield server
    finally:
        server.stop()


def _queued(server: RedisServer, queue: str) -> list[str]:
    client = redis.Redis.from_url(server.url)
    return [json.loads(raw)["headers"]["task"] for raw in client.lrange(queue, 0, -1)]


def test_a_published_evaluation_lands_in_the_safety_list_of_a_real_broker(broker: RedisServer):
    from notifications.tasks import alert_notify_task
    from rehab.tasks import log_evaluate_task

    log_evaluate_task.apply_async(args=["00000000-0000-0000-0000-000000000001"])
    alert_notify_task.apply_async(args=["00000000-0000-0000-0000-000000000002"])

    assert _queued(broker, SAFETY) == [
        "notifications.tasks.alert_notify_task",
        "rehab.tasks.log_evaluate_task",
    ]
    assert _queued(broker, DEFAULT) == []


def test_a_published_export_sweep_lands_in_the_default_list_of_a_real_broker(
    broker: RedisServer,
):
    from rights.tasks import export_jobs_sweep_task

    export_jobs_sweep_task.apply_async()

    assert _queued(broker, DEFAULT) == ["rights.tasks.export_jobs_sweep_task"]
    assert _queued(broker, SAFETY) == []
