"""User administration screens: list, create, edit (system administrators only)."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from accounts.models import Role, User
from accounts.tests.factories import TOTPDeviceFactory, UserFactory
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

LIST = reverse("accounts:user_list")
CREATE = reverse("accounts:user_create")
NEW_PASSWORD = "Quiet-Harbour-Lantern-42"


def _edit_url(user: User) -> str:
    return reverse("accounts:user_edit", args=[user.public_id])


@pytest.fixture
def sysadmin(persona):
    return persona("sysadmin")


@pytest.fixture
def admin_client(sysadmin, login_client):
    return login_client(sysadmin)


def _role_id(slug: str) -> int:
    return Role.objects.get(slug=slug).pk


# --- Access matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize("url_name", ["user_list", "user_create"])
def test_system_admin_reaches_the_user_screens(admin_client, url_name):
    assert admin_client.get(reverse(f"accounts:{url_name}")).status_code == 200


def test_system_admin_reaches_a_user_record(admin_client, frontdesk):
    response = admin_client.get(_edit_url(frontdesk))

    assert response.status_code == 200
    assert 'value="Test"' in response.content.decode()


@pytest.mark.parametrize("name", ["frontdesk", "officemanager", "privacy"])
def test_users_without_manage_users_get_403(persona, login_client, name):
    client = login_client(persona(name))
    target = UserFactory(username="target")

    assert client.get(LIST).status_code == 403
    assert client.get(CREATE).status_code == 403
    assert client.get(_edit_url(target)).status_code == 403
    assert client.post(_edit_url(target), {"first_name": "X"}).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client, frontdesk):
    for url in (LIST, CREATE, _edit_url(frontdesk)):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("accounts:login"))


def test_wrong_methods_get_405(admin_client, frontdesk):
    assert admin_client.post(LIST).status_code == 405
    assert admin_client.delete(CREATE).status_code == 405
    assert admin_client.put(_edit_url(frontdesk)).status_code == 405


def test_an_unknown_user_id_is_404(admin_client):
    assert admin_client.get(reverse("accounts:user_edit", args=[uuid.uuid4()])).status_code == 404


def test_system_admin_at_another_location_still_manages_every_user(riverside, login_client):
    # User administration is not location-scoped: one admin team serves every site.
    admin_elsewhere = UserFactory(username="admin2", roles=["system_admin"], locations=[riverside])
    target = UserFactory(username="target")

    assert login_client(admin_elsewhere).get(_edit_url(target)).status_code == 200


# --- List ---------------------------------------------------------------------------------------


def test_user_list_shows_roles_locations_active_and_two_factor(
    admin_client, frontdesk, officemanager, main_clinic
):
    TOTPDeviceFactory(user=officemanager)
    UserFactory(username="gone", is_active=False)

    html = admin_client.get(LIST).content.decode()

    row = html.split(">frontdesk</a>", 1)[1].split("</tr>", 1)[0]
    assert "Patient service representative" in row
    assert main_clinic.name in row
    assert "active" in row
    assert "not enrolled" in row
    manager_row = html.split(">officemanager</a>", 1)[1].split("</tr>", 1)[0]
    assert "enrolled" in manager_row
    assert "not enrolled" not in manager_row
    gone_row = html.split(">gone</a>", 1)[1].split("</tr>", 1)[0]
    assert "deactivated" in gone_row


def test_user_list_query_count_does_not_grow_with_users(
    admin_client, main_clinic, django_assert_max_num_queries
):
    for n in range(15):
        UserFactory(username=f"staff{n}", roles=["billing_specialist"], locations=[main_clinic])

    with django_assert_max_num_queries(12):
        response = admin_client.get(LIST)

    assert response.content.decode().count("/accounts/users/") >= 15


# --- Create -------------------------------------------------------------------------------------


def _create_form(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "username": "jdoe",
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jdoe@example.org",
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
        "roles": [_role_id("patient_service_rep")],
        "locations": [],
    }
    data.update(overrides)
    return data


def test_admin_creates_a_user_with_roles_and_locations(admin_client, sysadmin, main_clinic):
    response = admin_client.post(CREATE, _create_form(locations=[main_clinic.pk]))

    assert response.status_code == 302
    assert response.url == LIST
    user = User.objects.get(username="jdoe")
    assert user.check_password(NEW_PASSWORD)
    assert user.role_slugs == "patient_service_rep"
    assert list(user.locations.all()) == [main_clinic]
    event = AuditEvent.objects.get(event="user.create")
    assert (event.user_id, event.object_id) == (sysadmin.pk, str(user.public_id))
    assert NEW_PASSWORD not in str(event.__dict__)


def test_create_refuses_a_password_shorter_than_12_characters(admin_client):
    response = admin_client.post(
        CREATE, _create_form(password="Short-pw1", password_confirm="Short-pw1")
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_password_error"' in html
    assert "at least 12 characters" in html
    assert not User.objects.filter(username="jdoe").exists()


def test_create_refuses_a_common_or_name_like_password(admin_client):
    response = admin_client.post(
        CREATE, _create_form(password="password1234", password_confirm="password1234")
    )

    assert "too common" in response.content.decode()
    assert not User.objects.filter(username="jdoe").exists()


def test_create_refuses_mismatched_passwords_and_a_taken_username(admin_client, frontdesk):
    response = admin_client.post(
        CREATE, _create_form(username="FrontDesk", password_confirm="Something-Else-123")
    )

    html = response.content.decode()
    assert "The two passwords differ." in html
    assert User.objects.filter(username__iexact="frontdesk").count() == 1


def test_create_names_the_taken_username(admin_client, frontdesk):
    response = admin_client.post(CREATE, _create_form(username="FRONTDESK"))

    assert 'id="id_username_error"' in response.content.decode()
    assert "already exists" in response.content.decode()


def test_create_needs_at_least_one_role(admin_client):
    response = admin_client.post(CREATE, _create_form(roles=[]))

    assert "Choose at least one role." in response.content.decode()
    assert not User.objects.filter(username="jdoe").exists()


# --- Edit ---------------------------------------------------------------------------------------


def _edit_form(user: User, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "roles": [r.pk for r in user.roles.all()],
        "locations": [loc.pk for loc in user.locations.all()],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


def test_admin_changes_roles_and_it_is_audited(admin_client, sysadmin, frontdesk):
    response = admin_client.post(
        _edit_url(frontdesk), _edit_form(frontdesk, roles=[_role_id("billing_specialist")])
    )

    assert response.status_code == 302
    frontdesk.refresh_from_db()
    assert frontdesk.role_slugs == "billing_specialist"
    event = AuditEvent.objects.get(event="user.role_change")
    assert event.user_id == sysadmin.pk
    assert event.reason == "patient_service_rep -> billing_specialist"


def test_admin_changes_locations_and_it_is_audited(admin_client, frontdesk, riverside):
    admin_client.post(_edit_url(frontdesk), _edit_form(frontdesk, locations=[riverside.pk]))

    assert list(frontdesk.locations.all()) == [riverside]
    assert AuditEvent.objects.get(event="user.location_change").reason == "main -> riverside"


def test_deactivating_a_user_ends_their_session(admin_client, frontdesk, login_client):
    # given the front-desk user is signed in
    their_client = login_client(frontdesk)
    assert their_client.get(reverse("accounts:tokens")).status_code == 200

    # when the admin deactivates them
    admin_client.post(_edit_url(frontdesk), _edit_form(frontdesk, is_active=""))

    # then their session no longer works, and the change is audited
    frontdesk.refresh_from_db()
    assert frontdesk.is_active is False
    assert their_client.get(reverse("accounts:tokens")).status_code == 302
    assert AuditEvent.objects.get(event="user.deactivate").fields == ["is_active"]


def test_saving_without_changes_writes_no_audit_rows(admin_client, frontdesk):
    before = AuditEvent.objects.count()

    response = admin_client.post(_edit_url(frontdesk), _edit_form(frontdesk))

    assert response.status_code == 302
    assert AuditEvent.objects.count() == before


def test_admin_cannot_deactivate_themselves(admin_client, sysadmin):
    response = admin_client.post(_edit_url(sysadmin), _edit_form(sysadmin, is_active=""))

    assert response.status_code == 200
    assert "You cannot deactivate your own account." in response.content.decode()
    sysadmin.refresh_from_db()
    assert sysadmin.is_active is True


def test_admin_cannot_remove_their_own_admin_role(admin_client, sysadmin):
    response = admin_client.post(
        _edit_url(sysadmin), _edit_form(sysadmin, roles=[_role_id("privacy_officer")])
    )

    assert "You cannot remove your own user-management role" in response.content.decode()
    assert User.objects.get(pk=sysadmin.pk).role_slugs == "system_admin"
    assert not AuditEvent.objects.filter(event="user.role_change").exists()


def test_edit_names_a_bad_email(admin_client, frontdesk):
    response = admin_client.post(_edit_url(frontdesk), _edit_form(frontdesk, email="not-an-email"))

    assert 'id="id_email_error"' in response.content.decode()
    assert response.status_code == 200
