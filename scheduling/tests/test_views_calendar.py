"""The day and week calendars: practitioners (or rooms) side by side, availability shaded,
exceptions labelled, appointments coloured by type with their status and the patient's alerts,
empty slots linking to the booking panel, and a fixed number of queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from core.models import Location
from core.tests.factories import LocationFactory
from patients.models import Patient
from patients.tests.factories import PatientFactory, PatientFlagFactory
from scheduling.models import AppointmentStatus, AppointmentType, ExceptionKind, Practitioner
from scheduling.tests.conftest import local
from scheduling.tests.factories import (
    AppointmentFactory,
    AppointmentTypeFactory,
    AvailabilityExceptionFactory,
    ResourceFactory,
)
from scheduling.view_selectors import calendar_day

pytestmark = pytest.mark.django_db

DAY = "/schedule/day/"
WEEK = "/schedule/week/"


@pytest.fixture
def client_as(persona: Callable[[str], User], login_client: Callable[..., Client]) -> Any:
    return lambda name: login_client(persona(name))


def day_url(location: Location, day: dt.date, **extra: str) -> str:
    query = "".join(f"&{k}={v}" for k, v in extra.items())
    return f"{DAY}?location={location.public_id}&date={day.isoformat()}{query}"


def test_day_view_shows_practitioners_side_by_side_with_their_appointments(
    client_as: Any, book: Any, at: Any, main_clinic: Location, monday: dt.date, ben: Practitioner
) -> None:
    # given an appointment with Ana at 09:00
    appointment = book(at("09:00"))

    # when the front desk opens that day
    response = client_as("frontdesk").get(day_url(main_clinic, monday))

    # then both practitioners head a column, and the appointment shows who, what and its status
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("Núñez, NP") < html.index("Okafor, MD")
    assert f'href="/schedule/appointments/{appointment.public_id}/"' in html
    assert "Hoeger, Buster" in html
    assert "09:00\u201309:30" in html
    assert '<i class="bi bi-calendar-check" aria-hidden="true"></i> Booked' in html
    assert "appt-type-follow-up" in html


def test_empty_slots_link_to_the_booking_panel_with_the_practitioner_and_time(
    client_as: Any, ana: Practitioner, main_clinic: Location, monday: dt.date
) -> None:
    html = client_as("frontdesk").get(day_url(main_clinic, monday)).content.decode()

    expected = (
        f"/schedule/book/?location={main_clinic.public_id}&amp;practitioner={ana.public_id}"
        f"&amp;start={monday.isoformat()}T09:30"
    )
    assert expected in html
    assert f'aria-label="Book 09:30, {ana.display_name}"' in html


def test_rows_run_from_opening_to_closing_time_in_the_chosen_step(
    client_as: Any, ana: Practitioner, main_clinic: Location, monday: dt.date
) -> None:
    html = client_as("frontdesk").get(day_url(main_clinic, monday, step="10")).content.decode()

    assert '<th scope="row">08:00</th>' in html
    assert '<th scope="row">08:10</th>' in html
    assert '<th scope="row">17:50</th>' in html
    assert '<th scope="row">07:50</th>' not in html
    assert '<th scope="row">18:00</th>' not in html


def test_blocked_time_and_holidays_are_labelled_and_not_bookable(
    client_as: Any, ana: Practitioner, main_clinic: Location, monday: dt.date, at: Any
) -> None:
    # given a staff meeting blocking Ana from 12:00 to 13:00
    AvailabilityExceptionFactory(
        location=main_clinic,
        practitioner=ana,
        kind=ExceptionKind.BLOCKED,
        start=at("12:00"),
        end=at("13:00"),
        reason="Staff meeting",
    )

    # when the day is shown
    html = client_as("frontdesk").get(day_url(main_clinic, monday)).content.decode()

    # then the block is labelled and its times cannot be clicked to book
    assert "Blocked time: Staff meeting" in html
    assert f"start={monday.isoformat()}T12:15" not in html
    assert f"start={monday.isoformat()}T13:00" in html


def test_time_outside_availability_is_shaded_and_not_bookable(
    client_as: Any, ana: Practitioner, main_clinic: Location, monday: dt.date
) -> None:
    html = client_as("frontdesk").get(day_url(main_clinic, monday)).content.decode()

    # the clinic is open until 18:00 but Ana works until 17:00
    assert f"start={monday.isoformat()}T16:45" in html
    assert f"start={monday.isoformat()}T17:00" not in html
    assert '<td class="off"' in html


def test_the_patients_active_alerts_show_on_the_block(
    client_as: Any, book: Any, at: Any, patient: Patient, main_clinic: Location, monday: dt.date
) -> None:
    PatientFlagFactory(patient=patient, kind="fall_risk", severity="warning")
    PatientFlagFactory(patient=patient, kind="allergy", severity="critical", is_active=False)
    book(at("09:00"))

    html = client_as("frontdesk").get(day_url(main_clinic, monday)).content.decode()

    assert "Warning alert: </span>Fall risk" in html
    assert "Allergy alert" not in html


def test_overlapping_appointments_share_one_cell_side_by_side(
    client_as: Any, ana: Practitioner, follow_up: AppointmentType, main_clinic: Location,
    monday: dt.date, at: Any,
) -> None:  # fmt: skip
    # given a no-show at 09:00 (its time is free again) and a patient booked at 09:15
    AppointmentFactory(
        location=main_clinic,
        appointment_type=follow_up,
        start=at("09:00"),
        practitioners=[ana],
        status=AppointmentStatus.NO_SHOW,
    )
    AppointmentFactory(
        location=main_clinic, appointment_type=follow_up, start=at("09:15"), practitioners=[ana]
    )

    html = client_as("frontdesk").get(day_url(main_clinic, monday)).content.decode()

    assert html.count('<td class="busy" rowspan="3">') == 1
    assert html.count('class="appt appt-type-follow-up') == 2


def test_status_is_shown_with_an_icon_and_words(
    client_as: Any, ana: Practitioner, follow_up: AppointmentType, main_clinic: Location,
    monday: dt.date, at: Any,
) -> None:  # fmt: skip
    AppointmentFactory(
        location=main_clinic,
        appointment_type=follow_up,
        start=at("10:00"),
        practitioners=[ana],
        status=AppointmentStatus.ARRIVED,
    )

    html = client_as("frontdesk").get(day_url(main_clinic, monday)).content.decode()

    assert '<i class="bi bi-person-check" aria-hidden="true"></i> Arrived' in html


def test_cancelled_appointments_leave_the_grid_and_are_listed_below(
    client_as: Any, book: Any, at: Any, frontdesk: User, main_clinic: Location, monday: dt.date
) -> None:
    from scheduling.services import appointment_cancel

    appointment = book(at("09:00"))
    appointment_cancel(
        actor=frontdesk, appointment=appointment, cancelled_by="patient", reason="Feeling better"
    )

    html = client_as("frontdesk").get(day_url(main_clinic, monday)).content.decode()

    assert "1 cancelled appointment" in html
    assert "cancelled by the patient" in html
    assert f"start={monday.isoformat()}T09:00" in html  # the slot is free again


def test_room_view_puts_rooms_side_by_side(
    client_as: Any, ana: Practitioner, follow_up: AppointmentType, main_clinic: Location,
    monday: dt.date, at: Any,
) -> None:  # fmt: skip
    room = ResourceFactory(location=main_clinic, name="Exam room 1")
    ResourceFactory(location=main_clinic, name="Exam room 2")
    AppointmentFactory(
        location=main_clinic,
        appointment_type=follow_up,
        start=at("09:00"),
        practitioners=[ana],
        resources=[room],
    )

    html = client_as("frontdesk").get(day_url(main_clinic, monday, by="room")).content.decode()

    assert html.index("Exam room 1") < html.index("Exam room 2")
    assert f"resource={room.public_id}" in html
    assert "Núñez, NP</th>" not in html
    assert 'draggable="true"' not in html  # moving between rooms is not offered


def test_without_a_location_the_users_first_location_is_shown(
    client_as: Any, ana: Practitioner, main_clinic: Location
) -> None:
    response = client_as("frontdesk").get("/schedule/")

    assert response.status_code == 200
    assert "Schedule · Main Street Clinic" in response.content.decode()


def test_bad_view_choices_fall_back_to_the_defaults(
    client_as: Any, ana: Practitioner, main_clinic: Location
) -> None:
    response = client_as("frontdesk").get(
        f"{DAY}?location={main_clinic.public_id}&date=2030-02-31&step=7&by=desk"
    )

    assert response.status_code == 200
    assert "calendar-step-15" in response.content.decode()


def test_a_role_that_only_views_the_schedule_sees_no_booking_links_or_dragging(
    client_as: Any, book: Any, at: Any, main_clinic: Location, monday: dt.date
) -> None:
    book(at("09:00"))

    html = client_as("billing").get(day_url(main_clinic, monday)).content.decode()

    assert "/schedule/book/" not in html
    assert 'draggable="true"' not in html
    assert "Hoeger, Buster" in html


def test_the_htmx_refresh_returns_only_the_grid(
    client_as: Any, ana: Practitioner, main_clinic: Location, monday: dt.date
) -> None:
    response = client_as("frontdesk").get(
        day_url(main_clinic, monday), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="calendar"
    )

    html = response.content.decode()
    assert "<html" not in html
    assert "data-calendar" in html


def test_todays_view_marks_the_current_time(
    frontdesk: User, ana: Practitioner, main_clinic: Location, monday: dt.date
) -> None:
    grid = calendar_day(
        user=frontdesk, location=main_clinic, day=monday, now=local(monday, "10:07")
    )

    assert [row.time for row in grid.rows if row.is_now] == ["10:00"]
    assert grid.now_minute == 10 * 60 + 7


def test_other_days_have_no_current_time_line(
    frontdesk: User, ana: Practitioner, main_clinic: Location, monday: dt.date
) -> None:
    grid = calendar_day(
        user=frontdesk,
        location=main_clinic,
        day=monday,
        now=local(monday, "10:07", "UTC") - dt.timedelta(days=1),
    )

    assert grid.now_minute is None
    assert not any(row.is_now for row in grid.rows)


# ---- who may see it ---------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_sign_in(client: Client, main_clinic: Location) -> None:
    response = client.get(DAY)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_role_without_the_schedule_is_refused(client_as: Any, main_clinic: Location) -> None:
    assert client_as("servicedirector").get(DAY).status_code == 403


def test_another_locations_schedule_is_not_found(
    client_as: Any, main_clinic: Location, monday: dt.date
) -> None:
    assert client_as("outsider").get(day_url(main_clinic, monday)).status_code == 404


def test_day_view_answers_405_to_post(client_as: Any, main_clinic: Location) -> None:
    assert client_as("frontdesk").post(DAY).status_code == 405


# ---- a fixed number of queries ----------------------------------------------------------------


def test_the_grid_escapes_names_and_labels_it_prints(
    client_as: Any, book: Any, at: Any, patient: Any, main_clinic: Location, monday: dt.date
) -> None:
    # given a patient and a holiday whose text looks like markup
    patient.family_name = "<b>O'Hara</b>"
    patient.save()
    book(at("09:00"))
    AvailabilityExceptionFactory(
        location=main_clinic,
        start=local(monday, "13:00"),
        end=local(monday, "14:00"),
        reason='Staff "training" <i>',
    )

    # when
    html = client_as("frontdesk").get(day_url(main_clinic, monday)).content.decode()

    # then
    assert "<b>O'Hara</b>" not in html
    assert "&lt;b&gt;O&#x27;Hara&lt;/b&gt;, Buster" in html
    assert "Staff &quot;training&quot; &lt;i&gt;" in html


def _fill(
    location: Location, practitioners: list[Practitioner], day: dt.date, count: int, first: int = 0
) -> None:
    """`count` back-to-back 10-minute appointments from 08:00, the `first` ones left out."""
    kinds = [
        AppointmentTypeFactory(code=f"kind-{n}", color="#198754", duration_minutes=10)
        for n in range(3)
    ]
    patients = [PatientFactory(home_location=location) for _ in range(min(count, 20))]
    for patient in patients[:5]:
        PatientFlagFactory(patient=patient)
    for n in range(first, first + count):
        start = local(day, "08:00") + dt.timedelta(minutes=10 * (n // len(practitioners)))
        AppointmentFactory(
            location=location,
            patient=patients[n % len(patients)],
            appointment_type=kinds[n % 3],
            start=start,
            practitioners=[practitioners[n % len(practitioners)]],
        )


def test_day_view_reads_in_a_fixed_number_of_queries(
    client_as: Any, ana: Practitioner, ben: Practitioner, main_clinic: Location, monday: dt.date,
    django_assert_num_queries: Any,
) -> None:  # fmt: skip
    client = client_as("frontdesk")
    url = day_url(main_clinic, monday)
    _fill(main_clinic, [ana, ben], monday, 5)
    client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200

    _fill(main_clinic, [ana, ben], monday, 55, first=5)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count('class="appt appt-type-') == 60


def _first_table(sql: str) -> str:
    """The table a SELECT reads first ("" for other statements)."""
    if not sql.startswith("SELECT") or " FROM " not in sql:
        return ""
    return sql.split(" FROM ", 1)[1].split()[0]


def test_day_view_reads_the_users_roles_and_locations_once_each(
    client_as: Any, book: Any, at: Any, main_clinic: Location, monday: dt.date
) -> None:
    # given a signed-in front-desk user
    client = client_as("frontdesk")
    book(at("09:00"))
    client.get(day_url(main_clinic, monday))  # warm the session

    # when the day is shown, once with the location named and once without
    for url in (day_url(main_clinic, monday), DAY):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)

        # then the roles (access, the 2FA check, the audit row, the menu) and the locations
        # (the scope, the location shown, the location picker) are each read once
        assert response.status_code == 200
        tables = [_first_table(q["sql"]) for q in captured.captured_queries]
        assert tables.count('"accounts_role"') == 1
        assert tables.count('"core_location"') == 1
        html = response.content.decode()
        assert f'<option value="{main_clinic.public_id}" selected>' in html


def test_week_view_reads_in_a_fixed_number_of_queries(
    client_as: Any, ana: Practitioner, main_clinic: Location, monday: dt.date,
    django_assert_num_queries: Any,
) -> None:  # fmt: skip
    client = client_as("frontdesk")
    url = f"{WEEK}?location={main_clinic.public_id}&date={monday.isoformat()}"
    _fill(main_clinic, [ana], monday, 5)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200

    _fill(main_clinic, [ana], monday + dt.timedelta(days=1), 55, first=5)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count('class="appt appt-type-') == 60


# ---- week ------------------------------------------------------------------------------------


def test_week_view_shows_one_practitioners_seven_days_side_by_side(
    client_as: Any, book: Any, at: Any, main_clinic: Location, monday: dt.date, ben: Practitioner
) -> None:
    # given Ana's appointment on Tuesday
    book(at("11:00", days=1))

    # when her week is shown
    html = (
        client_as("frontdesk")
        .get(f"{WEEK}?location={main_clinic.public_id}&date={monday + dt.timedelta(days=3)}")
        .content.decode()
    )

    # then Monday to Sunday are columns, the appointment is there, and slots book her
    assert html.count('<th scope="col" class="col-head">') == 7
    assert f"{monday:%a %d %b}" in html
    assert "Hoeger, Buster" in html
    tuesday = (monday + dt.timedelta(days=1)).isoformat()
    assert f"start={tuesday}T11:30" in html
    assert f"start={tuesday}T11:00" not in html


def test_week_view_of_another_practitioner(
    client_as: Any, book: Any, at: Any, main_clinic: Location, monday: dt.date, ben: Practitioner
) -> None:
    book(at("11:00"))

    html = (
        client_as("frontdesk")
        .get(
            f"{WEEK}?location={main_clinic.public_id}&date={monday.isoformat()}&practitioner={ben.public_id}"
        )
        .content.decode()
    )

    assert "Week · Ben Okafor, MD" in html
    assert "Hoeger, Buster" not in html


def test_week_view_of_a_practitioner_elsewhere_is_not_found(
    client_as: Any, ana: Practitioner, main_clinic: Location
) -> None:
    stranger = LocationFactory(code="elsewhere")
    from scheduling.tests.factories import PractitionerFactory

    away = PractitionerFactory(locations=[stranger])

    response = client_as("frontdesk").get(
        f"{WEEK}?location={main_clinic.public_id}&practitioner={away.public_id}"
    )

    assert response.status_code == 404


def test_week_view_access(client: Client, client_as: Any, main_clinic: Location) -> None:
    assert client.get(WEEK).status_code == 302
    assert client_as("servicedirector").get(WEEK).status_code == 403
    assert client_as("outsider").get(f"{WEEK}?location={main_clinic.public_id}").status_code == 404
    assert client_as("frontdesk").post(WEEK).status_code == 405


# ---- type colours ------------------------------------------------------------------------------


def test_type_colours_are_served_as_a_stylesheet_of_custom_properties(
    client_as: Any, follow_up: AppointmentType
) -> None:
    AppointmentTypeFactory(code="new-patient", color="#D63384")
    AppointmentTypeFactory(code="bad-colour", color="red;}b{")

    response = client_as("frontdesk").get("/schedule/type-colors.css")

    css = response.content.decode()
    assert response["Content-Type"] == "text/css; charset=utf-8"
    assert ".appt-type-new-patient{--appt-color:#D63384;--appt-tint:#f8dae9}" in css
    assert "bad-colour" not in css


def test_type_colours_need_a_signed_in_user(client: Client) -> None:
    assert client.get("/schedule/type-colors.css").status_code == 302


def test_rows_follow_the_appointments_when_no_step_is_chosen(
    client_as: Any, ana: Practitioner, main_clinic: Location, monday: dt.date, at: Any
) -> None:
    # given back-to-back 20-minute visits (which 15-minute rows would draw as overlapping)
    twenty = AppointmentTypeFactory(code="twenty", duration_minutes=20)
    for hhmm in ("09:00", "09:20"):
        AppointmentFactory(
            location=main_clinic, appointment_type=twenty, start=at(hhmm), practitioners=[ana]
        )

    html = client_as("frontdesk").get(day_url(main_clinic, monday)).content.decode()

    # then rows are 10 minutes apart and each visit has its own cell
    assert "calendar-step-10" in html
    assert html.count('<td class="busy" rowspan="2">') == 2
    assert '<option value="10" selected>' in html
