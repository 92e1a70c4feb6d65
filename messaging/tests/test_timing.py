from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.timing import QuietHours, defer_for_quiet_hours, parse_quiet_hours, retry_delay

ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Lord_Howe", "UTC"]
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")

instants = st.datetimes(
    min_value=dt.datetime(2020, 1, 1),
    max_value=dt.datetime(2035, 12, 31),
    timezones=st.just(dt.UTC),
)
times = st.times()


@given(attempt=st.integers(min_value=1, max_value=500))
def test_retry_delay_never_shrinks_and_never_exceeds_the_cap(attempt: int) -> None:
    cap = dt.timedelta(hours=4)

    delay = retry_delay(attempt, base_seconds=60, cap_seconds=cap.total_seconds())

    assert dt.timedelta(minutes=1) <= delay <= cap
    assert retry_delay(attempt + 1, base_seconds=60, cap_seconds=cap.total_seconds()) >= delay


def test_retry_delay_grows_one_five_twenty_five_minutes_then_caps() -> None:
    delays = [retry_delay(n, base_seconds=60, cap_seconds=4 * 3600) for n in range(1, 7)]

    assert [d.total_seconds() / 60 for d in delays] == [1, 5, 25, 125, 240, 240]


@given(when=instants, zone=st.sampled_from(ZONES), start=times, end=times)
def test_deferral_never_lands_inside_quiet_hours_and_never_goes_back(
    when: dt.datetime, zone: str, start: dt.time, end: dt.time
) -> None:
    hours = QuietHours(start=start, end=end)
    tz = zoneinfo.ZoneInfo(zone)

    deferred = hours.defer(when, tz)

    assert deferred >= when
    assert not hours.is_quiet(deferred, tz)
    assert deferred - when <= dt.timedelta(hours=26)
    if not hours.is_quiet(when, tz):
        assert deferred == when


def test_a_message_due_at_night_waits_until_eight_in_the_morning_local_time() -> None:
    hours = QuietHours(start=dt.time(21), end=dt.time(8))
    late_evening = dt.datetime(2026, 3, 3, 22, 15, tzinfo=NEW_YORK)

    deferred = hours.defer(late_evening, NEW_YORK)

    assert deferred.astimezone(NEW_YORK) == dt.datetime(2026, 3, 4, 8, 0, tzinfo=NEW_YORK)


def test_a_message_due_after_midnight_waits_until_eight_the_same_morning() -> None:
    hours = QuietHours(start=dt.time(21), end=dt.time(8))
    small_hours = dt.datetime(2026, 3, 4, 2, 30, tzinfo=NEW_YORK)

    deferred = hours.defer(small_hours, NEW_YORK)

    assert deferred.astimezone(NEW_YORK) == dt.datetime(2026, 3, 4, 8, 0, tzinfo=NEW_YORK)


def test_deferral_uses_the_zone_it_is_given_not_the_server_zone() -> None:
    hours = QuietHours(start=dt.time(21), end=dt.time(8))
    # 23:00 in New York is 20:00 in Los Angeles: quiet in one, not in the other.
    when = dt.datetime(2026, 5, 5, 23, 0, tzinfo=NEW_YORK)

    assert hours.defer(when, zoneinfo.ZoneInfo("America/Los_Angeles")) == when
    assert hours.defer(when, NEW_YORK) > when


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("21:00-08:00", QuietHours(dt.time(21), dt.time(8))),
        ("21:00\u201308:00", QuietHours(dt.time(21), dt.time(8))),
        (("22:30", "07:15"), QuietHours(dt.time(22, 30), dt.time(7, 15))),
        ((dt.time(13), dt.time(14)), QuietHours(dt.time(13), dt.time(14))),
        ("", None),
        (None, None),
        ("08:00-08:00", None),
    ],
)
def test_parses_the_quiet_hours_setting(value: object, expected: QuietHours | None) -> None:
    assert parse_quiet_hours(value) == expected


def test_refuses_a_quiet_hours_setting_without_a_range() -> None:
    with pytest.raises(ValueError, match="21:00-08:00"):
        parse_quiet_hours("21:00")


def test_quiet_hours_setting_off_sends_at_once(settings: object) -> None:
    settings.QUIET_HOURS = ""
    when = dt.datetime(2026, 3, 3, 23, 0, tzinfo=NEW_YORK)

    assert defer_for_quiet_hours(when, "America/New_York") == when


def test_quiet_hours_setting_defers_in_the_patients_zone(settings: object) -> None:
    settings.QUIET_HOURS = "21:00-08:00"
    when = dt.datetime(2026, 3, 3, 23, 0, tzinfo=NEW_YORK)

    deferred = defer_for_quiet_hours(when, "America/New_York")

    assert deferred.astimezone(NEW_YORK).time() == dt.time(8, 0)
