from __future__ import annotations

from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Patients and clinics"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from config.middleware import record_sign_in

        # When a web session began, for its inactivity timeout and its whole-life cap.
        user_logged_in.connect(record_sign_in, dispatch_uid="config.middleware.record_sign_in")
