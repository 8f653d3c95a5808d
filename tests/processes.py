"""Environments for the production settings in a child process (`manage.py` run for real)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def production_env(*, database_url: str) -> dict[str, str]:
    """The production settings, spelled out: nothing else leaks in from this process."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(BASE_DIR)),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "DJANGO_TRUSTED_PROXY_COUNT": "0",
        # Required in production; nothing here sends mail.
        "EMAIL_URL": "smtp://127.0.0.1:25",
    }
