"""patientdesk settings.

One settings module for every deployment: production differs only by environment variables
(see docs/deploy.md). `config.settings_test` adjusts a few values for the test suite.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# Demo mode: `make run` sets it. It relaxes TOTP enrolment for the seeded demo users only.
DEMO_MODE = env_bool("PATIENTDESK_DEMO", False)

_insecure_ok = DEBUG or DEMO_MODE or env_bool("PATIENTDESK_TESTING", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not _insecure_ok:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set outside demo/debug mode.")
    SECRET_KEY = "insecure-demo-key-do-not-use-in-production-" + "x" * 20

# Key for the audit trail's HMAC chain. Kept outside the database on purpose.
AUDIT_HMAC_KEY = os.environ.get("PATIENTDESK_AUDIT_HMAC_KEY", "")
if not AUDIT_HMAC_KEY:
    if not _insecure_ok:
        raise ImproperlyConfigured(
            "PATIENTDESK_AUDIT_HMAC_KEY must be set outside demo/debug mode."
        )
    AUDIT_HMAC_KEY = "insecure-demo-audit-key"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_tasks",
    "django_tasks_db",
    "core",
    "audit",
    "accounts",
    "patients",
    "scheduling",
    "messaging",
    "interop",
    "api",
    "fhirapi",
    "billing",
    "remittance",
    "patientaccounts",
    "receivables",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.BearerTokenMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.SessionLimitsMiddleware",
    "accounts.middleware.TwoFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

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
                "core.context_processors.navigation",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
# Behind PgBouncer in transaction pooling mode, server-side cursors must be off.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool(
    "PATIENTDESK_DISABLE_SERVER_SIDE_CURSORS", False
)
# Server-side prepared statements for the booking's hottest reads (scheduling.prepared); Django's
# own cursors bind client-side and never prepare. Off by default: measured on this project's
# benchmark, turning them on made the day view page cost about 14 ms more CPU per request and
# booking from 2 worker processes 373/s instead of 618/s (docs/performance.md). Never behind a
# pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "PATIENTDESK_PREPARED_STATEMENTS", False
):
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
        # check-then-insert sequences cannot interleave.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# ONC 170.315(d)(12): a FIPS-approved hash (PBKDF2-SHA256) for stored passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sessions: server-side (database), new key at login, idle time-out and an absolute cap.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_IDLE_TIMEOUT = timedelta(
    minutes=min(30, max(1, int(os.environ.get("PATIENTDESK_SESSION_IDLE_MINUTES", "15"))))
)
SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=12)
SESSION_COOKIE_AGE = int(SESSION_ABSOLUTE_TIMEOUT.total_seconds())

# Flash messages may name a patient: keep them server-side, not in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Break-glass access outside one's locations lasts this long.
BREAK_GLASS_DURATION = timedelta(
    minutes=int(os.environ.get("PATIENTDESK_BREAK_GLASS_MINUTES", "60"))
)

# django-axes: lock an account after repeated failures.
AXES_FAILURE_LIMIT = int(os.environ.get("PATIENTDESK_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=30)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.lockout_response"
AXES_VERBOSE = False

OTP_TOTP_ISSUER = "patientdesk"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("PATIENTDESK_TIME_ZONE", "America/New_York")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/bootstrap", BASE_DIR / "node_modules" / "bootstrap" / "dist"),
    ("vendor/bootstrap-icons", BASE_DIR / "node_modules" / "bootstrap-icons" / "font"),
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Content-Security-Policy: no inline scripts, no third-party origins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# Security headers; HTTPS settings switch on with PATIENTDESK_HTTPS=1 (see docs/deploy.md).
HTTPS = env_bool("PATIENTDESK_HTTPS", not (DEBUG or DEMO_MODE))
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# The client address for the audit trail: trust X-Forwarded-For only behind your own proxy.
TRUST_X_FORWARDED_FOR = env_bool("PATIENTDESK_TRUST_X_FORWARDED_FOR", False)

if HTTPS:
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_SSL_REDIRECT = env_bool("PATIENTDESK_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("PATIENTDESK_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Logs never carry PHI: the request log line has the path (UUIDs only), status and request id.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Calendar feed URLs carry their secret: redact them wherever a path is logged.
    "filters": {"redact_feed_tokens": {"()": "interop.log_filters.RedactFeedTokens"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_feed_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("PATIENTDESK_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"handlers": ["console"], "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# Background work: django-tasks (the Tasks API Django 6 ships) with the database backend; run
# workers with `manage.py db_worker` (make run starts one). See docs/deploy.md for larger sites.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "messages", "interfaces"],
    }
}

# Messages to patients and staff (messaging app). See docs/deploy.md.
PATIENTDESK_BASE_URL = os.environ.get("PATIENTDESK_BASE_URL", "http://127.0.0.1:8000")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "messaging.channels.ConsoleEmailBackend"
    if (DEMO_MODE or DEBUG)
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "patientdesk <no-reply@localhost>")
# Empty: the console backend in demo/debug, the HTTP gateway everywhere else.
PATIENTDESK_SMS_BACKEND = os.environ.get("PATIENTDESK_SMS_BACKEND", "")
PATIENTDESK_SMS_GATEWAY_URL = os.environ.get("PATIENTDESK_SMS_GATEWAY_URL", "")
PATIENTDESK_SMS_GATEWAY_TOKEN = os.environ.get("PATIENTDESK_SMS_GATEWAY_TOKEN", "")
PATIENTDESK_SMS_WEBHOOK_TOKEN = os.environ.get(
    "PATIENTDESK_SMS_WEBHOOK_TOKEN", PATIENTDESK_SMS_GATEWAY_TOKEN
)
PATIENTDESK_SMS_TIMEOUT = float(os.environ.get("PATIENTDESK_SMS_TIMEOUT", "10"))
QUIET_HOURS = os.environ.get("PATIENTDESK_QUIET_HOURS", "21:00-08:00")
MESSAGE_MAX_ATTEMPTS = int(os.environ.get("PATIENTDESK_MESSAGE_MAX_ATTEMPTS", "5"))
STAFF_NOTIFY_EMAIL = os.environ.get("PATIENTDESK_STAFF_NOTIFY_EMAIL", "")

# HL7 v2 interfaces and calendar feeds (interop app; see interop/README.md and docs/deploy.md).
# Outbound SIU goes nowhere until a file drop directory or an MLLP host is configured.
PATIENTDESK_HL7_OUT_DIR = os.environ.get("PATIENTDESK_HL7_OUT_DIR", "")
PATIENTDESK_HL7_OUT_HOST = os.environ.get("PATIENTDESK_HL7_OUT_HOST", "")
PATIENTDESK_HL7_OUT_PORT = int(os.environ.get("PATIENTDESK_HL7_OUT_PORT", "0") or 0)
PATIENTDESK_HL7_ACK_TIMEOUT = float(os.environ.get("PATIENTDESK_HL7_ACK_TIMEOUT", "10"))
PATIENTDESK_HL7_MAX_ATTEMPTS = int(os.environ.get("PATIENTDESK_HL7_MAX_ATTEMPTS", "6"))
PATIENTDESK_HL7_RETRY_SECONDS = float(os.environ.get("PATIENTDESK_HL7_RETRY_SECONDS", "30"))
PATIENTDESK_HL7_SENDING_APPLICATION = os.environ.get(
    "PATIENTDESK_HL7_SENDING_APPLICATION", "PATIENTDESK"
)
PATIENTDESK_HL7_SENDING_FACILITY = os.environ.get("PATIENTDESK_HL7_SENDING_FACILITY", "")
PATIENTDESK_HL7_RECEIVING_APPLICATION = os.environ.get("PATIENTDESK_HL7_RECEIVING_APPLICATION", "")
PATIENTDESK_HL7_RECEIVING_FACILITY = os.environ.get("PATIENTDESK_HL7_RECEIVING_FACILITY", "")
PATIENTDESK_HL7_PROCESSING_ID = os.environ.get("PATIENTDESK_HL7_PROCESSING_ID", "P")
PATIENTDESK_HL7_MRN_AUTHORITY = os.environ.get("PATIENTDESK_HL7_MRN_AUTHORITY", "PATIENTDESK")
PATIENTDESK_HL7_DEFAULT_LOCATION = os.environ.get("PATIENTDESK_HL7_DEFAULT_LOCATION", "")
PATIENTDESK_HL7_PAYLOAD_RETENTION_DAYS = int(
    os.environ.get("PATIENTDESK_HL7_PAYLOAD_RETENTION_DAYS", "30")
)
PATIENTDESK_ICAL_PAST_DAYS = int(os.environ.get("PATIENTDESK_ICAL_PAST_DAYS", "30"))
PATIENTDESK_ICAL_FUTURE_DAYS = int(os.environ.get("PATIENTDESK_ICAL_FUTURE_DAYS", "90"))

# X12 837P claim batches (billing/export.py). Empty values fall back to the billing provider's
# name and tax id (submitter, ISA06) and the payer id (receiver, ISA08); P = production files.
PATIENTDESK_X12_OUT_DIR = os.environ.get("PATIENTDESK_X12_OUT_DIR", str(BASE_DIR / "var" / "x12"))
PATIENTDESK_X12_SENDER_ID = os.environ.get("PATIENTDESK_X12_SENDER_ID", "")
PATIENTDESK_X12_RECEIVER_ID = os.environ.get("PATIENTDESK_X12_RECEIVER_ID", "")
PATIENTDESK_X12_SUBMITTER_NAME = os.environ.get("PATIENTDESK_X12_SUBMITTER_NAME", "")
PATIENTDESK_X12_USAGE = os.environ.get("PATIENTDESK_X12_USAGE", "P")

NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 200
