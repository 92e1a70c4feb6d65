"""Availability: rules expanded in local wall-clock time, per-occurrence changes, exceptions and
opening hours, into UTC intervals."""

from __future__ import annotations

import datetime as dt

import pytest
from dateutil.rrule import rrulestr
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from core.models import Location
from core.tests.factories import LocationFactory
from scheduling import setup_cache
from scheduling.availability import (
    Availability,
    free_intervals,
    intersect,
    merge,
    occurrence_starts,
    subtract,
    validate_rrule,
)
from scheduling.models import (
    AvailabilityOccurrence,
    AvailabilityRule,
    ExceptionKind,
    Practitioner,
    SetupVersion,
)
from scheduling.tests.conftest import local
from scheduling.tests.factories import (
    AppointmentTypeFactory,
    AvailabilityExceptionFactory,
    AvailabilityRuleFactory,
    OpeningHoursFactory,
    PractitionerFactory,
)

UTC = dt.UTC
# 2026-03-08: clocks in New York go forward (EST -05:00 -> EDT -04:00).
FRIDAY_BEFORE = dt.date(2026, 3, 6)
MONDAY_AFTER = dt.date(2026, 3, 9)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def whole_day(day: dt.date, time_zone: str = "America/New_York") -> tuple[dt.datetime, dt.datetime]:
    return local(day, "00:00", time_zone), local(day + dt.timedelta(days=1), "00:00", time_zone)


@pytest.fixture
def practitioner(main_clinic: Location) -> Practitioner:
    practitioner = PractitionerFactory(locations=[main_clinic])
    AvailabilityRuleFactory(
        practitioner=practitioner,
        location=main_clinic,
        start_time=dt.time(9),
        end_time=dt.time(17),
        start_date=dt.date(2025, 1, 6),
    )
    return practitioner


def free_on(practitioner: Practitioner, location: Location, day: dt.date) -> list[tuple]:
    start, end = whole_day(day, location.time_zone)
    return free_intervals(
        practitioner_id=practitioner.pk, location_id=location.pk, start=start, end=end
    )


# ---- rules in local time ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_weekday_rule_gives_nine_to_five_local_time_in_utc(
    practitioner: Practitioner, main_clinic: Location
) -> None:
    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 14)) == [
        (utc(2026, 1, 14, 14), utc(2026, 1, 14, 22))
    ]
    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 17)) == []  # Saturday


@pytest.mark.django_db
def test_nine_oclock_stays_nine_oclock_across_the_daylight_saving_change(
    practitioner: Practitioner, main_clinic: Location
) -> None:
    # when: the whole week of the change, in one window
    start, _ = whole_day(FRIDAY_BEFORE)
    _, end = whole_day(MONDAY_AFTER)
    free = free_intervals(
        practitioner_id=practitioner.pk, location_id=main_clinic.pk, start=start, end=end
    )
    # then: 09:00 EST is 14:00 UTC on Friday, 09:00 EDT is 13:00 UTC on Monday
    assert free == [
        (utc(2026, 3, 6, 14), utc(2026, 3, 6, 22)),
        (utc(2026, 3, 9, 13), utc(2026, 3, 9, 21)),
    ]


@pytest.mark.django_db
def test_a_rule_is_expanded_in_its_locations_time_zone(main_clinic: Location) -> None:
    honolulu = LocationFactory(code="hnl", name="Honolulu", time_zone="Pacific/Honolulu")
    practitioner = PractitionerFactory()
    AvailabilityRuleFactory(
        practitioner=practitioner, location=honolulu, start_time=dt.time(9), end_time=dt.time(12)
    )

    assert free_on(practitioner, honolulu, dt.date(2026, 1, 14)) == [
        (utc(2026, 1, 14, 19), utc(2026, 1, 14, 22))
    ]


@pytest.mark.django_db
def test_nothing_after_the_until_date(practitioner: Practitioner, main_clinic: Location) -> None:
    rule = practitioner.availability_rules.get()
    rule.until_date = dt.date(2026, 1, 14)
    rule.save()

    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 14)) != []
    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 15)) == []


@pytest.mark.django_db
def test_nothing_before_the_start_date(practitioner: Practitioner, main_clinic: Location) -> None:
    assert free_on(practitioner, main_clinic, dt.date(2025, 1, 3)) == []
    assert free_on(practitioner, main_clinic, dt.date(2025, 1, 6)) != []


def test_expanding_a_window_years_after_the_rule_began_gives_the_same_occurrences() -> None:
    rule = "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH"
    dtstart = dt.datetime.combine(dt.date(2019, 1, 7), dt.time(8, 30))
    first, last = dt.date(2031, 5, 1), dt.date(2031, 6, 30)

    full = rrulestr(rule, dtstart=dtstart).between(
        dt.datetime.combine(first, dt.time.min), dt.datetime.combine(last, dt.time.max), inc=True
    )

    assert occurrence_starts(rule, dtstart, first, last) == full
    assert full
    assert {moment.weekday() for moment in full} == {0, 3}


# ---- one occurrence changed or cancelled -----------------------------------------------------


@pytest.mark.django_db
def test_cancelling_one_occurrence_leaves_the_others(
    practitioner: Practitioner, main_clinic: Location
) -> None:
    # given
    rule = practitioner.availability_rules.get()
    AvailabilityOccurrence.objects.create(
        rule=rule, original_date=dt.date(2026, 1, 14), is_cancelled=True, reason="Training"
    )
    # then
    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 14)) == []
    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 13)) != []
    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 21)) == [
        (utc(2026, 1, 21, 14), utc(2026, 1, 21, 22))
    ]


@pytest.mark.django_db
def test_changing_one_occurrence_never_changes_the_others(
    practitioner: Practitioner, main_clinic: Location
) -> None:
    # given: Wednesday 14 January runs 12:00-15:00 instead of 09:00-17:00
    rule = practitioner.availability_rules.get()
    AvailabilityOccurrence.objects.create(
        rule=rule,
        original_date=dt.date(2026, 1, 14),
        start_time=dt.time(12),
        end_time=dt.time(15),
    )
    # then
    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 14)) == [
        (utc(2026, 1, 14, 17), utc(2026, 1, 14, 20))
    ]
    for other in (dt.date(2026, 1, 7), dt.date(2026, 1, 13), dt.date(2026, 1, 21)):
        start = dt.datetime.combine(other, dt.time(14), tzinfo=UTC)
        assert free_on(practitioner, main_clinic, other) == [(start, start + dt.timedelta(hours=8))]


# ---- types, opening hours, exceptions --------------------------------------------------------


@pytest.mark.django_db
def test_a_rule_limited_to_some_types_offers_only_those(main_clinic: Location) -> None:
    practitioner = PractitionerFactory()
    procedures = AppointmentTypeFactory(code="procedure")
    follow_up = AppointmentTypeFactory(code="fu")
    AvailabilityRuleFactory(
        practitioner=practitioner, location=main_clinic, appointment_types=[procedures]
    )
    start, end = whole_day(dt.date(2026, 1, 14))

    def free_for(appointment_type: object) -> list[tuple]:
        return free_intervals(
            practitioner_id=practitioner.pk,
            location_id=main_clinic.pk,
            start=start,
            end=end,
            appointment_type=appointment_type,
        )

    assert free_for(procedures) != []
    assert free_for(follow_up) == []


@pytest.mark.django_db
def test_availability_is_cut_to_opening_hours(
    practitioner: Practitioner, main_clinic: Location
) -> None:
    OpeningHoursFactory(location=main_clinic, weekday=2, opens=dt.time(10), closes=dt.time(12))
    OpeningHoursFactory(location=main_clinic, weekday=2, opens=dt.time(13), closes=dt.time(19))

    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 14)) == [
        (utc(2026, 1, 14, 15), utc(2026, 1, 14, 17)),
        (utc(2026, 1, 14, 18), utc(2026, 1, 14, 22)),
    ]
    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 15)) == []  # closed Thursdays


@pytest.mark.django_db
def test_a_location_holiday_removes_the_day_for_everyone(
    practitioner: Practitioner, main_clinic: Location
) -> None:
    start, end = whole_day(dt.date(2026, 1, 19))
    AvailabilityExceptionFactory(location=main_clinic, start=start, end=end, reason="MLK Day")

    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 19)) == []
    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 20)) != []


@pytest.mark.django_db
def test_blocked_time_splits_the_practitioners_day_only(
    practitioner: Practitioner, main_clinic: Location
) -> None:
    colleague = PractitionerFactory()
    AvailabilityRuleFactory(practitioner=colleague, location=main_clinic, start_time=dt.time(9))
    AvailabilityExceptionFactory(
        location=main_clinic,
        practitioner=practitioner,
        kind=ExceptionKind.BLOCKED,
        start=utc(2026, 1, 14, 16),
        end=utc(2026, 1, 14, 17),
        reason="Staff meeting",
    )

    assert free_on(practitioner, main_clinic, dt.date(2026, 1, 14)) == [
        (utc(2026, 1, 14, 14), utc(2026, 1, 14, 16)),
        (utc(2026, 1, 14, 17), utc(2026, 1, 14, 22)),
    ]
    assert free_on(colleague, main_clinic, dt.date(2026, 1, 14)) == [
        (utc(2026, 1, 14, 14), utc(2026, 1, 14, 22))
    ]


def _ten_practitioners_window(main_clinic: Location) -> dict[str, object]:
    practitioners = [PractitionerFactory() for _ in range(10)]
    for practitioner in practitioners:
        AvailabilityRuleFactory(practitioner=practitioner, location=main_clinic)
    start, end = whole_day(dt.date(2026, 1, 12))
    return {
        "practitioner_ids": [p.pk for p in practitioners],
        "start": start,
        "end": end + dt.timedelta(days=30),
        "appointment_type": AppointmentTypeFactory.build(pk=1),
    }


@pytest.mark.django_db
def test_loads_a_window_in_a_fixed_number_of_queries(
    main_clinic: Location, django_assert_max_num_queries: object
) -> None:
    window = _ten_practitioners_window(main_clinic)

    # the setup's version, rules, their types, changed occurrences, exceptions, then opening
    # hours and holidays of the rules' locations
    with django_assert_max_num_queries(7):  # type: ignore[operator]
        availability = Availability(**window)
        assert len(availability.keys()) == 10


@pytest.mark.django_db
def test_reads_only_the_setup_version_while_nothing_changed(
    main_clinic: Location, django_assert_num_queries: object
) -> None:
    # given
    window = _ten_practitioners_window(main_clinic)
    Availability(**window)

    # when / then
    with django_assert_num_queries(1):  # type: ignore[operator]
        availability = Availability(**window)
        assert len(availability.keys()) == 10


@pytest.mark.django_db
def test_without_a_setup_version_nothing_is_cached(
    main_clinic: Location, django_assert_num_queries: object
) -> None:
    # given: the version row gone (e.g. a test database just flushed)
    window = _ten_practitioners_window(main_clinic)
    SetupVersion.objects.all().delete()
    Availability(**window)

    # when / then: loaded again in full, and still right
    with django_assert_num_queries(7):  # type: ignore[operator]
        availability = Availability(**window)
        assert len(availability.keys()) == 10
    assert setup_cache.current_token() is None


@pytest.mark.django_db
def test_sees_a_rule_changed_in_bulk_at_the_next_call(
    practitioner: Practitioner, main_clinic: Location
) -> None:
    # given: loaded and cached
    start, end = whole_day(dt.date(2026, 1, 12))
    assert free_intervals(
        practitioner_id=practitioner.pk, location_id=main_clinic.pk, start=start, end=end
    )

    # when: changed without the ORM's save() (the database's triggers still see it)
    AvailabilityRule.objects.filter(practitioner=practitioner).update(is_active=False)

    # then
    assert not free_intervals(
        practitioner_id=practitioner.pk, location_id=main_clinic.pk, start=start, end=end
    )


@pytest.mark.django_db
def test_sees_new_exceptions_and_opening_hours_at_the_next_call(
    practitioner: Practitioner, main_clinic: Location
) -> None:
    # given
    start, end = whole_day(dt.date(2026, 1, 12))
    before = free_intervals(
        practitioner_id=practitioner.pk, location_id=main_clinic.pk, start=start, end=end
    )

    # when
    OpeningHoursFactory(location=main_clinic, weekday=0, opens=dt.time(10), closes=dt.time(12))
    AvailabilityExceptionFactory(
        practitioner=practitioner,
        location=main_clinic,
        start=local(dt.date(2026, 1, 12), "10:30"),
        end=local(dt.date(2026, 1, 12), "11:00"),
    )

    # then
    assert before == [(local(dt.date(2026, 1, 12), "09:00"), local(dt.date(2026, 1, 12), "17:00"))]
    assert free_intervals(
        practitioner_id=practitioner.pk, location_id=main_clinic.pk, start=start, end=end
    ) == [
        (local(dt.date(2026, 1, 12), "10:00"), local(dt.date(2026, 1, 12), "10:30")),
        (local(dt.date(2026, 1, 12), "11:00"), local(dt.date(2026, 1, 12), "12:00")),
    ]


# ---- the rule text ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["FREQ=WEEKLY;BYDAY=MO,WE,FR", "FREQ=DAILY;COUNT=5"])
def test_accepts_a_valid_rule(rule: str) -> None:
    validate_rrule(rule)


@pytest.mark.parametrize(
    "rule", ["", "FREQ=FORTNIGHTLY", "BYDAY=MO", "FREQ=WEEKLY;UNTIL=20300101T000000Z"]
)
def test_refuses_an_invalid_rule(rule: str) -> None:
    with pytest.raises(ValidationError):
        validate_rrule(rule)


# ---- interval arithmetic ---------------------------------------------------------------------

BASE = dt.datetime(2030, 1, 1, tzinfo=UTC)
spans = st.lists(
    st.tuples(st.integers(0, 200), st.integers(1, 40)).map(
        lambda p: (BASE + dt.timedelta(minutes=p[0]), BASE + dt.timedelta(minutes=p[0] + p[1]))
    ),
    max_size=8,
).map(merge)


def minutes(intervals: list[tuple[dt.datetime, dt.datetime]]) -> set[int]:
    covered: set[int] = set()
    for start, end in intervals:
        first = int((start - BASE).total_seconds() // 60)
        covered.update(range(first, first + int((end - start).total_seconds() // 60)))
    return covered


@given(spans, spans)
def test_subtracting_leaves_exactly_the_minutes_not_removed(a: list, b: list) -> None:
    assert minutes(subtract(a, b)) == minutes(a) - minutes(b)


@given(spans, spans)
def test_intersecting_keeps_exactly_the_common_minutes(a: list, b: list) -> None:
    assert minutes(intersect(a, b)) == minutes(a) & minutes(b)
