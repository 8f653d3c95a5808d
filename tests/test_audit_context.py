"""The audit context (config/audit.py): built once per request, carrying the request's id
into the audit trail and its response header, and the only thing services receive about
the HTTP request they serve."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import types
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from django.http import HttpRequest
from django.test import RequestFactory, override_settings

from config.audit import AuditContext, audit_context
from patients.models import AuditEvent, User
from tests.processes import BASE_DIR

pytestmark = pytest.mark.django_db

LOGS = "/api/v1/logs/"
HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_it_gives_every_response_a_request_id(client):
    response = client.get("/api/v1/safety/rules/")

    assert HEX_ID.fullmatch(response.headers["X-Request-ID"])


def test_it_ignores_a_request_id_sent_by_the_client_by_default(client):
    response = client.get("/api/v1/safety/rules/", HTTP_X_REQUEST_ID="chosen-by-client")

    assert response.headers["X-Request-ID"] != "chosen-by-client"
    assert HEX_ID.fullmatch(response.headers["X-Request-ID"])


@override_settings(TRUST_REQUEST_ID=True)
def test_it_takes_the_request_id_a_trusted_proxy_sets(client):
    response = client.get("/api/v1/safety/rules/", HTTP_X_REQUEST_ID="lb-7f3a:0001")

    assert response.headers["X-Request-ID"] == "lb-7f3a:0001"


@override_settings(TRUST_REQUEST_ID=True)
@pytest.mark.parametrize("given", ["", "has space", "x" * 65, "nul\x00", "<script>"])
def test_it_replaces_a_request_id_that_does_not_look_like_one(client, given):
    response = client.get("/api/v1/safety/rules/", HTTP_X_REQUEST_ID=given)

    assert HEX_ID.fullmatch(response.headers["X-Request-ID"])


@time_machine.travel(datetime(2026, 11, 20, 12, 0, tzinfo=UTC), tick=False)
def test_it_records_the_request_id_and_caller_in_the_audit_trail(patient_client):
    response = patient_client.post(
        LOGS,
        {"date": "2026-11-20", "pain": 2},
        format="json",
        HTTP_USER_AGENT="RehabApp/3.1",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 201, response.json()

    event = AuditEvent.objects.get(object_type="daily_log", object_id=response.json()["id"])
    assert event.request_id == response.headers["X-Request-ID"]
    # A patient's address is kept as its network only (docs/security.md § What the audit
    # trail stores).
    assert (event.method, event.path, event.ip, event.user_agent) == (
        "POST",
        LOGS,
        "203.0.113.0",
        "RehabApp/3.1",
    )


def test_it_fills_the_actor_once_the_caller_is_known(patient):
    request = RequestFactory().get("/x/", HTTP_USER_AGENT="ua\x00")
    anonymous = audit_context(request)
    # As the token sign-in loads a user: with both role rows.
    request.user = User.objects.select_related("patient", "clinician").get(pk=patient.user.pk)

    signed_in = audit_context(request)

    assert anonymous.actor_id is None
    assert (signed_in.actor_id, signed_in.actor_role) == (patient.user.pk, "patient")
    # The same request keeps its id and facts; NULs never reach the database.
    assert signed_in.request_id == anonymous.request_id
    assert signed_in.user_agent == "ua"


def test_it_never_queries_for_the_role(clinician, django_assert_num_queries):
    request = RequestFactory().get("/x/")
    request.user = User.objects.get(pk=clinician.user.pk)

    with django_assert_num_queries(0):
        context = audit_context(request)

    assert (context.actor_id, context.actor_role) == (clinician.user.pk, None)


def test_it_cannot_be_changed_once_built():
    context = AuditContext(request_id="r")

    with pytest.raises(dataclasses.FrozenInstanceError):
        context.ip = "203.0.113.9"  # type: ignore[misc]


# --------------------------------------------------------------- services and HTTP


def _service_modules() -> list[str]:
    """Every module that holds services (writes and workflows) or selectors (reads)."""
    patterns = [
        "*/services.py",
        "*/services/*.py",
        "*/selectors.py",
        "*/selectors/*.py",
        "patients/consent.py",
        "patients/two_factor.py",
        "rights/erasure.py",
        "rights/outcomes.py",
        "rehab/progress.py",
        "rehab/scoring.py",
        "rehab/safety/*.py",
    ]
    found = {
        ".".join(path.relative_to(BASE_DIR).with_suffix("").parts).removesuffix(".__init__")
        for pattern in patterns
        for path in BASE_DIR.glob(pattern)
        if ".venv" not in path.parts and "tests" not in path.parts
    }
    return sorted(found)


def _functions(module: object) -> list[tuple[str, object]]:
    name = getattr(module, "__name__", "")
    found: list[tuple[str, object]] = []
    for attr, value in vars(module).items():
        if inspect.isfunction(value) and value.__module__ == name:
            found.append((attr, value))
        elif inspect.isclass(value) and value.__module__ == name:
            found += [
                (f"{attr}.{method}", func)
                for method, func in vars(value).items()
                if inspect.isfunction(func)
            ]
    return found


def test_it_finds_the_service_modules():
    # The check below must not pass by looking at nothing.
    modules = _service_modules()
    assert {"patients.services", "rehab.services.logs", "rights.erasure"} <= set(modules)


def _takes_the_request(module: object) -> list[str]:
    offenders = []
    for qualname, func in _functions(module):
        hints = getattr(func, "__annotations__", {})
        for parameter in inspect.signature(func).parameters.values():  # type: ignore[arg-type]
            annotation = str(hints.get(parameter.name, ""))
            if parameter.name == "request" or re.search(r"\b(Http)?Request\b", annotation):
                offenders.append(f"{qualname}({parameter.name})")
    return offenders


def test_no_service_or_selector_takes_the_http_request():
    offenders = [
        f"{name}.{offender}"
        for name in _service_modules()
        for offender in _takes_the_request(importlib.import_module(name))
    ]
    assert offenders == [], "services take an AuditContext (config/audit.py), not the request"


def test_the_check_sees_a_service_that_takes_the_request():
    module = types.ModuleType("planted")

    def by_name(*, patient: object, request: object = None) -> None: ...

    def by_type(*, patient: object, http: HttpRequest | None = None) -> None: ...

    def fine(*, patient: object, context: AuditContext | None = None) -> None: ...

    for func in (by_name, by_type, fine):
        func.__module__ = "planted"
        setattr(module, func.__name__, func)

    assert _takes_the_request(module) == ["by_name(request)", "by_type(http)"]


def test_no_service_module_imports_django_http():
    offenders = [
        name
        for name in _service_modules()
        if re.search(
            r"^\s*from django\.http import .*HttpRequest|^\s*from rest_framework\.request ",
            Path(importlib.import_module(name).__file__ or "").read_text(),
            re.MULTILINE,
        )
    ]
    assert offenders == []
