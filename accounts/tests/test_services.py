"""Account services: permission checks, validation and audit rows."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import Role, User
from accounts.tests.factories import TOTPDeviceFactory, UserFactory, totp_code
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "Quiet-Harbour-Lantern-42"


def _create(actor: User, **overrides: object) -> User:
    kwargs: dict[str, object] = {
        "username": "newbie",
        "first_name": " Ana ",
        "last_name": "Lopez",
        "email": "ana@example.org",
        "password": PASSWORD,
        "roles": Role.objects.filter(slug="billing_specialist"),
        "locations": [],
    }
    kwargs.update(overrides)
    return services.user_create(actor=actor, **kwargs)


def test_user_create_refuses_an_actor_without_manage_users(frontdesk):
    with pytest.raises(PermissionError):
        _create(frontdesk)
    assert not User.objects.filter(username="newbie").exists()


def test_user_create_trims_names_and_hashes_the_password(persona):
    user = _create(persona("sysadmin"))

    assert user.first_name == "Ana"
    assert user.password != PASSWORD
    assert user.check_password(PASSWORD)
    assert user.can("manage_coverage")


def test_user_create_reports_password_problems_on_the_password_field(persona):
    with pytest.raises(ValidationError) as error:
        _create(persona("sysadmin"), password="lopez-lopez")

    assert "password" in error.value.message_dict
    assert any("12 characters" in m for m in error.value.message_dict["password"])


def test_user_update_refuses_an_actor_without_manage_users(frontdesk):
    target = UserFactory(username="target")

    with pytest.raises(PermissionError):
        services.user_update(
            actor=frontdesk,
            user=target,
            first_name="X",
            last_name="Y",
            email="",
            is_active=True,
            roles=[],
            locations=[],
        )


def test_user_update_audits_changed_field_names_only(persona):
    admin = persona("sysadmin")
    target = UserFactory(username="target", first_name="Old", email="old@example.org")

    services.user_update(
        actor=admin,
        user=target,
        first_name="New",
        last_name=target.last_name,
        email="new@example.org",
        is_active=True,
        roles=[],
        locations=[],
    )

    event = AuditEvent.objects.get(event="user.update")
    assert event.fields == ["email", "first_name"]
    assert "new@example.org" not in str(event.__dict__)


def test_role_change_updates_capabilities_at_once(persona, frontdesk):
    services.user_set_roles(
        actor=persona("sysadmin"), user=frontdesk, roles=Role.objects.filter(slug="privacy_officer")
    )

    assert frontdesk.can("view_audit")
    assert not frontdesk.can("view_patients")


def test_api_token_names_are_trimmed_and_limited(frontdesk):
    token, _ = services.api_token_create(actor=frontdesk, user=frontdesk, name="  lab   feed ")

    assert token.name == "lab feed"
    with pytest.raises(ValidationError) as error:
        services.api_token_create(actor=frontdesk, user=frontdesk, name="x" * 81)
    assert "name" in error.value.message_dict


def test_totp_verify_refuses_another_users_device(frontdesk, officemanager):
    device = TOTPDeviceFactory(user=officemanager)

    with pytest.raises(ValidationError):
        services.totp_verify(actor=frontdesk, device=device, token=totp_code(device))


def test_totp_confirm_refuses_an_already_confirmed_device(officemanager):
    device = TOTPDeviceFactory(user=officemanager)

    with pytest.raises(ValidationError):
        services.totp_device_confirm(actor=officemanager, device=device, token=totp_code(device))
