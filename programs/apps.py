from __future__ import annotations

from django.apps import AppConfig


class ProgramsConfig(AppConfig):
    name = "programs"
    verbose_name = "Rehab programs"

    def ready(self) -> None:
        from config.middleware import register_upload_limit
        from programs.media.files import upload_body_limit

        # The admin's exercise media form takes a video and its poster.
        register_upload_limit("admin:programs_exercisemedia_add", upload_body_limit)
        register_upload_limit("admin:programs_exercisemedia_change", upload_body_limit)
