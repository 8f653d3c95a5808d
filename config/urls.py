from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from config.exceptions import api_not_found
from config.health import health

api_v1 = [
    path("", include("patients.urls")),
    path("", include("programs.urls")),
    path("", include("rehab.urls")),
    path("", include("rights.urls")),
    path("", include("notifications.urls")),
]

urlpatterns = [
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    path("dashboard/erasure-requests/", include("rights.urls_dashboard")),
    path("dashboard/", include("dashboard.urls")),
    path("unsubscribe/", include("notifications.urls_pages")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from a URL of its own, so the
    # Content-Security-Policy needs no inline script for it (docs/security.md).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/v1/", include(api_v1)),
    # Last: any other /api/ URL ending in a slash is the JSON 404, under DEBUG too (where
    # Django would otherwise answer its HTML debug page, not handler404). A URL without the
    # slash still goes through APPEND_SLASH's redirect first, as everywhere else.
    re_path(r"^api/(?:.*/)?$", api_not_found),
]

# JSON, not Django's HTML pages, for unknown URLs and unexpected errors under /api/.
handler404 = "config.exceptions.page_not_found"
handler500 = "config.exceptions.server_error"
