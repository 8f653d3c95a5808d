"""The fixed cast (docs/architecture.md § Code conventions), and API clients signed in as each."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from config import enqueue
from patients.models import AuthToken, Clinic, Clinician, Patient, User
from tests.factories import ClinicFactory, ClinicianFactory, PatientFactory, UserFactory
from tests.parallel import (  # noqa: F401 - the parallel run's hooks (docs/testing.md)
    pytest_collection_modifyitems,
    pytest_runtest_protocol,
    pytest_sessionfinish,
)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    # Throttle counters live in the (real Redis) cache; each test starts from zero.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _broker_not_paused() -> None:
    # A test that simulates a broker outage pauses publishing in this process.
    from rehab.services import safety

    enqueue._publish_paused_until = 0.0
    # Nor does a quiet-logs flag one test saw held excuse the next test's logs.
    safety._quiet_flag_trusted_until = 0.0


# Playwright's `expect` gives up after 5 s, a wall-clock bound: under a loaded parallel
# run Chromium takes longer than that to render a page (docs/testing.md § Deadlines). A
# browser test's assertions wait up to this long instead, and fail only if the page never
# gets there. (Its actions and navigations already wait 30 s.)
BROWSER_DEADLINE_MS = 30_000


@pytest.fixture(autouse=True)
def _browser_deadlines(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("browser") is None:
        return
    from playwright.sync_api import expect

    expect.set_options(timeout=BROWSER_DEADLINE_MS)


@pytest.fixture(autouse=True)
def _as_app_role(request: pytest.FixtureRequest) -> Iterator[None]:
    """What a test does in the database, it does as the application role (docs/security.md
    § Database roles and audit trail), with the running service's privileges: the owner
    only creates, migrates and flushes the test database. Every connection a test opens,
    in any thread, takes the role; `@pytest.mark.db_owner` keeps the owner (a test of a
    migration's own SQL). Without a role split (an external DATABASE_URL alone) it does
    nothing."""
    from django.conf import settings

    app = getattr(settings, "DATABASE_APP", None)
    uses_db = request.node.get_closest_marker("django_db") is not None or any(
        name in request.fixturenames for name in ("db", "transactional_db", "live_server")
    )
    if app is None or not uses_db or request.node.get_closest_marker("db_owner"):
        yield
        return
    from django.db import connection
    from django.db.backends.signals import connection_created

    request.getfixturevalue("db")
    set_role = f"SET ROLE {connection.ops.quote_name(app['USER'])}"

    def on_connect(*, connection: Any, **_: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute(set_role)

    connection_created.connect(on_connect, weak=False)
    if connection.connection is not None:
        with connection.cursor() as cursor:
            cursor.execute(set_role)
    try:
        yield
    finally:
        connection_created.disconnect(on_connect)
        # The flush after a transactional test is the owner's (TRUNCATE).
        if connection.connection is not None and connection.is_usable():
            with connection.cursor() as cursor:
                cursor.execute("RESET ROLE")


@pytest.fixture
def frozen(time_machine: Any) -> Any:
    """The clock stopped (tests/otp.py): a TOTP code is good for one 30-second step."""
    from tests.otp import START

    time_machine.move_to(START, tick=False)
    return time_machine


@pytest.fixture
def run_published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Stands in for the broker and a worker for tasks published by name
    (`config.enqueue.task_publish("notifications.tasks...", id)`): each is recorded as
    (name, args) and run in-process, as a worker would run it (its failures stay in the
    worker)."""
    import notifications.tasks  # noqa: F401 - registers the tasks by name
    from config.celery import app

    sent: list[tuple[str, tuple[Any, ...]]] = []

    def send_task(name: str, args: Any = (), kwargs: Any = None, **options: Any) -> None:
        sent.append((name, tuple(args)))
        app.tasks[name].apply(args=args, kwargs=kwargs)

    monkeypatch.setattr(app, "send_task", send_task)
    return sent


@pytest.fixture
def enqueued(
    run_published: list[tuple[str, tuple[Any, ...]]], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[Any, ...]]:
    """Stands in for the broker and a worker for invitation emails: the arguments of each
    invitation task published are recorded, and the task run in-process."""
    from config.celery import app

    run = app.send_task  # run_published's stand-in
    sent: list[tuple[Any, ...]] = []

    def send_task(name: str, args: Any = (), kwargs: Any = None, **options: Any) -> None:
        if name == "notifications.tasks.invitation_send_task":
            sent.append(tuple(args))
        run(name, args, kwargs, **options)

    monkeypatch.setattr(app, "send_task", send_task)
    return sent


@pytest.fixture
def clinic() -> Clinic:
    return ClinicFactory.create(
        name="Riverside Physio", escalation_email="oncall@riverside.example"
    )


@pytest.fixture
def other_clinic() -> Clinic:
    return ClinicFactory.create(name="Hilltop Spine Clinic")


@pytest.fixture
def clinician(clinic: Clinic) -> Clinician:
    return ClinicianFactory.create(
        clinic=clinic,
        user=UserFactory.create(
            email="alice@riverside.example", first_name="Alice", last_name="Physio"
        ),
    )


@pytest.fixture
def patient(clinic: Clinic, clinician: Clinician) -> Patient:
    return PatientFactory.create(
        clinic=clinic,
        user=UserFactory.create(email="pat@example.com", first_name="Pat", last_name="Doe"),
        care_team=[clinician],
    )


@pytest.fixture
def other_patient(other_clinic: Clinic) -> Patient:
    return PatientFactory.create(
        clinic=other_clinic,
        user=UserFactory.create(email="olly@example.com", first_name="Olly", last_name="Other"),
    )


@pytest.fixture
def other_clinic_clinician(other_clinic: Clinic, other_patient: Patient) -> Clinician:
    clinician = ClinicianFactory.create(
        clinic=other_clinic,
        user=UserFactory.create(
            email="bob@hilltop.example", first_name="Bob", last_name="Elsewhere"
        ),
    )
    other_patient.care_team.add(clinician)
    return clinician


def _client_for(user: User) -> APIClient:
    _, token = AuthToken.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def api_client_for() -> Callable[[User], APIClient]:
    return _client_for


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def patient_client(patient: Patient) -> APIClient:
    assert patient.user is not None
    return _client_for(patient.user)


@pytest.fixture
def other_patient_client(other_patient: Patient) -> APIClient:
    assert other_patient.user is not None
    return _client_for(other_patient.user)


@pytest.fixture
def clinician_client(clinician: Clinician) -> APIClient:
    return _client_for(clinician.user)


@pytest.fixture
def other_clinic_clinician_client(other_clinic_clinician: Clinician) -> APIClient:
    return _client_for(other_clinic_clinician.user)


@pytest.fixture
def redis_broker(tmp_path: Any) -> Iterator[Any]:
    """A redis-server of the test's own (`tests.rehab.worker_support.RedisServer`), for a
    subprocess run that needs a broker nobody else uses (bench.run, the rehearsal);
    stopped after the test."""
    from tests.rehab.worker_support import RedisServer

    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
