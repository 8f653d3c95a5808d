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


QueueCheck = Callable[[], dict[str, Any]]

# Checks of background work that an app registers from its AppConfig.ready() (rehab: the
# safety queue), so that config imports no app (docs/architecture.md § Layers). Each returns
# a dict with "ok"; one that is not ok makes the status "degraded", never "down".
_queue_checks: dict[str, QueueCheck] = {}


def register_queue_check(name: str, check: QueueCheck) -> None:
    """Report `check()` under `name` in /health/ (run only when the database answers)."""
    _queue_checks[name] = check


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Database and broker status for load balancers and operators; 503 when one is down.

    The registered queue checks (`safety`: the evaluation queue) follow; when one is not
    ok the status is "degraded" with a 200, so probes keep the node in service while
    operators are alerted.
    """
    checks = {"database": _database(), "broker": _broker()}
    ok = all(check["ok"] for check in checks.values())
    queues = {
        name: check() if checks["database"]["ok"] else {"ok": False}
        for name, check in _queue_checks.items()
    }
    healthy_queues = all(queue["ok"] for queue in queues.values())
    status = ("ok" if healthy_queues else "degraded") if ok else "down"
    return JsonResponse({"status": status, **checks, **queues}, status=200 if ok else 503)


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
