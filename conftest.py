"""Shared fixtures: one persona per role at the main clinic, and one user at another location.

Named personas read like the people who use the system (healthchecks' Alice/Bob/Charlie style):
`frontdesk` is a patient service representative at Main Street Clinic, `outsider` a representative
at Riverside only, and so on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.test import Client

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from core.models import Location
from core.tests.factories import LocationFactory

PERSONA_ROLES = {
    "frontdesk": "patient_service_rep",
    "officeadmin": "medical_office_admin",
    "officemanager": "medical_office_manager",
    "billing": "billing_specialist",
    "psmanager": "patient_services_manager",
    "servicedirector": "service_director",
    "meddirector": "medical_director",
    "privacy": "privacy_officer",
    "sysadmin": "system_admin",
}


def _audit_truncate_trigger(enabled: bool) -> None:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE audit_auditevent "
                f"{'ENABLE' if enabled else 'DISABLE'} TRIGGER audit_auditevent_no_truncate"
            )


@pytest.fixture(autouse=True)
def _transactional_db_housekeeping(request: pytest.FixtureRequest) -> Iterator[None]:
    """Transactional tests (live server, concurrency) end with a flush that TRUNCATEs every
    table: that takes the migration-seeded roles along, and on PostgreSQL the audit table's
    append-only trigger refuses it. Re-seed the roles before, and switch the TRUNCATE trigger
    off for the flush only (and on again at the next test's start)."""
    if not {"transactional_db", "live_server"} & set(request.fixturenames):
        yield
        return
    from accounts.models import Role
    from accounts.roles import sync_roles

    request.getfixturevalue("transactional_db")
    sync_roles(Role)
    _audit_truncate_trigger(enabled=True)
    yield
    _audit_truncate_trigger(enabled=False)


@pytest.fixture
def main_clinic(db: None) -> Location:
    return LocationFactory(code="main", name="Main Street Clinic")


@pytest.fixture
def riverside(db: None) -> Location:
    return LocationFactory(code="riverside", name="Riverside Hospital")


@pytest.fixture
def persona(main_clinic: Location, riverside: Location) -> Callable[[str], User]:
    """persona("frontdesk") -> the user for that role at Main Street Clinic."""

    def make(name: str) -> User:
        if name == "outsider":
            return UserFactory(
                username="outsider", roles=["patient_service_rep"], locations=[riverside]
            )
        if name == "noroles":
            return UserFactory(username="noroles", locations=[main_clinic])
        return UserFactory(username=name, roles=[PERSONA_ROLES[name]], locations=[main_clinic])

    return make


@pytest.fixture
def frontdesk(persona: Callable[[str], User]) -> User:
    return persona("frontdesk")


@pytest.fixture
def officemanager(persona: Callable[[str], User]) -> User:
    return persona("officemanager")


@pytest.fixture
def privacy(persona: Callable[[str], User]) -> User:
    return persona("privacy")


@pytest.fixture
def outsider(persona: Callable[[str], User]) -> User:
    return persona("outsider")


@pytest.fixture
def login_client(settings: object) -> Callable[[User], Client]:
    """A test client signed in as `user`, with two-factor satisfied where the role needs it."""

    def make(user: User, verified: bool = True) -> Client:
        client = Client()
        client.force_login(user)
        if verified and user.requires_2fa:
            from django_otp import DEVICE_ID_SESSION_KEY
            from django_otp.plugins.otp_totp.models import TOTPDevice

            device, _ = TOTPDevice.objects.get_or_create(
                user=user, name="test", defaults={"confirmed": True}
            )
            session = client.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()
        return client

    return make


__all__ = ["PASSWORD"]
