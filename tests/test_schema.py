"""The OpenAPI document, the offline docs page, and a schemathesis run against the schema."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import yaml
from django.contrib.staticfiles import finders
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from django.urls import path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from drf_spectacular.validation import validate_schema
from drf_spectacular.views import SpectacularAPIView
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from patients.models import AuthToken, Clinician, Patient, User

pytestmark = pytest.mark.django_db


def _schema(client: Any) -> dict[str, Any]:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    document: dict[str, Any] = yaml.safe_load(response.content)
    return document


def test_it_serves_a_valid_openapi_3_document(client):
    document = _schema(client)
    assert document["openapi"].startswith("3.")
    validate_schema(document)  # raises on any violation of the OpenAPI 3 JSON schema


def test_it_serves_the_schema_as_json_too(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    validate_schema(response.json())


def test_it_serves_the_schema_without_authentication(anon_client):
    # The docs page and client generators fetch it before anyone signs in.
    assert anon_client.get("/api/schema/").status_code == 200


def test_it_documents_the_contract_paths(client):
    paths = _schema(client)["paths"]
    for expected in (
        "/api/v1/auth/login/",
        "/api/v1/auth/logout/",
        "/api/v1/auth/register/",
        "/api/v1/clinician/invitations/",
        "/api/v1/clinician/patients/{patient_id}/",
    ):
        assert expected in paths
    assert set(paths["/api/v1/clinician/patients/{patient_id}/"]) >= {"get", "patch"}


RECORD = "/api/v1/clinician/patients/{patient_id}/"


def test_it_documents_the_clinical_record_paths(client):
    paths = _schema(client)["paths"]
    expected = {
        "assessed-marks/": {"get", "post"},
        "assessed-marks/{mark_id}/": {"delete"},
        "interventions/": {"get", "post"},
        "provocative-tests/": {"get", "post"},
        "imaging-findings/": {"get", "post"},
        "diagnoses/": {"get", "post"},
        "diagnoses/{diagnosis_id}/end/": {"post"},
        "questionnaires/scores/": {"get"},
        "questionnaires/schedule/": {"get"},
        "timeline/": {"get"},
    }
    for tail, methods in expected.items():
        assert RECORD + tail in paths, tail
        assert set(paths[RECORD + tail]) >= methods, tail
    # Both can lose a race with another clinician, and say so.
    assert "409" in paths[RECORD + "assessed-marks/"]["post"]["responses"]
    assert "409" in paths[RECORD + "interventions/"]["post"]["responses"]
    assert "204" in paths[RECORD + "assessed-marks/{mark_id}/"]["delete"]["responses"]


def test_it_documents_bearer_authentication(client):
    document = _schema(client)
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    invite = document["paths"]["/api/v1/clinician/invitations/"]["post"]
    assert {"bearerAuth": []} in invite["security"]
    login = document["paths"]["/api/v1/auth/login/"]["post"]
    assert login.get("security", [{}]) in ([{}], [])


def test_it_documents_each_request_body_under_its_own_name(client):
    # Nested `InputSerializer`s of different views must not collapse into one component.
    document = _schema(client)

    def request_ref(path: str, method: str) -> str:
        body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
        ref: str = body["schema"]["$ref"]
        return ref

    refs = [
        request_ref("/api/v1/auth/login/", "post"),
        request_ref("/api/v1/auth/register/", "post"),
        request_ref("/api/v1/clinician/invitations/", "post"),
        request_ref("/api/v1/clinician/patients/{patient_id}/", "patch"),
    ]
    assert len(set(refs)) == len(refs)
    register = document["components"]["schemas"][refs[1].rsplit("/", 1)[-1]]
    assert set(register["properties"]) == {"code", "email", "password", "consents"}
    # The contract's three fields stay the required ones; consents are only needed where
    # the clinic publishes required documents (docs/app-developers.md).
    assert set(register["required"]) == {"code", "email", "password"}


def test_it_generates_the_schema_without_warnings():
    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    GENERATOR_STATS.reset()
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- docs page


def test_it_serves_docs_that_load_nothing_from_the_internet(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower()

    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert assets, "the docs page references no assets"
    remote = [url for url in assets if re.match(r"^(https?:)?//", url)]
    assert not remote, f"remote assets: {remote}"
    # Nor a remote URL anywhere else in the page (inline scripts, CSS imports).
    assert not re.search(r"https?://(?!localhost|127\.0\.0\.1|testserver)", html)


def test_it_ships_the_docs_assets_as_local_static_files(client):
    html = client.get("/api/docs/").content.decode()
    static = [
        url.removeprefix("/static/")
        for url in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        if url.startswith("/static/")
    ]
    assert any(name.endswith("swagger-ui-bundle.js") for name in static)
    for name in static:
        assert finders.find(name), f"{name} is not a static file of the project"


def test_it_serves_redoc_with_local_scripts(client):
    # drf-spectacular's Redoc page still links Google Fonts (the text falls back to local
    # fonts offline); the script that renders the page must be local.
    response = client.get("/api/redoc/")
    assert response.status_code == 200
    scripts = re.findall(r"""<script[^>]*\ssrc\s*=\s*["']([^"']+)["']""", response.content.decode())
    assert scripts
    assert all(url.startswith("/static/") for url in scripts), scripts


# --------------------------------------------------------------------------- schemathesis

# Small and deterministic: the run must stay well under a minute as the API grows.
EXAMPLES_PER_MODE = 8


def _token_for(user: User) -> str:
    _, token = AuthToken.objects.create(user=user)
    return str(token)


@contextlib.contextmanager
def _connections_kept_open() -> Iterator[None]:
    # Django closes "obsolete" connections around each request, and inside the test's
    # transaction every connection looks obsolete; its own test client disconnects the
    # same signal handlers for the same reason.
    signals = (request_started, request_finished)
    for signal in signals:
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in signals:
            signal.connect(close_old_connections)


def _fuzz(strategy: Any, caller: User, *, valid_timezones: bool) -> None:
    @settings(
        max_examples=EXAMPLES_PER_MODE,
        derandomize=True,
        database=None,
        deadline=None,
        # No shrinking: a failure is reported as found, which keeps a failing run short.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case: Any) -> None:
        # A fresh token per call: a logout case would otherwise revoke it for the rest.
        headers = {"Authorization": f"Bearer {_token_for(caller)}"}
        if valid_timezones and isinstance(case.body, dict) and "timezone" in case.body:
            # The schema says "string"; a random one is (rightly) a 400 every time, which
            # would keep schema-valid requests from ever reaching the service.
            case.body["timezone"] = "Europe/London"
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error], headers=headers)

    call()


def _closed_request_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """The schema with `additionalProperties: false` on every request body component.

    Every input serializer rejects unknown fields (docs/app-developers.md: they are a 400), but the
    generated schema does not say so; without this, most "schema-valid" bodies carry
    invented keys and stop at validation instead of reaching the services.
    """
    for name, component in document["components"]["schemas"].items():
        if name.endswith("Request") and component.get("type") == "object":
            component.setdefault("additionalProperties", False)
    return document


def _run_schemathesis(
    document: dict[str, Any], clinician: Clinician, patient: Patient
) -> tuple[int, list[str]]:
    """Fuzz every operation; the number of operations and a description of each failure."""
    schema = schemathesis.openapi.from_dict(document)
    # What `from_wsgi` does after loading: calls go to the app, in-process.
    schema.app = WSGIHandler()
    schema.location = "/api/schema/"
    assert patient.user is not None
    patient_user: User = patient.user

    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"invalid operation in the schema: {result.err()}")
            continue
        operation = result.ok()
        operations += 1
        caller = (
            clinician.user
            if operation.path.startswith(("/api/v1/clinician/", "/api/v1/auth/"))
            else patient_user
        )
        names = {parameter.name for parameter in operation.path_parameters}
        fixed = {"patient_id": str(patient.pk)} if "patient_id" in names else None

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)
            try:
                _fuzz(strategy, caller, valid_timezones=mode is GenerationMode.POSITIVE)
            except Unsatisfiable:
                # Nothing in this operation can be made invalid (no body, no parameters).
                continue
            # schemathesis reports check failures as a BaseExceptionGroup.
            except (Exception, FailureGroup) as exc:  # noqa: BLE001 - collect them all
                failures.append(f"{operation.label} ({mode.value}): {exc}")

    return operations, failures


def test_it_finds_no_server_error_in_any_operation(
    client: Any, clinician: Clinician, patient: Patient
):
    """Every operation, with schema-valid and schema-invalid input, answers below 500.

    Clinician and auth operations are called as the clinician, the rest (the patient's own
    endpoints) as the patient, so that requests get past the permission check. Path ids
    of patients are the cast's patient, so that handlers run on a real record.
    """
    # Fetched with Django's test client before the signal handlers are disconnected: it
    # reconnects them after each of its own requests.
    document = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    with _connections_kept_open():
        operations, failures = _run_schemathesis(
            _closed_request_bodies(document), clinician, patient
        )
    assert operations >= 6
    assert not failures, "\n\n".join(failures)


class BrokenApi(APIView):
    """Fails on every valid body: the schemathesis run must report it."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    class InputSerializer(serializers.Serializer[Any]):
        note = serializers.CharField(allow_blank=True)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        raise RuntimeError("a bug")


urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view()),
    path("api/v1/broken/", BrokenApi.as_view()),
]


@override_settings(ROOT_URLCONF=__name__)
def test_it_would_report_a_server_error(client: Any, clinician: Clinician, patient: Patient):
    document = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    with _connections_kept_open():
        operations, failures = _run_schemathesis(
            _closed_request_bodies(document), clinician, patient
        )
    assert operations == 1
    assert failures
    assert failures[0].startswith("POST /api/v1/broken/ (positive)")
    assert "Server error" in failures[0]
