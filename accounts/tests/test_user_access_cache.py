"""A user object reads its roles and its locations once each, and reads them again when they
change through it."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Role, User
from core.models import Location
from core.tests.factories import LocationFactory

pytestmark = pytest.mark.django_db


def fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


def test_roles_are_read_once_for_capabilities_slugs_names_and_2fa(
    frontdesk: User, django_assert_num_queries: Any
) -> None:
    user = fresh(frontdesk)
    role = Role.objects.get(slug="patient_service_rep")

    with django_assert_num_queries(1):
        assert user.capability_set == frozenset(role.capabilities)
        assert user.role_slugs == "patient_service_rep"
        assert user.role_names == [role.name]
        assert user.requires_2fa is role.requires_2fa


def test_locations_are_read_once_for_ids_and_rows(
    frontdesk: User, main_clinic: Location, django_assert_num_queries: Any
) -> None:
    user = fresh(frontdesk)
    closed = LocationFactory(code="closed", name="A closed clinic", is_active=False)
    user.locations.add(closed)
    user = fresh(user)

    with django_assert_num_queries(1):
        assert user.location_ids == {main_clinic.pk, closed.pk}
        assert user.location_list == [closed, main_clinic]  # by name, inactive ones too


def test_changing_roles_through_the_user_object_is_seen_at_once(frontdesk: User) -> None:
    user = fresh(frontdesk)
    assert user.role_slugs == "patient_service_rep"
    billing = Role.objects.get(slug="billing_specialist")

    user.roles.set([billing])
    assert user.capability_set == frozenset(billing.capabilities)
    assert user.role_slugs == "billing_specialist"

    user.roles.clear()
    assert user.capability_set == frozenset()
    assert user.role_names == []


def test_changing_locations_through_the_user_object_is_seen_at_once(
    frontdesk: User, main_clinic: Location, riverside: Location
) -> None:
    user = fresh(frontdesk)
    assert user.location_ids == {main_clinic.pk}

    user.locations.add(riverside)
    assert user.location_ids == {main_clinic.pk, riverside.pk}
    assert user.location_list == [main_clinic, riverside]

    user.locations.remove(main_clinic)
    assert user.location_ids == {riverside.pk}


def test_forget_access_drops_what_was_read(frontdesk: User, riverside: Location) -> None:
    user = fresh(frontdesk)
    assert user.capability_set
    assert user.location_ids
    # changed behind the object's back (another object, another process)
    Role.objects.get(slug="patient_service_rep").users.remove(fresh(user))
    User.locations.through.objects.create(user_id=user.pk, location_id=riverside.pk)
    assert user.can("view_schedule")  # what it read stays for its life...

    user.forget_access()

    assert not user.can("view_schedule")  # ...until it forgets it
    assert riverside.pk in user.location_ids
