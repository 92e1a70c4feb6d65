from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from core import demo

pytestmark = pytest.mark.django_db


def logins(*args: str) -> str:
    out = StringIO()
    call_command("demo_logins", *args, stdout=out)
    return out.getvalue()


def test_prints_the_url_for_the_given_port() -> None:
    assert "http://127.0.0.1:8123/" in logins("--port", "8123")


def test_defaults_to_port_8000() -> None:
    assert "http://127.0.0.1:8000/" in logins()


def test_lists_every_demo_user_with_role_and_the_password() -> None:
    # given
    demo.seed_demo(patients=0)
    # when
    output = logins()
    # then
    lines = output.splitlines()
    for username, role in [
        ("frontdesk", "Patient service representative"),
        ("officeadmin", "Medical office administrator"),
        ("officemanager", "Medical office manager"),
        ("billing", "Billing specialist"),
        ("psmanager", "Patient services manager"),
        ("servicedirector", "Service director"),
        ("meddirector", "Medical director"),
        ("privacy", "Privacy officer"),
        ("sysadmin", "System administrator"),
    ]:
        row = next(line for line in lines if line.split()[:1] == [username])
        assert role in row
        assert "not created yet" not in row
    assert demo.DEMO_PASSWORD in output
    assert demo.LOADER_USERNAME not in output


def test_says_two_factor_is_relaxed_in_demo_mode(settings: Any) -> None:
    settings.DEMO_MODE = True
    assert "2FA is relaxed in demo mode (PATIENTDESK_DEMO=1)" in logins()


def test_says_two_factor_is_required_outside_demo_mode(settings: Any) -> None:
    settings.DEMO_MODE = False
    output = logins()
    assert "relaxed" not in output
    assert "must enrol TOTP" in output


def test_marks_users_that_are_not_seeded_yet() -> None:
    output = logins()
    assert "frontdesk" in output
    assert "not created yet: run seed_demo" in output
