from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Every outgoing message and its delivery record; channels as adapters
    (docs/architecture.md, "Notifications")."""

    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"
