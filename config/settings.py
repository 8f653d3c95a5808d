"""All settings, read from the environment (README.md § Configuration names them)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ
import pygaljs
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

# Django-free, so that settings can check rates before apps load.
from config.rates import parse_rate

# `admin.ModelAdmin[Model]` and the like subscript at run time as they do for mypy.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG: bool = env.bool("DJANGO_DEBUG", default=False)

_DEV_SECRET_KEY = "dev-only-insecure-key-9f2c7e1a4b6d8f0e3c5a7b9d1f3e5c7a9b1d3f5e7c9a1b3d"
SECRET_KEY: str = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false "
        "(set DJANGO_DEBUG=true for local development)."
    )

ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

if "DATABASE_URL" not in env.ENVIRON:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. `make run` and `make test` start an embedded PostgreSQL "
        "for you; a production start must point DATABASE_URL at its database."
    )

INSTALLED_APPS = [
    # Django's admin on our site class (patients/admin_site.py): two-factor for operators.
    "patients.admin_apps.OperatorAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    # Two-factor sign-in (docs/security.md): TOTP apps, and single-use recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "patients",
    "programs",
    "rehab",
    "dashboard",
    "rights",
    "notifications",
]

MIDDLEWARE = [
    # First: every response, a probe's included, carries its request's X-Request-ID, and
    # every view finds the request's audit context (config/audit.py).
    "config.middleware.RequestContextMiddleware",
    # First: /health/ answers probes before any host check (config/health.py).
    "config.health.HealthProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Oversized bodies and NULs in query strings answered before anything reads them.
    "config.middleware.InputGuardMiddleware",
    # Static files from the app process itself: `gunicorn config.wsgi` is the whole web
    # tier (README.md § Processes in production), with no separate file server in front.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # /api/ answers in the caller's language: Accept-Language here, a patient's profile
    # language once the token is authenticated (patients/authentication.py).
    "config.middleware.ApiLanguageMiddleware",
    # PAGE_MIDDLEWARE below, here, for every request but an API request without a session
    # cookie (the app's, with its token), which they have nothing to do for.
    "config.middleware.PageMiddleware",
    # Denied requests for patient data (403/404 from a view) are audited.
    "patients.middleware.DeniedRequestAuditMiddleware",
    # Django's messages and django-csp's policy, for pages; the JSON API (/api/v1/) gets
    # no message storage and a constant `default-src 'none'` policy (config/middleware.py).
    "config.middleware.PageMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy (CONTENT_SECURITY_POLICY below), and Cache-Control: no-store
    # with Permissions-Policy on every response (docs/security.md).
    "config.middleware.PageCSPMiddleware",
    "config.middleware.BrowserHardeningMiddleware",
]

# A browser session's middleware, run by config.middleware.PageMiddleware in its place
# above (in this order, with their process_view hooks).
PAGE_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed its second factor.
    "django_otp.middleware.OTPMiddleware",
    # Signs a dashboard or admin session out after SESSION_INACTIVITY_TIMEOUT.
    "config.middleware.SessionInactivityMiddleware",
]
# The admin's checks look for its session and authentication middleware in MIDDLEWARE
# itself; they are in PAGE_MIDDLEWARE, which runs for every admin request
# (tests/test_api_middleware.py holds them there).
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E410"]

# The largest request body read (Django's default, stated): larger ones answer 413
# (config.middleware.InputGuardMiddleware). A day's log is a few KB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db_url("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# The role that owns the tables, for `manage.py migrate` only (docs/security.md § Database
# roles and audit trail): the running service connects as DATABASE_URL's role, which may
# not alter, truncate or own anything, nor rewrite the audit trail. Only the user and the
# password of this URL are used, so it must name the same server and database.
DATABASE_OWNER: dict[str, str] | None = None
if env.str("DATABASE_MIGRATE_URL", default=""):
    _owner = env.db_url("DATABASE_MIGRATE_URL")
    _differs = [
        key
        for key in ("NAME", "HOST", "PORT", "OPTIONS")
        if (_owner.get(key) or None) != (DATABASES["default"].get(key) or None)
    ]
    if _differs:
        raise ImproperlyConfigured(
            "DATABASE_MIGRATE_URL must name the same database as DATABASE_URL, with the "
            f"owner role's user and password (it differs in {', '.join(_differs)})."
        )
    if _owner["USER"] == DATABASES["default"]["USER"]:
        raise ImproperlyConfigured(
            "DATABASE_MIGRATE_URL names the same role as DATABASE_URL: the application must "
            "run as a role that does not own the tables."
        )
    DATABASE_OWNER = {"USER": _owner["USER"], "PASSWORD": _owner.get("PASSWORD") or ""}
# What `migrate` grants its privileges to (patients/dbroles.py), when the roles are split.
DATABASE_APP_ROLE: str | None = DATABASES["default"]["USER"] if DATABASE_OWNER else None
# Not Django's per-request `SELECT 1` (a round trip before every request's first query):
# before each request and each task, config.db.close_dropped_connections closes a kept
# connection the server has dropped by asking its socket, without a round trip.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DATABASES["default"]["ATOMIC_REQUESTS"] = False

# --- Read replica and connection pooling (docs/deployment.md § Read replica, § Pooling) ---
# Optional: when DATABASE_REPLICA_URL is set, dashboards, progress, exports and reports
# read from it (config/replica.py); writes and the safety path stay on the primary.
DATABASE_ROUTERS = ["config.replica.ReplicaRouter"]
DATABASE_REPLICA_ENABLED = bool(env.str("DATABASE_REPLICA_URL", default=""))
if DATABASE_REPLICA_ENABLED:
    DATABASES["replica"] = {
        **env.db_url("DATABASE_REPLICA_URL"),
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        # config/replica.py checks the kept connection before each marked view (and falls
        # back to the primary); Django's own check would repeat it at the first query.
        "CONN_HEALTH_CHECKS": False,
        "ATOMIC_REQUESTS": False,
        # Tests never create or migrate a database through this alias.
        "TEST": {"MIRROR": "default"},
    }
    DATABASES["replica"].setdefault("OPTIONS", {})
    # A dead replica costs one short connect attempt, then reads fall back to the primary.
    DATABASES["replica"]["OPTIONS"].setdefault("connect_timeout", 2)
    if DATABASE_OWNER and DATABASES["replica"]["USER"] == DATABASE_OWNER["USER"]:
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL names the owner role: read the replica as the application "
            "role of DATABASE_URL (docs/security.md § Database roles and audit trail)."
        )
# After a user's write, their marked reads go to the primary this long (read your writes).
DATABASE_REPLICA_PIN_SECONDS = env.int("DATABASE_REPLICA_PIN_SECONDS", default=15)
# Models the safety path reads: never from the replica, whichever view reads them.
DATABASE_REPLICA_PRIMARY_MODELS = frozenset(
    {
        "rehab.alert",
        "rehab.alertoccurrence",
        "rehab.alertevent",
        "rehab.notification",
        "rehab.safetysubmission",
    }
)
MIDDLEWARE = [*MIDDLEWARE, "config.replica.ReplicaPinMiddleware"]
# Behind PgBouncer in transaction mode a transaction may run on any server connection: no
# server-side (named) cursors, no server-side prepared statements.
DATABASE_POOLER = env.str("DATABASE_POOLER", default="")
if DATABASE_POOLER not in ("", "pgbouncer"):
    raise ImproperlyConfigured("DATABASE_POOLER must be empty or 'pgbouncer'.")
if DATABASE_POOLER == "pgbouncer":
    for _alias in DATABASES.values():
        _alias["DISABLE_SERVER_SIDE_CURSORS"] = True
        _alias.setdefault("OPTIONS", {})["prepare_threshold"] = None
# --- end read replica and pooling ---
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Likewise for Redis (README.md § Configuration): a production start without it would
# otherwise quietly talk to a localhost Redis that is not there (or not the right one).
if not DEBUG and "REDIS_URL" not in env.ENVIRON:
    raise ImproperlyConfigured(
        "REDIS_URL is not set. `make run` and `make test` start an embedded Redis for you; "
        "a production start must point REDIS_URL at its Redis."
    )
REDIS_URL: str = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

# django-redis: one pooled client per server, reused by every call, and failing open.
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="rehab"),
        # The cache only holds throttle counters: when Redis is down, a request must not
        # hang on it, nor fail (the safety path answers without Redis). A cache call then
        # answers as a miss, and the error is logged.
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
            "IGNORE_EXCEPTIONS": True,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

AUTH_USER_MODEL = "patients.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "patients.passwords.NotOnlyWhitespaceValidator"},
    # Not a rule: Django's hook that runs after any password change (docs/security.md).
    {"NAME": "patients.passwords.SignOutEverywhereOnPasswordChange"},
]
LOGIN_URL = "/dashboard/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
# A clinician's dashboard session on a shared clinic computer: a working day, not weeks.
SESSION_COOKIE_AGE: int = env.int("SESSION_COOKIE_AGE", default=12 * 3600)

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
# The languages a patient can read the app in (docs/app-developers.md § Languages): their
# profile's choice, else the phone's Accept-Language, else English. The dashboard and
# clinicians' emails stay English (LANGUAGE_CODE's British formats on the dashboard).
LANGUAGES = [("en", "English"), ("es", "Spanish")]
# Our catalogue; the .mo beside it is build output (`bin/translations.py compile`, run by
# `make install` and the Dockerfile), never committed.
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# pygal's tooltip script, from the pygaljs package (never a CDN, never a copied file).
STATICFILES_DIRS = [("pygaljs", pygaljs.path("2.0.x"))]
# Content-hashed, compressed file names (`collectstatic`, run when the image is built): a
# page names the exact version of its CSS, which browsers may then cache forever. Under
# DEBUG (`make run`) Django's static tag serves the plain names, so no collectstatic is
# needed there; tests use the plain storage (config/settings_test.py).
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Also serve straight from the apps' static folders (the plain names of `make run`).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Two-factor sign-in (docs/security.md) ---
# Whether a new clinic requires its clinicians to enrol before using the dashboard (each
# clinic's own setting, changed in the admin), and whether the admin requires operators to
# pass a second factor. On in production; off for `make run` (DJANGO_DEBUG=true), so that
# the demo physiotherapist signs in with a password.
MFA_REQUIRED_DEFAULT: bool = env.bool("MFA_REQUIRED_DEFAULT", default=not DEBUG)
MFA_REQUIRED_ADMIN: bool = env.bool("MFA_REQUIRED_ADMIN", default=not DEBUG)
# The name an authenticator app shows beside the code.
OTP_TOTP_ISSUER: str = env.str("OTP_TOTP_ISSUER", default="Rehab")

# --- Security: production sits behind a TLS-terminating proxy (README.md) ---
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies in front append to X-Forwarded-For: the client address is the entry the
# outermost one appended (patients.throttling.client_ip). 0 takes the socket's address, as
# with `make run`, where nothing is in front; trusting the header there would let any
# client forge its address past the per-client sign-in limit.
# No default in production: a wrong guess either lets every client forge its address (the
# sign-in limits, the audit trail) or makes all clients share the proxy's, so whoever
# deploys must say how many proxies there are (docs/security.md).
if not DEBUG and "DJANGO_TRUSTED_PROXY_COUNT" not in env.ENVIRON:
    raise ImproperlyConfigured(
        "DJANGO_TRUSTED_PROXY_COUNT must be set when DJANGO_DEBUG is false: the number of "
        "proxies in front that append to X-Forwarded-For (0 when clients connect directly)."
    )
TRUSTED_PROXY_COUNT: int = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("DJANGO_TRUSTED_PROXY_COUNT must be 0 or more.")
# Whether the proxy in front sets X-Request-ID (then the audit trail and the response
# carry its id); otherwise every request gets a new one (config/audit.py).
TRUST_REQUEST_ID: bool = env.bool("DJANGO_TRUST_REQUEST_ID", default=False)
SECURE_SSL_REDIRECT: bool = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
# Container and load-balancer probes talk plain HTTP to the process itself.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS: int = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Not "no-referrer": browsers then send `Origin: null` with a form POST, which Django's CSRF
# check refuses. Same-origin keeps patient URLs (/dashboard/patients/<id>/) in the site.
SECURE_REFERRER_POLICY = "same-origin"
# Seconds without a request after which a dashboard or admin session is signed out (a
# clinic computer left unlocked); SESSION_COOKIE_AGE still caps a session's whole life.
SESSION_INACTIVITY_TIMEOUT: int = env.int("SESSION_INACTIVITY_TIMEOUT", default=30 * 60)
if SESSION_INACTIVITY_TIMEOUT <= 0:
    raise ImproperlyConfigured("SESSION_INACTIVITY_TIMEOUT must be a number of seconds above 0.")
# Features no page of this service uses, denied to every page and anything it embeds.
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), "
    "fullscreen=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), "
    "payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
    "sync-xhr=(), usb=(), xr-spatial-tracking=()"
)
# django-csp. Scripts only from our own static files, or inline with the request's nonce
# (pygal's chart configuration, rehab/charts.py). Styles may be inline: pygal's SVG and
# the Redoc page carry theirs, and a style cannot run code. The API docs load their script
# from a URL of their own (SpectacularSwaggerSplitView). docs/security.md.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        # Redoc's search runs in a worker it builds from a blob.
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Email ---
# The console backend prints every email, invitation codes included, into the worker's
# log: fine on a laptop, a leak in production (docs/security.md § Secrets).
if not DEBUG and "EMAIL_URL" not in env.ENVIRON:
    raise ImproperlyConfigured(
        "EMAIL_URL is not set. A production start (DJANGO_DEBUG false) must send mail, "
        "e.g. EMAIL_URL=smtp+tls://user:pass@host:587, rather than print it to the log."
    )
_email = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(_email)
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="Rehab <no-reply@rehab.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Notification channels (docs/deployment.md, "Notification channels") ---
# Each channel is an adapter behind notifications/channels/base.py, by name.
NOTIFICATION_CHANNELS: dict[str, str] = {
    "email": "notifications.channels.email.EmailChannel",
    "console": "notifications.channels.console.ConsoleChannel",
}
# The channel for messages to an email address: "email" (Django's backend, EMAIL_URL) or,
# in development only, "console" (prints them, invitation codes included).
NOTIFICATION_EMAIL_CHANNEL: str = env.str("NOTIFICATION_EMAIL_CHANNEL", default="email")
if NOTIFICATION_EMAIL_CHANNEL not in NOTIFICATION_CHANNELS:
    raise ImproperlyConfigured(
        f"NOTIFICATION_EMAIL_CHANNEL {NOTIFICATION_EMAIL_CHANNEL!r} is unknown"
    )
if not DEBUG and NOTIFICATION_EMAIL_CHANNEL == "console":
    raise ImproperlyConfigured(
        "NOTIFICATION_EMAIL_CHANNEL=console prints every message to the log; a production "
        "start (DJANGO_DEBUG false) must send them."
    )
# Seconds an SMTP connection may block. Without it a hung mail server holds a worker (and
# the alert's row lock) forever; with it the send fails, and the alert is retried later.
EMAIL_TIMEOUT: int = env.int("EMAIL_TIMEOUT", default=10)

# --- Push notifications (docs/deployment.md § Push notifications) ---
# Each channel is on when its credentials are set. Seconds one request to a provider may
# take before the send counts as a network failure (retried later).
PUSH_TIMEOUT: float = env.float("PUSH_TIMEOUT", default=10.0)
# FCM HTTP v1: the Firebase project and a service account allowed to send (its JSON key,
# as a file or inline). FCM_BASE_URL changes only for tests.
FCM_PROJECT_ID: str = env.str("FCM_PROJECT_ID", default="")
FCM_SERVICE_ACCOUNT_FILE: str = env.str("FCM_SERVICE_ACCOUNT_FILE", default="")
FCM_SERVICE_ACCOUNT_JSON: str = env.str("FCM_SERVICE_ACCOUNT_JSON", default="")
FCM_BASE_URL: str = env.str("FCM_BASE_URL", default="https://fcm.googleapis.com")
# APNs with token (.p8) authentication: the team, the key's id, the key itself (a file
# or inline PEM) and the app's bundle id (the topic). APNS_BASE_URL is Apple's
# production server; the sandbox is https://api.sandbox.push.apple.com.
APNS_TEAM_ID: str = env.str("APNS_TEAM_ID", default="")
APNS_KEY_ID: str = env.str("APNS_KEY_ID", default="")
APNS_PRIVATE_KEY_FILE: str = env.str("APNS_PRIVATE_KEY_FILE", default="")
APNS_PRIVATE_KEY: str = env.str("APNS_PRIVATE_KEY", default="", multiline=True)
APNS_TOPIC: str = env.str("APNS_TOPIC", default="")
APNS_BASE_URL: str = env.str("APNS_BASE_URL", default="https://api.push.apple.com")
# Web Push: the VAPID key pair's private half (base64url or PEM) and a contact for the
# push services. Browsers subscribe with the public half (GET /api/v1/push/webpush-key/).
WEBPUSH_VAPID_PRIVATE_KEY: str = env.str("WEBPUSH_VAPID_PRIVATE_KEY", default="", multiline=True)
WEBPUSH_VAPID_SUBJECT: str = env.str("WEBPUSH_VAPID_SUBJECT", default="mailto:ops@rehab.local")
# The only hosts a Web Push endpoint may name: the server POSTs to whatever URL a
# subscription gives, so anything else would let a client aim it at any URL
# (docs/security.md § Web Push endpoints). Chrome/Edge-Chromium/Opera/Samsung (FCM),
# Firefox (Mozilla), Edge on Windows (WNS), Safari (Apple).
WEBPUSH_ALLOWED_HOSTS: list[str] = env.list(
    "WEBPUSH_ALLOWED_HOSTS",
    default=[
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        "*.notify.windows.com",
        "web.push.apple.com",
    ],
)
# A private CA bundle to trust for the push providers instead of the system's (a TLS
# proxy in front of them; the tests' local fake providers). Empty: the system's CAs.
PUSH_CA_FILE: str = env.str("PUSH_CA_FILE", default="")
# A push channel is registered only when its credentials are set (each adapter's
# `from_settings()`): planning sends nothing to a device whose channel is absent, and
# the feed still has every message (docs/architecture.md, "Notifications").
if FCM_PROJECT_ID and (FCM_SERVICE_ACCOUNT_FILE or FCM_SERVICE_ACCOUNT_JSON):
    NOTIFICATION_CHANNELS["fcm"] = "notifications.channels.fcm.FcmChannel"
if APNS_TEAM_ID and APNS_KEY_ID and APNS_TOPIC and (APNS_PRIVATE_KEY or APNS_PRIVATE_KEY_FILE):
    NOTIFICATION_CHANNELS["apns"] = "notifications.channels.apns.ApnsChannel"
if WEBPUSH_VAPID_PRIVATE_KEY:
    NOTIFICATION_CHANNELS["webpush"] = "notifications.channels.webpush.WebPushChannel"
# Development only: every push to a device goes to the `console_push` channel, which
# prints it, instead of the provider of the device's platform, so `make run`'s demo
# devices show their reminders and alerts in the worker's output (docs/deployment.md,
# "Push notifications"). On by default with DJANGO_DEBUG when no push provider is
# configured; a production start refuses it (it would print messages, never send them).
PUSH_CONSOLE: bool = env.bool(
    "PUSH_CONSOLE",
    default=DEBUG and not {"fcm", "apns", "webpush"} & NOTIFICATION_CHANNELS.keys(),
)
if PUSH_CONSOLE:
    if not DEBUG:
        raise ImproperlyConfigured(
            "PUSH_CONSOLE=true prints every push to the log instead of sending it; a "
            "production start (DJANGO_DEBUG false) must send them."
        )
    NOTIFICATION_CHANNELS["console_push"] = "notifications.channels.console.ConsolePushChannel"

# Hours after the app showed emergency or urgent advice that the patient is asked whether
# they were seen (docs/safety-path.md, "Safety follow-up").
SAFETY_FOLLOW_UP_HOURS: float = env.float("SAFETY_FOLLOW_UP_HOURS", default=4.0)

# --- REST framework ---
_DEFAULT_THROTTLE_RATES = {
    # Failed sign-ins per client address and per (email, address) (docs/app-developers.md: 10 in
    # 15 minutes).
    "login": "10/15min",
    "register": "20/hour",
    # Log writes per patient: generous for a phone replaying an offline queue.
    "logs": "600/hour",
}


def _throttle_rates(raw: str) -> dict[str, str]:
    rates = dict(_DEFAULT_THROTTLE_RATES)
    for item in filter(None, (part.strip() for part in raw.split(","))):
        scope, sep, rate = item.partition("=")
        if not sep or scope.strip() not in _DEFAULT_THROTTLE_RATES:
            raise ImproperlyConfigured(
                f"THROTTLE_RATES: {item!r} is not scope=rate with a scope among "
                f"{sorted(_DEFAULT_THROTTLE_RATES)}"
            )
        rates[scope.strip()] = rate.strip()
    # Checked here, once: at request time a bad login rate is a 500 on every sign-in and a
    # bad register or logs rate silently turns that limit off (the throttles fail open).
    for scope, rate in rates.items():
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise ImproperlyConfigured(f"THROTTLE_RATES: {scope}={rate!r}: {exc}") from exc
    return rates


THROTTLE_RATES = _throttle_rates(env.str("THROTTLE_RATES", default=""))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["patients.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "config.schema.ErrorsAutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": THROTTLE_RATES,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DATETIME_FORMAT": "iso-8601",
}

REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Bearer",
    "TOKEN_TTL": timedelta(days=env.int("AUTH_TOKEN_TTL_DAYS", default=30)),
    "AUTO_REFRESH": False,
    "TOKEN_LIMIT_PER_USER": None,
}
KNOX_TOKEN_MODEL = "patients.AuthToken"
# Our token model (with the device it was issued to) replaces knox's; knox's own
# migrations would still create its unused table, whose foreign key to the user table then
# blocks TRUNCATE in transactional tests.
MIGRATION_MODULES = {"knox": None}

SPECTACULAR_SETTINGS = {
    "TITLE": "Rehab tracking API",
    "DESCRIPTION": (
        "Daily pain and function logs, rehab programs, clinical record and red-flag safety "
        "alerts for people recovering from sciatica and deep gluteal syndrome."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # One name per closed vocabulary, however many fields use it.
    "ENUM_NAME_OVERRIDES": {
        "SymptomAnswerEnum": "rehab.safety.vocab.SYMPTOM_ANSWERS",
        "SexualFunctionAnswerEnum": "rehab.safety.vocab.SEXUAL_FUNCTION_ANSWERS",
        "LegPainSideEnum": "rehab.models.logs.DailyLog.LegPainSide",
        "SleepEnum": "rehab.models.logs.DailyLog.Sleep",
        "SeverityEnum": "rehab.safety.vocab.SEVERITIES",
        "ConsentKindEnum": "patients.consent_models.ConsentKind",
        "ConsentDecisionEnum": "patients.consent_models.ConsentDecision.Decision",
        "ErasureDecisionEnum": ["approve", "reject"],
        # settings.LANGUAGES; a patient's setting may also be blank (the phone's language).
        "LanguageEnum": LANGUAGES,
        "ErasureRequestStatusEnum": "rights.models.ErasureRequest.Status",
    },
}

# --- Celery (docs/architecture.md § Code conventions, § Background work) ---
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message a dead worker held comes back after this; the DB-side sweepers make delivery
# certain long before, so keep it short enough not to sit on work for an hour.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300),
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
}
# When Redis is down, publishing must give up fast so a request still answers promptly;
# the sweepers deliver what was not published.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}
# Celery's Django fixup closes the worker's database connection after every task unless
# this is set; reuse is ~4x the task throughput, which the safety path needs. It must be
# here, in the app's config (what the fixup reads), not in the process environment.
# config.celery checks the connection before each task.
CELERY_DB_REUSE_MAX: int = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Installed into django-celery-beat's tables at beat start-up (editable in the admin).
# The sweepers are what make "never lost" true: they find, in the database, work whose
# message was lost, and they are idempotent, so two beats by mistake double nothing.
CELERY_BEAT_SCHEDULE = {
    "safety-unevaluated-logs-sweep": {
        "task": "rehab.tasks.unevaluated_logs_sweep_task",
        "schedule": 30.0,
    },
    # Outgoing messages (docs/architecture.md, "Notifications"): the care team's emails
    # still owed (a lost message, an SMTP outage), RF-META-01's escalations, and every
    # other due delivery (retries after a back-off, rows a dead worker left, invitations
    # whose message was lost). Each claims with SKIP LOCKED: a second beat doubles nothing.
    "safety-notifications-sweep": {
        "task": "notifications.tasks.alert_notifications_sweep_task",
        "schedule": 60.0,
    },
    "safety-escalations-sweep": {
        "task": "notifications.tasks.escalations_sweep_task",
        "schedule": 60.0,
    },
    "notifications-deliveries-sweep": {
        "task": "notifications.tasks.deliveries_sweep_task",
        "schedule": 60.0,
    },
    # "Were you seen?" a few hours after emergency or urgent advice (docs/safety-path.md).
    "safety-follow-ups-sweep": {
        "task": "notifications.tasks.follow_ups_sweep_task",
        "schedule": 60.0,
    },
    # Patient reminders (docs/architecture.md, "Patient reminders"): plan the ones due in
    # the next minutes, send the due ones. Set-based and SKIP LOCKED: two beats double
    # nothing.
    "notifications-reminders-sweep": {
        "task": "notifications.tasks.reminders_sweep_task",
        "schedule": 30.0,
    },
    # RF-INF-02's re-check of fevers after a procedure recorded late: an emergency.
    "safety-fever-rechecks-sweep": {
        "task": "rehab.tasks.fever_rechecks_sweep_task",
        "schedule": 60.0,
    },
    # Phase progression proposals: a clinician decides, so a few times a day is plenty.
    "programs-progression-proposals": {
        "task": "rehab.tasks.progression_proposals_task",
        "schedule": 3 * 3600.0,
    },
    # Closed questionnaire windows are never offered whatever this does; it records them.
    "rehab-questionnaires-expire": {
        "task": "rehab.tasks.questionnaires_expire_task",
        "schedule": 300.0,
    },
    "rehab-questionnaires-programs": {
        "task": "rehab.tasks.questionnaires_schedule_programs_task",
        "schedule": 3600.0,
    },
    # Expired tokens already fail authentication; this only keeps the table small.
    "auth-purge-expired-tokens": {
        "task": "patients.tasks.purge_expired_tokens_task",
        "schedule": 6 * 3600.0,
    },
    "auth-purge-sign-in-failures": {
        "task": "patients.tasks.purge_sign_in_failures_task",
        "schedule": 3600.0,
    },
    # The §3 review rules ask for "at least daily"; hourly because each patient's day
    # starts at their own local midnight (24+ zones), so a fixed daily hour would judge
    # some patients before they had logged; and so that a spike or two days of worst pain
    # >= 9 reach the clinician within the hour of the log, and a cleared routine alert
    # closes within the hour. A run is a handful of indexed statements; the runs after a
    # patient's first of the day record nothing new. A run queued behind a worker outage
    # expires: the next one supersedes it.
    "safety-review-rules": {
        "task": "rehab.tasks.review_rules_task",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # NR-LOG-01: remind patients 3 to 6 days without a log, one email per streak (a
    # second beat, or a rerun, sends nothing twice).
    # Hourly, so that each patient is reminded in their own morning (REMINDER_LOCAL_HOURS);
    # the runs after a patient's reminder find it sent and send nothing.
    # Data rights: re-enqueue export builds a lost message left owed; remove old files.
    "rights-export-jobs-sweep": {"task": "rights.tasks.export_jobs_sweep_task", "schedule": 300.0},
    # Pseudonymise records past their clinic's retention period (docs/data-rights.md).
    "rights-retention-sweep": {"task": "rights.tasks.retention_sweep_task", "schedule": 86400.0},
    # The daily log table's monthly partitions, created months ahead (docs/deployment.md §
    # Daily log partitions): idempotent, and a log whose month has none yet still goes in
    # (the default partition), so a missed run costs nothing but partition pruning.
    "rehab-dailylog-partitions": {
        "task": "rehab.tasks.dailylog_partitions_ensure_task",
        "schedule": 86400.0,
        "options": {"expires": 3600},
    },
    "safety-missed-log-reminders": {
        "task": "rehab.tasks.missed_log_reminders_task",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}

# --- Product settings ---
# How many months ahead of the current one the beat keeps daily log partitions ready.
DAILYLOG_PARTITIONS_AHEAD_MONTHS: int = env.int("DAILYLOG_PARTITIONS_AHEAD_MONTHS", default=3)
INVITATION_TTL_DAYS: int = env.int("INVITATION_TTL_DAYS", default=14)
# By default the port this process serves (`make run` exports PORT), so that the links in
# emails of a `PORT=8001 make run` lead back to it.
PUBLIC_BASE_URL: str = env.str(
    "PUBLIC_BASE_URL", default=f"http://localhost:{env.int('PORT', default=8000)}"
)

# Data rights (docs/data-rights.md). Export files are written by the worker and read by the
# web process: in production both must see EXPORTS_DIR (a shared volume).
EXPORTS_DIR: str = env.str("EXPORTS_DIR", default=str(BASE_DIR / ".data" / "exports"))
EXPORT_LINK_MAX_AGE: int = env.int("EXPORT_LINK_MAX_AGE", default=900)
EXPORT_FILE_TTL_HOURS: int = env.int("EXPORT_FILE_TTL_HOURS", default=24)
# Years a clinical record is kept after the last contact, for clinics that set none.
RETENTION_YEARS_DEFAULT: int = env.int("RETENTION_YEARS_DEFAULT", default=8)
STORAGES["exports"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": EXPORTS_DIR, "directory_permissions_mode": 0o700},
}

# Exercise media (docs/architecture.md § Exercise media): images and short videos of the
# exercise library, in the "media" storage. The file system under MEDIA_ROOT by default;
# any S3-compatible store when MEDIA_S3_BUCKET is set (django-storages). Files are private
# either way: the API hands out short-lived signed links (MEDIA_URL_MAX_AGE seconds).
MEDIA_ROOT: str = env.str("MEDIA_ROOT", default=str(BASE_DIR / ".data" / "media"))
MEDIA_S3_BUCKET: str = env.str("MEDIA_S3_BUCKET", default="")
MEDIA_URL_MAX_AGE: int = env.int("MEDIA_URL_MAX_AGE", default=900)
MEDIA_IMAGE_MAX_BYTES: int = env.int("MEDIA_IMAGE_MAX_BYTES", default=10 * 1024 * 1024)
MEDIA_VIDEO_MAX_BYTES: int = env.int("MEDIA_VIDEO_MAX_BYTES", default=100 * 1024 * 1024)
# An image with more pixels is refused before it is decoded (a decompression bomb: a small
# file that expands to gigabytes); stored images are scaled down to MEDIA_IMAGE_MAX_SIDE.
MEDIA_IMAGE_MAX_PIXELS: int = env.int("MEDIA_IMAGE_MAX_PIXELS", default=40_000_000)
MEDIA_IMAGE_MAX_SIDE: int = env.int("MEDIA_IMAGE_MAX_SIDE", default=1600)
if MEDIA_S3_BUCKET:
    STORAGES["media"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "endpoint_url": env.str("MEDIA_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("MEDIA_S3_REGION", default="") or None,
            # Unset: boto3's own chain (AWS_* variables, an instance role).
            "access_key": env.str("MEDIA_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("MEDIA_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("MEDIA_S3_PREFIX", default=""),
            "addressing_style": env.str("MEDIA_S3_ADDRESSING_STYLE", default="") or None,
            "signature_version": "s3v4",
            # Private objects, reached only through presigned URLs; never overwritten.
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    STORAGES["media"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "directory_permissions_mode": 0o750},
    }
# With S3, the media link answers with a redirect to a presigned URL of the object (the
# store then serves the bytes and the ranges); false streams it through this service
# instead, for a bucket the phones cannot reach.
MEDIA_S3_REDIRECT: bool = env.bool("MEDIA_S3_REDIRECT", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The HTTP clients of the push channels log every request's URL at INFO, and the
        # URL holds a device token (APNs) or a Web Push endpoint: an address of a person.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "hpack": {"level": "WARNING"},
    },
}
