"""Passwords, API tokens and free-text clinical notes never reach the audit trail or the logs.

The steps go through the real code paths: the sign-in view (a success and a failure), API token
creation and use, patient registration and an alert with a free-text note. Then every field of
every audit row, and every log record captured at DEBUG, is searched for the secrets.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.services import api_token_create
from accounts.tests.factories import PASSWORD
from audit.models import AuditEvent
from core.models import Location
from patients.services import flag_add, patient_register

WRONG_PASSWORD = "Wr0ng-but-long-passphrase-471"
NOTE = "Threw a chair at reception on 4 May; escort by security 7731"
LOGGERS = (None, "django", "django.request", "django.security", "axes", "audit", "accounts")


def audit_values() -> Iterator[str]:
    for row in AuditEvent.objects.values():
        for value in row.values():
            yield str(value)


def log_texts(caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    for log in caplog.records:
        yield log.getMessage()
        yield repr(log.args)
        yield repr(log.__dict__)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_no_password_token_or_note_in_audit_rows_or_logs(
    frontdesk: User, main_clinic: Location, debug_logs: pytest.LogCaptureFixture
) -> None:
    # given: a real sign-in, and a failed one with another password
    browser = Client()
    signed_in = browser.post(
        reverse("accounts:login"), {"username": "frontdesk", "password": PASSWORD}
    )
    failed = Client().post(
        reverse("accounts:login"), {"username": "frontdesk", "password": WRONG_PASSWORD}
    )
    # an API token, used once as it should be and once tampered with
    _, raw_token = api_token_create(actor=frontdesk, user=frontdesk, name="scheduling interface")
    Client().get(reverse("dashboard:home"), HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    rejected = Client().get(reverse("dashboard:home"), HTTP_AUTHORIZATION=f"Bearer {raw_token}x")
    # a patient with a free-text alert note
    patient = patient_register(
        actor=frontdesk,
        home_location=main_clinic,
        values={
            "family_name": "Castellanos",
            "given_name": "Marisol",
            "birth_date": dt.date(1984, 5, 17),
            "sex_at_birth": "F",
        },
    )
    flag_add(actor=frontdesk, patient=patient, kind="behavioural", severity="critical", note=NOTE)

    # when: everything the trail and the logs hold
    stored = list(audit_values())
    logged = list(log_texts(debug_logs))

    # then: the steps really ran and were recorded...
    assert signed_in.status_code == 302
    assert failed.status_code == 200
    assert rejected.status_code == 401
    events = set(AuditEvent.objects.values_list("event", flat=True))
    assert {
        "auth.login",
        "auth.login_failed",
        "auth.token_create",
        "auth.token_invalid",
        "patient.register",
        "flag.add",
    } <= events
    assert AuditEvent.objects.get(event="flag.add").fields == ["kind", "note", "severity"]
    assert logged, "expected some log records (e.g. the 401) to search"
    # ...and no secret is in any of it
    for secret in (PASSWORD, WRONG_PASSWORD, raw_token, raw_token[10:], NOTE, "chair at reception"):
        assert not [text for text in stored if secret in text], f"audit row holds {secret[:6]}…"
        assert not [text for text in logged if secret in text], f"log record holds {secret[:6]}…"
