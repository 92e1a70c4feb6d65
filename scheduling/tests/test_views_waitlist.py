"""The waitlist screen: who waits for what at a location, adding a patient (picker, type,
practitioner or any, window, preferred days, priority) and taking one off."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from patients.models import Patient
from patients.tests.factories import PatientFactory
from scheduling.models import (
    AppointmentType,
    OfferStatus,
    Practitioner,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)
from scheduling.services import waitlist_add

pytestmark = pytest.mark.django_db

WAITLIST = "/schedule/waitlist/"


@pytest.fixture
def client_as(persona: Callable[[str], User], login_client: Callable[..., Client]) -> Any:
    return lambda name: login_client(persona(name))


@pytest.fixture
def entry(
    frontdesk: User, patient: Patient, follow_up: AppointmentType, main_clinic: Location, at: Any
) -> WaitlistEntry:
    return waitlist_add(
        actor=frontdesk,
        patient=patient,
        appointment_type=follow_up,
        location=main_clinic,
        earliest=at("08:00"),
        latest=at("17:00", days=4),
        preferred_weekdays=[0, 2],
        priority=2,
        note="Mornings are best",
    )


def form(
    location: Location, patient: Patient, kind: AppointmentType, monday: dt.date, **extra: Any
) -> dict[str, Any]:
    return {
        "location": str(location.public_id),
        "patient": str(patient.public_id),
        "appointment_type": str(kind.public_id),
        "practitioner": "",
        "earliest": monday.isoformat(),
        "latest": (monday + dt.timedelta(days=14)).isoformat(),
        "priority": "3",
        "note": "",
        **extra,
    }


def test_the_list_shows_waiting_patients_with_what_they_wait_for(
    client_as: Any, entry: WaitlistEntry, main_clinic: Location, monday: dt.date
) -> None:
    html = (
        client_as("frontdesk").get(f"{WAITLIST}?location={main_clinic.public_id}").content.decode()
    )

    assert "Hoeger, Buster" in html
    assert "Follow-up" in html
    assert "Mon, Wed" in html
    assert "Mornings are best" in html
    assert f"{monday:%m/%d/%Y} \u2013 {monday + dt.timedelta(days=4):%m/%d/%Y}" in html
    assert f"/schedule/waitlist/{entry.public_id}/remove/" in html


def test_adding_a_patient_for_any_practitioner(
    client_as: Any, ana: Practitioner, other_patient: Patient, follow_up: AppointmentType,
    main_clinic: Location, monday: dt.date,
) -> None:  # fmt: skip
    response = client_as("frontdesk").post(
        WAITLIST,
        form(main_clinic, other_patient, follow_up, monday, preferred_weekdays=["1", "3"]),
    )

    added = WaitlistEntry.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{WAITLIST}?location={main_clinic.public_id}"
    assert (added.patient, added.practitioner, added.priority) == (other_patient, None, 3)
    assert added.preferred_weekdays == [1, 3]
    assert added.earliest.astimezone(dt.UTC) < added.latest.astimezone(dt.UTC)


def test_adding_for_a_practitioner_who_does_not_take_the_type_is_named(
    client_as: Any, ana: Practitioner, ben: Practitioner, other_patient: Patient,
    main_clinic: Location, monday: dt.date,
) -> None:  # fmt: skip
    from scheduling.tests.factories import AppointmentTypeFactory

    only_ben = AppointmentTypeFactory(code="procedure", allowed_practitioners=[ben])

    response = client_as("frontdesk").post(
        WAITLIST,
        form(main_clinic, other_patient, only_ben, monday, practitioner=str(ana.public_id)),
    )

    assert response.status_code == 422
    assert "does not take" in response.content.decode()
    assert not WaitlistEntry.objects.exists()


def test_a_window_ending_before_it_starts_is_named(
    client_as: Any, ana: Practitioner, other_patient: Patient, follow_up: AppointmentType,
    main_clinic: Location, monday: dt.date,
) -> None:  # fmt: skip
    data = form(main_clinic, other_patient, follow_up, monday)
    data["latest"] = (monday - dt.timedelta(days=1)).isoformat()

    response = client_as("frontdesk").post(WAITLIST, data)

    assert response.status_code == 422
    assert 'id="id_latest_error"' in response.content.decode()


def test_removing_a_patient_from_the_waitlist_closes_their_open_offer(
    client_as: Any, entry: WaitlistEntry, ana: Practitioner, at: Any, main_clinic: Location
) -> None:
    offer = WaitlistOffer.objects.create(
        entry=entry, practitioner=ana, start=at("09:00"), end=at("09:30"), expires_at=at("08:00")
    )

    response = client_as("frontdesk").post(f"/schedule/waitlist/{entry.public_id}/remove/")

    entry.refresh_from_db()
    offer.refresh_from_db()
    assert response.status_code == 302
    assert entry.status == WaitlistStatus.REMOVED
    assert offer.status == OfferStatus.EXPIRED
    assert AuditEvent.objects.filter(event="waitlist.remove").exists()


def test_removing_twice_is_explained(client_as: Any, entry: WaitlistEntry) -> None:
    client = client_as("frontdesk")
    client.post(f"/schedule/waitlist/{entry.public_id}/remove/")

    response = client.post(f"/schedule/waitlist/{entry.public_id}/remove/", follow=True)

    assert "This entry is removed already." in response.content.decode()


def test_waitlist_access(
    client: Client, client_as: Any, entry: WaitlistEntry, main_clinic: Location,
    other_patient: Patient, follow_up: AppointmentType, monday: dt.date,
) -> None:  # fmt: skip
    page = f"{WAITLIST}?location={main_clinic.public_id}"
    data = form(main_clinic, other_patient, follow_up, monday)
    assert client.get(WAITLIST).status_code == 302
    assert client_as("servicedirector").get(WAITLIST).status_code == 403
    assert client_as("billing").get(page).status_code == 200
    assert client_as("billing").post(WAITLIST, data).status_code == 403
    assert client_as("outsider").get(page).status_code == 404
    assert client_as("outsider").post(WAITLIST, data).status_code == 404
    assert client_as("frontdesk").put(WAITLIST).status_code == 405


def test_remove_access(client: Client, client_as: Any, entry: WaitlistEntry) -> None:
    remove = f"/schedule/waitlist/{entry.public_id}/remove/"
    assert client.post(remove).status_code == 302
    assert client_as("billing").post(remove).status_code == 403
    assert client_as("outsider").post(remove).status_code == 404
    assert client_as("frontdesk").get(remove).status_code == 405
    entry.refresh_from_db()
    assert entry.status == WaitlistStatus.WAITING


def test_a_patient_elsewhere_cannot_be_put_on_the_waitlist(
    client_as: Any, riverside: Location, follow_up: AppointmentType, main_clinic: Location,
    monday: dt.date,
) -> None:  # fmt: skip
    stranger = PatientFactory(home_location=riverside)

    response = client_as("frontdesk").post(WAITLIST, form(main_clinic, stranger, follow_up, monday))

    assert response.status_code == 422
    assert not WaitlistEntry.objects.exists()
