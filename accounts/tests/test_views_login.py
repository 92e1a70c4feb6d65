"""Sign-in and sign-out: the login page, session fixation, server-side logout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")
LOGOUT = reverse("accounts:logout")
TOKENS = reverse("accounts:tokens")


def _sign_in(client: Client, username: str, password: str = PASSWORD):
    return client.post(LOGIN, {"username": username, "password": password})


def test_login_page_has_labelled_username_and_password_fields_and_a_sign_in_button(client):
    response = client.get(LOGIN)

    assert response.status_code == 200
    assert response.headers["Cache-Control"].startswith("max-age=0")
    html = response.content.decode()
    assert '<label class="form-label" for="id_username">Username</label>' in html
    assert '<label class="form-label" for="id_password">Password</label>' in html
    assert '<button type="submit" class="btn btn-primary w-100">Sign in</button>' in html
    assert "autofocus" in html


def test_signing_in_with_the_right_password_goes_to_the_home_page(frontdesk):
    response = _sign_in(Client(), "frontdesk")

    assert response.status_code == 302
    assert response.url == reverse("dashboard:home")


def test_wrong_password_shows_an_error_and_marks_nothing_as_signed_in(frontdesk, client):
    response = _sign_in(client, "frontdesk", "not-the-password")

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert 'id="form-errors"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_page_explains_an_idle_time_out(client):
    response = client.get(LOGIN, {"timeout": "1"})

    assert "You were signed out after 15 minutes of inactivity" in response.content.decode()


def test_idle_time_out_message_follows_the_configured_minutes(client, settings):
    settings.SESSION_IDLE_TIMEOUT = timedelta(minutes=25)

    response = client.get(LOGIN, {"timeout": "1"})

    assert "You were signed out after 25 minutes of inactivity" in response.content.decode()


def test_login_page_explains_the_twelve_hour_limit(client):
    response = client.get(LOGIN, {"expired": "1"})

    assert "reached its 12-hour limit" in response.content.decode()
    assert "inactivity" not in response.content.decode()


def test_login_page_has_no_time_out_message_on_a_plain_visit(client):
    response = client.get(LOGIN)

    assert 'id="timeout-notice"' not in response.content.decode()


def test_demo_usernames_are_listed_only_in_demo_mode(client, settings):
    settings.DEMO_MODE = False
    plain = client.get(LOGIN).content.decode()
    settings.DEMO_MODE = True
    demo = client.get(LOGIN).content.decode()

    assert "Demo sign-ins" not in plain
    assert "<code>frontdesk</code>" not in plain
    assert "Demo sign-ins" in demo
    for username in ("frontdesk", "officemanager", "privacy", "sysadmin"):
        assert f"<code>{username}</code>" in demo


def test_signing_in_issues_a_new_session_key(frontdesk):
    # given a visitor whose browser already holds a session (e.g. planted by an attacker)
    client = Client()
    before = client.session
    before["planted"] = "yes"
    before.save()
    old_key = client.cookies[settings.SESSION_COOKIE_NAME].value

    # when they sign in
    response = _sign_in(client, "frontdesk")

    # then the session has a new key and the old one is gone from the server
    assert response.status_code == 302
    new_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert new_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert client.session["_auth_user_id"] == str(frontdesk.pk)


def test_sign_out_is_post_only(frontdesk, login_client):
    client = login_client(frontdesk)

    response = client.get(LOGOUT)

    assert response.status_code == 405
    assert client.get(TOKENS).status_code == 200


def test_sign_out_deletes_the_session_on_the_server(frontdesk):
    # given a signed-in browser
    client = Client()
    _sign_in(client, "frontdesk")
    old_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.get(TOKENS).status_code == 200

    # when it signs out
    response = client.post(LOGOUT)

    # then the session row is gone and a replay of the old cookie is anonymous
    assert response.status_code == 302
    assert response.url == LOGIN
    assert not Session.objects.filter(session_key=old_key).exists()
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = old_key
    replayed = replay.get(TOKENS)
    assert replayed.status_code == 302
    assert replayed.url.startswith(LOGIN)


def test_sign_in_and_sign_out_are_audited(frontdesk):
    from audit.models import AuditEvent

    client = Client()
    _sign_in(client, "frontdesk")
    client.post(LOGOUT)

    events = list(
        AuditEvent.objects.filter(user=frontdesk)
        .order_by("sequence")
        .values_list("event", flat=True)
    )
    assert events == ["auth.login", "auth.logout"]


def test_a_signed_in_user_visiting_the_login_page_is_sent_home(frontdesk, login_client):
    response = login_client(frontdesk).get(LOGIN)

    assert response.status_code == 302
    assert response.url == reverse("dashboard:home")


def test_login_redirects_to_a_safe_next_page_but_not_to_another_site(frontdesk):
    inside = Client().post(LOGIN, {"username": "frontdesk", "password": PASSWORD, "next": TOKENS})
    outside = Client().post(
        LOGIN, {"username": "frontdesk", "password": PASSWORD, "next": "https://evil.example/"}
    )

    assert inside.url == TOKENS
    assert outside.url == reverse("dashboard:home")
