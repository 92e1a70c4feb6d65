"""Settings for the test suite: the production settings with test-only speed-ups."""

import os

os.environ.setdefault("PATIENTDESK_TESTING", "1")
os.environ.setdefault("PATIENTDESK_HTTPS", "0")

from config.settings import *  # noqa: F403
from config.settings import STORAGES

DEBUG = False
DEMO_MODE = False
# Fast hashing in tests only; tests/test_security_settings.py checks production uses PBKDF2.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
