"""The messaging app reacts to scheduling's events, driven through the real booking services."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from core.models import Location
from messaging.models import MessageKind, MessageStatus, OutboundMessage
from messaging.tests.factories import (
    AlwaysAvailableRuleFactory,
    AppointmentTypeFactory,
    ReachablePatientFactory,
    WaitlistEntryFactory,
)
from scheduling import services as scheduling
from scheduling.models import Appointment, Practitioner
from scheduling.tests.factories import PractitionerFactory

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


@pytest.fixture
def practitioner(main_clinic: Location) -> Practitioner:
    practitioner = PractitionerFactory(locations=[main_clinic])
    AlwaysAvailableRuleFactory(practitioner=practitioner, location=main_clinic)
    return practitioner


def local(days: int, hour: int) -> dt.datetime:
    return dt.datetime.combine(
        timezone.localdate() + dt.timedelta(days=days), dt.time(hour), tzinfo=NEW_YORK
    )


def book(actor: User, practitioner: Practitioner, location: Location, **kwargs: Any) -> Appointment:
    defaults: dict[str, Any] = {
        "patient": ReachablePatientFactory(home_location=location),
        "appointment_type": AppointmentTypeFactory(reminder_offsets_hours=[72, 24]),
        "start": local(6, 10),
    }
    defaults.update(kwargs)
    return scheduling.appointment_book(
        actor=actor, practitioners=[practitioner], location=location, **defaults
    )


def test_booking_plans_the_reminders_of_the_appointment_type(
    persona: Callable[[str], User],
    main_clinic: Location,
    practitioner: Practitioner,
    committed: Any,
) -> None:
    with committed():
        appointment = book(persona("frontdesk"), practitioner, main_clinic)

    rows = OutboundMessage.objects.filter(appointment=appointment).order_by("next_attempt_at")
    assert [(m.kind, m.status) for m in rows] == [("reminder", "queued")] * 2
    assert [m.next_attempt_at for m in rows] == [
        appointment.start - dt.timedelta(hours=72),
        appointment.start - dt.timedelta(hours=24),
    ]


def test_rescheduling_re_plans_the_reminders(
    persona: Callable[[str], User],
    main_clinic: Location,
    practitioner: Practitioner,
    committed: Any,
) -> None:
    # given
    frontdesk = persona("frontdesk")
    with committed():
        appointment = book(frontdesk, practitioner, main_clinic)
    # when
    with committed():
        moved = scheduling.appointment_reschedule(
            actor=frontdesk, appointment=appointment, start=local(9, 11)
        )
    # then
    queued = OutboundMessage.objects.filter(appointment=moved, status=MessageStatus.QUEUED)
    cancelled = OutboundMessage.objects.filter(appointment=moved, status=MessageStatus.CANCELLED)
    assert sorted(m.next_attempt_at for m in queued) == [
        moved.start - dt.timedelta(hours=72),
        moved.start - dt.timedelta(hours=24),
    ]
    assert {m.status_reason for m in cancelled} == {"appointment rescheduled"}
    assert cancelled.count() == 2


def test_a_clinic_cancellation_cancels_reminders_and_tells_the_patient(
    persona: Callable[[str], User],
    main_clinic: Location,
    practitioner: Practitioner,
    committed: Any,
) -> None:
    frontdesk = persona("frontdesk")
    with committed():
        appointment = book(frontdesk, practitioner, main_clinic)

    with committed():
        scheduling.appointment_cancel(
            actor=frontdesk, appointment=appointment, cancelled_by="clinic", reason="doctor ill"
        )

    reminders = OutboundMessage.objects.filter(appointment=appointment, kind=MessageKind.REMINDER)
    assert {(m.status, m.status_reason) for m in reminders} == {
        ("cancelled", "appointment cancelled")
    }
    notice = OutboundMessage.objects.get(kind=MessageKind.CANCELLATION_NOTICE)
    assert notice.status == MessageStatus.QUEUED
    assert "doctor ill" not in notice.body
    assert not OutboundMessage.objects.filter(kind=MessageKind.STAFF_NOTICE).exists()


def test_a_patient_cancelling_by_phone_gets_no_notice(
    persona: Callable[[str], User],
    main_clinic: Location,
    practitioner: Practitioner,
    committed: Any,
) -> None:
    frontdesk = persona("frontdesk")
    with committed():
        appointment = book(frontdesk, practitioner, main_clinic)

    with committed():
        scheduling.appointment_cancel(
            actor=frontdesk, appointment=appointment, cancelled_by="patient", reason="called in"
        )

    assert not OutboundMessage.objects.filter(kind=MessageKind.CANCELLATION_NOTICE).exists()


def test_a_freed_slot_offered_to_the_waitlist_is_sent_to_the_waiting_patient(
    persona: Callable[[str], User],
    main_clinic: Location,
    practitioner: Practitioner,
    committed: Any,
) -> None:
    # given a booked appointment and a patient waiting for that type
    frontdesk = persona("frontdesk")
    appointment_type = AppointmentTypeFactory(reminder_offsets_hours=[])
    with committed():
        appointment = book(frontdesk, practitioner, main_clinic, appointment_type=appointment_type)
    waiting = WaitlistEntryFactory(
        location=main_clinic, appointment_type=appointment_type, status="waiting"
    )
    # when the appointment is cancelled
    with committed():
        scheduling.appointment_cancel(
            actor=frontdesk, appointment=appointment, cancelled_by="clinic", reason="moved"
        )
    # then the waiting patient is sent the offer by SMS, their preferred channel
    offer_message = OutboundMessage.objects.get(kind=MessageKind.WAITLIST_OFFER)
    assert offer_message.patient == waiting.patient
    assert offer_message.channel == "sms"
    assert offer_message.waitlist_offer.entry == waiting
    assert offer_message.status == MessageStatus.QUEUED


def test_a_failing_receiver_does_not_break_the_booking(
    persona: Callable[[str], User],
    main_clinic: Location,
    practitioner: Practitioner,
    committed: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from messaging import services

    def broken(**kwargs: object) -> None:
        raise RuntimeError("Ann Example +16175550142")

    monkeypatch.setattr(services, "appointment_change_notify", broken)

    with committed():
        appointment = book(persona("frontdesk"), practitioner, main_clinic)

    assert Appointment.objects.filter(pk=appointment.pk).exists()
    assert "planning messages for appointment" in caplog.text
    assert "+16175550142" not in caplog.text
