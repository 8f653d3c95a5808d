"""What the app's developers do with the schema: generate a typed client, type-check code
that uses it, and run that code against the server. A schema that loses a type (the 409's
`existing_id`, the safety catalogue) fails mypy here; one that lies fails the calls."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from patients.models import AuthToken, Patient

pytestmark = pytest.mark.django_db(transaction=True)

BIN = Path(sys.executable).parent

# Code an app developer would write against the generated client (package `rehab_client`).
USAGE = """
from __future__ import annotations

import datetime
from uuid import UUID

from rehab_client import AuthenticatedClient
from rehab_client.api.patient_daily_logs import logs_create, logs_partial_update
from rehab_client.api.safety import safety_rules_retrieve
from rehab_client.models import (
    Error,
    LogConflict,
    LogInputRequest,
    LogOutput,
    PatchedLogPatchRequest,
    SafetyCatalogue,
)


def store(client: AuthenticatedClient, day: datetime.date, log_id: UUID) -> LogOutput:
    answer = logs_create.sync(client=client, body=LogInputRequest(date=day, pain=4, id=log_id))
    assert isinstance(answer, LogOutput), answer
    return answer


def existing_id_of_a_second_log(client: AuthenticatedClient, day: datetime.date) -> UUID:
    answer = logs_create.sync(client=client, body=LogInputRequest(date=day, pain=5))
    assert isinstance(answer, LogConflict), answer
    code: str = answer.code
    assert code == "conflict"
    return answer.existing_id


def field_codes(client: AuthenticatedClient, day: datetime.date) -> dict[str, str]:
    answer = logs_create.sync(client=client, body=LogInputRequest(date=day, pain=11))
    assert isinstance(answer, Error), answer
    return {str(error.field): error.code for error in answer.errors}


def edit(client: AuthenticatedClient, log_id: UUID, etag: str) -> int:
    response = logs_partial_update.sync_detailed(
        log_id, client=client, body=PatchedLogPatchRequest(pain=3), if_match=etag
    )
    return int(response.status_code)


def emergency_rules(client: AuthenticatedClient) -> list[str]:
    catalogue = safety_rules_retrieve.sync(client=client)
    assert isinstance(catalogue, SafetyCatalogue), catalogue
    message: str = catalogue.messages[catalogue.rules[0].message]
    assert message
    return [rule.id for rule in catalogue.rules if rule.severity.value == "emergency"]
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The client generated from the schema the server serves, and the usage code."""
    root = tmp_path_factory.mktemp("client")
    schema = root / "schema.json"
    # The schema file exactly as `/api/schema/` serves it (same generator, no request).
    subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--format", "openapi-json", "--file", schema],
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
    )
    config = root / "config.yaml"
    config.write_text("post_hooks: []\n")
    result = subprocess.run(
        [
            BIN / "openapi-python-client",
            "generate",
            "--path",
            schema,
            "--output-path",
            root / "rehab_client",
            "--meta",
            "none",
            "--config",
            config,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Warnings mean a schema piece the generator could not type (and skipped).
    assert "Warning" not in result.stdout, result.stdout
    (root / "usage.py").write_text(USAGE)
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.split(".")[0] in ("rehab_client", "usage")]:
            del sys.modules[name]


def test_it_type_checks_code_written_against_the_generated_client(generated: Path) -> None:
    result = subprocess.run(
        [BIN / "mypy", "--strict", "--config-file", "/dev/null", "usage.py"],
        cwd=generated,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_answers_the_generated_client_as_its_types_say(
    generated: Path, live_server: Any, patient: Patient
) -> None:
    usage: Any = importlib.import_module("usage")
    client_module: Any = importlib.import_module("rehab_client")
    _, token = AuthToken.objects.create(user=patient.user)
    client = client_module.AuthenticatedClient(base_url=live_server.url, token=token)
    day = date.today()
    log_id = uuid.uuid4()

    stored = usage.store(client, day, log_id)
    assert stored.id == log_id
    assert usage.existing_id_of_a_second_log(client, day) == log_id
    assert usage.field_codes(client, day) == {"pain": "max_value"}
    assert usage.edit(client, log_id, '"v0"') == 412
    assert usage.edit(client, log_id, '"v1"') == 200
    assert "RF-CES-01" in usage.emergency_rules(client)
