"""An appointment's panel and its actions: confirm, check in, room, check out, no-show, cancel
with a reason and who cancelled, and moving it (a new time typed, a dragged block, or one of the
next open slots). Every action answers the panel (htmx) or a redirect, never a 500."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from patients.models import Patient
from scheduling.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Practitioner,
    Resource,
)
from scheduling.tests.factories import AppointmentFactory, ResourceFactory

pytestmark = pytest.mark.django_db

PANEL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "schedule-panel"}
S = AppointmentStatus


@pytest.fixture
def client_as(persona: Callable[[str], User], login_client: Callable[..., Client]) -> Any:
    return lambda name: login_client(persona(name))


@pytest.fixture
def appointment(book: Any, at: Any) -> Appointment:
    """Hoeger, Buster with Ana on Monday 09:00 (booked through the service)."""
    return book(at("09:00"))


@pytest.fixture
def room(main_clinic: Location) -> Resource:
    return ResourceFactory(location=main_clinic, name="Exam room 3")


def url(appointment: Appointment, action: str = "") -> str:
    return f"/schedule/appointments/{appointment.public_id}/" + (f"{action}/" if action else "")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[dt.datetime], None]:
    """clock(moment): timezone.now() answers `moment` from then on."""

    def set_now(moment: dt.datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)

    return set_now


# ---- the panel -------------------------------------------------------------------------------


def test_the_panel_shows_who_when_status_and_the_actions_allowed(
    client_as: Any, appointment: Appointment, monday: dt.date
) -> None:
    response = client_as("frontdesk").get(url(appointment), **PANEL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "Hoeger, Buster" in html
    assert f"{monday:%a %m/%d/%Y}, 09:00\u201309:30" in html
    assert '<i class="bi bi-calendar-check" aria-hidden="true"></i> Booked' in html
    for action in ("confirm", "check-in", "reschedule", "cancel"):
        assert f'action="{url(appointment, action)}"' in html
    assert f'action="{url(appointment, "no-show")}"' not in html  # not before its start
    assert f'action="{url(appointment, "check-out")}"' not in html


def test_the_panel_is_a_page_without_htmx(client_as: Any, appointment: Appointment) -> None:
    html = client_as("frontdesk").get(url(appointment)).content.decode()

    assert "<html" in html
    assert 'id="schedule-panel"' in html


def test_a_viewer_sees_the_panel_without_actions(client_as: Any, appointment: Appointment) -> None:
    html = client_as("billing").get(url(appointment)).content.decode()

    assert "Hoeger, Buster" in html
    assert f'action="{url(appointment, "confirm")}"' not in html
    assert f'action="{url(appointment, "cancel")}"' not in html


def test_panel_access(client: Client, client_as: Any, appointment: Appointment) -> None:
    assert client.get(url(appointment)).status_code == 302
    assert client_as("servicedirector").get(url(appointment)).status_code == 403
    assert client_as("outsider").get(url(appointment)).status_code == 404
    assert client_as("frontdesk").post(url(appointment)).status_code == 405


# ---- status actions --------------------------------------------------------------------------


def test_confirming_updates_the_panel_and_the_calendar(
    client_as: Any, appointment: Appointment
) -> None:
    response = client_as("frontdesk").post(url(appointment, "confirm"), **PANEL)

    appointment.refresh_from_db()
    assert appointment.status == S.CONFIRMED
    assert response["HX-Trigger"] == "scheduleChanged"
    assert "Confirmed: Hoeger, Buster" in response.content.decode()


def test_checking_in_records_insurance_and_copay(client_as: Any, appointment: Appointment) -> None:
    response = client_as("frontdesk").post(
        url(appointment, "check-in"),
        {"insurance_verified": "on", "copay_collected": "25.00"},
        **PANEL,
    )

    appointment.refresh_from_db()
    assert response.status_code == 200
    assert appointment.status == S.ARRIVED
    assert appointment.insurance_verified
    assert appointment.copay_collected == Decimal("25.00")


@pytest.mark.parametrize(
    ("copay", "message"),
    [
        ("twenty", "Give the amount as a number"),
        ("-5", "greater than or equal to 0"),
        ("12.345", "no more than 2 decimal places"),
    ],
)
def test_a_wrong_copay_is_named_and_nothing_changes(
    client_as: Any, appointment: Appointment, copay: str, message: str
) -> None:
    response = client_as("frontdesk").post(
        url(appointment, "check-in"), {"copay_collected": copay}, **PANEL
    )

    html = response.content.decode()
    appointment.refresh_from_db()
    assert response.status_code == 422
    assert message in html
    assert 'id="id_copay_collected_error"' in html
    assert appointment.status == S.BOOKED


def test_rooming_and_checking_out(client_as: Any, appointment: Appointment, room: Resource) -> None:
    client = client_as("frontdesk")
    client.post(url(appointment, "check-in"), **PANEL)

    roomed = client.post(url(appointment, "room"), {"room": str(room.public_id)}, **PANEL)
    appointment.refresh_from_db()
    assert roomed.status_code == 200
    assert (appointment.status, appointment.room) == (S.IN_ROOM, room)

    client.post(url(appointment, "check-out"), **PANEL)
    appointment.refresh_from_db()
    assert appointment.status == S.COMPLETED


def test_an_action_the_status_does_not_allow_is_explained(
    client_as: Any, appointment: Appointment
) -> None:
    response = client_as("frontdesk").post(url(appointment, "check-out"), **PANEL)

    assert response.status_code == 422
    assert "The appointment is booked; it cannot become completed." in response.content.decode()


def test_a_no_show_before_the_start_is_refused_with_the_reason(
    client_as: Any, appointment: Appointment
) -> None:
    response = client_as("frontdesk").post(url(appointment, "no-show"), **PANEL)

    assert response.status_code == 422
    assert "once the start time has passed" in response.content.decode()


def test_a_no_show_after_the_start(
    client_as: Any, appointment: Appointment, at: Any, clock: Any
) -> None:
    clock(at("09:20"))

    panel = client_as("frontdesk").get(url(appointment), **PANEL).content.decode()
    response = client_as("frontdesk").post(url(appointment, "no-show"), **PANEL)

    appointment.refresh_from_db()
    assert f'action="{url(appointment, "no-show")}"' in panel
    assert response.status_code == 200
    assert appointment.status == S.NO_SHOW


def test_cancelling_needs_who_and_why(client_as: Any, appointment: Appointment) -> None:
    client = client_as("frontdesk")

    refused = client.post(url(appointment, "cancel"), {"cancelled_by": "patient"}, **PANEL)
    done = client.post(
        url(appointment, "cancel"), {"cancelled_by": "patient", "reason": "Travelling"}, **PANEL
    )

    appointment.refresh_from_db()
    assert refused.status_code == 422
    assert 'id="id_reason_error"' in refused.content.decode()
    assert done.status_code == 200
    assert (appointment.status, appointment.cancelled_by) == (S.CANCELLED, "patient")
    assert appointment.cancel_reason == "Travelling"


def test_a_plain_post_redirects_back_to_the_appointment_without_naming_the_patient(
    client_as: Any, appointment: Appointment, monday: dt.date
) -> None:
    client = client_as("frontdesk")

    response = client.post(url(appointment, "confirm"))

    page = client.get(response["Location"]).content.decode()
    assert response.status_code == 302
    assert response["Location"] == url(appointment)
    assert f"Confirmed: {monday:%a %d %b %Y} 09:00." in page


ACTIONS = ["confirm", "cancel", "check-in", "room", "check-out", "no-show"]


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_need_sign_in(client: Client, appointment: Appointment, action: str) -> None:
    response = client.post(url(appointment, action))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("action", ACTIONS)
def test_a_role_that_only_views_the_schedule_may_not_act(
    client_as: Any, appointment: Appointment, action: str
) -> None:
    response = client_as("billing").post(url(appointment, action))

    assert response.status_code == 403
    assert AuditEvent.objects.filter(event="auth.permission_denied", outcome="denied").exists()


@pytest.mark.parametrize("action", ACTIONS)
def test_an_appointment_at_another_location_is_not_found(
    client_as: Any, appointment: Appointment, action: str
) -> None:
    assert client_as("outsider").post(url(appointment, action)).status_code == 404


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_answer_405_to_get(client_as: Any, appointment: Appointment, action: str) -> None:
    assert client_as("frontdesk").get(url(appointment, action)).status_code == 405


# ---- moving it --------------------------------------------------------------------------------


def test_a_new_start_time_moves_the_appointment(
    client_as: Any, appointment: Appointment, at: Any, monday: dt.date
) -> None:
    response = client_as("frontdesk").post(
        url(appointment, "reschedule"), {"start": f"{monday}T11:00"}, **PANEL
    )

    appointment.refresh_from_db()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "scheduleChanged"
    assert appointment.start == at("11:00")


def test_dropping_it_on_another_practitioners_slot_moves_it_to_them(
    client_as: Any, appointment: Appointment, ben: Practitioner, at: Any, monday: dt.date
) -> None:
    response = client_as("frontdesk").post(
        url(appointment, "reschedule"),
        {"start": f"{monday}T14:00", "practitioner": str(ben.public_id)},
        **PANEL,
    )

    appointment.refresh_from_db()
    assert response.status_code == 200
    assert list(appointment.practitioners.all()) == [ben]
    assert appointment.start == at("14:00")


def test_moving_onto_a_busy_time_shows_the_clash(
    client_as: Any, appointment: Appointment, book: Any, other_patient: Patient, at: Any,
    monday: dt.date,
) -> None:  # fmt: skip
    book(at("11:00"), patient=other_patient)

    response = client_as("frontdesk").post(
        url(appointment, "reschedule"), {"start": f"{monday}T11:15"}, **PANEL
    )

    appointment.refresh_from_db()
    assert response.status_code == 409
    assert "Ana Núñez, NP is already booked" in response.content.decode()
    assert appointment.start == at("09:00")


def test_a_start_that_is_not_a_time_is_named(client_as: Any, appointment: Appointment) -> None:
    response = client_as("frontdesk").post(
        url(appointment, "reschedule"), {"start": "soon"}, **PANEL
    )

    assert response.status_code == 422
    assert 'id="id_start_error"' in response.content.decode()


def test_the_next_open_slots_are_offered_as_buttons(
    client_as: Any, appointment: Appointment, ana: Practitioner
) -> None:
    response = client_as("frontdesk").get(url(appointment, "slots"), **PANEL)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('name="slot"') == 10
    assert f"|{ana.public_id}" in html


def test_choosing_an_open_slot_moves_the_appointment_there(
    client_as: Any, appointment: Appointment, ana: Practitioner, at: Any, monday: dt.date
) -> None:
    response = client_as("frontdesk").post(
        url(appointment, "reschedule"),
        {"start": "", "slot": f"{monday}T15:30|{ana.public_id}"},
        **PANEL,
    )

    appointment.refresh_from_db()
    assert response.status_code == 200
    assert appointment.start == at("15:30")


def test_moving_and_finding_slots_access(
    client: Client, client_as: Any, appointment: Appointment, monday: dt.date
) -> None:
    move = url(appointment, "reschedule")
    find = url(appointment, "slots")
    data = {"start": f"{monday}T11:00"}
    assert client.post(move, data).status_code == 302
    assert client.get(find).status_code == 302
    assert client_as("billing").post(move, data).status_code == 403
    assert client_as("billing").get(find).status_code == 403
    assert client_as("outsider").post(move, data).status_code == 404
    assert client_as("outsider").get(find).status_code == 404
    assert client_as("frontdesk").get(move).status_code == 405
    assert client_as("frontdesk").post(find).status_code == 405


def test_a_completed_appointment_cannot_be_moved(
    client_as: Any, main_clinic: Location, follow_up: AppointmentType, ana: Practitioner,
    patient: Patient, at: Any, monday: dt.date,
) -> None:  # fmt: skip
    done = AppointmentFactory(
        location=main_clinic,
        patient=patient,
        appointment_type=follow_up,
        start=at("08:00"),
        practitioners=[ana],
        status=S.COMPLETED,
    )

    response = client_as("frontdesk").post(
        url(done, "reschedule"), {"start": f"{monday}T11:00"}, **PANEL
    )

    assert response.status_code == 422
    assert "cannot be moved" in response.content.decode()


GARBAGE = {
    "location": "not-a-uuid",
    "patient": "x' OR 1=1",
    "appointment_type": "123",
    "practitioners": ["nope"],
    "practitioner": "also-nope",
    "resources": ["%00"],
    "start": "2030-13-45T99:99",
    "reason": "r" * 500,
    "cancelled_by": "martians",
    "copay_collected": "1e400",
    "room": "🙂",
    "slot": "|||",
    "overbook": "on",
    "overbook_reason": "",
    "earliest": "yesterday",
    "latest": "2030-02-30",
    "priority": "999",
    "preferred_weekdays": ["8"],
}


@pytest.mark.parametrize(
    "path",
    [
        "/schedule/book/",
        "reschedule",
        "cancel",
        "check-in",
        "room",
        "confirm",
        "/schedule/waitlist/",
        "/schedule/patients/pick/",
    ],
)
def test_nonsense_input_is_refused_by_name_never_with_a_server_error(
    client_as: Any, appointment: Appointment, path: str
) -> None:
    target = path if path.startswith("/") else url(appointment, path)

    response = client_as("officemanager").post(target, GARBAGE, **PANEL)

    assert response.status_code in (200, 404, 409, 422), response.status_code
