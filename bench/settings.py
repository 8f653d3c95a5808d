"""Settings for `make bench` only: the product's settings plus the plain baselines.

The baselines (bench/baseline.py) need DRF's own token table and their URLs; neither
belongs in the product, so they live behind this module and bench/urls.py.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS, STORAGES

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken"]
ROOT_URLCONF = "bench.urls"

# The bench's clinicians sign in with a password: its probes measure the pages, not the
# sign-in. The two-factor gate still runs on every page (one query), so it is measured.
MFA_REQUIRED_DEFAULT = False

# `make bench` serves the dashboard with no collectstatic step, so there is no manifest of
# hashed names: plain names, as in the tests (a dictionary look-up either way).
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
