from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from core.models import Location
from patients import services
from patients.models import Patient
from patients.tests.factories import CoverageFactory, PatientFactory, PatientFlagFactory

pytestmark = pytest.mark.django_db

URL = reverse("dashboard:home")


@pytest.fixture
def client_as(
    persona: Callable[[str], User], login_client: Callable[[User], Client]
) -> Callable[[str], Client]:
    def make(name: str) -> Client:
        return login_client(persona(name))

    return make


@pytest.fixture
def clinic(main_clinic: Location, riverside: Location) -> dict[str, Patient]:
    """Three patients at Main Street (one registered last month), one at Riverside."""
    old = PatientFactory.create(home_location=main_clinic, family_name="Anders")
    Patient.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=40))
    new = PatientFactory.create(home_location=main_clinic, family_name="Brooks")
    newest = PatientFactory.create(home_location=main_clinic, family_name="Chen")
    river = PatientFactory.create(home_location=riverside, family_name="Rivera")
    PatientFlagFactory.create(patient=new, kind="fall_risk")
    PatientFlagFactory.create(patient=newest, kind="fall_risk")
    PatientFlagFactory.create(patient=newest, kind="behavioural", severity="critical")
    CoverageFactory.create(patient=new)
    CoverageFactory.create(patient=old, verified_at=timezone.now())
    return {"old": old, "new": new, "newest": newest, "river": river}


def number(html: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}">(\d+)<', html)
    assert match, f"no #{element_id} on the page"
    return int(match.group(1))


def test_front_desk_home_starts_with_search_and_register(
    client_as: Callable[[str], Client], clinic: dict[str, Patient]
) -> None:
    html = client_as("frontdesk").get(URL).content.decode()

    assert "data-search-box" in html
    assert re.search(
        r"<input[^>]*data-search-box[^>]*autofocus|<input[^>]*autofocus[^>]*data-search-box", html
    )
    assert html.index("data-search-box") < html.index("Recently registered")
    assert reverse("patients:register") in html
    assert html.index("Chen") < html.index("Brooks") < html.index("Anders")
    assert "Rivera" not in html
    assert 'id="count-patients"' not in html


def test_managers_see_real_counts_of_what_exists_now(
    client_as: Callable[[str], Client], clinic: dict[str, Patient]
) -> None:
    html = client_as("officemanager").get(URL).content.decode()

    assert number(html, "count-patients") == 4
    assert number(html, "count-today") == 3
    assert number(html, "count-week") == 3
    assert number(html, "count-alerts") == 3
    assert number(html, "count-unverified") == 1
    assert "Main Street Clinic" in html
    assert "Riverside Hospital" in html
    assert "Behavioural alert" in html


def test_a_service_director_sees_counts_but_no_patients(
    client_as: Callable[[str], Client], clinic: dict[str, Patient]
) -> None:
    html = client_as("servicedirector").get(URL).content.decode()

    assert number(html, "count-patients") == 4
    assert "data-search-box" not in html
    assert "Brooks" not in html


def test_privacy_officer_sees_the_audit_report_and_break_glass_count(
    client_as: Callable[[str], Client], outsider: User, clinic: dict[str, Patient]
) -> None:
    services.break_glass_grant(
        actor=outsider, patient=clinic["new"], reason="Emergency transfer in"
    )

    html = client_as("privacy").get(URL).content.decode()

    assert reverse("audit:report") in html
    assert number(html, "break-glass-count") == 1
    assert "data-search-box" not in html


def test_system_administrator_sees_the_user_count(client_as: Callable[[str], Client]) -> None:
    html = client_as("sysadmin").get(URL).content.decode()

    assert number(html, "active-users-count") == User.objects.filter(is_active=True).count()
    assert "data-search-box" not in html


def test_a_user_without_roles_is_told_what_to_do(client_as: Callable[[str], Client]) -> None:
    html = client_as("noroles").get(URL).content.decode()

    assert "no roles yet" in html


def test_anonymous_users_are_sent_to_sign_in(client: Client) -> None:
    assert client.get(URL)["Location"].startswith(reverse("accounts:login"))


def test_home_answers_405_to_post(client_as: Callable[[str], Client]) -> None:
    assert client_as("frontdesk").post(URL).status_code == 405


def _count_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("persona_name", ["frontdesk", "officemanager"])
def test_home_takes_a_fixed_number_of_queries(
    persona: Callable[[str], User],
    login_client: Callable[[User], Client],
    main_clinic: Location,
    persona_name: str,
    django_assert_max_num_queries: Callable[..., object],
) -> None:
    # given
    client = login_client(persona(persona_name))
    PatientFlagFactory.create(patient=PatientFactory.create(home_location=main_clinic))
    client.get(URL)
    few = _count_queries(client)

    # when
    for _ in range(15):
        patient = PatientFactory.create(home_location=main_clinic)
        PatientFlagFactory.create(patient=patient)
        CoverageFactory.create(patient=patient)
    many = _count_queries(client)

    # then
    assert many == few
    with django_assert_max_num_queries(few):
        client.get(URL)
