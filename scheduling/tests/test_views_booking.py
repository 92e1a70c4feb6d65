"""Booking from the calendar: the panel prefilled from the slot clicked, the patient picker
(POST, no patient data in URLs), a clash shown inline naming what clashes (409, never a 500),
overbooking only for those who may, and booking for a patient chosen on the patient page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from core.models import Location
from patients.models import Patient
from patients.tests.factories import PatientFactory
from scheduling.models import Appointment, AppointmentType, Practitioner

pytestmark = pytest.mark.django_db

BOOK = "/schedule/book/"
PICK = "/schedule/patients/pick/"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "schedule-panel"}


@pytest.fixture
def client_as(persona: Callable[[str], User], login_client: Callable[..., Client]) -> Any:
    return lambda name: login_client(persona(name))


def booking(
    location: Location,
    patient: Patient,
    kind: AppointmentType,
    start: dt.datetime,
    *practitioners: Practitioner,
    **extra: str,
) -> dict[str, Any]:
    return {
        "location": str(location.public_id),
        "patient": str(patient.public_id),
        "appointment_type": str(kind.public_id),
        "practitioners": [str(p.public_id) for p in practitioners],
        "start": start.strftime("%Y-%m-%dT%H:%M"),
        "reason": "",
        **extra,
    }


def test_the_panel_is_prefilled_from_the_slot_clicked(
    client_as: Any, ana: Practitioner, main_clinic: Location, monday: dt.date
) -> None:
    url = (
        f"{BOOK}?location={main_clinic.public_id}&practitioner={ana.public_id}"
        f"&start={monday.isoformat()}T09:30"
    )

    response = client_as("frontdesk").get(url, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert f'value="{monday.isoformat()}T09:30"' in html
    assert f'value="{ana.public_id}"' in html
    assert "checked" in html.split(f'value="{ana.public_id}"')[1].split(">")[0]
    assert f'hx-post="{PICK}"' in html
    assert "Overbook" not in html


def test_booking_a_slot_creates_the_appointment_and_tells_the_calendar(
    client_as: Any, ana: Practitioner, patient: Patient, follow_up: AppointmentType,
    main_clinic: Location, at: Any,
) -> None:  # fmt: skip
    response = client_as("frontdesk").post(
        BOOK, booking(main_clinic, patient, follow_up, at("09:30"), ana, reason="Knee pain"), **HTMX
    )

    appointment = Appointment.objects.get()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "scheduleChanged"
    assert appointment.start == at("09:30")
    assert appointment.reason == "Knee pain"
    assert list(appointment.practitioners.all()) == [ana]
    assert "Booked: Hoeger, Buster" in response.content.decode()


def test_a_plain_post_redirects_to_the_appointment(
    client_as: Any, ana: Practitioner, patient: Patient, follow_up: AppointmentType,
    main_clinic: Location, at: Any,
) -> None:  # fmt: skip
    response = client_as("frontdesk").post(
        BOOK, booking(main_clinic, patient, follow_up, at("09:30"), ana)
    )

    appointment = Appointment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/schedule/appointments/{appointment.public_id}/"


def test_a_clash_is_shown_inline_naming_what_clashes(
    client_as: Any, book: Any, ana: Practitioner, other_patient: Patient,
    follow_up: AppointmentType, main_clinic: Location, at: Any,
) -> None:  # fmt: skip
    # given Ana is booked at 09:00
    book(at("09:00"))

    # when another patient is booked with her at 09:15
    response = client_as("frontdesk").post(
        BOOK, booking(main_clinic, other_patient, follow_up, at("09:15"), ana), **HTMX
    )

    # then the panel says so (409), keeping what was typed
    html = response.content.decode()
    assert response.status_code == 409
    assert 'id="conflict"' in html
    assert "Ana Núñez, NP is already booked" in html
    assert "from 09:00 to 09:30" in html
    assert f'value="{other_patient.public_id}" id="pick-{other_patient.public_id}" checked' in html
    assert Appointment.objects.count() == 1


def test_outside_availability_is_a_clash_too(
    client_as: Any, ana: Practitioner, patient: Patient, follow_up: AppointmentType,
    main_clinic: Location, at: Any,
) -> None:  # fmt: skip
    response = client_as("frontdesk").post(
        BOOK, booking(main_clinic, patient, follow_up, at("17:30"), ana), **HTMX
    )

    assert response.status_code == 409
    assert "Ana Núñez, NP is not available" in response.content.decode()


def test_missing_fields_are_named_next_to_the_field(
    client_as: Any, ana: Practitioner, follow_up: AppointmentType, main_clinic: Location
) -> None:
    response = client_as("frontdesk").post(
        BOOK,
        {"location": str(main_clinic.public_id), "appointment_type": str(follow_up.public_id)},
        **HTMX,
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert 'id="id_patient_error"' in html
    assert "Choose a patient" in html
    assert "Choose at least one practitioner." in html
    assert 'id="id_start_error"' in html


def test_a_start_that_is_not_a_time_is_refused_by_name(
    client_as: Any, ana: Practitioner, patient: Patient, follow_up: AppointmentType,
    main_clinic: Location, at: Any,
) -> None:  # fmt: skip
    data = booking(main_clinic, patient, follow_up, at("09:30"), ana)
    data["start"] = "next tuesday"

    response = client_as("frontdesk").post(BOOK, data, **HTMX)

    assert response.status_code == 422
    assert "Enter a date and time" in response.content.decode()


def test_a_patient_outside_the_users_locations_cannot_be_booked(
    client_as: Any, ana: Practitioner, riverside: Location, follow_up: AppointmentType,
    main_clinic: Location, at: Any,
) -> None:  # fmt: skip
    stranger = PatientFactory(home_location=riverside)

    response = client_as("frontdesk").post(
        BOOK, booking(main_clinic, stranger, follow_up, at("09:30"), ana), **HTMX
    )

    assert response.status_code == 422
    assert "Choose a patient at your locations." in response.content.decode()
    assert not Appointment.objects.exists()


# ---- overbooking -------------------------------------------------------------------------------


@pytest.fixture
def ana_overbooks(ana: Practitioner) -> Practitioner:
    ana.allows_overbooking = True
    ana.save()
    return ana


def test_overbooking_is_offered_to_those_who_may_for_a_practitioner_who_allows_it(
    client_as: Any, ana_overbooks: Practitioner, main_clinic: Location
) -> None:
    url = f"{BOOK}?location={main_clinic.public_id}&practitioner={ana_overbooks.public_id}"

    assert "Reason for overbooking" in client_as("officemanager").get(url).content.decode()
    assert "Reason for overbooking" not in client_as("frontdesk").get(url).content.decode()


def test_overbooking_is_not_offered_for_a_practitioner_who_does_not_allow_it(
    client_as: Any, ana: Practitioner, main_clinic: Location
) -> None:
    url = f"{BOOK}?location={main_clinic.public_id}&practitioner={ana.public_id}"

    assert "Reason for overbooking" not in client_as("officemanager").get(url).content.decode()


def test_an_office_manager_overbooks_with_a_reason(
    client_as: Any, book: Any, ana_overbooks: Practitioner, other_patient: Patient,
    follow_up: AppointmentType, main_clinic: Location, at: Any,
) -> None:  # fmt: skip
    book(at("09:00"))
    data = booking(main_clinic, other_patient, follow_up, at("09:00"), ana_overbooks)
    client = client_as("officemanager")

    without_reason = client.post(BOOK, {**data, "overbook": "on"}, **HTMX)
    with_reason = client.post(BOOK, {**data, "overbook": "on", "overbook_reason": "Urgent"}, **HTMX)

    assert without_reason.status_code == 422
    assert "Give a reason for overbooking." in without_reason.content.decode()
    assert with_reason.status_code == 200
    assert Appointment.objects.get(patient=other_patient).is_overbooked


# ---- booking for a patient chosen first -------------------------------------------------------


def test_booking_for_a_patient_from_their_page_keeps_them_chosen(
    client_as: Any, ana: Practitioner, patient: Patient, follow_up: AppointmentType,
    main_clinic: Location, at: Any,
) -> None:  # fmt: skip
    url = f"/schedule/book/for/{patient.public_id}/"
    client = client_as("frontdesk")

    page = client.get(f"{url}?location={main_clinic.public_id}")
    booked = client.post(url, booking(main_clinic, patient, follow_up, at("10:00"), ana))

    html = page.content.decode()
    assert "Hoeger, Buster" in html
    assert f'<input type="hidden" name="patient" value="{patient.public_id}">' in html
    assert 'id="patient-query"' not in html
    assert booked.status_code == 302
    assert Appointment.objects.get().patient == patient


def test_the_calendar_for_a_patient_books_that_patient_from_every_slot(
    client_as: Any, ana: Practitioner, patient: Patient, main_clinic: Location, monday: dt.date
) -> None:
    response = client_as("frontdesk").get(
        f"/schedule/day/for/{patient.public_id}/?location={main_clinic.public_id}&date={monday}"
    )

    html = response.content.decode()
    assert "Booking for <strong>Hoeger, Buster</strong>" in html
    assert f"/schedule/book/for/{patient.public_id}/?location=" in html


def test_the_calendar_for_a_patient_needs_the_booking_capability(
    client_as: Any, patient: Patient, main_clinic: Location
) -> None:
    url = f"/schedule/day/for/{patient.public_id}/?location={main_clinic.public_id}"

    assert client_as("billing").get(url).status_code == 403
    assert client_as("outsider").get(url).status_code == 404


def test_a_patient_elsewhere_cannot_be_booked_from_the_path(
    client_as: Any, riverside: Location, main_clinic: Location
) -> None:
    stranger = PatientFactory(home_location=riverside)

    response = client_as("frontdesk").get(f"/schedule/book/for/{stranger.public_id}/")

    assert response.status_code == 404


# ---- who may book ------------------------------------------------------------------------------


def test_booking_needs_sign_in(client: Client) -> None:
    assert client.get(BOOK).status_code == 302


def test_a_role_that_only_views_the_schedule_may_not_book(
    client_as: Any, ana: Practitioner, main_clinic: Location
) -> None:
    assert client_as("billing").get(f"{BOOK}?location={main_clinic.public_id}").status_code == 403


def test_booking_at_another_location_is_not_found(client_as: Any, main_clinic: Location) -> None:
    response = client_as("outsider").get(f"{BOOK}?location={main_clinic.public_id}")

    assert response.status_code == 404


def test_booking_answers_405_to_put(client_as: Any) -> None:
    assert client_as("frontdesk").put(BOOK).status_code == 405


# ---- the patient picker ------------------------------------------------------------------------


def test_typing_a_name_lists_matching_patients_as_choices(
    client_as: Any, patient: Patient, other_patient: Patient
) -> None:
    response = client_as("frontdesk").post(PICK, {"patient_query": "hoeg"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert f'name="patient" value="{patient.public_id}"' in html
    assert "checked" in html  # the only match is chosen
    assert "Kreiger" not in html


def test_too_little_typed_asks_for_more(client_as: Any) -> None:
    html = client_as("frontdesk").post(PICK, {"patient_query": "h"}, **HTMX).content.decode()

    assert "Type two letters of a name" in html


def test_an_impossible_date_is_explained(client_as: Any) -> None:
    html = client_as("frontdesk").post(PICK, {"patient_query": "02/31/1980"}).content.decode()

    assert "is not a real date" in html


def test_the_picker_finds_nobody_at_other_locations(client_as: Any, patient: Patient) -> None:
    html = client_as("outsider").post(PICK, {"patient_query": "hoeger"}).content.decode()

    assert str(patient.public_id) not in html
    assert "No patient at your locations matches." in html


def test_the_picker_access(client: Client, client_as: Any) -> None:
    assert client.post(PICK, {"patient_query": "hoeger"}).status_code == 302
    assert client_as("servicedirector").post(PICK, {"patient_query": "ho"}).status_code == 403
    assert client_as("frontdesk").get(PICK).status_code == 405
