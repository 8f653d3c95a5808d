from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from rehab.views import logs as log_views  # noqa: F401
from rehab.views import record as record_views  # noqa: F401

urlpatterns: list[URLPattern | URLResolver] = [
    # --- daily logs, progress, caseload (rehab/views/logs.py) ---
    # --- end daily logs ---
    # --- clinical record (rehab/views/record.py) ---
    # --- end clinical record ---
]
