"""When practitioners can be booked: availability rules (RFC 5545 RRULE), per-occurrence
changes, exceptions (holidays, leave, blocked time) and opening hours, as UTC intervals.

Times in rules, occurrence changes and opening hours are wall-clock times at the location
(Location.time_zone). A rule is expanded in local wall time (DTSTART = the rule's start_date and
start_time at the location, floating), and each occurrence is then placed in the zone and
converted to UTC, so "Mondays 09:00-17:00" stays 09:00-17:00 local across a daylight-saving
change while its UTC offset moves. Everything is compared in UTC.

`Availability` loads what a set of practitioners needs over a window in a fixed number of
queries (rules, occurrence changes, the rules' appointment types, opening hours, exceptions) and
expands it on demand, so the slot finder and the booking service share one implementation.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache

from dateutil.rrule import DAILY, WEEKLY, rrule, rrulestr
from django.core.exceptions import ValidationError

from core.models import Location
from scheduling.models import AppointmentType, AvailabilityException, AvailabilityRule
from scheduling.setup_cache import UNREAD, CachedRule, Override, setup_for

__all__ = ["Availability", "Interval", "Override", "covers", "free_intervals", "zone"]

UTC = dt.UTC
Interval = tuple[dt.datetime, dt.datetime]
_ONE_DAY = dt.timedelta(days=1)
_TINY = dt.timedelta(microseconds=1)


@lru_cache(maxsize=128)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def to_utc(day: dt.date, time: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """A local wall-clock time on `day` in `tz`, in UTC (a time skipped by a DST change is read
    with the offset before the change, as RFC 5545 says)."""
    return dt.datetime.combine(day, time).replace(tzinfo=tz).astimezone(UTC)


def local_days(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo) -> list[dt.date]:
    """The local dates [start, end) touches in `tz`."""
    first = start.astimezone(tz).date()
    last = (end - _TINY).astimezone(tz).date()
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


# ---- RRULE -----------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _parsed(text: str, dtstart: dt.datetime) -> rrule:
    parsed = rrulestr(text, dtstart=dtstart, cache=False)
    if not isinstance(parsed, rrule):
        raise ValueError("Give a single RRULE (no RDATE/EXDATE sets).")
    return parsed


def validate_rrule(text: str) -> None:
    """A recurrence rule as an availability rule or series stores it: RFC 5545 RRULE text
    without DTSTART, UNTIL (if any) in local time without 'Z'."""
    cleaned = (text or "").strip()
    if not cleaned:
        raise ValidationError("Give a recurrence rule, e.g. FREQ=WEEKLY;BYDAY=MO,WE,FR.")
    if "DTSTART" in cleaned.upper():
        raise ValidationError("Leave DTSTART out: the start date and time are separate fields.")
    try:
        _parsed(
            cleaned.removeprefix("RRULE:"), dt.datetime.combine(dt.date(2000, 1, 3), dt.time(9))
        )
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValidationError(f"Not a valid RFC 5545 recurrence rule: {exc}") from exc


def _rule_for_window(text: str, dtstart: dt.datetime, window_start: dt.datetime) -> rrule:
    """The rule with DTSTART moved forward by whole periods when that cannot change its
    occurrences (DAILY/WEEKLY without COUNT), so expanding a window years after the rule began
    does not walk every earlier occurrence."""
    text = text.removeprefix("RRULE:")
    base = _parsed(text, dtstart)
    # dateutil keeps the parsed parts private; reading them is stable across its releases.
    freq, interval, count = (getattr(base, name) for name in ("_freq", "_interval", "_count"))
    if count is None and freq in (DAILY, WEEKLY) and window_start > dtstart:
        period = dt.timedelta(days=interval * (7 if freq == WEEKLY else 1))
        periods = (window_start - dtstart) // period
        if periods > 1:
            return _parsed(text, dtstart + (periods - 1) * period)
    return base


def occurrence_starts(
    text: str, dtstart: dt.datetime, first_day: dt.date, last_day: dt.date
) -> list[dt.datetime]:
    """Naive local starts of the rule's occurrences on first_day..last_day (inclusive)."""
    window_start = dt.datetime.combine(first_day, dt.time.min)
    window_end = dt.datetime.combine(last_day, dt.time.max)
    rule = _rule_for_window(text, dtstart, window_start)
    return list(rule.between(window_start, window_end, inc=True))


# ---- interval arithmetic (sorted, non-overlapping lists) -------------------------------------


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    result: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if result and start <= result[-1][1]:
            if end > result[-1][1]:
                result[-1] = (result[-1][0], end)
        else:
            result.append((start, end))
    return result


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    result: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            result.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result


def subtract(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    result: list[Interval] = []
    j = 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        k = j
        cursor = start
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                result.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            k += 1
        if cursor < end:
            result.append((cursor, end))
    return result


def covers(intervals: Sequence[Interval], start: dt.datetime, end: dt.datetime) -> bool:
    """Whether one interval of the merged list contains [start, end)."""
    return any(s <= start and end <= e for s, e in intervals)


# ---- loading ---------------------------------------------------------------------------------


class Availability:
    """Availability of some practitioners over a UTC window, from the process's cached
    reference data (scheduling.setup_cache: one query to see that it is current, a few more
    only when the setup changed or these practitioners and locations were not loaded yet).

    `location_ids` limits it to rules at those locations (None: any). With `appointment_type`,
    rules restricted to other types are left out. `token`: the setup token the caller has just
    read (setup_cache.setup_for), to save that query.
    """

    def __init__(
        self,
        *,
        practitioner_ids: Iterable[int],
        start: dt.datetime,
        end: dt.datetime,
        location_ids: Iterable[int] | None = None,
        appointment_type: AppointmentType | None = None,
        token: str | object | None = UNREAD,
    ) -> None:
        self.practitioner_ids = sorted(set(practitioner_ids))
        self.start, self.end = start, end
        first_day = (start - _ONE_DAY).date()
        last_day = (end + _ONE_DAY).date()
        asked = None if location_ids is None else set(location_ids)
        setup = setup_for(self.practitioner_ids, asked or (), token=token)
        type_id = appointment_type.pk if appointment_type is not None else None
        rules: list[CachedRule] = [
            cached
            for pid in self.practitioner_ids
            for cached in setup.rules[pid]
            if cached.rule.start_date <= last_day
            and (cached.rule.until_date is None or cached.rule.until_date >= first_day)
            and (asked is None or cached.rule.location_id in asked)
            # Rules restricted to some types count only for those types.
            and (type_id is None or not cached.type_ids or type_id in cached.type_ids)
        ]
        rules.sort(key=lambda cached: cached.rule.pk)
        self.rules: list[AvailabilityRule] = [cached.rule for cached in rules]
        self.overrides: dict[int, dict[dt.date, Override]] = {
            cached.rule.pk: cached.overrides for cached in rules if cached.overrides
        }
        self.locations: dict[int, Location] = {
            rule.location_id: rule.location for rule in self.rules
        }
        # Locations asked about where nobody has rules: their opening hours and holidays still
        # matter to whoever asks.
        for pk in sorted((asked or set()) - set(self.locations)):
            location = setup.locations.get(pk)
            if location is not None:
                self.locations[pk] = location
        self.by_key: dict[tuple[int, int], list[AvailabilityRule]] = defaultdict(list)
        for rule in self.rules:
            self.by_key[(rule.practitioner_id, rule.location_id)].append(rule)
        self.opening: dict[int, dict[int, list[tuple[dt.time, dt.time]]]] = {}
        for pk in self.locations:
            hours = setup.opening.get(pk)
            if hours is not None:
                self.opening[pk] = hours
        exceptions = [
            exc
            for pid in self.practitioner_ids
            for exc in setup.practitioner_exceptions.get(pid, ())
            if exc.start < end and exc.end > start
        ] + [
            exc
            for pk in self.locations
            for exc in setup.location_exceptions.get(pk, ())
            if exc.start < end and exc.end > start
        ]
        self.exceptions: list[AvailabilityException] = sorted(
            exceptions, key=lambda exc: (exc.start, exc.pk)
        )

    def keys(self) -> list[tuple[int, int]]:
        """(practitioner id, location id) pairs that have rules in the window."""
        return sorted(self.by_key)

    def locations_of(self, practitioner_id: int) -> list[int]:
        return sorted({loc for pid, loc in self.by_key if pid == practitioner_id})

    def tz(self, location_id: int) -> zoneinfo.ZoneInfo:
        return zone(self.locations[location_id].time_zone)

    def rule_blocks(
        self, practitioner_id: int, location_id: int, start: dt.datetime, end: dt.datetime
    ) -> list[Interval]:
        """The practitioner's rule occurrences at the location within [start, end), with
        per-occurrence changes applied."""
        rules = self.by_key.get((practitioner_id, location_id))
        if not rules:
            return []
        tz = self.tz(location_id)
        days = local_days(start, end, tz)
        blocks: list[Interval] = []
        for rule in rules:
            dtstart = dt.datetime.combine(rule.start_date, rule.start_time)
            length = dt.datetime.combine(rule.start_date, rule.end_time) - dtstart
            overrides = self.overrides.get(rule.pk, {})
            for occurrence in occurrence_starts(rule.rrule, dtstart, days[0], days[-1]):
                day = occurrence.date()
                if rule.until_date is not None and day > rule.until_date:
                    continue
                override = overrides.get(day)
                if override is not None and override.is_cancelled:
                    continue
                if override is not None and override.start_time and override.end_time:
                    block = (
                        to_utc(day, override.start_time, tz),
                        to_utc(day, override.end_time, tz),
                    )
                else:
                    local_start = occurrence.replace(tzinfo=tz)
                    block = (
                        local_start.astimezone(UTC),
                        (occurrence + length).replace(tzinfo=tz).astimezone(UTC),
                    )
                blocks.append(block)
        return intersect(merge(blocks), [(start, end)])

    def opening_intervals(
        self, location_id: int, start: dt.datetime, end: dt.datetime
    ) -> list[Interval] | None:
        """When the location is open within [start, end); None when it has no opening hours
        configured (then it does not restrict booking)."""
        hours = self.opening.get(location_id)
        if hours is None:
            return None
        tz = self.tz(location_id)
        intervals = [
            (to_utc(day, opens, tz), to_utc(day, closes, tz))
            for day in local_days(start, end, tz)
            for opens, closes in hours.get(day.weekday(), ())
        ]
        return intersect(merge(intervals), [(start, end)])

    def exceptions_for(
        self, practitioner_id: int, location_id: int, start: dt.datetime, end: dt.datetime
    ) -> list[AvailabilityException]:
        """Holidays at the location and the practitioner's leave or blocked time (anywhere)
        overlapping [start, end)."""
        return [
            exc
            for exc in self.exceptions
            if exc.start < end
            and exc.end > start
            and (
                exc.practitioner_id == practitioner_id
                or (exc.practitioner_id is None and exc.location_id == location_id)
            )
        ]

    def free(
        self, practitioner_id: int, location_id: int, start: dt.datetime, end: dt.datetime
    ) -> list[Interval]:
        """Bookable time: rule occurrences within opening hours, less exceptions."""
        blocks = self.rule_blocks(practitioner_id, location_id, start, end)
        if not blocks:
            return []
        opening = self.opening_intervals(location_id, start, end)
        if opening is not None:
            blocks = intersect(blocks, opening)
        exceptions = self.exceptions_for(practitioner_id, location_id, start, end)
        if exceptions:
            blocks = subtract(blocks, merge((exc.start, exc.end) for exc in exceptions))
        return blocks


def free_intervals(
    *,
    practitioner_id: int,
    location_id: int,
    start: dt.datetime,
    end: dt.datetime,
    appointment_type: AppointmentType | None = None,
) -> list[Interval]:
    """One practitioner's bookable time at one location within [start, end), in UTC."""
    availability = Availability(
        practitioner_ids=[practitioner_id],
        start=start,
        end=end,
        location_ids=[location_id],
        appointment_type=appointment_type,
    )
    return availability.free(practitioner_id, location_id, start, end)
