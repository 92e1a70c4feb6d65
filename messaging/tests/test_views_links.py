"""The public pages behind signed links, driving the real scheduling services."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from core.tests.factories import LocationFactory
from messaging.links import Purpose, make_token
from messaging.models import MessageKind, OutboundMessage
from messaging.tests.factories import (
    AlwaysAvailableRuleFactory,
    AppointmentFactory,
    AppointmentTypeFactory,
    WaitlistEntryFactory,
    WaitlistOfferFactory,
)
from scheduling.models import Appointment, AppointmentPractitioner, WaitlistOffer
from scheduling.tests.factories import PractitionerFactory

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
URLS = {
    Purpose.CONFIRM: "messaging:appointment_confirm",
    Purpose.CANCEL: "messaging:appointment_cancel",
    Purpose.OFFER_ACCEPT: "messaging:offer_accept",
    Purpose.OFFER_DECLINE: "messaging:offer_decline",
    Purpose.UNSUBSCRIBE: "messaging:unsubscribe",
}


def link(purpose: Purpose, public_id: Any, token: str | None = None) -> str:
    return reverse(URLS[purpose], kwargs={"token": token or make_token(purpose, public_id)})


@pytest.fixture
def appointment() -> Appointment:
    start = dt.datetime.combine(
        timezone.localdate() + dt.timedelta(days=3), dt.time(9, 30), tzinfo=NEW_YORK
    )
    practitioner = PractitionerFactory(given_name="Maria", family_name="Lopez")
    return AppointmentFactory(
        location__name="Main Street Clinic",
        location__time_zone="America/New_York",
        start=start,
        end=start + dt.timedelta(minutes=30),
        practitioners=[practitioner],
    )


# --- confirm and cancel ---------------------------------------------------------------------


def test_a_valid_confirm_link_shows_the_appointment_without_login(appointment: Appointment) -> None:
    response = Client().get(link(Purpose.CONFIRM, appointment.public_id))

    assert response.status_code == 200
    local = appointment.start.astimezone(NEW_YORK)
    expected = (
        f"Your appointment on {local:%A}, {local:%B} {local.day}, {local.year} at 9:30 "
        f"AM {local.tzname()} with Maria Lopez, MD at Main Street Clinic."
    )
    assert expected in response.content.decode()
    assert "Confirm my appointment" in response.content.decode()
    assert appointment.reason not in response.content.decode()
    event = AuditEvent.objects.get(event="appointment.link_view")
    assert (event.username, event.action) == ("patient-link", "read")


def test_posting_a_confirm_link_confirms_through_the_scheduling_service(
    appointment: Appointment,
) -> None:
    response = Client().post(link(Purpose.CONFIRM, appointment.public_id))

    appointment.refresh_from_db()
    assert response.status_code == 200
    assert "your appointment is confirmed" in response.content.decode()
    assert appointment.status == "confirmed"
    assert appointment.confirmed_at is not None
    event = AuditEvent.objects.get(event="appointment.confirm")
    assert event.username == "patient-link"
    assert event.user_id is None


def test_confirming_twice_says_it_is_already_confirmed(appointment: Appointment) -> None:
    client = Client()
    client.post(link(Purpose.CONFIRM, appointment.public_id))

    response = client.post(link(Purpose.CONFIRM, appointment.public_id))

    assert response.status_code == 200
    assert "already confirmed" in response.content.decode()


def test_a_cancelled_appointment_cannot_be_confirmed(appointment: Appointment) -> None:
    appointment.status, appointment.cancel_reason = "cancelled", "clinic closed"
    appointment.save()

    page = Client().get(link(Purpose.CONFIRM, appointment.public_id))
    response = Client().post(link(Purpose.CONFIRM, appointment.public_id))

    assert "This appointment has been cancelled." in page.content.decode()
    assert "Confirm my appointment" not in page.content.decode()
    assert response.status_code == 409
    assert "can no longer be confirmed online" in response.content.decode()


def test_posting_a_cancel_link_cancels_for_the_patient_and_tells_staff(
    appointment: Appointment, committed: Any
) -> None:
    with committed():
        response = Client().post(link(Purpose.CANCEL, appointment.public_id))

    appointment.refresh_from_db()
    assert response.status_code == 200
    assert "Your appointment is cancelled" in response.content.decode()
    assert appointment.status == "cancelled"
    assert appointment.cancelled_by == "patient"
    assert appointment.cancel_reason == "cancelled by patient via reminder link"
    assert not AppointmentPractitioner.objects.filter(appointment=appointment, blocks=True).exists()
    kinds = set(OutboundMessage.objects.values_list("kind", flat=True))
    assert MessageKind.STAFF_NOTICE in kinds
    assert MessageKind.CANCELLATION_NOTICE not in kinds


def test_a_cancellation_through_a_link_offers_the_slot_to_the_waitlist(
    appointment: Appointment, committed: Any
) -> None:
    # given a patient waiting for this type at this location
    waiting = WaitlistEntryFactory(
        location=appointment.location,
        appointment_type=appointment.appointment_type,
        status="waiting",
        patient__preferred_contact="email",
    )
    # when the booked patient cancels through the link
    with committed():
        Client().post(link(Purpose.CANCEL, appointment.public_id))
    # then the waiting patient is offered the freed slot by their reminder channel
    offer = WaitlistOffer.objects.get(entry=waiting)
    message = OutboundMessage.objects.get(kind=MessageKind.WAITLIST_OFFER)
    assert message.waitlist_offer == offer
    assert message.recipient == "ann@example.org"
    assert offer.start == appointment.start


def test_a_link_for_an_appointment_that_has_started_has_expired(appointment: Appointment) -> None:
    appointment.start = timezone.now() - dt.timedelta(minutes=5)
    appointment.save()

    response = Client().post(link(Purpose.CONFIRM, appointment.public_id))

    appointment.refresh_from_db()
    assert response.status_code == 400
    assert "This link has expired" in response.content.decode()
    assert appointment.status == "booked"


def test_a_link_older_than_its_maximum_age_has_expired(appointment: Appointment) -> None:
    long_ago = time.time() - 200 * 24 * 3600
    with mock.patch("django.core.signing.time.time", return_value=long_ago):
        token = make_token(Purpose.CONFIRM, appointment.public_id)

    response = Client().get(link(Purpose.CONFIRM, appointment.public_id, token=token))

    assert response.status_code == 400
    assert "This link has expired" in response.content.decode()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: token.replace(":", "", 1),
        lambda token: "garbage",
        lambda token: token[:20],
    ],
)
def test_a_tampered_link_gets_a_clear_page_not_an_error(
    appointment: Appointment, tamper: Any
) -> None:
    token = tamper(make_token(Purpose.CONFIRM, appointment.public_id))

    response = Client().post(link(Purpose.CONFIRM, appointment.public_id, token=token))

    appointment.refresh_from_db()
    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()
    assert appointment.status == "booked"


def test_a_link_made_for_another_purpose_is_refused(appointment: Appointment) -> None:
    cancel_token = make_token(Purpose.CANCEL, appointment.public_id)

    response = Client().post(link(Purpose.CONFIRM, appointment.public_id, token=cancel_token))

    appointment.refresh_from_db()
    assert response.status_code == 400
    assert appointment.status == "booked"


def test_a_link_to_an_appointment_that_does_not_exist_is_refused() -> None:
    import uuid

    response = Client().get(link(Purpose.CONFIRM, uuid.uuid4()))

    assert response.status_code == 400


@pytest.mark.parametrize("purpose", [Purpose.CONFIRM, Purpose.CANCEL])
@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_appointment_links_answer_only_get_and_post(
    appointment: Appointment, purpose: Purpose, method: str
) -> None:
    response = getattr(Client(), method)(link(purpose, appointment.public_id))

    assert response.status_code == 405


def test_the_confirm_form_is_protected_against_cross_site_posts(appointment: Appointment) -> None:
    response = Client(enforce_csrf_checks=True).post(link(Purpose.CONFIRM, appointment.public_id))

    appointment.refresh_from_db()
    assert response.status_code == 403
    assert appointment.status == "booked"


def test_the_confirm_form_works_in_a_browser_with_its_csrf_token(appointment: Appointment) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get(link(Purpose.CONFIRM, appointment.public_id))
    csrf = page.context["csrf_token"]

    response = client.post(
        link(Purpose.CONFIRM, appointment.public_id), {"csrfmiddlewaretoken": str(csrf)}
    )

    appointment.refresh_from_db()
    assert response.status_code == 200
    assert appointment.status == "confirmed"


# --- waitlist offers ------------------------------------------------------------------------


@pytest.fixture
def open_offers() -> list[WaitlistOffer]:
    """Two patients offered the same freed slot, which really is bookable."""
    location = LocationFactory(code="offers", time_zone="America/New_York")
    practitioner = PractitionerFactory(locations=[location])
    AlwaysAvailableRuleFactory(practitioner=practitioner, location=location)
    appointment_type = AppointmentTypeFactory()
    start = dt.datetime.combine(
        timezone.localdate() + dt.timedelta(days=2), dt.time(10, 0), tzinfo=NEW_YORK
    )
    return [
        WaitlistOfferFactory(
            entry__location=location,
            entry__appointment_type=appointment_type,
            practitioner=practitioner,
            start=start,
            end=start + dt.timedelta(minutes=30),
        )
        for _ in range(2)
    ]


def test_an_offer_link_shows_the_slot(open_offers: list[WaitlistOffer]) -> None:
    offer = open_offers[0]

    response = Client().get(link(Purpose.OFFER_ACCEPT, offer.public_id))

    assert response.status_code == 200
    assert "Book this appointment" in response.content.decode()
    assert offer.practitioner.display_name in response.content.decode()


def test_the_first_to_accept_gets_the_slot(
    open_offers: list[WaitlistOffer], committed: Any
) -> None:
    first, second = open_offers

    with committed():
        response = Client().post(link(Purpose.OFFER_ACCEPT, first.public_id))

    first.refresh_from_db()
    second.refresh_from_db()
    assert response.status_code == 200
    assert "It is yours" in response.content.decode()
    assert first.status == "accepted"
    assert second.status == "taken"
    booked = Appointment.objects.get(patient=first.entry.patient)
    assert booked.start == first.start
    kinds = sorted(OutboundMessage.objects.values_list("kind", flat=True))
    assert "confirmation" in kinds
    assert "staff_notice" in kinds


def test_a_late_acceptor_hears_the_slot_has_just_been_taken(
    open_offers: list[WaitlistOffer],
) -> None:
    first, second = open_offers
    Client().post(link(Purpose.OFFER_ACCEPT, first.public_id))

    response = Client().post(link(Purpose.OFFER_ACCEPT, second.public_id))

    assert response.status_code == 409
    assert "this slot has just been taken" in response.content.decode()
    assert not Appointment.objects.filter(patient=second.entry.patient).exists()


def test_an_offer_whose_slot_was_booked_meanwhile_is_taken(
    open_offers: list[WaitlistOffer],
) -> None:
    offer = open_offers[0]
    AppointmentFactory(
        location=offer.entry.location,
        start=offer.start,
        end=offer.end,
        practitioners=[offer.practitioner],
    )

    response = Client().post(link(Purpose.OFFER_ACCEPT, offer.public_id))

    offer.refresh_from_db()
    assert response.status_code == 409
    assert "this slot has just been taken" in response.content.decode()
    assert offer.status == "open"


def test_declining_an_offer_keeps_the_patient_waiting(open_offers: list[WaitlistOffer]) -> None:
    offer = open_offers[0]

    response = Client().post(link(Purpose.OFFER_DECLINE, offer.public_id))

    offer.refresh_from_db()
    offer.entry.refresh_from_db()
    assert response.status_code == 200
    assert "You stay on the waiting list" in response.content.decode()
    assert offer.status == "declined"
    assert offer.entry.status == "waiting"


def test_an_expired_offer_cannot_be_accepted(open_offers: list[WaitlistOffer]) -> None:
    offer = open_offers[0]
    offer.expires_at = timezone.now() - dt.timedelta(minutes=1)
    offer.save()

    response = Client().post(link(Purpose.OFFER_ACCEPT, offer.public_id))

    assert response.status_code == 409
    assert "This offer is closed" in response.content.decode()
    assert not Appointment.objects.exists()


def test_an_offer_for_a_slot_in_the_past_has_expired(open_offers: list[WaitlistOffer]) -> None:
    offer = open_offers[0]
    offer.start = timezone.now() - dt.timedelta(hours=1)
    offer.save()

    response = Client().get(link(Purpose.OFFER_ACCEPT, offer.public_id))

    assert response.status_code == 400
    assert "expired" in response.content.decode()


def test_a_tampered_offer_link_gets_a_clear_page(open_offers: list[WaitlistOffer]) -> None:
    token = make_token(Purpose.OFFER_ACCEPT, open_offers[0].public_id)[:-3] + "xyz"

    response = Client().post(link(Purpose.OFFER_ACCEPT, None, token=token))

    assert response.status_code == 400


@pytest.mark.parametrize("purpose", [Purpose.OFFER_ACCEPT, Purpose.OFFER_DECLINE])
def test_offer_links_answer_only_get_and_post(
    open_offers: list[WaitlistOffer], purpose: Purpose
) -> None:
    response = Client().put(link(purpose, open_offers[0].public_id))

    assert response.status_code == 405


# --- unsubscribe ----------------------------------------------------------------------------


def test_the_unsubscribe_link_asks_before_unsubscribing(appointment: Appointment) -> None:
    patient = appointment.patient

    response = Client().get(link(Purpose.UNSUBSCRIBE, patient.public_id))

    patient.refresh_from_db()
    assert response.status_code == 200
    assert "Unsubscribe from email" in response.content.decode()
    assert patient.consent_email is True


def test_one_click_unsubscribe_works_without_a_form_token(appointment: Appointment) -> None:
    patient = appointment.patient
    mail_client = Client(enforce_csrf_checks=True)

    response = mail_client.post(
        link(Purpose.UNSUBSCRIBE, patient.public_id), {"List-Unsubscribe": "One-Click"}
    )
    again = mail_client.post(link(Purpose.UNSUBSCRIBE, patient.public_id))

    patient.refresh_from_db()
    assert response.status_code == 200
    assert "we will no longer send you appointment messages by email" in response.content.decode()
    assert "already unsubscribed" in again.content.decode()
    assert patient.consent_email is False
    assert patient.consent_sms is True


def test_a_tampered_unsubscribe_link_changes_nothing(appointment: Appointment) -> None:
    token = make_token(Purpose.UNSUBSCRIBE, appointment.patient.public_id) + "x"

    response = Client().post(link(Purpose.UNSUBSCRIBE, None, token=token))

    appointment.patient.refresh_from_db()
    assert response.status_code == 400
    assert appointment.patient.consent_email is True


def test_unsubscribe_answers_only_get_and_post(appointment: Appointment) -> None:
    response = Client().delete(link(Purpose.UNSUBSCRIBE, appointment.patient.public_id))

    assert response.status_code == 405
