"""Status changes along the allowed transitions, rescheduling and modifying, and what each
records (timeline, audit, change event)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from patients.models import Patient
from scheduling.events import AppointmentChange, appointment_changed
from scheduling.models import (
    Appointment,
    AppointmentEvent,
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentType,
    Practitioner,
)
from scheduling.services import (
    BookingConflict,
    appointment_cancel,
    appointment_check_in,
    appointment_check_out,
    appointment_confirm,
    appointment_no_show,
    appointment_reschedule,
    appointment_room,
    appointment_update,
)
from scheduling.tests.factories import AppointmentFactory, AppointmentTypeFactory, ResourceFactory

pytestmark = pytest.mark.django_db

Book = Callable[..., Any]


@pytest.fixture
def changes() -> Iterator[list[dict[str, Any]]]:
    """appointment_changed events received (tests run in a transaction: callbacks captured)."""
    received: list[dict[str, Any]] = []

    def receiver(sender: object, **kwargs: Any) -> None:
        received.append(kwargs)

    appointment_changed.connect(receiver)
    yield received
    appointment_changed.disconnect(receiver)


@pytest.fixture
def today_appointment(
    patient: Patient, follow_up: AppointmentType, ana: Practitioner, main_clinic: Location
) -> Appointment:
    """An appointment that started ten minutes ago (built directly: booking refuses the past)."""
    start = timezone.now() - dt.timedelta(minutes=10)
    return AppointmentFactory(
        patient=patient,
        appointment_type=follow_up,
        location=main_clinic,
        start=start,
        practitioners=[ana],
    )


def test_walks_the_whole_visit_from_booked_to_completed(
    book: Book,
    at: Callable[..., dt.datetime],
    frontdesk: User,
    main_clinic: Location,
    changes: list[dict[str, Any]],
    committed: Any,
) -> None:
    # given
    room = ResourceFactory(location=main_clinic, name="Room 3")
    appointment = book(at("09:00"))
    # when
    with committed():
        appointment_confirm(actor=frontdesk, appointment=appointment, via="patient-link")
        appointment_check_in(
            actor=frontdesk,
            appointment=appointment,
            insurance_verified=True,
            copay_collected=Decimal("25.00"),
        )
        appointment_room(actor=frontdesk, appointment=appointment, room=room)
        appointment_check_out(actor=frontdesk, appointment=appointment)
    # then
    appointment.refresh_from_db()
    assert appointment.status == "completed"
    assert appointment.confirmed_at
    assert appointment.arrived_at
    assert appointment.roomed_at
    assert appointment.completed_at
    assert appointment.insurance_verified
    assert appointment.copay_collected == Decimal("25.00")
    assert appointment.room == room
    timeline = [e.kind for e in AppointmentEvent.objects.filter(appointment=appointment)]
    assert timeline == ["booked", "confirmed", "arrived", "in_room", "completed"]
    events = list(
        AuditEvent.objects.filter(category="scheduling")
        .order_by("sequence")
        .values_list("event", flat=True)
    )
    assert events == [
        "appointment.book",
        "appointment.confirm",
        "appointment.check_in",
        "appointment.room",
        "appointment.check_out",
    ]
    # the booking's announcement was queued too, and the worker sends them in order
    assert [c["change"] for c in changes] == [AppointmentChange.BOOKED] + [
        AppointmentChange.STATUS
    ] * 4


def test_refuses_a_transition_that_is_not_allowed_naming_both_statuses(
    today_appointment: Appointment, frontdesk: User
) -> None:
    appointment_check_in(actor=frontdesk, appointment=today_appointment)
    appointment_room(actor=frontdesk, appointment=today_appointment)
    appointment_check_out(actor=frontdesk, appointment=today_appointment)

    with pytest.raises(ValidationError) as caught:
        appointment_cancel(
            actor=frontdesk, appointment=today_appointment, cancelled_by="clinic", reason="Oops"
        )

    assert caught.value.message_dict["status"] == [
        "The appointment is completed; it cannot become cancelled."
    ]


def test_a_cancelled_appointment_cannot_be_checked_in(
    book: Book, at: Callable[..., dt.datetime], frontdesk: User
) -> None:
    appointment = book(at("09:00"))
    appointment_cancel(
        actor=frontdesk, appointment=appointment, cancelled_by="clinic", reason="Provider ill"
    )

    with pytest.raises(ValidationError) as caught:
        appointment_check_in(actor=frontdesk, appointment=appointment)

    assert "cancelled; it cannot become arrived" in caught.value.message_dict["status"][0]


def test_cancelling_records_who_and_why_and_frees_practitioner_and_resources(
    book: Book,
    at: Callable[..., dt.datetime],
    frontdesk: User,
    main_clinic: Location,
    changes: list[dict[str, Any]],
    committed: Any,
) -> None:
    room = ResourceFactory(location=main_clinic, name="Room 1")
    appointment = book(at("09:00"), resources=[room])

    with committed():
        appointment_cancel(
            actor=frontdesk,
            appointment=appointment,
            cancelled_by="patient",
            reason="Car broke down",
            via="api",
        )

    appointment.refresh_from_db()
    assert (appointment.status, appointment.cancelled_by) == ("cancelled", "patient")
    assert appointment.cancel_reason == "Car broke down"
    assert appointment.cancelled_at is not None
    assert not AppointmentPractitioner.objects.get(appointment=appointment).blocks
    assert not AppointmentResource.objects.get(appointment=appointment).blocks
    audit = AuditEvent.objects.order_by("-sequence").first()
    assert audit.event == "appointment.cancel"
    assert "cancel_reason" in audit.fields
    assert "Car broke down" not in str(audit.fields) + audit.reason
    assert changes[-1]["change"] == AppointmentChange.CANCELLED
    assert changes[-1]["via"] == "api"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"cancelled_by": "patient", "reason": "  "}, "reason"),
        ({"cancelled_by": "someone", "reason": "Sick"}, "cancelled_by"),
        ({"cancelled_by": "clinic", "reason": "x" * 201}, "reason"),
    ],
)
def test_cancelling_needs_a_reason_and_who_cancelled(
    book: Book, at: Callable[..., dt.datetime], frontdesk: User, values: dict[str, str], field: str
) -> None:
    appointment = book(at("09:00"))

    with pytest.raises(ValidationError) as caught:
        appointment_cancel(actor=frontdesk, appointment=appointment, **values)

    assert field in caught.value.message_dict
    appointment.refresh_from_db()
    assert appointment.status == "booked"


def test_a_no_show_frees_the_time_and_is_announced(
    today_appointment: Appointment,
    frontdesk: User,
    changes: list[dict[str, Any]],
    committed: Any,
) -> None:
    with committed():
        appointment_no_show(actor=frontdesk, appointment=today_appointment)

    today_appointment.refresh_from_db()
    assert today_appointment.status == "no_show"
    assert today_appointment.no_show_at is not None
    assert not AppointmentPractitioner.objects.get(appointment=today_appointment).blocks
    assert changes[-1]["change"] == AppointmentChange.NO_SHOW


def test_a_no_show_cannot_be_marked_before_the_start(
    book: Book, at: Callable[..., dt.datetime], frontdesk: User
) -> None:
    appointment = book(at("09:00"))

    with pytest.raises(ValidationError) as caught:
        appointment_no_show(actor=frontdesk, appointment=appointment)

    assert "once the start time has passed" in caught.value.message_dict["status"][0]


@pytest.mark.parametrize("copay", ["-5", "abc", "12.345", "10000000"])
def test_check_in_refuses_a_copay_that_is_not_an_amount(
    today_appointment: Appointment, frontdesk: User, copay: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        appointment_check_in(actor=frontdesk, appointment=today_appointment, copay_collected=copay)

    assert "copay_collected" in caught.value.message_dict


def test_rooming_needs_a_room_at_the_appointments_location(
    today_appointment: Appointment, frontdesk: User
) -> None:
    elsewhere = ResourceFactory(name="Far room")
    appointment_check_in(actor=frontdesk, appointment=today_appointment)

    with pytest.raises(ValidationError) as caught:
        appointment_room(actor=frontdesk, appointment=today_appointment, room=elsewhere)

    assert "room" in caught.value.message_dict


def test_billing_staff_cannot_check_patients_in(
    today_appointment: Appointment, persona: Callable[[str], User]
) -> None:
    with pytest.raises(PermissionDenied):
        appointment_check_in(actor=persona("billing"), appointment=today_appointment)


# ---- reschedule and modify -------------------------------------------------------------------


def test_rescheduling_moves_the_same_appointment_and_frees_the_old_time(
    book: Book,
    at: Callable[..., dt.datetime],
    frontdesk: User,
    other_patient: Patient,
    changes: list[dict[str, Any]],
    committed: Any,
) -> None:
    # given
    appointment = book(at("09:00"))
    # when
    with committed():
        moved = appointment_reschedule(actor=frontdesk, appointment=appointment, start=at("11:00"))
    # then
    assert moved.pk == appointment.pk
    assert (moved.start, moved.end) == (at("11:00"), at("11:30"))
    assert AppointmentPractitioner.objects.get(appointment=appointment).start == at("11:00")
    assert book(at("09:00"), patient=other_patient).start == at("09:00")
    assert changes[-1]["change"] == AppointmentChange.RESCHEDULED
    assert AppointmentEvent.objects.filter(appointment=appointment, kind="rescheduled").exists()


def test_rescheduling_a_little_later_does_not_clash_with_itself(
    book: Book, at: Callable[..., dt.datetime], frontdesk: User
) -> None:
    appointment = book(at("09:00"))

    moved = appointment_reschedule(actor=frontdesk, appointment=appointment, start=at("09:15"))

    assert moved.start == at("09:15")


def test_rescheduling_into_a_taken_time_is_refused_and_changes_nothing(
    book: Book, at: Callable[..., dt.datetime], frontdesk: User, other_patient: Patient
) -> None:
    appointment = book(at("09:00"))
    book(at("10:00"), patient=other_patient)

    with pytest.raises(BookingConflict) as caught:
        appointment_reschedule(actor=frontdesk, appointment=appointment, start=at("10:00"))

    assert [c.kind for c in caught.value.conflicts] == ["practitioner"]
    appointment.refresh_from_db()
    assert appointment.start == at("09:00")
    assert AppointmentPractitioner.objects.get(appointment=appointment).start == at("09:00")


def test_rescheduling_keeps_the_room_when_it_is_free_and_picks_another_when_not(
    book: Book,
    at: Callable[..., dt.datetime],
    frontdesk: User,
    other_patient: Patient,
    ben: Practitioner,
    main_clinic: Location,
    follow_up: AppointmentType,
) -> None:
    # given
    follow_up.required_resource_kinds = ["exam-room"]
    follow_up.save()
    room_a = ResourceFactory(location=main_clinic, name="A room")
    room_b = ResourceFactory(location=main_clinic, name="B room")
    appointment = book(at("09:00"), resources=[room_b])
    book(at("11:00"), patient=other_patient, practitioners=[ben], resources=[room_b])
    # when
    kept = appointment_reschedule(actor=frontdesk, appointment=appointment, start=at("10:00"))
    kept_rooms = list(kept.resources.all())
    swapped = appointment_reschedule(actor=frontdesk, appointment=appointment, start=at("11:00"))
    # then
    assert kept_rooms == [room_b]
    assert list(swapped.resources.all()) == [room_a]


def test_a_checked_in_appointment_cannot_be_rescheduled(
    today_appointment: Appointment, frontdesk: User, at: Callable[..., dt.datetime]
) -> None:
    appointment_check_in(actor=frontdesk, appointment=today_appointment)

    with pytest.raises(ValidationError) as caught:
        appointment_reschedule(actor=frontdesk, appointment=today_appointment, start=at("09:00"))

    assert "arrived appointment cannot be moved" in caught.value.message_dict["status"][0]


def test_changing_the_type_checks_the_new_length(
    book: Book,
    at: Callable[..., dt.datetime],
    frontdesk: User,
    other_patient: Patient,
    changes: list[dict[str, Any]],
    committed: Any,
) -> None:
    # given: a 30-minute visit at 09:00 and another patient at 10:00
    appointment = book(at("09:00"))
    book(at("10:00"), patient=other_patient)
    long_visit = AppointmentTypeFactory(code="long", name="Long visit", duration_minutes=90)
    medium = AppointmentTypeFactory(code="medium", name="Medium visit", duration_minutes=60)
    # when / then
    with pytest.raises(BookingConflict):
        appointment_update(actor=frontdesk, appointment=appointment, appointment_type=long_visit)
    with committed():
        changed = appointment_update(
            actor=frontdesk, appointment=appointment, appointment_type=medium, reason="Also flu"
        )
    assert (changed.appointment_type, changed.end, changed.reason) == (
        medium,
        at("10:00"),
        "Also flu",
    )
    assert AppointmentPractitioner.objects.get(appointment=appointment).end == at("10:00")
    assert changes[-1]["change"] == AppointmentChange.MODIFIED
    audit = AuditEvent.objects.order_by("-sequence").first()
    assert audit.event == "appointment.update"
    assert set(audit.fields) == {"appointment_type", "end", "reason", "resources"}


def test_an_update_that_changes_nothing_records_nothing(
    book: Book, at: Callable[..., dt.datetime], frontdesk: User
) -> None:
    appointment = book(at("09:00"), reason="Check-up")
    before = AuditEvent.objects.count()

    appointment_update(actor=frontdesk, appointment=appointment, reason="Check-up")

    assert AuditEvent.objects.count() == before
