"""The slot finder and third-next-available."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from core.models import Location
from core.tests.factories import LocationFactory
from patients.models import Patient
from patients.tests.factories import PatientFactory
from scheduling.models import AppointmentType, ExceptionKind, Practitioner
from scheduling.slots import Slot, slot_find, slot_step_minutes, third_next_available
from scheduling.tests.factories import (
    AppointmentTypeFactory,
    AvailabilityExceptionFactory,
    AvailabilityRuleFactory,
    PractitionerFactory,
    ResourceFactory,
)

pytestmark = pytest.mark.django_db

Book = Callable[..., Any]
At = Callable[..., dt.datetime]


def times(slots: list[Slot], at: At) -> list[tuple[str, str]]:
    """(local HH:MM, practitioner family name) per slot."""
    tz = at("00:00").tzinfo
    return [(f"{s.start.astimezone(tz):%H:%M}", s.practitioner.family_name) for s in slots]


def find(appointment_type: AppointmentType, at: At, **options: Any) -> list[Slot]:
    values: dict[str, Any] = {"start": at("00:00"), "end": at("00:00", days=5)}
    values.update(options)
    return slot_find(appointment_type=appointment_type, **values)


def test_offers_the_earliest_slots_across_practitioners_on_a_fifteen_minute_grid(
    follow_up: AppointmentType, ana: Practitioner, ben: Practitioner, at: At, main_clinic: Location
) -> None:
    slots = find(follow_up, at, limit=5)

    assert times(slots, at) == [
        ("08:00", "Núñez"),
        ("08:00", "Okafor"),
        ("08:15", "Núñez"),
        ("08:15", "Okafor"),
        ("08:30", "Núñez"),
    ]
    assert slots[0].end - slots[0].start == dt.timedelta(minutes=30)
    assert {s.location for s in slots} == {main_clinic}


def test_skips_booked_time(
    follow_up: AppointmentType, ana: Practitioner, book: Book, at: At
) -> None:
    book(at("08:00"))
    book(at("09:00"), patient=_patient())

    slots = find(follow_up, at, practitioners=[ana], limit=4)

    assert times(slots, at) == [
        ("08:30", "Núñez"),
        ("09:30", "Núñez"),
        ("09:45", "Núñez"),
        ("10:00", "Núñez"),
    ]


def test_keeps_buffers_free_before_and_after(
    ana: Practitioner, book: Book, at: At, follow_up: AppointmentType
) -> None:
    # given: a procedure with a 15-minute buffer booked 08:00-08:30 (held to 08:45), and a
    # follow-up at 10:00
    procedure = AppointmentTypeFactory(code="proc", duration_minutes=30, buffer_minutes=15)
    book(at("08:00"), appointment_type=procedure)
    book(at("10:00"), patient=_patient())
    # when: looking for more procedures
    slots = find(procedure, at, practitioners=[ana], limit=6)
    # then: 09:30 would run its buffer into 10:00, so the next after 09:15 is 10:30
    assert times(slots, at) == [
        ("08:45", "Núñez"),
        ("09:00", "Núñez"),
        ("09:15", "Núñez"),
        ("10:30", "Núñez"),
        ("10:45", "Núñez"),
        ("11:00", "Núñez"),
    ]


def test_respects_holidays_leave_and_the_days_people_work(
    follow_up: AppointmentType, ana: Practitioner, ben: Practitioner, at: At, main_clinic: Location
) -> None:
    AvailabilityExceptionFactory(
        location=main_clinic, start=at("00:00"), end=at("00:00", days=1), reason="Holiday"
    )
    AvailabilityExceptionFactory(
        location=main_clinic,
        practitioner=ana,
        kind=ExceptionKind.LEAVE,
        start=at("00:00", days=1),
        end=at("12:00", days=1),
        reason="Leave",
    )

    slots = find(follow_up, at, limit=3)

    assert [s.start for s in slots] == [
        at("08:00", days=1),
        at("08:15", days=1),
        at("08:30", days=1),
    ]
    assert {s.practitioner for s in slots} == {ben}
    later = find(follow_up, at, practitioners=[ana], limit=1)
    assert later[0].start == at("12:00", days=1)


def test_needs_a_free_resource_of_each_required_kind(
    follow_up: AppointmentType,
    ana: Practitioner,
    ben: Practitioner,
    book: Book,
    at: At,
    main_clinic: Location,
) -> None:
    follow_up.required_resource_kinds = ["exam-room"]
    follow_up.save()
    room = ResourceFactory(location=main_clinic, name="Only room")
    book(at("08:00"))  # Ana takes the only room 08:00-08:30

    slots = find(follow_up, at, limit=3)

    assert times(slots, at) == [("08:30", "Núñez"), ("08:30", "Okafor"), ("08:45", "Núñez")]
    assert all(s.resources == (room,) for s in slots)


def test_offers_nothing_when_no_resource_of_a_required_kind_exists(
    follow_up: AppointmentType, ana: Practitioner, at: At
) -> None:
    follow_up.required_resource_kinds = ["mri"]
    follow_up.save()

    assert find(follow_up, at) == []


def test_twenty_minute_visits_start_every_ten_minutes_and_after_busy_time(
    ana: Practitioner, book: Book, at: At
) -> None:
    short = AppointmentTypeFactory(code="short", duration_minutes=20)
    booked = AppointmentTypeFactory(code="odd", duration_minutes=25)
    book(at("08:00"), appointment_type=booked)  # busy until 08:25

    slots = find(short, at, practitioners=[ana], limit=3)

    assert slot_step_minutes(short) == 10
    assert times(slots, at) == [("08:30", "Núñez"), ("08:40", "Núñez"), ("08:50", "Núñez")]


def test_only_practitioners_the_type_allows(ana: Practitioner, ben: Practitioner, at: At) -> None:
    new_patient = AppointmentTypeFactory(
        code="np", duration_minutes=60, allowed_practitioners=[ben]
    )

    assert {s.practitioner for s in find(new_patient, at, limit=10)} == {ben}
    assert find(new_patient, at, practitioners=[ana]) == []


def test_only_at_the_location_asked_for(
    follow_up: AppointmentType, ana: Practitioner, at: At
) -> None:
    uptown = LocationFactory(code="uptown", name="Uptown")
    AvailabilityRuleFactory(
        practitioner=ana, location=uptown, rrule="FREQ=WEEKLY;BYDAY=SA", start_time=dt.time(10)
    )

    slots = find(follow_up, at, location=uptown, end=at("00:00", days=7), limit=2)

    assert [s.start for s in slots] == [at("10:00", days=5), at("10:15", days=5)]
    assert {s.location for s in slots} == {uptown}


def test_finds_nothing_beyond_the_end_of_the_range(
    follow_up: AppointmentType, ana: Practitioner, at: At
) -> None:
    slots = find(follow_up, at, end=at("08:30"), limit=10)

    assert times(slots, at) == [("08:00", "Núñez"), ("08:15", "Núñez")]


def test_never_offers_the_past(follow_up: AppointmentType, ana: Practitioner, at: At) -> None:
    long_ago = at("00:00", days=-60)

    slots = find(follow_up, at, start=long_ago, end=at("00:00", days=1), limit=500)

    now = dt.datetime.now(dt.UTC)
    assert slots
    assert all(slot.start >= now for slot in slots)


def test_a_found_slot_can_be_booked(
    follow_up: AppointmentType,
    ana: Practitioner,
    ben: Practitioner,
    book: Book,
    at: At,
    main_clinic: Location,
) -> None:
    follow_up.required_resource_kinds = ["exam-room"]
    follow_up.save()
    ResourceFactory(location=main_clinic, name="Room 1")
    ResourceFactory(location=main_clinic, name="Room 2")
    book(at("08:00"))

    for slot in find(follow_up, at, limit=6):  # each on its own: the slots overlap
        savepoint = transaction.savepoint()
        booked = book(
            slot.start,
            patient=_patient(),
            practitioners=[slot.practitioner],
            resources=list(slot.resources),
        )
        assert booked.location == slot.location
        transaction.savepoint_rollback(savepoint)


def test_searches_ninety_days_in_few_queries(
    follow_up: AppointmentType, at: At, main_clinic: Location, django_assert_max_num_queries: Any
) -> None:
    # given: five practitioners who only work one Saturday morning, eleven weeks out
    saturday = at("00:00", days=5 + 77).date()
    for _ in range(5):
        AvailabilityRuleFactory(
            practitioner=PractitionerFactory(),
            location=main_clinic,
            rrule="FREQ=DAILY;COUNT=1",
            start_date=saturday,
        )
    # when
    with django_assert_max_num_queries(18):
        slots = find(follow_up, at, end=at("00:00", days=90), limit=10)
    # then
    assert len(slots) == 10
    assert {s.start.date() for s in slots} == {saturday}


# ---- third next available --------------------------------------------------------------------


def test_third_next_available_counts_slots_that_can_all_be_booked(
    follow_up: AppointmentType, ana: Practitioner, book: Book, at: At
) -> None:
    book(at("08:00"))
    book(at("08:30"), patient=_patient())

    third = third_next_available(practitioner=ana, appointment_type=follow_up, after=at("00:00"))

    assert third == at("10:00")  # 09:00, 09:30, then 10:00


def test_third_next_available_is_none_when_fewer_than_three_are_open(
    follow_up: AppointmentType, at: At, main_clinic: Location
) -> None:
    part_timer = PractitionerFactory()
    AvailabilityRuleFactory(
        practitioner=part_timer,
        location=main_clinic,
        rrule="FREQ=DAILY;COUNT=1",
        start_date=at("00:00").date(),
        start_time=dt.time(9),
        end_time=dt.time(10),
    )

    assert (
        third_next_available(practitioner=part_timer, appointment_type=follow_up, after=at("00:00"))
        is None
    )


def _patient() -> Patient:
    return PatientFactory()
