"""The waitlist: a cancellation is offered to the best-matching waiting patients, and the first
to accept gets it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from patients.models import Patient
from patients.tests.factories import PatientFactory
from scheduling.events import waitlist_offered
from scheduling.models import (
    Appointment,
    AppointmentType,
    OfferStatus,
    Practitioner,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)
from scheduling.services import (
    BookingConflict,
    appointment_cancel,
    waitlist_add,
    waitlist_offer_accept,
    waitlist_offer_decline,
    waitlist_offer_opening,
)
from scheduling.tests.factories import AppointmentTypeFactory

pytestmark = pytest.mark.django_db

Book = Callable[..., Any]


@pytest.fixture
def wait(
    frontdesk: User, follow_up: AppointmentType, main_clinic: Location, at: Callable[..., Any]
) -> Callable[..., WaitlistEntry]:
    """wait(**changes): a waitlist entry for a follow-up at Main Street, any practitioner, for
    the two weeks around the test Monday, unless told otherwise."""

    def make(**changes: Any) -> WaitlistEntry:
        values: dict[str, Any] = {
            "actor": frontdesk,
            "patient": PatientFactory(home_location=main_clinic),
            "appointment_type": follow_up,
            "location": main_clinic,
            "earliest": at("00:00", days=-7),
            "latest": at("00:00", days=7),
        }
        values.update(changes)
        return waitlist_add(**values)

    return make


@pytest.fixture
def offered() -> Iterator[list[int]]:
    received: list[int] = []

    def receiver(sender: object, offer_id: int, **kwargs: Any) -> None:
        received.append(offer_id)

    waitlist_offered.connect(receiver)
    yield received
    waitlist_offered.disconnect(receiver)


def cancel(appointment: Appointment, actor: User) -> Appointment:
    return appointment_cancel(
        actor=actor, appointment=appointment, cancelled_by="patient", reason="Cannot come"
    )


def test_adds_a_patient_to_the_waitlist_with_an_audit_row(
    wait: Callable[..., WaitlistEntry], ana: Practitioner
) -> None:
    entry = wait(practitioner=ana, preferred_weekdays=[2, 0, 0], priority=2, note="Mornings")

    assert entry.status == WaitlistStatus.WAITING
    assert entry.preferred_weekdays == [0, 2]
    audit = AuditEvent.objects.order_by("-sequence").first()
    assert audit.event == "waitlist.add"
    assert audit.patient_public_id == entry.patient.public_id
    assert "Mornings" not in str(audit.fields)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"priority": 0}, "priority"),
        ({"preferred_weekdays": [7]}, "preferred_weekdays"),
        ({"note": "x" * 201}, "note"),
    ],
)
def test_refuses_a_waitlist_entry_with_bad_values(
    wait: Callable[..., WaitlistEntry], changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        wait(**changes)

    assert field in caught.value.message_dict


def test_refuses_a_window_that_ends_before_it_starts(
    wait: Callable[..., WaitlistEntry], at: Callable[..., Any]
) -> None:
    with pytest.raises(ValidationError) as caught:
        wait(earliest=at("12:00"), latest=at("09:00"))

    assert "latest" in caught.value.message_dict


def test_a_cancellation_is_offered_to_the_best_three_by_priority_then_age(
    book: Book,
    at: Callable[..., Any],
    frontdesk: User,
    wait: Callable[..., WaitlistEntry],
    offered: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given
    appointment = book(at("09:00"))
    routine_old = wait(priority=5)
    urgent = wait(priority=1)
    routine_new = wait(priority=5)
    wait(priority=9)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        cancel(appointment, frontdesk)
    # then
    offers = list(WaitlistOffer.objects.order_by("id"))
    assert [o.entry for o in offers] == [urgent, routine_old, routine_new]
    assert sorted(offered) == sorted(o.pk for o in offers)
    for offer in offers:
        assert (offer.start, offer.end, offer.status) == (at("09:00"), at("09:30"), "open")
        assert offer.source_appointment == appointment
        remaining = offer.expires_at - timezone.now()
        assert dt.timedelta(hours=1, minutes=59) < remaining <= dt.timedelta(hours=2)
        assert offer.entry.status == WaitlistStatus.OFFERED


def test_offers_only_entries_the_slot_fits(
    book: Book,
    at: Callable[..., Any],
    frontdesk: User,
    wait: Callable[..., WaitlistEntry],
    ben: Practitioner,
    ana: Practitioner,
) -> None:
    appointment = book(at("09:00"))  # a Monday with Ana
    fits_any = wait()
    fits_ana_monday = wait(practitioner=ana, preferred_weekdays=[0])
    wait(practitioner=ben)  # wants Ben
    wait(preferred_weekdays=[1, 2])  # not Mondays
    wait(earliest=at("10:00"))  # window starts later
    wait(appointment_type=AppointmentTypeFactory(code="other", name="Other"))
    wait(patient=appointment.patient)  # the patient who cancelled

    cancel(appointment, frontdesk)

    assert {o.entry for o in WaitlistOffer.objects.all()} == {fits_any, fits_ana_monday}


def test_the_number_of_offers_and_their_lifetime_follow_the_settings(
    book: Book,
    at: Callable[..., Any],
    frontdesk: User,
    wait: Callable[..., WaitlistEntry],
    settings: Any,
) -> None:
    settings.WAITLIST_OFFER_HOURS = 0.5
    settings.WAITLIST_OFFERS_PER_OPENING = 1
    appointment = book(at("09:00"))
    wait()
    wait()

    cancel(appointment, frontdesk)

    offer = WaitlistOffer.objects.get()
    assert offer.expires_at - timezone.now() <= dt.timedelta(minutes=30)


def test_the_first_to_accept_gets_the_slot_and_the_other_offers_are_taken(
    book: Book,
    at: Callable[..., Any],
    frontdesk: User,
    wait: Callable[..., WaitlistEntry],
    ana: Practitioner,
) -> None:
    # given
    appointment = book(at("09:00"))
    first, second = wait(), wait()
    cancel(appointment, frontdesk)
    offer_first = WaitlistOffer.objects.get(entry=first)
    offer_second = WaitlistOffer.objects.get(entry=second)
    # when
    booked = waitlist_offer_accept(offer=offer_second)
    # then
    assert booked.patient == second.patient
    assert (booked.start, list(booked.practitioners.all())) == (at("09:00"), [ana])
    offer_first.refresh_from_db()
    offer_second.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (offer_second.status, offer_first.status) == (OfferStatus.ACCEPTED, OfferStatus.TAKEN)
    assert (second.status, second.booked_appointment) == (WaitlistStatus.BOOKED, booked)
    assert first.status == WaitlistStatus.WAITING
    audit = AuditEvent.objects.filter(event="appointment.book").order_by("-sequence").first()
    assert (audit.user, audit.username) == (None, "patient-link")
    # and a late acceptance finds the slot gone
    with pytest.raises(BookingConflict) as caught:
        waitlist_offer_accept(offer=offer_first)
    assert "taken by someone else" in caught.value.message


def test_accepting_fails_when_staff_booked_the_slot_meanwhile(
    book: Book,
    at: Callable[..., Any],
    frontdesk: User,
    wait: Callable[..., WaitlistEntry],
    other_patient: Patient,
) -> None:
    appointment = book(at("09:00"))
    entry = wait()
    cancel(appointment, frontdesk)
    book(at("09:00"), patient=other_patient)

    with pytest.raises(BookingConflict) as caught:
        waitlist_offer_accept(offer=WaitlistOffer.objects.get(entry=entry))

    assert [c.kind for c in caught.value.conflicts] == ["practitioner"]


def test_an_expired_offer_cannot_be_accepted(
    book: Book, at: Callable[..., Any], frontdesk: User, wait: Callable[..., WaitlistEntry]
) -> None:
    appointment = book(at("09:00"))
    entry = wait()
    cancel(appointment, frontdesk)
    offer = WaitlistOffer.objects.get(entry=entry)
    WaitlistOffer.objects.filter(pk=offer.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )

    with pytest.raises(BookingConflict) as caught:
        waitlist_offer_accept(offer=offer)

    assert "This offer has expired" in caught.value.message


def test_declining_offers_the_slot_to_the_next_patient(
    book: Book,
    at: Callable[..., Any],
    frontdesk: User,
    wait: Callable[..., WaitlistEntry],
    settings: Any,
) -> None:
    # given: one offer per opening, three waiting
    settings.WAITLIST_OFFERS_PER_OPENING = 1
    appointment = book(at("09:00"))
    first, second, third = wait(priority=1), wait(priority=2), wait(priority=3)
    cancel(appointment, frontdesk)
    # when
    declined = waitlist_offer_decline(offer=WaitlistOffer.objects.get(entry=first))
    # then
    assert declined.status == OfferStatus.DECLINED
    first.refresh_from_db()
    assert first.status == WaitlistStatus.WAITING
    assert WaitlistOffer.objects.filter(status=OfferStatus.OPEN).get().entry == second
    assert not WaitlistOffer.objects.filter(entry=third).exists()
    with pytest.raises(ValidationError):
        waitlist_offer_decline(offer=declined)


def test_a_cancellation_in_the_past_offers_nothing(
    wait: Callable[..., WaitlistEntry], patient: Patient, follow_up: AppointmentType
) -> None:
    from scheduling.tests.factories import AppointmentFactory

    gone = AppointmentFactory(
        patient=patient,
        appointment_type=follow_up,
        start=timezone.now() - dt.timedelta(hours=1),
    )
    wait(earliest=timezone.now() - dt.timedelta(days=1))

    assert waitlist_offer_opening(appointment=gone) == []
