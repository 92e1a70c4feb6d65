"""Production security settings (config.settings as deployed, not the test overrides)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

import config.settings as production

ROOT = Path(__file__).resolve().parents[1]


def _production_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PATIENTDESK_", "DJANGO_")) and k != "DATABASE_URL"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48)[:50],
        PATIENTDESK_AUDIT_HMAC_KEY="x",
        DJANGO_ALLOWED_HOSTS="pd.example.org",
    )
    env.update(extra)
    return env


def _setting(name: str, **env: str) -> str:
    code = f"import config.settings as s; print(s.{name})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_production_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def test_production_hashes_passwords_with_pbkdf2_sha256_only():
    assert production.PASSWORD_HASHERS == ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def test_passwords_need_at_least_12_characters_plus_djangos_validators():
    names = [v["NAME"].rsplit(".", 1)[1] for v in production.AUTH_PASSWORD_VALIDATORS]
    minimum = next(
        v
        for v in production.AUTH_PASSWORD_VALIDATORS
        if v["NAME"].endswith("MinimumLengthValidator")
    )
    assert minimum["OPTIONS"]["min_length"] == 12
    assert {"CommonPasswordValidator", "NumericPasswordValidator"} <= set(names)
    assert "UserAttributeSimilarityValidator" in names


def test_an_11_character_password_is_refused_and_a_12_character_one_accepted():
    with pytest.raises(ValidationError, match="at least 12 characters"):
        validate_password("Kx9#mQ2$vL7")
    validate_password("Kx9#mQ2$vL7p")


def test_sessions_live_on_the_server_and_end_with_the_browser():
    assert production.SESSION_ENGINE == "django.contrib.sessions.backends.db"
    assert production.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert production.SESSION_COOKIE_HTTPONLY is True
    assert production.SESSION_ABSOLUTE_TIMEOUT.total_seconds() == 12 * 3600


def test_lockout_after_five_failures_by_username_or_address():
    assert production.AXES_FAILURE_LIMIT == 5
    assert production.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]
    assert production.AXES_LOCKOUT_CALLABLE == "accounts.views.lockout_response"


def test_idle_time_out_defaults_to_15_minutes():
    assert _setting("SESSION_IDLE_TIMEOUT.total_seconds()") == "900.0"


@pytest.mark.parametrize(
    ("minutes", "expected"), [("90", "1800.0"), ("20", "1200.0"), ("0", "60.0")]
)
def test_idle_time_out_is_clamped_to_at_most_30_minutes(minutes, expected):
    assert (
        _setting("SESSION_IDLE_TIMEOUT.total_seconds()", PATIENTDESK_SESSION_IDLE_MINUTES=minutes)
        == expected
    )


def test_production_refuses_to_start_without_a_secret_key():
    env = _production_env()
    del env["DJANGO_SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_check_deploy_passes_with_production_settings_from_the_environment():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
