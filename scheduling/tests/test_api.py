"""The scheduling routes of the JSON API: every route for the allowed role, a lesser role,
another location, no credentials and a wrong method; 409 problem+json for clashes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.services import api_token_create
from audit.models import AuditEvent
from core.models import Location
from patients.models import Patient
from patients.tests.factories import PatientFactory, PatientFlagFactory
from scheduling.models import Appointment, AppointmentType, Practitioner
from scheduling.tests.factories import AppointmentFactory, PractitionerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("scheduling.tests.urls")]

At = Callable[..., dt.datetime]
PROBLEM = "application/problem+json"


@pytest.fixture
def token_client() -> Callable[[User], Client]:
    def make(user: User) -> Client:
        _, raw = api_token_create(actor=user, user=user, name="tests")
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    return make


@pytest.fixture
def api(frontdesk: User, token_client: Callable[[User], Client]) -> Client:
    return token_client(frontdesk)


@pytest.fixture
def privacy_session(persona: Callable[[str], User], login_client: Callable[..., Client]) -> Client:
    """The privacy officer has no API token (no USE_API) and no schedule access: a browser
    session reaches the API, and the schedule routes refuse it."""
    return login_client(persona("privacy"))


@pytest.fixture
def as_role(
    persona: Callable[[str], User], token_client: Callable[[User], Client]
) -> Callable[[str], Client]:
    return lambda name: token_client(persona(name))


def post(client: Client, url: str, body: Any) -> Any:
    return client.post(url, body, content_type="application/json")


def booking(
    patient: Patient, follow_up: AppointmentType, ana: Practitioner, start: dt.datetime
) -> dict[str, Any]:
    return {
        "patient": str(patient.public_id),
        "appointment_type": str(follow_up.public_id),
        "practitioner": str(ana.public_id),
        "start": start.isoformat(),
    }


def fields(response: Any) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


@pytest.fixture
def booked(
    api: Client, patient: Patient, follow_up: AppointmentType, ana: Practitioner, at: At
) -> dict[str, Any]:
    response = post(api, "/api/v1/appointments", booking(patient, follow_up, ana, at("09:00")))
    assert response.status_code == 201, response.content
    return response.json()


# ---- practitioners and appointment types -----------------------------------------------------


def test_lists_the_practitioners_at_the_users_locations(
    api: Client, ana: Practitioner, ben: Practitioner, riverside: Location
) -> None:
    PractitionerFactory(locations=[riverside])

    response = api.get("/api/v1/practitioners")

    assert response.status_code == 200
    data = response.json()
    assert [p["display_name"] for p in data] == ["Ana Núñez, NP", "Ben Okafor, MD"]
    assert data[0]["public_id"] == str(ana.public_id)
    assert data[0]["npi"] == ana.npi


def test_a_user_without_schedule_access_cannot_list_practitioners(
    privacy_session: Client, ana: Practitioner
) -> None:
    response = privacy_session.get("/api/v1/practitioners")

    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    audit = AuditEvent.objects.order_by("-sequence").first()
    assert (audit.event, audit.outcome) == ("practitioner.list", "denied")


def test_the_outsider_sees_no_practitioners_of_another_location(
    as_role: Callable[[str], Client], ana: Practitioner
) -> None:
    assert as_role("outsider").get("/api/v1/practitioners").json() == []


def test_practitioners_need_credentials(client: Client) -> None:
    response = client.get("/api/v1/practitioners")

    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM


def test_practitioners_cannot_be_posted(api: Client) -> None:
    response = post(api, "/api/v1/practitioners", {})

    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM


def test_lists_appointment_types_for_billing_too(
    as_role: Callable[[str], Client], follow_up: AppointmentType, ben: Practitioner
) -> None:
    follow_up.allowed_practitioners.set([ben])

    response = as_role("billing").get("/api/v1/appointment-types")

    assert response.status_code == 200
    assert response.json() == [
        {
            "public_id": str(follow_up.public_id),
            "code": "follow-up",
            "name": "Follow-up",
            "duration_minutes": 30,
            "buffer_minutes": 0,
            "color": follow_up.color,
            "is_new_patient": False,
            "is_telehealth": False,
            "required_resource_kinds": [],
            "allowed_practitioners": [str(ben.public_id)],
        }
    ]


def test_appointment_types_are_refused_to_a_role_without_schedule_access(
    privacy_session: Client, client: Client
) -> None:
    assert privacy_session.get("/api/v1/appointment-types").status_code == 403
    assert client.get("/api/v1/appointment-types").status_code == 401


# ---- slots -----------------------------------------------------------------------------------


def slots_url(
    follow_up: AppointmentType, start: dt.datetime, end: dt.datetime, **extra: str
) -> str:
    from urllib.parse import urlencode

    query = {
        "appointment_type": str(follow_up.public_id),
        "start": start.isoformat(),
        "end": end.isoformat(),
        **extra,
    }
    return "/api/v1/slots?" + urlencode(query)


def test_finds_open_slots(
    api: Client, follow_up: AppointmentType, ana: Practitioner, ben: Practitioner, at: At
) -> None:
    response = api.get(
        slots_url(
            follow_up, at("00:00"), at("00:00", days=2), practitioner=str(ben.public_id), limit="2"
        )
    )

    assert response.status_code == 200
    data = response.json()
    assert [dt.datetime.fromisoformat(s["start"]) for s in data] == [at("08:00"), at("08:15")]
    assert data[0]["practitioner"]["public_id"] == str(ben.public_id)
    assert data[0]["location"]["code"] == "main"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end": "2020-01-01T00:00:00+00:00"}, "end"),
        ({"start": "2030-01-01T09:00:00"}, "start"),
        ({"appointment_type": "00000000-0000-0000-0000-000000000000"}, "appointment_type"),
        ({"practitioner": "00000000-0000-0000-0000-000000000000"}, "practitioner"),
        ({"limit": "1000"}, "limit"),
    ],
)
def test_slot_search_names_a_bad_parameter(
    api: Client,
    follow_up: AppointmentType,
    ana: Practitioner,
    at: At,
    change: dict[str, str],
    field: str,
) -> None:
    from urllib.parse import urlencode

    query = {
        "appointment_type": str(follow_up.public_id),
        "start": at("00:00").isoformat(),
        "end": at("00:00", days=1).isoformat(),
        **change,
    }

    response = api.get("/api/v1/slots?" + urlencode(query))

    assert response.status_code == 422
    assert fields(response) == {field}


def test_slot_search_refuses_another_users_location(
    as_role: Callable[[str], Client], follow_up: AppointmentType, main_clinic: Location, at: At
) -> None:
    response = as_role("outsider").get(
        slots_url(follow_up, at("00:00"), at("00:00", days=1), location=str(main_clinic.public_id))
    )

    assert response.status_code == 422
    assert fields(response) == {"location"}


def test_the_outsider_finds_no_slots_at_another_location(
    as_role: Callable[[str], Client], follow_up: AppointmentType, ana: Practitioner, at: At
) -> None:
    assert (
        as_role("outsider").get(slots_url(follow_up, at("00:00"), at("00:00", days=1))).json() == []
    )


def test_slots_need_credentials_and_a_get(client: Client, api: Client) -> None:
    assert client.get("/api/v1/slots").status_code == 401
    assert post(api, "/api/v1/slots", {}).status_code == 405


# ---- booking ---------------------------------------------------------------------------------


def test_books_an_appointment_and_answers_201(
    api: Client,
    patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    at: At,
    frontdesk: User,
) -> None:
    PatientFlagFactory(patient=patient, kind="fall_risk")
    body = {**booking(patient, follow_up, ana, at("09:00")), "reason": "Knee pain"}

    response = post(api, "/api/v1/appointments", body)

    assert response.status_code == 201, response.content
    data = response.json()
    appointment = Appointment.objects.get(public_id=data["public_id"])
    assert appointment.booked_by == frontdesk
    assert data["status"] == "booked"
    assert dt.datetime.fromisoformat(data["start"]) == at("09:00")
    assert data["practitioners"] == [
        {"public_id": str(ana.public_id), "display_name": "Ana Núñez, NP"}
    ]
    assert data["patient"]["public_id"] == str(patient.public_id)
    assert [a["kind"] for a in data["patient"]["alerts"]] == ["fall_risk"]
    assert data["reason"] == "Knee pain"
    audit = AuditEvent.objects.filter(event="appointment.book").get()
    assert audit.reason == "via api"


def test_a_clash_answers_409_naming_what_clashes(
    api: Client,
    booked: dict[str, Any],
    other_patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    at: At,
) -> None:
    response = post(
        api, "/api/v1/appointments", booking(other_patient, follow_up, ana, at("09:15"))
    )

    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    data = response.json()
    assert data["type"] == "urn:patientdesk:problem:booking-conflict"
    assert "Ana Núñez, NP is already booked" in data["detail"]
    assert data["conflicts"] == [
        {
            "kind": "practitioner",
            "label": "Ana Núñez, NP",
            "start": at("09:00").astimezone(dt.UTC).isoformat(),
            "end": at("09:30").astimezone(dt.UTC).isoformat(),
            "object_id": str(ana.public_id),
        }
    ]


def test_books_several_practitioners_given_as_a_list(
    api: Client,
    patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    ben: Practitioner,
    at: At,
) -> None:
    body = booking(patient, follow_up, ana, at("09:00"))
    del body["practitioner"]
    body["practitioners"] = [str(ana.public_id), str(ben.public_id)]

    response = post(api, "/api/v1/appointments", body)

    assert response.status_code == 201
    assert len(response.json()["practitioners"]) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"practitioners": []}, "practitioners"),
        ({"start": "2030-01-07T09:00:00"}, "start"),
        ({"start": "3030-01-07T09:00:00Z"}, "start"),
        ({"nickname": "Bob"}, "nickname"),
        ({"reason": "x" * 201}, "reason"),
        ({"appointment_type": "00000000-0000-0000-0000-000000000000"}, "appointment_type"),
        ({"resources": ["00000000-0000-0000-0000-000000000000"]}, "resources"),
    ],
)
def test_booking_names_a_bad_field(
    api: Client,
    patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    at: At,
    change: dict[str, Any],
    field: str,
) -> None:
    body = {**booking(patient, follow_up, ana, at("09:00")), **change}

    response = post(api, "/api/v1/appointments", body)

    assert response.status_code == 422, response.content
    assert field in fields(response)


def test_booking_needs_practitioner_or_practitioners_not_both(
    api: Client, patient: Patient, follow_up: AppointmentType, ana: Practitioner, at: At
) -> None:
    body = {**booking(patient, follow_up, ana, at("09:00")), "practitioners": [str(ana.public_id)]}

    response = post(api, "/api/v1/appointments", body)

    assert response.status_code == 422
    assert fields(response) == {"practitioners"}


def test_billing_cannot_book(
    as_role: Callable[[str], Client],
    patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    at: At,
) -> None:
    response = post(
        as_role("billing"), "/api/v1/appointments", booking(patient, follow_up, ana, at("09:00"))
    )

    assert response.status_code == 403
    assert not Appointment.objects.exists()


def test_a_patient_of_another_location_is_not_found(
    as_role: Callable[[str], Client],
    patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    at: At,
) -> None:
    response = post(
        as_role("outsider"), "/api/v1/appointments", booking(patient, follow_up, ana, at("09:00"))
    )

    assert response.status_code == 404
    assert not Appointment.objects.exists()


def test_booking_cannot_land_at_another_users_location(
    as_role: Callable[[str], Client],
    riverside: Location,
    follow_up: AppointmentType,
    ana: Practitioner,
    at: At,
) -> None:
    # given: a Riverside patient, but Ana works only at Main Street
    patient = PatientFactory(home_location=riverside)

    response = post(
        as_role("outsider"), "/api/v1/appointments", booking(patient, follow_up, ana, at("09:00"))
    )

    assert response.status_code == 409
    assert [c["kind"] for c in response.json()["conflicts"]] == ["availability"]


def test_booking_needs_credentials(client: Client) -> None:
    assert post(client, "/api/v1/appointments", {}).status_code == 401


# ---- one appointment and its changes ---------------------------------------------------------


def test_reads_an_appointment(api: Client, booked: dict[str, Any]) -> None:
    response = api.get(f"/api/v1/appointments/{booked['public_id']}")

    assert response.status_code == 200
    assert response.json() == booked


def test_an_appointment_at_another_location_is_not_found(
    as_role: Callable[[str], Client], booked: dict[str, Any]
) -> None:
    response = as_role("outsider").get(f"/api/v1/appointments/{booked['public_id']}")

    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM


def test_cancels_an_appointment(api: Client, booked: dict[str, Any]) -> None:
    response = post(
        api,
        f"/api/v1/appointments/{booked['public_id']}/cancel",
        {"cancelled_by": "patient", "reason": "Out of town"},
    )

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancelled_by"]) == ("cancelled", "patient")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cancelled_by": "patient"}, "reason"),
        ({"cancelled_by": "nobody", "reason": "x"}, "cancelled_by"),
    ],
)
def test_cancelling_names_a_missing_or_wrong_field(
    api: Client, booked: dict[str, Any], body: dict[str, str], field: str
) -> None:
    response = post(api, f"/api/v1/appointments/{booked['public_id']}/cancel", body)

    assert response.status_code == 422
    assert fields(response) == {field}


def test_cancelling_is_refused_to_billing_and_hidden_from_the_outsider(
    as_role: Callable[[str], Client], booked: dict[str, Any], client: Client, api: Client
) -> None:
    url = f"/api/v1/appointments/{booked['public_id']}/cancel"
    body = {"cancelled_by": "clinic", "reason": "Provider ill"}

    assert post(as_role("billing"), url, body).status_code == 403
    assert post(as_role("outsider"), url, body).status_code == 404
    assert post(client, url, body).status_code == 401
    assert api.get(url).status_code == 405
    assert Appointment.objects.get(public_id=booked["public_id"]).status == "booked"


def test_reschedules_and_answers_409_for_a_taken_time(
    api: Client,
    booked: dict[str, Any],
    other_patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    at: At,
) -> None:
    post(api, "/api/v1/appointments", booking(other_patient, follow_up, ana, at("11:00")))
    url = f"/api/v1/appointments/{booked['public_id']}/reschedule"

    moved = post(api, url, {"start": at("10:00").isoformat()})
    clash = post(api, url, {"start": at("11:00").isoformat()})

    assert moved.status_code == 200
    assert dt.datetime.fromisoformat(moved.json()["start"]) == at("10:00")
    assert clash.status_code == 409
    assert [c["kind"] for c in clash.json()["conflicts"]] == ["practitioner"]


def test_reschedules_to_another_practitioner(
    api: Client, booked: dict[str, Any], ben: Practitioner, at: At
) -> None:
    response = post(
        api,
        f"/api/v1/appointments/{booked['public_id']}/reschedule",
        {"start": at("10:00").isoformat(), "practitioners": [str(ben.public_id)]},
    )

    assert response.status_code == 200
    assert [p["public_id"] for p in response.json()["practitioners"]] == [str(ben.public_id)]


def test_rescheduling_is_refused_to_billing(
    as_role: Callable[[str], Client], booked: dict[str, Any], at: At
) -> None:
    response = post(
        as_role("billing"),
        f"/api/v1/appointments/{booked['public_id']}/reschedule",
        {"start": at("10:00").isoformat()},
    )

    assert response.status_code == 403


@pytest.fixture
def started(
    patient: Patient, follow_up: AppointmentType, ana: Practitioner, main_clinic: Location
) -> Appointment:
    return AppointmentFactory(
        patient=patient,
        appointment_type=follow_up,
        location=main_clinic,
        start=timezone.now() - dt.timedelta(minutes=5),
        practitioners=[ana],
    )


def test_checks_a_patient_in_with_copay(api: Client, started: Appointment) -> None:
    response = post(
        api,
        f"/api/v1/appointments/{started.public_id}/check-in",
        {"insurance_verified": True, "copay_collected": "20.00"},
    )

    assert response.status_code == 200
    data = response.json()
    assert (data["status"], data["insurance_verified"]) == ("arrived", True)
    assert data["copay_collected"] == "20.00"


def test_check_in_names_a_bad_copay(api: Client, started: Appointment) -> None:
    response = post(
        api, f"/api/v1/appointments/{started.public_id}/check-in", {"copay_collected": "-3"}
    )

    assert response.status_code == 422
    assert fields(response) == {"copay_collected"}


def test_check_in_is_refused_to_billing_and_hidden_from_the_outsider(
    as_role: Callable[[str], Client], started: Appointment
) -> None:
    url = f"/api/v1/appointments/{started.public_id}/check-in"

    assert post(as_role("billing"), url, {}).status_code == 403
    assert post(as_role("outsider"), url, {}).status_code == 404


def test_marks_a_no_show_once_the_start_has_passed(
    api: Client, started: Appointment, booked: dict[str, Any]
) -> None:
    done = post(api, f"/api/v1/appointments/{started.public_id}/no-show", {})
    too_early = post(api, f"/api/v1/appointments/{booked['public_id']}/no-show", {})

    assert done.status_code == 200
    assert done.json()["status"] == "no_show"
    assert too_early.status_code == 422
    assert fields(too_early) == {"status"}


def test_no_show_is_refused_to_billing_and_needs_a_post(
    as_role: Callable[[str], Client], started: Appointment, api: Client
) -> None:
    url = f"/api/v1/appointments/{started.public_id}/no-show"

    assert post(as_role("billing"), url, {}).status_code == 403
    assert api.get(url).status_code == 405


# ---- a practitioner's day --------------------------------------------------------------------


def test_lists_a_practitioners_day(
    api: Client, booked: dict[str, Any], ana: Practitioner, ben: Practitioner, at: At
) -> None:
    day = at("00:00").date().isoformat()

    ana_day = api.get(f"/api/v1/appointments?practitioner={ana.public_id}&date={day}")
    ben_day = api.get(f"/api/v1/appointments?practitioner={ben.public_id}&date={day}")

    assert ana_day.status_code == 200
    assert [a["public_id"] for a in ana_day.json()] == [booked["public_id"]]
    assert ben_day.json() == []


def test_a_practitioners_day_needs_a_date_and_schedule_access(
    api: Client, privacy_session: Client, ana: Practitioner, at: At
) -> None:
    day = at("00:00").date().isoformat()

    missing = api.get(f"/api/v1/appointments?practitioner={ana.public_id}")
    denied = privacy_session.get(f"/api/v1/appointments?practitioner={ana.public_id}&date={day}")

    assert missing.status_code == 422
    assert fields(missing) == {"date"}
    assert denied.status_code == 403


def test_the_outsider_sees_nothing_of_another_locations_day(
    as_role: Callable[[str], Client], booked: dict[str, Any], ana: Practitioner, at: At
) -> None:
    day = at("00:00").date().isoformat()

    response = as_role("outsider").get(
        f"/api/v1/appointments?practitioner={ana.public_id}&date={day}"
    )

    assert response.json() == []
