"""Idle time-out and the 12-hour absolute cap on sessions (SessionLimitsMiddleware)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.middleware import SESSION_LAST_SEEN, SESSION_LOGIN_AT
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

TOKENS = reverse("accounts:tokens")
LOGIN = reverse("accounts:login")


def _age_session(client, *, idle_seconds: float = 0, since_login_seconds: float = 0) -> None:
    now = time.time()
    session = client.session
    session[SESSION_LAST_SEEN] = now - idle_seconds
    session[SESSION_LOGIN_AT] = now - max(since_login_seconds, idle_seconds)
    session.save()


def test_a_session_idle_for_more_than_15_minutes_is_signed_out(frontdesk, login_client):
    # given a session last used 16 minutes ago
    client = login_client(frontdesk)
    _age_session(client, idle_seconds=16 * 60)

    # when the user comes back
    response = client.get(TOKENS)

    # then they are signed out, told why, and the time-out is audited
    assert response.status_code == 302
    assert response.url == f"{LOGIN}?timeout=1"
    event = AuditEvent.objects.get(event="auth.session_timeout")
    assert (event.user_id, event.reason) == (frontdesk.pk, "idle time-out")
    assert event.session_ref
    again = client.get(TOKENS)
    assert again.status_code == 302
    assert again.url.startswith(f"{LOGIN}?next=")


def test_a_session_idle_for_14_minutes_goes_on_and_counts_as_activity(frontdesk, login_client):
    client = login_client(frontdesk)
    _age_session(client, idle_seconds=14 * 60)

    response = client.get(TOKENS)

    assert response.status_code == 200
    assert time.time() - client.session[SESSION_LAST_SEEN] < 60
    assert not AuditEvent.objects.filter(event="auth.session_timeout").exists()


def test_the_idle_limit_follows_the_setting(frontdesk, login_client, settings):
    settings.SESSION_IDLE_TIMEOUT = timedelta(minutes=30)
    client = login_client(frontdesk)
    _age_session(client, idle_seconds=20 * 60)

    assert client.get(TOKENS).status_code == 200


def test_background_polls_do_not_keep_a_session_alive(frontdesk, login_client):
    client = login_client(frontdesk)
    _age_session(client, idle_seconds=10 * 60)
    seen_before = client.session[SESSION_LAST_SEEN]

    client.get(TOKENS, headers={"X-Background-Poll": "1"})

    assert client.session[SESSION_LAST_SEEN] == seen_before


def test_a_session_older_than_12_hours_ends_even_when_active(frontdesk, login_client):
    # given a session opened 12 hours and 1 minute ago and used a minute ago
    client = login_client(frontdesk)
    _age_session(client, idle_seconds=60, since_login_seconds=12 * 3600 + 60)

    # when the user goes on
    response = client.get(TOKENS)

    # then the session ends and the reason is audited
    assert response.status_code == 302
    assert response.url == f"{LOGIN}?expired=1"
    event = AuditEvent.objects.get(event="auth.session_timeout")
    assert event.reason == "12-hour session limit"


def test_a_session_of_11_hours_still_works(frontdesk, login_client):
    client = login_client(frontdesk)
    _age_session(client, idle_seconds=60, since_login_seconds=11 * 3600)

    assert client.get(TOKENS).status_code == 200


def test_htmx_requests_after_a_time_out_get_401_and_a_redirect_header(frontdesk, login_client):
    client = login_client(frontdesk)
    _age_session(client, idle_seconds=16 * 60)

    response = client.get(TOKENS, headers={"HX-Request": "true"})

    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == f"{LOGIN}?timeout=1"


def test_signing_in_stamps_the_session_times(frontdesk):
    from django.test import Client

    from accounts.tests.factories import PASSWORD

    client = Client()
    client.post(LOGIN, {"username": "frontdesk", "password": PASSWORD})

    session = client.session
    assert abs(session[SESSION_LOGIN_AT] - time.time()) < 60
    assert abs(session[SESSION_LAST_SEEN] - time.time()) < 60
