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

# The browser fixtures (one Playwright and one Chromium for every app's browser tests).
pytest_plugins = ["tests.browser.fixtures"]

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


@pytest.fixture(autouse=True, scope="session")
def _audit_flush_on_postgresql() -> Iterator[None]:
    """Transactional tests (live server, concurrency) end with a flush that TRUNCATEs every
    table; on PostgreSQL the audit table's append-only trigger refuses that. The flush runs in
    one transaction, so `SET LOCAL session_replication_role = replica` lets it through for
    that transaction only: the trigger stays on for everything else."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush

    def sql_flush(
        self: DatabaseOperations, style: object, tables: object, **kw: object
    ) -> list[str]:
        statements = original(self, style, tables, **kw)
        return ["SET LOCAL session_replication_role = replica", *statements] if statements else []

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


@pytest.fixture(autouse=True)
def _reseed_roles_for_transactional_tests(request: pytest.FixtureRequest) -> None:
    """The flush after a transactional test takes the migration-seeded roles along."""
    marker = request.node.get_closest_marker("django_db")
    transactional_marker = marker is not None and bool(
        marker.kwargs.get("transaction") or (marker.args and marker.args[0])
    )
    if transactional_marker or {"transactional_db", "live_server"} & set(request.fixturenames):
        from accounts.models import Role
        from accounts.roles import sync_roles

        request.getfixturevalue("transactional_db")
        sync_roles(Role)
        # ...and the billing code tables (places of service, modifiers, CARC/RARC).
        from django.apps import apps

        from billing.models import PlaceOfService
        from billing.reference_data import load_reference_codes

        if not PlaceOfService.objects.exists():
            load_reference_codes(apps, None)


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
