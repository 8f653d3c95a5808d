"""The notifications' line in /health/, registered with config.health by
NotificationsConfig.ready."""

from __future__ import annotations

from typing import Any

from notifications.services import deliveries_failing


def notifications_check() -> dict[str, Any]:
    """Deliveries being retried, failed or given up (in the last day), refused
    credentials, and safety emails owed for longer than a sweep takes: each means someone
    may not have heard what they should. Not ok is "degraded", never a failed probe."""
    try:
        status = deliveries_failing()
    except Exception as exc:  # noqa: BLE001 - the database check reports the cause
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": not any(status.values()), **status}
