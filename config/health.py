from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
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


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Database and broker status for load balancers and operators; 503 when one is down."""
    checks = {"database": _database(), "broker": _broker()}
    ok = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if ok else "down", **checks}, status=200 if ok else 503)
