from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config.health import health

api_v1 = [
    path("", include("patients.urls")),
    path("", include("programs.urls")),
    path("", include("rehab.urls")),
    path("", include("rights.urls")),
]

urlpatterns = [
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    path("dashboard/erasure-requests/", include("rights.urls_dashboard")),
    path("dashboard/", include("rehab.urls_dashboard")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/v1/", include(api_v1)),
]

# JSON, not Django's HTML pages, for unknown URLs and unexpected errors under /api/.
handler404 = "config.exceptions.page_not_found"
handler500 = "config.exceptions.server_error"
