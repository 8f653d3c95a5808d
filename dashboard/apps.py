from __future__ import annotations

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The clinician web pages at /dashboard/: views, forms, charts, templates, static files.

    It sits on top of the domain apps (docs/architecture.md § Layers): it reads and writes
    through their selectors and services and owns no model.
    """

    name = "dashboard"
    verbose_name = "Clinician dashboard"

    def ready(self) -> None:
        from config.exceptions import register_not_found_page
        from dashboard.views import not_found_page

        register_not_found_page("/dashboard/", not_found_page)

        from config.middleware import register_upload_limit
        from programs.media.files import upload_body_limit

        register_upload_limit("dashboard:exercise-media", upload_body_limit)
