from __future__ import annotations

from django.apps import AppConfig


class RehabConfig(AppConfig):
    name = "rehab"
    verbose_name = "Rehab: logs, clinical record, safety"

    def ready(self) -> None:
        from config.health import register_queue_check
        from rehab.health import safety_check

        register_queue_check("safety", safety_check)
