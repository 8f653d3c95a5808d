"""Test settings: production settings with a few overrides for speed and determinism."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
# `make test` points REDIS_URL at the embedded server; mypy's Django plugin loads these
# settings too and needs no server, only a value.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
# The test client connects directly: no proxy appends to X-Forwarded-For.
os.environ.setdefault("DJANGO_TRUSTED_PROXY_COUNT", "0")
# Production refuses to start without it; the backend is replaced below anyway.
os.environ.setdefault("EMAIL_URL", "memorymail://")

# Under pytest-xdist (`make test`), each worker process gets a Redis database of its own,
# also for the processes its tests start (tests/parallel.py, docs/testing.md).
from tests.parallel import redis_url

os.environ["REDIS_URL"] = redis_url(os.environ["REDIS_URL"])

from config.settings import *  # noqa: F403

# Hashing passwords slowly is the point in production and a waste in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
# Tests run no collectstatic, so there is no manifest of hashed names to look them up in.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Exercise media written by tests that do not choose their own directory (the demo seed)
# stays out of `make run`'s .data/media.
STORAGES["media"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(BASE_DIR / ".data" / "test-media")},  # noqa: F405
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES["default"]["KEY_PREFIX"] = f"test-{os.getpid()}"  # noqa: F405
# Production requires two-factor sign-in; the tests of other features sign in with a
# password (or force_login), and the two-factor tests turn these on where they test them.
MFA_REQUIRED_DEFAULT = False
MFA_REQUIRED_ADMIN = False

# pytest-django creates, migrates and flushes the test database: the owner's work. The
# application role's credentials are kept: tests run as that role where it matters
# (SET ROLE, tests/conftest.py), and worker subprocesses connect as it.
DATABASE_APP: dict[str, str] | None = None
if DATABASE_OWNER:  # noqa: F405
    DATABASE_APP = {
        "USER": DATABASES["default"]["USER"],  # noqa: F405
        "PASSWORD": DATABASES["default"].get("PASSWORD") or "",  # noqa: F405
    }
    DATABASES["default"].update(DATABASE_OWNER)  # noqa: F405

# The ordinary suite reads everything from the primary; the replica tests
# (tests/test_replica.py) configure a replica alias pointing at a real streaming replica
# and turn the routing on. The alias exists (a mirror of the test database) so that they
# can.
DATABASE_REPLICA_ENABLED = False
DATABASES.setdefault(  # noqa: F405
    "replica",
    {**DATABASES["default"], "TEST": {"MIRROR": "default"}},  # noqa: F405
)
