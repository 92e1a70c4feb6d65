"""End to end: booking and cancelling through scheduling.services sends SIU S12 and S15 to a real
MLLP listener on loopback (the receiver is connected by InteropConfig.ready)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import hl7
import pytest
from django.utils import timezone

from core.models import Location
from interop.models import OutboundHl7Message, OutboundStatus
from interop.services import outbound_send_pending
from patients.tests.factories import PatientFactory
from scheduling.models import Practitioner
from scheduling.services import appointment_book, appointment_cancel
from scheduling.tests.factories import (
    AppointmentTypeFactory,
    AvailabilityRuleFactory,
    OpeningHoursFactory,
    PractitionerFactory,
)

from .conftest import RemoteSystem

pytestmark = pytest.mark.django_db


def next_weekday_at(hour: int) -> dt.datetime:
    day = timezone.localdate() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, 0)))


def test_booking_then_cancelling_sends_s12_then_s15(
    main_clinic: Location,
    persona: Any,
    mllp_destination: RemoteSystem,
    committed: Any,
) -> None:
    # given: an open clinic and a practitioner available on weekdays
    for weekday in range(5):
        OpeningHoursFactory(location=main_clinic, weekday=weekday)
    practitioner: Practitioner = PractitionerFactory(locations=[main_clinic])
    AvailabilityRuleFactory(practitioner=practitioner, location=main_clinic)
    visit = AppointmentTypeFactory(code="siu-e2e", name="Check-up", duration_minutes=20)
    patient = PatientFactory(home_location=main_clinic)
    frontdesk = persona("frontdesk")
    # when: booked, delivered, cancelled, delivered
    with committed():
        appointment = appointment_book(
            actor=frontdesk,
            patient=patient,
            appointment_type=visit,
            start=next_weekday_at(10),
            practitioners=[practitioner],
            location=main_clinic,
        )
    outbound_send_pending()
    with committed():
        appointment_cancel(
            actor=frontdesk, appointment=appointment, cancelled_by="patient", reason="unwell"
        )
    outbound_send_pending()
    # then
    received = [hl7.parse(text) for text in mllp_destination.received]
    assert [str(m.segment("MSH")[9]) for m in received] == ["SIU^S12^SIU_S12", "SIU^S15^SIU_S12"]
    assert {m["SCH.F2.R1.C1"] for m in received} == {str(appointment.public_id)}
    assert received[0]["SCH.F20.R1.C1"] == "frontdesk"
    assert received[1]["SCH.F25.R1.C1"] == "Cancelled"
    assert set(OutboundHl7Message.objects.values_list("status", flat=True)) == {
        OutboundStatus.ACKED
    }
