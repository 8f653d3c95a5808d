"""Services publish tasks by name (config/enqueue.py): the names must resolve, a misspelt
one must fail loudly, and nothing is sent before the caller's transaction commits."""

from __future__ import annotations

import re
from typing import Any

import pytest

from config import enqueue
from patients import tasks as patient_tasks
from tests.processes import BASE_DIR

pytestmark = pytest.mark.django_db

TASK_NAME = re.compile(r"\"((?:patients|programs|rehab|rights|notifications)\.tasks\.\w+)\"")


def _named_in_the_code() -> set[str]:
    names: set[str] = set()
    for path in BASE_DIR.glob("*/**/*.py"):
        if {".venv", "tests", "migrations"} & set(path.parts):
            continue
        names |= set(TASK_NAME.findall(path.read_text()))
    return names


def test_every_task_the_code_names_is_a_task_of_that_name():
    names = _named_in_the_code()

    assert "rehab.tasks.log_evaluate_task" in names  # the scan finds them
    for name in names:
        assert enqueue.task_named(name).name == name


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("rehab.tasks.log_evaluate", AttributeError),
        ("rehab.taskz.log_evaluate_task", ImportError),
        ("rehab.tasks.shared_task", LookupError),
    ],
)
def test_it_refuses_a_name_that_is_not_a_task(name, error):
    with pytest.raises(error):
        enqueue.task_named(name)


def test_a_misspelt_name_fails_the_write_not_a_callback_after_it(
    django_capture_on_commit_callbacks,
):
    with pytest.raises(AttributeError), django_capture_on_commit_callbacks() as callbacks:
        enqueue.publish_on_commit("patients.tasks.invitation_send", "x")
    assert callbacks == []


def test_it_publishes_only_once_the_transaction_commits(
    django_capture_on_commit_callbacks, monkeypatch
):
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(patient_tasks.invitation_send_task, "delay", lambda *a: sent.append(a))

    with django_capture_on_commit_callbacks(execute=True):
        enqueue.publish_on_commit("patients.tasks.invitation_send_task", "id-1")
        assert sent == []

    assert sent == [("id-1",)]
