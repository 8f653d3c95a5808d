from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

logger = logging.getLogger(__name__)


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        logger.warning("health: database down: %s", exc)
        return {"ok": False, "error": exc.__class__.__name__}


def _broker() -> dict[str, Any]:
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            connect_timeout=1,
            transport_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        ) as conn:
            # One immediate retry: kombu's default 2 s back-off would make a probe of a
            # down broker take longer than most load balancers wait for an answer.
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        logger.warning("health: broker down: %s", exc)
        return {"ok": False, "error": exc.__class__.__name__}


def _safety() -> dict[str, Any]:
    """The safety queue: logs owed an evaluation (procedures owed RF-INF-02's fever
    re-check) for over 2 minutes, or given up on, and alerts whose email (notification or
    escalation) failed or had nobody to go to.

    Any of these means a red flag may not have reached a clinician: operators must look. It
    does not fail the probe (503 would take healthy web nodes out of service; the
    patient's advice does not depend on the queue).
    """
    from rehab.services.safety import safety_status

    try:
        status = safety_status()
    except Exception as exc:  # noqa: BLE001 - the database check reports the cause
        return {"ok": False, "error": exc.__class__.__name__}
    ok = not status["overdue_logs"] and not status["failed_logs"]
    ok = ok and not status["overdue_fever_rechecks"] and not status["failed_fever_rechecks"]
    return {"ok": ok and not status["undelivered_alerts"], **status}


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Database and broker status for load balancers and operators; 503 when one is down.

    `safety` reports the evaluation queue; when it is not ok the status is "degraded"
    with a 200, so probes keep the node in service while operators are alerted.
    """
    checks = {"database": _database(), "broker": _broker()}
    ok = all(check["ok"] for check in checks.values())
    safety = _safety() if checks["database"]["ok"] else {"ok": False}
    status = ("ok" if safety["ok"] else "degraded") if ok else "down"
    return JsonResponse({"status": status, **checks, "safety": safety}, status=200 if ok else 503)


class HealthProbeMiddleware:
    """Answers `/health/` itself, ahead of every other middleware.

    Probes (compose's, a load balancer's, Kubernetes') connect by address and send that
    address, or nothing useful, as Host. Django refuses a Host outside ALLOWED_HOSTS with a
    400 as soon as a middleware reads it, which would mark a healthy node down, and in
    compose would keep worker and beat (which wait for web to be healthy) from ever
    starting. The probe reads no host and writes nothing, so it needs no host check.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info == "/health/":
            return health(request)
        return self.get_response(request)
