"""Data-rights pages of the clinician dashboard, under /dashboard/erasure-requests/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from rights import views_dashboard as views

app_name = "rights-dashboard"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.erasure_requests_view, name="erasure-requests"),
    path(
        "<uuid:request_id>/decide/",
        views.erasure_request_decide_view,
        name="erasure-request-decide",
    ),
]
