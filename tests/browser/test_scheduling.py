"""The scheduling screens in headless Chromium: book an empty slot from the day view, see a clash
named in the panel, move an appointment with the keyboard (and by dragging), check a patient in
on the board; axe finds no serious or critical problem on the day view or the board."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import pytest

from accounts.tests.factories import PASSWORD, UserFactory
from core.models import Location
from core.tests.factories import LocationFactory
from patients.models import Patient
from patients.tests.factories import PatientFactory, PatientFlagFactory
from scheduling.models import Appointment, AppointmentStatus, AppointmentType, Practitioner
from scheduling.tests.factories import (
    AppointmentFactory,
    AppointmentTypeFactory,
    AvailabilityRuleFactory,
    OpeningHoursFactory,
    PractitionerFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def at(day: dt.date, hhmm: str) -> dt.datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hours, minutes), tzinfo=NEW_YORK)


@pytest.fixture
def monday() -> dt.date:
    today = dt.datetime.now(tz=NEW_YORK).date()
    return today + dt.timedelta(days=14 + (7 - today.weekday()) % 7)


@pytest.fixture
def clinic() -> Location:
    clinic = LocationFactory(code="main", name="Main Street Clinic")
    for weekday in range(7):
        OpeningHoursFactory(location=clinic, weekday=weekday, opens=dt.time(8), closes=dt.time(18))
    return clinic


@pytest.fixture
def ana(clinic: Location) -> Practitioner:
    ana = PractitionerFactory(
        given_name="Ana", family_name="Núñez", credentials="NP", locations=[clinic]
    )
    AvailabilityRuleFactory(practitioner=ana, location=clinic, rrule="FREQ=DAILY")
    return ana


@pytest.fixture
def ben(clinic: Location) -> Practitioner:
    ben = PractitionerFactory(
        given_name="Ben", family_name="Okafor", credentials="MD", locations=[clinic]
    )
    AvailabilityRuleFactory(practitioner=ben, location=clinic, rrule="FREQ=DAILY")
    return ben


@pytest.fixture
def follow_up() -> AppointmentType:
    return AppointmentTypeFactory(
        code="follow-up", name="Follow-up", duration_minutes=30, color="#198754"
    )


@pytest.fixture
def joanna(clinic: Location) -> Patient:
    patient = PatientFactory(
        home_location=clinic,
        family_name="Smith",
        given_name="Joanna",
        birth_date=dt.date(1980, 4, 12),
    )
    PatientFlagFactory(patient=patient, kind="fall_risk", severity="warning")
    return patient


@pytest.fixture
def desk(page: Any, sign_in: Any, clinic: Location) -> Any:
    UserFactory(username="frontdesk", roles=["patient_service_rep"], locations=[clinic])
    sign_in("frontdesk", PASSWORD)
    return page


def open_day(page: Any, clinic: Location, day: dt.date) -> None:
    page.goto(f"/schedule/day/?location={clinic.public_id}&date={day.isoformat()}")
    page.wait_for_load_state("networkidle")


def wait_for_htmx(page: Any, selector: str) -> None:
    """Wait until htmx has bound its triggers to the element: content swapped in by htmx is
    processed a moment after it appears, and keys typed before that fire nothing."""
    page.wait_for_function(
        "(sel) => { const e = document.querySelector(sel);"
        " return !!(e && e['htmx-internal-data'] && e['htmx-internal-data'].initHash); }",
        arg=selector,
    )


def csp_errors(page: Any) -> list[str]:
    return [e for e in page.console_errors if "Content Security Policy" in e]


def test_booking_an_empty_slot_from_the_day_view(
    desk: Any, clinic: Location, ana: Practitioner, ben: Practitioner,
    follow_up: AppointmentType, joanna: Patient, monday: dt.date, axe: Any,
) -> None:  # fmt: skip
    # given the day view
    open_day(desk, clinic, monday)
    assert axe(desk) == []

    # when an empty slot is clicked, the patient found by typing and the type chosen
    desk.get_by_role("link", name="Book 09:30, Ana Núñez, NP").click()
    panel = desk.get_by_role("complementary", name="Appointment panel")
    panel.get_by_role("heading", name="Book an appointment").wait_for()
    search = panel.get_by_label("Find the patient")
    assert search.evaluate("el => document.activeElement === el")
    wait_for_htmx(desk, "#patient-query")
    search.press_sequentially("smith")
    choice = panel.get_by_role("radio", name=re.compile("Smith, Joanna"))
    choice.wait_for()
    assert choice.is_checked()
    panel.get_by_label("Appointment type").select_option(label="Follow-up")
    assert panel.get_by_label("Start").input_value() == f"{monday.isoformat()}T09:30"
    panel.get_by_role("button", name="Book", exact=True).click()

    # then the panel confirms, the calendar shows the block with the alert, and it is booked
    panel.get_by_role("status").filter(has_text="Booked: Smith, Joanna").wait_for()
    block = desk.locator(".appt", has_text="Smith, Joanna")
    block.wait_for()
    assert "Fall risk" in block.inner_text()
    appointment = Appointment.objects.get()
    assert appointment.start == at(monday, "09:30")
    assert list(appointment.practitioners.all()) == [ana]
    assert axe(desk) == []
    assert csp_errors(desk) == []


def test_booking_a_taken_time_shows_what_clashes(
    desk: Any, clinic: Location, ana: Practitioner, ben: Practitioner,
    follow_up: AppointmentType, joanna: Patient, monday: dt.date,
) -> None:  # fmt: skip
    # given Joanna already sees Ben at 09:30
    AppointmentFactory(
        patient=joanna, location=clinic, appointment_type=follow_up,
        start=at(monday, "09:30"), practitioners=[ben],
    )  # fmt: skip
    open_day(desk, clinic, monday)

    # when she is booked with Ana at the same time
    desk.get_by_role("link", name="Book 09:30, Ana Núñez, NP").click()
    panel = desk.get_by_role("complementary", name="Appointment panel")
    # the panel arrives by htmx: type only once its form is there, or the swap eats the text
    panel.get_by_role("heading", name="Book an appointment").wait_for()
    wait_for_htmx(desk, "#patient-query")
    panel.get_by_label("Find the patient").press_sequentially("smith, jo")
    panel.get_by_role("radio", name=re.compile("Smith, Joanna")).wait_for()
    panel.get_by_label("Appointment type").select_option(label="Follow-up")
    panel.get_by_role("button", name="Book", exact=True).click()

    # then the clash is named in the panel and nothing was booked
    alert = panel.get_by_role("alert").filter(has_text="This time cannot be booked")
    alert.wait_for()
    assert "The patient already has an appointment (Follow-up)" in alert.inner_text()
    assert "from 09:30 to 10:00" in alert.inner_text()
    assert Appointment.objects.count() == 1


def test_moving_an_appointment_with_the_keyboard(
    desk: Any, clinic: Location, ana: Practitioner, follow_up: AppointmentType,
    joanna: Patient, monday: dt.date,
) -> None:  # fmt: skip
    # given Joanna's appointment at 09:00
    appointment = AppointmentFactory(
        patient=joanna, location=clinic, appointment_type=follow_up,
        start=at(monday, "09:00"), practitioners=[ana],
    )  # fmt: skip
    open_day(desk, clinic, monday)

    # when the keyboard reaches the block (the grid's tab stop) and the arrow keys move in the grid
    desk.get_by_role("link", name="Book 08:00, Ana Núñez, NP").wait_for()
    desk.keyboard.press("Tab")
    while not desk.evaluate("document.activeElement.classList.contains('appt')"):
        desk.keyboard.press("Tab")
    desk.keyboard.press("ArrowDown")
    assert desk.evaluate("document.activeElement.getAttribute('aria-label')") == (
        "Book 09:30, Ana Núñez, NP"
    )
    desk.keyboard.press("ArrowUp")
    assert "Smith, Joanna" in desk.evaluate("document.activeElement.innerText")

    # and Enter opens its panel, where a new time is typed and Enter pressed
    desk.keyboard.press("Enter")
    panel = desk.get_by_role("complementary", name="Appointment panel")
    panel.get_by_role("heading", name="Follow-up").wait_for()
    start = panel.get_by_label("New start time")
    start.focus()
    start.fill(f"{monday.isoformat()}T11:00")
    start.press("Enter")

    # then it moved, and the calendar shows it at the new time
    panel.get_by_role("status").filter(has_text="Moved: Smith, Joanna").wait_for()
    desk.locator(".appt", has_text="11:00\u201311:30").wait_for()
    appointment.refresh_from_db()
    assert appointment.start == at(monday, "11:00")


def test_moving_an_appointment_by_dragging_it(
    desk: Any, clinic: Location, ana: Practitioner, ben: Practitioner,
    follow_up: AppointmentType, joanna: Patient, monday: dt.date,
) -> None:  # fmt: skip
    appointment = AppointmentFactory(
        patient=joanna, location=clinic, appointment_type=follow_up,
        start=at(monday, "09:00"), practitioners=[ana],
    )  # fmt: skip
    open_day(desk, clinic, monday)

    # (a slot in view: Chromium starts the drag where the mouse went down, before any scrolling)
    block = desk.locator(".appt", has_text="Smith, Joanna")
    block.drag_to(desk.get_by_role("link", name="Book 10:00, Ben Okafor, MD"))

    panel = desk.get_by_role("complementary", name="Appointment panel")
    panel.get_by_role("status").filter(has_text="Moved: Smith, Joanna").wait_for()
    appointment.refresh_from_db()
    assert appointment.start == at(monday, "10:00")
    assert list(appointment.practitioners.all()) == [ben]


def test_checking_a_patient_in_on_the_board(
    desk: Any, clinic: Location, ana: Practitioner, follow_up: AppointmentType,
    joanna: Patient, axe: Any,
) -> None:  # fmt: skip
    # given Joanna is expected today
    today = dt.datetime.now(tz=NEW_YORK).date()
    appointment = AppointmentFactory(
        patient=joanna, location=clinic, appointment_type=follow_up,
        start=at(today, "00:01"), practitioners=[ana],
    )  # fmt: skip

    # when the front desk opens the board, ticks insurance, enters the copay and checks her in
    desk.get_by_role("navigation", name="Main").get_by_role("link", name="Check-in").click()
    desk.wait_for_load_state("networkidle")
    assert desk.get_by_role("heading", name=re.compile("Check-in board")).is_visible()
    assert axe(desk) == []
    row = desk.locator("tr", has_text="Smith, Joanna")
    assert "04/12/1980" in row.inner_text()
    assert "Fall risk" in row.inner_text()
    row.get_by_label("Insurance verified").check()
    row.get_by_label("Copay $").fill("20")
    row.get_by_role("button", name="Check in").click()

    # then the row shows her arrived, with the flags, and the board is still accessible
    desk.locator("tr", has_text="Smith, Joanna").filter(has_text="Arrived").wait_for()
    assert "copay $20.00" in desk.locator("tr", has_text="Smith, Joanna").inner_text()
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.ARRIVED
    assert appointment.insurance_verified
    assert axe(desk) == []
    assert csp_errors(desk) == []
