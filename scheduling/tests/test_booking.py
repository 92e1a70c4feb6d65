"""Booking through scheduling.services.appointment_book: every check, and what it records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from core.tests.factories import LocationFactory
from patients.models import Patient
from patients.tests.factories import PatientFactory
from scheduling.events import AppointmentChange, appointment_changed
from scheduling.models import (
    AppointmentEvent,
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentType,
    ExceptionKind,
    Practitioner,
)
from scheduling.services import BookingConflict, appointment_book, appointment_cancel
from scheduling.tasks import announce_appointment_change, announce_queued_changes
from scheduling.tests.conftest import local, next_dst_change
from scheduling.tests.factories import (
    AppointmentTypeFactory,
    AvailabilityExceptionFactory,
    AvailabilityRuleFactory,
    PractitionerFactory,
    ResourceFactory,
)

pytestmark = pytest.mark.django_db

Book = Callable[..., Any]


def kinds(exc: pytest.ExceptionInfo[BookingConflict]) -> list[str]:
    return [conflict.kind for conflict in exc.value.conflicts]


# ---- the happy path and what it records ----------------------------------------------------


def test_books_an_appointment_with_the_practitioner_at_their_location(
    book: Book, at: Callable[..., dt.datetime], ana: Practitioner, main_clinic: Location
) -> None:
    appointment = book(at("09:00"), reason="Blood pressure check")

    assert appointment.status == "booked"
    assert appointment.location == main_clinic
    assert appointment.start == at("09:00")
    assert appointment.end == at("09:30")
    assert list(appointment.practitioners.all()) == [ana]
    row = AppointmentPractitioner.objects.get(appointment=appointment)
    assert (row.start, row.end, row.blocks, row.is_overbooked) == (
        at("09:00"),
        at("09:30"),
        True,
        False,
    )


def test_booking_writes_a_timeline_event_and_an_audit_row_with_field_names_only(
    book: Book, at: Callable[..., dt.datetime], patient: Patient, frontdesk: User
) -> None:
    appointment = book(at("09:00"), reason="Dizziness after new medication")

    timeline = list(AppointmentEvent.objects.filter(appointment=appointment))
    assert [event.kind for event in timeline] == ["booked"]
    assert "Dizziness" not in timeline[0].detail
    audit = AuditEvent.objects.order_by("-sequence").first()
    assert audit.event == "appointment.book"
    assert audit.category == "scheduling"
    assert audit.user == frontdesk
    assert audit.patient_public_id == patient.public_id
    assert audit.object_id == str(appointment.public_id)
    assert "reason" in audit.fields
    assert "Dizziness" not in str(audit.fields) + audit.reason


def test_booking_queues_one_announcement_that_a_worker_sends(
    book: Book,
    at: Callable[..., dt.datetime],
    frontdesk: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    received: list[dict[str, Any]] = []

    def receiver(sender: object, **kwargs: Any) -> None:
        received.append(kwargs)

    appointment_changed.connect(receiver)
    try:
        # given: booked and committed; no receiver runs in the booking's request
        with django_capture_on_commit_callbacks(execute=True):
            appointment = book(at("09:00"), via="api")
        assert received == []
        queued = DBTaskResult.objects.filter(task_path=announce_appointment_change.module_path)
        assert queued.count() == 1
        assert queued.get().args_kwargs["args"] == [appointment.pk, "booked", frontdesk.pk, "api"]
        # when: the worker runs it
        announced = announce_queued_changes()
    finally:
        appointment_changed.disconnect(receiver)

    # then
    assert announced == 1
    assert len(received) == 1
    assert received[0]["appointment_id"] == appointment.pk
    assert received[0]["change"] == AppointmentChange.BOOKED
    assert received[0]["actor_id"] == frontdesk.pk
    assert received[0]["via"] == "api"
    assert queued.get().status == "SUCCESSFUL"


def test_a_refused_booking_queues_no_announcement(
    book: Book, at: Callable[..., dt.datetime], ana: Practitioner
) -> None:
    book(at("09:00"))

    with pytest.raises(BookingConflict):
        book(at("09:15"))

    queued = DBTaskResult.objects.filter(task_path=announce_appointment_change.module_path)
    assert queued.count() == 1


def test_back_to_back_appointments_both_succeed(
    book: Book, at: Callable[..., dt.datetime], other_patient: Patient
) -> None:
    first = book(at("09:00"))
    second = book(at("09:30"), patient=other_patient)

    assert first.end == second.start


# ---- clashes ---------------------------------------------------------------------------------


def test_refuses_an_overlapping_booking_naming_the_practitioner(
    book: Book, at: Callable[..., dt.datetime], other_patient: Patient, ana: Practitioner
) -> None:
    # given
    book(at("09:00"))
    # when
    with pytest.raises(BookingConflict) as caught:
        book(at("09:15"), patient=other_patient)
    # then
    conflict = caught.value.conflicts[0]
    assert kinds(caught) == ["practitioner"]
    assert conflict.label == "Ana Núñez, NP"
    assert conflict.object_id == str(ana.public_id)
    assert (conflict.start, conflict.end) == (at("09:00"), at("09:30"))
    assert "Ana Núñez, NP is already booked" in caught.value.message
    assert "09:00 to 09:30" in caught.value.message


def test_the_buffer_after_an_appointment_keeps_the_practitioner_busy(
    book: Book, at: Callable[..., dt.datetime], other_patient: Patient
) -> None:
    procedure = AppointmentTypeFactory(code="procedure", duration_minutes=30, buffer_minutes=15)
    book(at("09:00"), appointment_type=procedure)

    with pytest.raises(BookingConflict) as caught:
        book(at("09:30"), patient=other_patient)

    assert kinds(caught) == ["practitioner"]
    assert caught.value.conflicts[0].end == at("09:45")
    assert book(at("09:45"), patient=other_patient).start == at("09:45")


def test_a_room_cannot_hold_two_appointments_at_once(
    book: Book,
    at: Callable[..., dt.datetime],
    other_patient: Patient,
    ben: Practitioner,
    main_clinic: Location,
) -> None:
    # given
    room = ResourceFactory(location=main_clinic, name="Room 1")
    book(at("09:00"), resources=[room])
    # when
    with pytest.raises(BookingConflict) as caught:
        book(at("09:00"), patient=other_patient, practitioners=[ben], resources=[room])
    # then
    assert kinds(caught) == ["resource"]
    assert caught.value.conflicts[0].label == "Room 1"
    assert caught.value.conflicts[0].object_id == str(room.public_id)


def test_picks_a_free_room_of_each_required_kind(
    book: Book,
    at: Callable[..., dt.datetime],
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
    ResourceFactory(location=main_clinic, name="Echo", kind="ultrasound", category="equipment")
    # when
    first = book(at("09:00"))
    second = book(at("09:00"), patient=other_patient, practitioners=[ben])
    # then
    assert list(first.resources.all()) == [room_a]
    assert list(second.resources.all()) == [room_b]


def test_refuses_when_every_room_of_a_required_kind_is_taken(
    book: Book,
    at: Callable[..., dt.datetime],
    other_patient: Patient,
    ben: Practitioner,
    main_clinic: Location,
    follow_up: AppointmentType,
) -> None:
    follow_up.required_resource_kinds = ["exam-room"]
    follow_up.save()
    ResourceFactory(location=main_clinic, name="Only room")
    book(at("09:00"))

    with pytest.raises(BookingConflict) as caught:
        book(at("09:00"), patient=other_patient, practitioners=[ben])

    assert kinds(caught) == ["resource"]
    assert "Every exam room at Main Street Clinic is in use" in caught.value.message


def test_a_resource_with_capacity_takes_that_many_concurrent_bookings(
    book: Book,
    at: Callable[..., dt.datetime],
    main_clinic: Location,
    ana: Practitioner,
    ben: Practitioner,
) -> None:
    # given
    chairs = ResourceFactory(
        location=main_clinic, name="Infusion bay", kind="infusion-chair", capacity=2
    )
    third = PractitionerFactory(locations=[main_clinic])
    AvailabilityRuleFactory(practitioner=third, location=main_clinic)
    # when
    book(at("09:00"), resources=[chairs])
    book(at("09:00"), resources=[chairs], practitioners=[ben], patient=PatientFactory())
    with pytest.raises(BookingConflict) as caught:
        book(at("09:15"), resources=[chairs], practitioners=[third], patient=PatientFactory())
    # then
    assert kinds(caught) == ["resource", "resource"]
    assert AppointmentResource.objects.filter(resource=chairs, exclusive=False).count() == 2


def test_a_patient_cannot_be_in_two_appointments_at_once(
    book: Book, at: Callable[..., dt.datetime], ben: Practitioner
) -> None:
    first = book(at("09:00"))

    with pytest.raises(BookingConflict) as caught:
        book(at("09:15"), practitioners=[ben])

    assert kinds(caught) == ["patient"]
    assert caught.value.conflicts[0].object_id == str(first.public_id)
    assert "The patient already has an appointment (Follow-up)" in caught.value.message


def test_names_every_clash_at_once(
    book: Book, at: Callable[..., dt.datetime], main_clinic: Location
) -> None:
    room = ResourceFactory(location=main_clinic, name="Room 1")
    book(at("09:00"), resources=[room])

    with pytest.raises(BookingConflict) as caught:
        book(at("09:00"), resources=[room])

    assert sorted(kinds(caught)) == ["patient", "practitioner", "resource"]


# ---- availability, opening hours, exceptions, the past -----------------------------------------


def test_refuses_a_time_outside_the_practitioners_availability(
    book: Book, at: Callable[..., dt.datetime], ana: Practitioner
) -> None:
    with pytest.raises(BookingConflict) as caught:
        book(at("16:45"))  # Ana works until 17:00; the visit would end 17:15

    assert kinds(caught) == ["availability"]
    assert caught.value.conflicts[0].object_id == str(ana.public_id)
    assert "Ana Núñez, NP is not available" in caught.value.message


def test_refuses_a_day_the_practitioner_does_not_work(
    book: Book, at: Callable[..., dt.datetime]
) -> None:
    with pytest.raises(BookingConflict) as caught:
        book(at("10:00", days=5))  # Saturday

    assert kinds(caught) == ["availability"]


def test_refuses_a_time_outside_opening_hours_even_within_availability(
    book: Book, at: Callable[..., dt.datetime], ana: Practitioner, main_clinic: Location
) -> None:
    AvailabilityRuleFactory(
        practitioner=ana,
        location=main_clinic,
        rrule="FREQ=WEEKLY;BYDAY=MO",
        start_time=dt.time(17, 0),
        end_time=dt.time(20, 0),
    )

    with pytest.raises(BookingConflict) as caught:
        book(at("18:00"))

    assert kinds(caught) == ["opening_hours"]
    assert "Main Street Clinic is closed" in caught.value.message
    assert book(at("17:00")).start == at("17:00")  # still open until 18:00


def test_refuses_a_location_holiday(
    book: Book, at: Callable[..., dt.datetime], main_clinic: Location
) -> None:
    holiday = AvailabilityExceptionFactory(
        location=main_clinic, start=at("00:00"), end=at("00:00", days=1), reason="Memorial Day"
    )

    with pytest.raises(BookingConflict) as caught:
        book(at("09:00"))

    assert kinds(caught) == ["exception"]
    assert caught.value.conflicts[0].label == "Holiday (location closed): Memorial Day"
    assert caught.value.conflicts[0].object_id == str(holiday.public_id)


def test_refuses_the_practitioners_leave_but_not_a_colleagues(
    book: Book,
    at: Callable[..., dt.datetime],
    ana: Practitioner,
    ben: Practitioner,
    main_clinic: Location,
) -> None:
    AvailabilityExceptionFactory(
        location=main_clinic,
        practitioner=ana,
        kind=ExceptionKind.LEAVE,
        start=at("12:00"),
        end=at("14:00"),
        reason="Conference",
    )

    with pytest.raises(BookingConflict) as caught:
        book(at("13:00"))

    assert kinds(caught) == ["exception"]
    assert book(at("13:00"), practitioners=[ben]).start == at("13:00")


def test_refuses_a_start_in_the_past(book: Book, ana: Practitioner, main_clinic: Location) -> None:
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)

    with pytest.raises(BookingConflict) as caught:
        book(yesterday)

    assert "past" in kinds(caught)


def test_refuses_a_start_without_a_time_zone(book: Book, monday: dt.date) -> None:
    with pytest.raises(ValidationError) as caught:
        book(dt.datetime.combine(monday, dt.time(9)))

    assert "start" in caught.value.message_dict


def test_refuses_a_start_years_ahead(book: Book) -> None:
    with pytest.raises(ValidationError) as caught:
        book(dt.datetime(2999, 1, 1, 9, tzinfo=dt.UTC))

    assert "730 days" in caught.value.message_dict["start"][0]


# ---- who may be booked, by whom --------------------------------------------------------------


def test_refuses_a_practitioner_the_type_does_not_allow(
    book: Book, at: Callable[..., dt.datetime], ana: Practitioner, ben: Practitioner
) -> None:
    new_patient = AppointmentTypeFactory(
        code="new", name="New patient", duration_minutes=60, allowed_practitioners=[ben]
    )

    with pytest.raises(ValidationError) as caught:
        book(at("09:00"), appointment_type=new_patient)

    assert caught.value.message_dict["practitioners"] == [
        "Ana Núñez, NP does not take New patient appointments."
    ]


def test_refuses_an_inactive_practitioner(
    book: Book, at: Callable[..., dt.datetime], ana: Practitioner
) -> None:
    ana.is_active = False
    ana.save()

    with pytest.raises(ValidationError) as caught:
        book(at("09:00"))

    assert "practitioners" in caught.value.message_dict


def test_a_user_without_the_scheduling_capability_cannot_book(
    book: Book, at: Callable[..., dt.datetime], persona: Callable[[str], User]
) -> None:
    with pytest.raises(PermissionDenied):
        book(at("09:00"), actor=persona("billing"))


def test_only_channels_without_a_user_may_book_without_an_actor(
    book: Book, at: Callable[..., dt.datetime], other_patient: Patient
) -> None:
    with pytest.raises(PermissionDenied):
        book(at("09:00"), actor=None, via="ui")

    booked = book(at("09:00"), actor=None, via="patient-link", patient=other_patient)

    audit = AuditEvent.objects.order_by("-sequence").first()
    assert booked.booked_by is None
    assert (audit.user, audit.username) == (None, "patient-link")


def test_books_several_practitioners_together(
    book: Book, at: Callable[..., dt.datetime], ana: Practitioner, ben: Practitioner
) -> None:
    appointment = book(at("10:00"), practitioners=[ben, ana])

    assert set(appointment.practitioners.all()) == {ana, ben}
    with pytest.raises(BookingConflict) as caught:
        book(at("10:00"), practitioners=[ben], patient=PatientFactory())
    assert [c.label for c in caught.value.conflicts] == ["Ben Okafor, MD"]


def test_finds_the_location_where_the_practitioner_works_then(
    book: Book, ana: Practitioner, monday: dt.date
) -> None:
    # given: Ana works Tuesdays at Riverside (Chicago time), weekdays at Main Street
    riverside = LocationFactory(code="riverside-chi", name="Riverside", time_zone="America/Chicago")
    AvailabilityRuleFactory(
        practitioner=ana,
        location=riverside,
        rrule="FREQ=WEEKLY;BYDAY=TU",
        start_time=dt.time(18, 0),
        end_time=dt.time(20, 0),
    )
    # when
    appointment = book(local(monday + dt.timedelta(days=1), "18:30", "America/Chicago"))
    # then
    assert appointment.location == riverside


def test_asks_for_the_location_when_the_practitioner_is_available_at_two(
    book: Book, at: Callable[..., dt.datetime], ana: Practitioner
) -> None:
    uptown = LocationFactory(code="uptown", name="Uptown")
    AvailabilityRuleFactory(practitioner=ana, location=uptown)

    with pytest.raises(ValidationError) as caught:
        book(at("09:00"))

    assert "Uptown" in caught.value.message_dict["location"][0]
    assert book(at("09:00"), location=uptown).location == uptown


# ---- cancelling frees the slot ---------------------------------------------------------------


def test_cancelling_frees_the_slot(
    book: Book, at: Callable[..., dt.datetime], other_patient: Patient, frontdesk: User
) -> None:
    # given
    first = book(at("09:00"))
    # when
    appointment_cancel(
        actor=frontdesk, appointment=first, cancelled_by="patient", reason="Feeling better"
    )
    # then
    assert not AppointmentPractitioner.objects.get(appointment=first).blocks
    assert book(at("09:00"), patient=other_patient).start == at("09:00")


# ---- overbooking -----------------------------------------------------------------------------


def test_a_manager_may_overbook_a_practitioner_who_allows_it_with_a_reason(
    book: Book,
    at: Callable[..., dt.datetime],
    ana: Practitioner,
    other_patient: Patient,
    officemanager: User,
) -> None:
    # given
    ana.allows_overbooking = True
    ana.save()
    book(at("09:00"))
    # when
    second = book(
        at("09:00"),
        actor=officemanager,
        patient=other_patient,
        overbook=True,
        overbook_reason="Urgent: same-day sick visit",
    )
    # then
    assert second.is_overbooked
    assert second.overbook_reason == "Urgent: same-day sick visit"
    assert AppointmentPractitioner.objects.get(appointment=second).is_overbooked
    audit = AuditEvent.objects.filter(event="appointment.book").order_by("-sequence").first()
    assert audit.reason == "overbooked"
    assert "is_overbooked" in audit.fields


def test_overbooking_without_a_clash_is_an_ordinary_booking(
    book: Book, at: Callable[..., dt.datetime], ana: Practitioner, officemanager: User
) -> None:
    ana.allows_overbooking = True
    ana.save()

    appointment = book(
        at("09:00"), actor=officemanager, overbook=True, overbook_reason="Just in case"
    )

    assert not appointment.is_overbooked
    assert appointment.overbook_reason == ""


def test_the_front_desk_may_not_overbook(
    book: Book, at: Callable[..., dt.datetime], ana: Practitioner, other_patient: Patient
) -> None:
    ana.allows_overbooking = True
    ana.save()
    book(at("09:00"))

    with pytest.raises(PermissionDenied):
        book(at("09:00"), patient=other_patient, overbook=True, overbook_reason="Urgent")


def test_nobody_may_overbook_a_practitioner_who_does_not_allow_it(
    book: Book,
    at: Callable[..., dt.datetime],
    other_patient: Patient,
    officemanager: User,
) -> None:
    book(at("09:00"))

    with pytest.raises(BookingConflict) as caught:
        book(
            at("09:00"),
            actor=officemanager,
            patient=other_patient,
            overbook=True,
            overbook_reason="Urgent",
        )

    assert kinds(caught) == ["practitioner"]


def test_overbooking_needs_a_reason(
    book: Book,
    at: Callable[..., dt.datetime],
    ana: Practitioner,
    other_patient: Patient,
    officemanager: User,
) -> None:
    ana.allows_overbooking = True
    ana.save()
    book(at("09:00"))

    with pytest.raises(ValidationError) as caught:
        book(at("09:00"), actor=officemanager, patient=other_patient, overbook=True)

    assert "overbook_reason" in caught.value.message_dict


def test_overbooking_waives_only_the_practitioner_clash(
    book: Book,
    at: Callable[..., dt.datetime],
    ana: Practitioner,
    other_patient: Patient,
    officemanager: User,
    main_clinic: Location,
) -> None:
    ana.allows_overbooking = True
    ana.save()
    room = ResourceFactory(location=main_clinic, name="Room 1")
    book(at("09:00"), resources=[room])

    with pytest.raises(BookingConflict) as caught:
        book(
            at("09:00"),
            actor=officemanager,
            patient=other_patient,
            resources=[room],
            overbook=True,
            overbook_reason="Urgent",
        )

    assert kinds(caught) == ["resource"]


# ---- daylight-saving time --------------------------------------------------------------------


def test_availability_stays_at_local_wall_clock_time_across_a_daylight_saving_change(
    frontdesk: User, follow_up: AppointmentType, ana: Practitioner, main_clinic: Location
) -> None:
    # given: the week the clocks change
    change = next_dst_change()
    week = change - dt.timedelta(days=change.weekday())
    last_monday, next_monday = week - dt.timedelta(days=7), week + dt.timedelta(days=7)

    # when: 08:00 local, the first bookable minute, in the weeks on either side
    booked = [
        appointment_book(
            actor=frontdesk,
            patient=PatientFactory(home_location=main_clinic),
            appointment_type=follow_up,
            practitioners=[ana],
            start=local(day, "08:00"),
        )
        for day in (last_monday, next_monday)
    ]
    # then: same local time, different UTC offsets; 07:30 local is refused in both weeks
    utc_hours = {appointment.start.astimezone(dt.UTC).hour for appointment in booked}
    assert len(utc_hours) == 2
    for day in (last_monday, next_monday):
        with pytest.raises(BookingConflict):
            appointment_book(
                actor=frontdesk,
                patient=PatientFactory(home_location=main_clinic),
                appointment_type=follow_up,
                practitioners=[ana],
                start=local(day, "07:30"),
            )
