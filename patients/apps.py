from __future__ import annotations

from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Patients and clinics"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.core.signals import request_started

        from config.db import close_dropped_connections
        from config.middleware import record_sign_in

        # When a web session began, for its inactivity timeout and its whole-life cap.
        user_logged_in.connect(record_sign_in, dispatch_uid="config.middleware.record_sign_in")
        # Before each request, after Django's own close_old_connections: a kept database
        # connection the server has dropped is closed, without a round trip (config/db.py).
        request_started.connect(
            close_dropped_connections, dispatch_uid="config.db.close_dropped_connections"
        )
