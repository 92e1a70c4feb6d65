from __future__ import annotations

from collections.abc import Callable

import pytest

from accounts.models import User
from core.models import Location
from dashboard.selectors import home_page_for_user
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("persona_name", "sections"),
    [
        ("frontdesk", ["search", "recent"]),
        ("officeadmin", ["search", "recent", "operations"]),
        ("officemanager", ["search", "recent", "operations"]),
        ("billing", ["search"]),
        ("servicedirector", ["operations"]),
        ("meddirector", ["search", "operations"]),
        ("privacy", ["privacy", "operations"]),
        ("sysadmin", ["users", "operations"]),
        ("noroles", []),
    ],
)
def test_home_page_parts_follow_the_users_capabilities(
    persona: Callable[[str], User], persona_name: str, sections: list[str]
) -> None:
    page = home_page_for_user(user=persona(persona_name))

    assert page.sections == sections
    assert (page.counts is not None) == ("operations" in sections)
    assert (page.recent_registrations is not None) == ("recent" in sections)
    assert (page.break_glass_last_7_days is not None) == ("privacy" in sections)
    assert (page.active_users is not None) == ("users" in sections)


def test_recent_registrations_on_the_home_page_are_the_users_locations_only(
    persona: Callable[[str], User], main_clinic: Location, riverside: Location
) -> None:
    mine = PatientFactory.create(home_location=main_clinic)
    PatientFactory.create(home_location=riverside)

    page = home_page_for_user(user=persona("frontdesk"))

    assert page.recent_registrations == [mine]
