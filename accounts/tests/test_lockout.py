"""Lockout after repeated failures (django-axes) and its audit trail, without passwords."""

from __future__ import annotations

import json

import pytest
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import PASSWORD
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")
WRONG = "Wrong-Password-1234"


def _attempt(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def _all_audit_text() -> str:
    return json.dumps(
        [model_to_dict(e) for e in AuditEvent.objects.order_by("sequence")], default=str
    )


def test_four_failures_do_not_lock_the_account(frontdesk):
    client = Client()
    for _ in range(4):
        assert _attempt(client, "frontdesk", WRONG).status_code == 200

    response = _attempt(client, "frontdesk", PASSWORD)

    assert response.status_code == 302
    assert response.url == reverse("dashboard:home")


def test_fifth_failure_locks_the_account_even_for_the_right_password(frontdesk, settings):
    # given four failed attempts
    client = Client()
    for _ in range(4):
        _attempt(client, "frontdesk", WRONG)

    # when the fifth fails
    fifth = _attempt(client, "frontdesk", WRONG)

    # then the lockout page answers, and the right password no longer gets in
    assert fifth.status_code == 403
    assert "Too many failed sign-in attempts" in fifth.content.decode()
    assert "locked for 30 minutes" in fifth.content.decode()
    afterwards = _attempt(client, "frontdesk", PASSWORD)
    assert afterwards.status_code == 403
    assert "_auth_user_id" not in client.session


def test_failures_and_the_lockout_are_audited_with_the_username(frontdesk):
    client = Client()
    for _ in range(5):
        _attempt(client, "frontdesk", WRONG)

    failed = AuditEvent.objects.filter(event="auth.login_failed")
    locked = AuditEvent.objects.filter(event="auth.lockout")
    assert failed.count() == 5
    assert set(failed.values_list("username", "outcome")) == {("frontdesk", "failure")}
    assert list(locked.values_list("username", "outcome", "ip")) == [
        ("frontdesk", "denied", "127.0.0.1")
    ]


def test_passwords_never_reach_the_audit_trail(frontdesk):
    # given failures, a lockout and a refused right password
    client = Client()
    for _ in range(5):
        _attempt(client, "frontdesk", WRONG)
    _attempt(client, "frontdesk", PASSWORD)

    # then no audit row holds either password, nor Django's masked placeholder
    text = _all_audit_text()
    assert AuditEvent.objects.filter(event="auth.lockout").exists()
    assert WRONG not in text
    assert PASSWORD not in text
    assert "********" not in text


def test_unknown_usernames_are_locked_out_too():
    client = Client()
    responses = [_attempt(client, "nobody-here", WRONG) for _ in range(5)]

    assert [r.status_code for r in responses] == [200, 200, 200, 200, 403]
    assert AuditEvent.objects.filter(event="auth.lockout", username="nobody-here").count() == 1
