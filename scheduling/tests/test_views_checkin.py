"""The front desk's check-in board: today in time order with the patient's date of birth and
alerts, arrival and wait times, late arrivals, insurance and copay at check-in, rooming, check-out
and no-shows; refreshed by a background poll that does not keep the session alive."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from core.models import Location
from patients.models import Patient
from patients.tests.factories import PatientFactory, PatientFlagFactory
from scheduling.models import Appointment, AppointmentStatus, AppointmentType, Practitioner
from scheduling.tests.factories import (
    AppointmentFactory,
    AppointmentTypeFactory,
    ResourceFactory,
)

pytestmark = pytest.mark.django_db

BOARD = "/schedule/check-in/"
ON_BOARD = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "checkin-board"}
S = AppointmentStatus


@pytest.fixture
def client_as(persona: Callable[[str], User], login_client: Callable[..., Client]) -> Any:
    return lambda name: login_client(persona(name))


@pytest.fixture
def now(at: Any, monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """It is Monday 10:00 at the clinic."""
    moment = at("10:00")
    monkeypatch.setattr(timezone, "now", lambda: moment)
    return moment


@pytest.fixture
def day(
    now: dt.datetime, at: Any, main_clinic: Location, ana: Practitioner, ben: Practitioner,
    follow_up: AppointmentType, patient: Patient,
) -> dict[str, Appointment]:  # fmt: skip
    """The morning: one waiting since 09:48 (arrived late for 09:30), one late (Ben's 09:45),
    one expected at 11:00."""

    def make(hhmm: str, family: str, who_sees: Practitioner = ana, **values: Any) -> Appointment:
        who = (
            patient
            if family == "Hoeger"
            else PatientFactory(home_location=main_clinic, family_name=family, given_name="Sam")
        )
        return AppointmentFactory(
            location=main_clinic,
            patient=who,
            appointment_type=follow_up,
            start=at(hhmm),
            practitioners=[who_sees],
            **values,
        )

    return {
        "waiting": make("09:30", "Hoeger", status=S.ARRIVED, arrived_at=at("09:48")),
        "late": make("09:45", "Late", who_sees=ben),
        "expected": make("11:00", "Soon"),
    }


def board(client: Client, location: Location) -> str:
    return str(client.get(f"{BOARD}?location={location.public_id}").content.decode())


def test_the_board_lists_today_in_time_order_with_dob_and_alerts(
    client_as: Any, day: dict[str, Appointment], patient: Patient, main_clinic: Location
) -> None:
    PatientFlagFactory(patient=patient, kind="interpreter", severity="info")

    html = board(client_as("frontdesk"), main_clinic)

    assert html.index("Hoeger, Buster") < html.index("Late, Sam") < html.index("Soon, Sam")
    assert f"DOB {patient.birth_date:%m/%d/%Y}" in html
    assert "Interpreter needed" in html
    assert "Ana Núñez, NP" in html
    assert "Ben Okafor, MD" in html
    assert "Follow-up" in html


def test_waiting_patients_show_arrival_lateness_and_wait(
    client_as: Any, day: dict[str, Appointment], main_clinic: Location
) -> None:
    html = board(client_as("frontdesk"), main_clinic)

    assert "09:48" in html
    assert "arrived 18 min late" in html
    assert '<strong class="wait">12 min</strong>' in html


def test_patients_not_here_after_their_start_are_marked_late(
    client_as: Any, day: dict[str, Appointment], main_clinic: Location
) -> None:
    html = board(client_as("frontdesk"), main_clinic)

    late_row = html.split(f'id="row-{day["late"].public_id}"')[1].split("</tr>")[0]
    expected_row = html.split(f'id="row-{day["expected"].public_id}"')[1].split("</tr>")[0]
    assert "Late 15 min" in late_row
    assert "No-show" in late_row
    assert "Late" not in expected_row
    assert "No-show" not in expected_row


def test_the_board_polls_every_30_seconds_as_background_work(
    client_as: Any, day: dict[str, Appointment], main_clinic: Location
) -> None:
    html = board(client_as("frontdesk"), main_clinic)

    poller = html.split('id="checkin-poll"')[1].split(">")[0]
    assert 'hx-trigger="every 30s"' in poller
    assert 'hx-target="#checkin-board"' in poller
    assert """hx-headers='{"X-Background-Poll": "1"}'""" in poller
    assert "X-Background-Poll" not in html.split('id="checkin-board"')[1]


def test_the_poll_returns_only_the_board(
    client_as: Any, day: dict[str, Appointment], main_clinic: Location
) -> None:
    response = client_as("frontdesk").get(
        f"{BOARD}?location={main_clinic.public_id}", HTTP_X_BACKGROUND_POLL="1", **ON_BOARD
    )

    html = response.content.decode()
    assert "<html" not in html
    assert "Hoeger, Buster" in html


def test_checking_in_from_the_board_with_insurance_and_copay(
    client_as: Any, day: dict[str, Appointment], main_clinic: Location
) -> None:
    arriving = day["late"]

    response = client_as("frontdesk").post(
        f"/schedule/appointments/{arriving.public_id}/check-in/",
        {"insurance_verified": "on", "copay_collected": "30"},
        **ON_BOARD,
    )

    arriving.refresh_from_db()
    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "scheduleChanged"
    assert (arriving.status, arriving.insurance_verified) == (S.ARRIVED, True)
    assert arriving.copay_collected == Decimal("30.00")
    assert "Checked in: Late, Sam" in html
    assert "copay $30.00" in html
    assert "<html" not in html


def test_a_wrong_copay_on_the_board_is_shown_on_its_row(
    client_as: Any, day: dict[str, Appointment], main_clinic: Location
) -> None:
    arriving = day["late"]

    response = client_as("frontdesk").post(
        f"/schedule/appointments/{arriving.public_id}/check-in/",
        {"copay_collected": "abc"},
        **ON_BOARD,
    )

    row = response.content.decode().split(f'id="row-{arriving.public_id}"')[1].split("</tr>")[0]
    arriving.refresh_from_db()
    assert response.status_code == 422
    assert "Give the amount as a number" in row
    assert 'aria-invalid="true"' in row
    assert arriving.status == S.BOOKED


def test_rooming_checking_out_and_no_show_from_the_board(
    client_as: Any, day: dict[str, Appointment], main_clinic: Location
) -> None:
    room = ResourceFactory(location=main_clinic, name="Exam room 9")
    client = client_as("frontdesk")
    waiting, late = day["waiting"], day["late"]

    client.post(
        f"/schedule/appointments/{waiting.public_id}/room/",
        {"room": str(room.public_id)},
        **ON_BOARD,
    )
    roomed = board(client, main_clinic)
    client.post(f"/schedule/appointments/{waiting.public_id}/check-out/", **ON_BOARD)
    client.post(f"/schedule/appointments/{late.public_id}/no-show/", **ON_BOARD)

    waiting.refresh_from_db()
    late.refresh_from_db()
    assert "Exam room 9" in roomed
    assert "waited 12 min" in roomed
    assert waiting.status == S.COMPLETED
    assert late.status == S.NO_SHOW


def test_a_viewer_sees_the_board_without_actions(
    client_as: Any, day: dict[str, Appointment], main_clinic: Location
) -> None:
    html = board(client_as("billing"), main_clinic)

    assert "Hoeger, Buster" in html
    assert "/check-in/" not in html.split('id="checkin-board"')[1]


def test_the_board_reads_in_a_fixed_number_of_queries(
    client_as: Any, now: dt.datetime, at: Any, main_clinic: Location, ana: Practitioner,
    follow_up: AppointmentType, django_assert_num_queries: Any,
) -> None:  # fmt: skip
    client = client_as("frontdesk")
    short = AppointmentTypeFactory(code="quick", duration_minutes=5)

    def fill(count: int, first: int = 0) -> None:
        for n in range(first, first + count):
            who = PatientFactory(home_location=main_clinic)
            PatientFlagFactory(patient=who)
            AppointmentFactory(
                location=main_clinic,
                patient=who,
                appointment_type=short,
                start=at("08:00") + dt.timedelta(minutes=5 * n),
                practitioners=[ana],
                status=[S.BOOKED, S.ARRIVED, S.COMPLETED][n % 3],
                arrived_at=at("08:00") if n % 3 else None,
            )

    fill(5)
    board(client, main_clinic)
    with CaptureQueriesContext(connection) as few:
        board(client, main_clinic)
    fill(55, first=5)
    with django_assert_num_queries(len(few.captured_queries)):
        html = board(client, main_clinic)
    assert html.count('class="board-row') == 60


def test_board_access(client: Client, client_as: Any, main_clinic: Location) -> None:
    assert client.get(BOARD).status_code == 302
    assert client_as("servicedirector").get(BOARD).status_code == 403
    assert client_as("outsider").get(f"{BOARD}?location={main_clinic.public_id}").status_code == 404
    assert client_as("frontdesk").post(BOARD).status_code == 405
