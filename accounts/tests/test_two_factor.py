"""Two-factor sign-in (TOTP): enrolment, verification, throttling, and who must use it."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from django.conf import settings
from django.forms.models import model_to_dict
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.tests.factories import TOTPDeviceFactory, UserFactory, totp_code, wrong_totp_code
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

SETUP = reverse("accounts:otp_setup")
VERIFY = reverse("accounts:otp_verify")
TOKENS = reverse("accounts:tokens")
HOME = reverse("dashboard:home")


@pytest.fixture
def manager_client(officemanager, login_client):
    """The office manager after the password step, before any two-factor step."""
    return login_client(officemanager, verified=False)


def _events(name: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=name).order_by("sequence"))


# --- Who must use two-factor sign-in ------------------------------------------------------------


def test_manager_without_an_authenticator_is_sent_from_the_home_page_to_set_up(manager_client):
    response = manager_client.get(HOME)

    assert response.status_code == 302
    assert response.url == f"{SETUP}?next={quote(HOME, safe='')}"
    assert _events("auth.2fa_required")[0].outcome == "denied"


def test_manager_with_an_authenticator_is_sent_from_the_home_page_to_verify(
    officemanager, manager_client
):
    TOTPDeviceFactory(user=officemanager)

    response = manager_client.get(HOME)

    assert response.status_code == 302
    assert response.url.startswith(VERIFY)


def test_api_paths_answer_403_problem_json_until_the_manager_is_verified(manager_client):
    response = manager_client.get("/api/v1/patients")

    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Two-factor verification required"


def test_htmx_requests_are_told_to_go_to_the_two_factor_screen(officemanager, manager_client):
    TOTPDeviceFactory(user=officemanager)

    response = manager_client.get(TOKENS, headers={"HX-Request": "true"})

    assert response.status_code == 403
    assert response.headers["HX-Redirect"] == VERIFY


def test_other_pages_are_closed_too_until_verified(manager_client):
    response = manager_client.get(TOKENS)

    assert response.status_code == 302
    assert response.url.startswith(SETUP)


def test_demo_mode_relaxes_the_requirement_for_the_seeded_demo_users(manager_client, settings):
    settings.DEMO_MODE = True

    assert manager_client.get(HOME).status_code == 200
    assert manager_client.get(TOKENS).status_code == 200
    assert not AuditEvent.objects.filter(event="auth.2fa_required").exists()


def test_demo_mode_still_holds_new_users_to_two_factor(login_client, main_clinic, settings):
    settings.DEMO_MODE = True
    newcomer = UserFactory(
        username="newmanager", roles=["medical_office_manager"], locations=[main_clinic]
    )

    response = login_client(newcomer, verified=False).get(TOKENS)

    assert response.status_code == 302
    assert response.url.startswith(SETUP)


def test_front_desk_role_does_not_need_two_factor(frontdesk, login_client):
    assert login_client(frontdesk, verified=False).get(TOKENS).status_code == 200


def test_a_user_who_turned_two_factor_on_is_asked_for_a_code_at_sign_in(frontdesk):
    from django.test import Client

    from accounts.tests.factories import PASSWORD

    # given a front-desk user (no role needs 2FA) who set up an authenticator
    device = TOTPDeviceFactory(user=frontdesk)
    client = Client()
    client.post(reverse("accounts:login"), {"username": "frontdesk", "password": PASSWORD})

    # when they open a page, they are asked for a code first
    response = client.get(TOKENS)
    assert response.status_code == 302
    assert response.url.startswith(VERIFY)

    # then the code opens the session
    client.post(VERIFY, {"code": totp_code(device)})
    assert client.get(TOKENS).status_code == 200


def test_every_role_that_requires_two_factor_is_held_to_it(persona, login_client):
    from conftest import PERSONA_ROLES
    from core.capabilities import ROLE_DEFINITIONS

    for name, slug in PERSONA_ROLES.items():
        client = login_client(persona(name), verified=False)
        expected = 302 if ROLE_DEFINITIONS[slug]["requires_2fa"] else 200
        assert client.get(TOKENS).status_code == expected, name


# --- Enrolment ----------------------------------------------------------------------------------


def test_setup_page_shows_a_qr_code_image_and_the_secret(officemanager, manager_client):
    response = manager_client.get(SETUP)

    assert response.status_code == 200
    device = TOTPDevice.objects.get(user=officemanager)
    assert device.confirmed is False
    html = response.content.decode()
    prefix = 'src="data:image/svg+xml;base64,'
    start = html.index(prefix) + len(prefix)
    svg = base64.b64decode(html[start : html.index('"', start)]).decode()
    assert "<svg" in svg
    assert "<img " in html[:start]
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    shown = html.split('id="totp-secret">', 1)[1].split("<", 1)[0]
    assert shown.replace(" ", "") == secret
    assert '<label class="form-label" for="id_code">Six-digit code</label>' in html


def test_reloading_the_setup_page_keeps_the_same_secret(officemanager, manager_client):
    manager_client.get(SETUP)
    manager_client.get(SETUP)

    assert TOTPDevice.objects.filter(user=officemanager).count() == 1


def test_confirming_with_the_current_code_turns_two_factor_on(officemanager, manager_client):
    # given the set-up page was shown
    manager_client.get(SETUP)
    device = TOTPDevice.objects.get(user=officemanager)
    code = totp_code(device)

    # when the manager types the app's code
    response = manager_client.post(f"{SETUP}?next={TOKENS}", {"code": code, "next": TOKENS})

    # then the device is confirmed, the session verified and the enrolment audited
    assert response.status_code == 302
    assert response.url == TOKENS
    device.refresh_from_db()
    assert device.confirmed is True
    assert manager_client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert manager_client.get(TOKENS).status_code == 200
    enrol = _events("auth.2fa_enrol")
    assert [e.user_id for e in enrol] == [officemanager.pk]
    assert code not in json.dumps([model_to_dict(e) for e in AuditEvent.objects.all()], default=str)


def test_confirming_with_a_wrong_code_keeps_two_factor_off(officemanager, manager_client):
    manager_client.get(SETUP)
    device = TOTPDevice.objects.get(user=officemanager)

    response = manager_client.post(SETUP, {"code": wrong_totp_code(device)})

    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert "is-invalid" in response.content.decode()
    device.refresh_from_db()
    assert device.confirmed is False
    assert DEVICE_ID_SESSION_KEY not in manager_client.session
    assert [e.outcome for e in _events("auth.2fa_failed")] == ["failure"]


def test_a_code_that_is_not_six_digits_is_refused_with_a_clear_message(manager_client):
    manager_client.get(SETUP)

    response = manager_client.post(SETUP, {"code": "12ab"})

    assert "Enter the 6 digits shown in your authenticator app." in response.content.decode()
    assert _events("auth.2fa_failed") == []


def test_password_alone_cannot_replace_an_existing_authenticator(officemanager, manager_client):
    TOTPDeviceFactory(user=officemanager)

    response = manager_client.get(SETUP)

    assert response.status_code == 302
    assert response.url.startswith(VERIFY)
    assert TOTPDevice.objects.filter(user=officemanager, confirmed=False).count() == 0


def test_a_verified_user_can_move_to_a_new_authenticator(officemanager, login_client):
    # given a verified manager with an authenticator
    client = login_client(officemanager)
    old = TOTPDevice.objects.get(user=officemanager)

    # when they set up a new one and confirm it
    page = client.get(SETUP)
    new = TOTPDevice.objects.get(user=officemanager, confirmed=False)
    response = client.post(SETUP, {"code": totp_code(new)})

    # then only the new one remains
    assert "Two-factor sign-in is on" in page.content.decode()
    assert response.status_code == 302
    assert list(TOTPDevice.objects.filter(user=officemanager)) == [new]
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()
    assert _events("auth.2fa_enrol")[0].reason == "replaced an earlier authenticator"


# --- Verification at sign-in --------------------------------------------------------------------


def test_verifying_with_the_current_code_opens_the_session(officemanager, manager_client):
    # given a manager with an authenticator, after the password step
    device = TOTPDeviceFactory(user=officemanager)
    key_before = manager_client.cookies[settings.SESSION_COOKIE_NAME].value

    # when they enter the app's code
    response = manager_client.post(VERIFY, {"code": totp_code(device), "next": TOKENS})

    # then they go on to the page they wanted, with a new session key, and it is audited
    assert response.status_code == 302
    assert response.url == TOKENS
    assert manager_client.cookies[settings.SESSION_COOKIE_NAME].value != key_before
    assert manager_client.get(TOKENS).status_code == 200
    assert [e.user_id for e in _events("auth.2fa_verified")] == [officemanager.pk]


def test_a_wrong_code_is_refused_and_audited(officemanager, manager_client):
    device = TOTPDeviceFactory(user=officemanager)

    response = manager_client.post(VERIFY, {"code": wrong_totp_code(device)})

    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert manager_client.get(TOKENS).status_code == 302
    failed = _events("auth.2fa_failed")
    assert [(e.user_id, e.outcome, e.reason) for e in failed] == [
        (officemanager.pk, "failure", "wrong code")
    ]


def test_after_a_wrong_code_the_next_try_is_throttled(officemanager, manager_client):
    # given a wrong code just now
    device = TOTPDeviceFactory(user=officemanager)
    manager_client.post(VERIFY, {"code": wrong_totp_code(device)})

    # when the right code follows at once
    response = manager_client.post(VERIFY, {"code": totp_code(device)})

    # then django-otp's throttle refuses it, and says to wait
    assert response.status_code == 200
    assert "Too many wrong codes: wait a few seconds" in response.content.decode()
    assert DEVICE_ID_SESSION_KEY not in manager_client.session
    assert [e.outcome for e in _events("auth.2fa_failed")] == ["failure", "denied"]
    assert _events("auth.2fa_verified") == []


def test_a_code_cannot_be_used_twice(officemanager, login_client):
    from django.test import Client

    device = TOTPDeviceFactory(user=officemanager)
    code = totp_code(device)
    first, second = Client(), Client()
    first.force_login(officemanager)
    second.force_login(officemanager)

    assert first.post(VERIFY, {"code": code}).status_code == 302
    assert second.post(VERIFY, {"code": code}).status_code == 200
    assert DEVICE_ID_SESSION_KEY not in second.session


def test_verify_page_without_an_authenticator_sends_to_set_up(manager_client):
    response = manager_client.get(VERIFY)

    assert response.status_code == 302
    assert response.url == SETUP


def test_verify_page_when_already_verified_goes_home(officemanager, login_client):
    response = login_client(officemanager).get(VERIFY)

    assert response.status_code == 302
    assert response.url == HOME


def test_two_factor_pages_need_a_signed_in_user(client):
    for url in (SETUP, VERIFY):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("accounts:login"))


def test_two_factor_pages_accept_only_get_and_post(manager_client):
    for url in (SETUP, VERIFY):
        assert manager_client.put(url).status_code == 405
