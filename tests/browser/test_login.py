"""Signing in through the real login page in headless Chromium, with and without 2FA."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from accounts.tests.factories import PASSWORD, TOTPDeviceFactory, UserFactory, totp_code
from core.tests.factories import LocationFactory

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def _user(username: str, role: str):
    clinic = LocationFactory(code="main", name="Main Street Clinic")
    return UserFactory(
        username=username, first_name="Dana", last_name="Reyes", roles=[role], locations=[clinic]
    )


def _path(page) -> str:
    return urlparse(page.url).path


def test_front_desk_user_signs_in_and_reaches_the_home_page(page, sign_in):
    _user("frontdesk", "patient_service_rep")

    sign_in("frontdesk", PASSWORD)

    assert _path(page) == "/"
    menu = page.get_by_role("navigation", name="Main").get_by_role("button", name="Dana Reyes")
    assert menu.is_visible()
    menu.click()
    assert page.get_by_role("button", name="Sign out").is_visible()
    assert [e for e in page.console_errors if "Content Security Policy" in e] == []


def test_wrong_password_keeps_the_user_on_the_login_page_with_a_message(page, sign_in):
    _user("frontdesk", "patient_service_rep")

    sign_in("frontdesk", "not-the-right-one")

    assert _path(page) == "/accounts/login/"
    assert page.get_by_role("alert").inner_text().startswith("Please correct the following")


def test_manager_passes_the_two_factor_screen_with_a_real_code(page, sign_in):
    # given a manager with a confirmed authenticator
    manager = _user("officemanager", "medical_office_manager")
    device = TOTPDeviceFactory(user=manager)

    # when they sign in with the password
    sign_in("officemanager", PASSWORD)

    # then the two-factor screen asks for a code, and the app's code lets them in
    assert _path(page) == "/accounts/2fa/verify/"
    page.get_by_label("Six-digit code").fill(totp_code(device))
    page.get_by_role("button", name="Verify", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert _path(page) == "/"
    assert page.get_by_role("button", name="Dana Reyes").is_visible()


def test_manager_with_a_wrong_code_stays_on_the_two_factor_screen(page, sign_in):
    manager = _user("officemanager", "medical_office_manager")
    TOTPDeviceFactory(user=manager)
    sign_in("officemanager", PASSWORD)

    page.get_by_label("Six-digit code").fill("12345")
    page.get_by_role("button", name="Verify", exact=True).click()
    page.wait_for_load_state("networkidle")

    assert _path(page) == "/accounts/2fa/verify/"
    assert "Enter the 6 digits" in page.locator("#id_code_error").inner_text()
    assert page.locator("#id_code").evaluate("el => document.activeElement === el")


def test_login_page_has_no_serious_accessibility_violations(page, axe):
    page.goto("/accounts/login/?timeout=1")

    assert page.get_by_text(re.compile("signed out after 15 minutes")).is_visible()
    assert axe(page) == []


def test_two_factor_screens_have_no_serious_accessibility_violations(page, sign_in, axe):
    # given a manager without an authenticator: the set-up screen with its QR code
    manager = _user("officemanager", "medical_office_manager")
    sign_in("officemanager", PASSWORD)
    assert _path(page) == "/accounts/2fa/setup/"
    assert page.get_by_role("img", name=re.compile("QR code")).is_visible()
    assert axe(page) == []

    # and, once an authenticator exists, the verify screen after a wrong code
    TOTPDeviceFactory(user=manager)
    page.goto("/accounts/2fa/verify/")
    page.get_by_label("Six-digit code").fill("000")
    page.get_by_role("button", name="Verify", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert axe(page) == []
