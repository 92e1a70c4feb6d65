"""Recurring appointments: all occurrences or none, and one occurrence changed alone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from audit.models import AuditEvent
from patients.models import Patient
from scheduling.availability import zone
from scheduling.models import Appointment, AppointmentSeries, AppointmentType, Practitioner
from scheduling.services import (
    BookingConflict,
    appointment_cancel,
    appointment_reschedule,
    series_book,
)
from scheduling.tests.conftest import NEW_YORK, local, next_dst_change

pytestmark = pytest.mark.django_db

Book = Callable[..., Any]


@pytest.fixture
def weekly(
    frontdesk: User, patient: Patient, follow_up: AppointmentType, ana: Practitioner
) -> Callable[..., AppointmentSeries]:
    def make(first_start: dt.datetime, rrule: str = "FREQ=WEEKLY;COUNT=4") -> AppointmentSeries:
        return series_book(
            actor=frontdesk,
            patient=patient,
            appointment_type=follow_up,
            first_start=first_start,
            rrule=rrule,
            practitioners=[ana],
        )

    return make


def occurrences(series: AppointmentSeries) -> list[Appointment]:
    return list(series.appointments.order_by("start"))


def test_books_every_occurrence_at_the_same_local_time(
    weekly: Callable[..., AppointmentSeries], at: Callable[..., dt.datetime]
) -> None:
    series = weekly(at("09:00"))

    booked = occurrences(series)
    assert [a.start for a in booked] == [at("09:00", days=7 * n) for n in range(4)]
    assert {a.start.astimezone(zone(NEW_YORK)).time() for a in booked} == {dt.time(9)}
    assert {a.status for a in booked} == {"booked"}
    assert AuditEvent.objects.filter(event="appointment.series_book").count() == 1
    assert AuditEvent.objects.filter(event="appointment.book").count() == 4


def test_a_weekly_series_keeps_its_local_time_across_a_daylight_saving_change(
    weekly: Callable[..., AppointmentSeries],
) -> None:
    # given: the Monday before the clocks change
    change = next_dst_change()
    first = change - dt.timedelta(days=change.weekday() + 7)
    # when
    series = weekly(local(first, "09:00"), rrule="FREQ=WEEKLY;COUNT=3")
    # then
    booked = occurrences(series)
    assert [a.start.astimezone(zone(NEW_YORK)).time() for a in booked] == [dt.time(9)] * 3
    assert len({a.start.astimezone(dt.UTC).hour for a in booked}) == 2  # the offset moved


def test_books_nothing_when_one_occurrence_clashes_and_names_its_date(
    weekly: Callable[..., AppointmentSeries],
    book: Book,
    at: Callable[..., dt.datetime],
    other_patient: Patient,
) -> None:
    # given: the third Monday's 09:00 is taken
    book(at("09:00", days=14), patient=other_patient)
    # when
    with pytest.raises(BookingConflict) as caught:
        weekly(at("09:00"))
    # then
    third = at("09:00", days=14).date().isoformat()
    assert [(c.kind, c.label) for c in caught.value.conflicts] == [
        ("practitioner", f"{third}: Ana Núñez, NP")
    ]
    assert third in caught.value.message
    assert AppointmentSeries.objects.count() == 0
    assert Appointment.objects.count() == 1


def test_cancelling_one_occurrence_leaves_the_others(
    weekly: Callable[..., AppointmentSeries], at: Callable[..., dt.datetime], frontdesk: User
) -> None:
    series = weekly(at("09:00"))
    second = occurrences(series)[1]

    appointment_cancel(
        actor=frontdesk, appointment=second, cancelled_by="patient", reason="Travelling"
    )

    statuses = [a.status for a in occurrences(series)]
    assert statuses == ["booked", "cancelled", "booked", "booked"]


def test_moving_one_occurrence_leaves_the_others(
    weekly: Callable[..., AppointmentSeries], at: Callable[..., dt.datetime], frontdesk: User
) -> None:
    series = weekly(at("09:00"))
    third = occurrences(series)[2]

    appointment_reschedule(actor=frontdesk, appointment=third, start=at("14:00", days=15))

    starts = [a.start for a in occurrences(series)]
    assert starts == [at("09:00"), at("09:00", days=7), at("14:00", days=15), at("09:00", days=21)]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("FREQ=WEEKLY", "at most 104 occurrences"),
        ("FREQ=SOMETIMES", "Not a valid RFC 5545 recurrence rule"),
        ("DTSTART:20300101T090000\nRRULE:FREQ=WEEKLY;COUNT=2", "Leave DTSTART out"),
    ],
)
def test_refuses_a_rule_that_is_unbounded_or_invalid(
    weekly: Callable[..., AppointmentSeries],
    at: Callable[..., dt.datetime],
    rule: str,
    message: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        weekly(at("09:00"), rrule=rule)

    assert message in caught.value.message_dict["rrule"][0]
