"""No patient data in the database server's log (docs/security.md).

PostgreSQL writes a failing statement, values included, to its server log. Retries,
conflicts, races and edits are normal paths of the log POST: none of them may make the
server fail a statement. This runs those flows against the embedded server the suite uses
and reads its log for the canary strings it sent.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from rehab.models import DailyLog
from rehab.services import safety
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)

LOGS = "/api/v1/logs/"


def _server_log() -> Path:
    """The embedded server writes its log beside its data (the socket directory)."""
    settings = connection.settings_dict
    host = settings.get("HOST") or (settings.get("OPTIONS") or {}).get("host") or ""
    log = Path(host) / "log" if host.startswith("/") else None
    if log is None or not log.is_file():
        pytest.skip("the database server's log is not readable here (not the embedded server)")
    return log


def test_retries_conflicts_races_and_edits_leave_no_patient_data_in_the_server_log(
    patient, patient_client, api_client_for, clinician_client
):
    server_log = _server_log()
    start = server_log.stat().st_size
    canary = f"canary-{uuid.uuid4().hex}"
    today = patient.local_today()
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "date": today.isoformat(),
        "pain": 7,
        "notes": f"{canary} first",
        "safety": {"bladder_change": "new_or_worse"},
    }

    assert patient_client.post(LOGS, body).status_code == 201
    assert patient_client.post(LOGS, body).status_code == 200  # a retry
    changed = {**body, "notes": f"{canary} changed"}
    assert patient_client.post(LOGS, changed).status_code == 409  # same id, other body
    other_id = {**body, "id": str(uuid.uuid4()), "notes": f"{canary} again"}
    assert patient_client.post(LOGS, other_id).status_code == 409  # same date
    assert patient_client.post(LOGS, other_id).status_code == 409  # and again (one record)
    yesterday = {**body, "id": str(uuid.uuid4()), "date": (today - timedelta(days=1)).isoformat()}
    assert patient_client.post(LOGS, yesterday).status_code == 201
    moved = patient_client.patch(f"{LOGS}{yesterday['id']}/", {"date": today.isoformat()})
    assert moved.status_code == 409  # an edit onto a taken date
    edited = patient_client.patch(f"{LOGS}{body['id']}/", {"notes": f"{canary} edited"})
    assert edited.status_code == 200

    # Two copies of one upload racing each other (a phone retrying on a flaky network).
    racer = PatientFactory.create(clinic=patient.clinic)
    race_body = {**body, "id": str(uuid.uuid4()), "date": racer.local_today().isoformat()}
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def upload() -> None:
        client = api_client_for(racer.user)
        barrier.wait(timeout=30)
        statuses.append(client.post(LOGS, race_body).status_code)
        connection.close()

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [200, 201]

    # The same examination recorded twice (a double tap): a 409, not a failed INSERT.
    exam = {
        "performed_at": (timezone.now() - timedelta(hours=1)).isoformat(),
        "tests": [
            {"test": "fair", "side": "right", "result": "positive", "notes": f"{canary} exam"}
        ],
    }
    exam_url = f"/api/v1/clinician/patients/{patient.pk}/provocative-tests/"
    assert clinician_client.post(exam_url, exam).status_code == 201
    assert clinician_client.post(exam_url, exam).status_code == 409

    # Evaluations run twice (a redelivered message, an operator's reset).
    for _ in range(2):
        DailyLog.objects.update(evaluated_at=None, evaluation_attempts=0)
        for log_id in DailyLog.objects.values_list("pk", flat=True):
            safety.log_evaluate(log_id=log_id)
        for submission_id in safety.SafetySubmission.objects.values_list("pk", flat=True):
            safety.SafetySubmission.objects.filter(pk=submission_id).update(evaluated_at=None)
            safety.submission_evaluate(submission_id=submission_id)

    with server_log.open(encoding="utf-8", errors="replace") as handle:
        handle.seek(start)
        written = handle.read()
    identifying = [canary, str(patient.pk), str(racer.pk), body["id"], race_body["id"]]
    leaked = [value for value in identifying if value in written]
    assert not leaked, f"the server log holds {leaked}:\n{written[-3000:]}"
