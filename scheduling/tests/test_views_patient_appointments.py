"""The patient page's appointments (a scheduling template tag, since patients does not import
scheduling) and the front desk's check-in link on the home page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from core.models import Location
from patients.models import Patient
from scheduling.models import AppointmentStatus, AppointmentType, Practitioner
from scheduling.tests.factories import AppointmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_as(persona: Callable[[str], User], login_client: Callable[..., Client]) -> Any:
    return lambda name: login_client(persona(name))


def detail(client: Client, patient: Patient) -> str:
    return str(client.get(f"/patients/{patient.public_id}/").content.decode())


def test_the_patient_page_lists_upcoming_and_past_appointments_with_actions(
    client_as: Any, book: Any, at: Any, patient: Patient, main_clinic: Location,
    follow_up: AppointmentType, ana: Practitioner, monday: dt.date,
) -> None:  # fmt: skip
    coming = book(at("09:00"))
    AppointmentFactory(
        patient=patient,
        location=main_clinic,
        appointment_type=follow_up,
        practitioners=[ana],
        start=dt.datetime(2024, 3, 4, 14, tzinfo=dt.UTC),
        status=AppointmentStatus.COMPLETED,
    )

    html = detail(client_as("frontdesk"), patient)

    section = html.split('id="appointments"')[1].split("</section>")[0]
    upcoming, past = section.split("Past")
    assert f"{monday:%a %m/%d/%Y} 09:00\u201309:30" in upcoming
    assert f"/schedule/appointments/{coming.public_id}/#reschedule" in upcoming
    assert f"/schedule/appointments/{coming.public_id}/#cancel" in upcoming
    assert "Mon 03/04/2024 09:00\u201309:30" in past
    assert "Completed" in past
    assert f"/schedule/day/for/{patient.public_id}/" in section


def test_a_role_that_may_see_the_schedule_but_not_book_gets_no_book_button(
    client_as: Any, book: Any, at: Any, patient: Patient
) -> None:
    book(at("09:00"))

    html = detail(client_as("meddirector"), patient)

    assert 'id="appointments"' in html
    assert "Hoeger" in html
    assert "Book an appointment" not in html


def test_booking_and_moving_links_need_the_scheduling_capability(
    client_as: Any, book: Any, at: Any, patient: Patient
) -> None:
    coming = book(at("09:00"))

    html = detail(client_as("billing"), patient)

    assert f'/schedule/appointments/{coming.public_id}/"' in html
    assert "#reschedule" not in html
    assert "/schedule/day/for/" not in html


def test_the_home_page_links_the_front_desk_to_todays_board_with_counts(
    client_as: Any, main_clinic: Location, follow_up: AppointmentType, ana: Practitioner
) -> None:
    today = timezone.now()
    AppointmentFactory(
        location=main_clinic, appointment_type=follow_up, practitioners=[ana], start=today
    )

    frontdesk = client_as("frontdesk").get("/").content.decode()
    billing = client_as("billing").get("/").content.decode()

    assert "Today's check-in board" in frontdesk
    assert "1 expected · 0 waiting" in frontdesk
    assert "Today's check-in board" not in billing


def test_the_navigation_offers_schedule_and_check_in_by_capability(client_as: Any) -> None:
    frontdesk = client_as("frontdesk").get("/").content.decode()
    billing = client_as("billing").get("/").content.decode()
    director = client_as("servicedirector").get("/").content.decode()

    assert 'href="/schedule/"' in frontdesk
    assert 'href="/schedule/check-in/"' in frontdesk
    assert 'href="/schedule/"' in billing
    assert 'href="/schedule/check-in/"' not in billing.split("</nav>")[0]
    assert "/schedule/" not in director
