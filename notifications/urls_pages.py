"""Pages outside the API: the unsubscribe link of reminder emails."""

from __future__ import annotations

from django.urls import URLPattern, path

from notifications import views_reminders

urlpatterns: list[URLPattern] = [
    path("<str:token>/", views_reminders.unsubscribe_page, name="reminders-unsubscribe"),
]
