"""The safety queue's line in /health/, registered with config.health by RehabConfig.ready."""

from __future__ import annotations

from typing import Any

from rehab.services.sweeps import safety_status


def safety_check() -> dict[str, Any]:
    """The safety queue: logs, superseded versions and refused bodies owed an evaluation
    (procedures owed RF-INF-02's fever re-check) for over 2 minutes, or given up on, and
    alerts whose email (notification or escalation) failed or had nobody to go to.

    Any of these means a red flag may not have reached a clinician: operators must look. It
    does not fail the probe (503 would take healthy web nodes out of service; the
    patient's advice does not depend on the queue).
    """
    try:
        status = safety_status()
    except Exception as exc:  # noqa: BLE001 - the database check reports the cause
        return {"ok": False, "error": exc.__class__.__name__}
    ok = not status["overdue_logs"] and not status["failed_logs"]
    ok = ok and not status["overdue_fever_rechecks"] and not status["failed_fever_rechecks"]
    # Superseded versions and refused (409) bodies owed their red-flag evaluation.
    ok = ok and not status["overdue_submissions"] and not status["failed_submissions"]
    return {"ok": ok and not status["undelivered_alerts"], **status}
