from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Celery's Django fixup closes the DB connection after every task unless this is set;
# reusing connections is ~4x the task throughput (NOTES.md), which the safety path needs.
os.environ.setdefault("CELERY_DB_REUSE_MAX", "1000")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
