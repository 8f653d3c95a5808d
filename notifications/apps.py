from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Every outgoing message and its delivery record; channels as adapters
    (docs/architecture.md, "Notifications")."""

    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config.health import register_queue_check
        from notifications.health import notifications_check

        register_queue_check("notifications", notifications_check)
