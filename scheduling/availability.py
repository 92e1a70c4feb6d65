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
from typing import NamedTuple

from dateutil.rrule import DAILY, WEEKLY, rrule, rrulestr
from django.core.exceptions import ValidationError
from django.db.models import Exists, F, FilteredRelation, OuterRef, Q

from core.models import Location
from scheduling.models import (
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    OpeningHours,
)

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


class Override(NamedTuple):
    """One occurrence of a rule changed (new times) or cancelled (AvailabilityOccurrence)."""

    is_cancelled: bool
    start_time: dt.time | None
    end_time: dt.time | None


class Availability:
    """Availability of some practitioners over a UTC window, loaded in three queries (rules
    with their changed occurrences, opening hours, exceptions; four when asked about a location
    where nobody has rules).

    `location_ids` limits it to rules at those locations (None: any). With `appointment_type`,
    rules restricted to other types are left out.
    """

    def __init__(
        self,
        *,
        practitioner_ids: Iterable[int],
        start: dt.datetime,
        end: dt.datetime,
        location_ids: Iterable[int] | None = None,
        appointment_type: AppointmentType | None = None,
    ) -> None:
        self.practitioner_ids = sorted(set(practitioner_ids))
        self.start, self.end = start, end
        first_day = (start - _ONE_DAY).date()
        last_day = (end + _ONE_DAY).date()
        rules_q = AvailabilityRule.objects.filter(
            practitioner_id__in=self.practitioner_ids, is_active=True, start_date__lte=last_day
        ).filter(Q(until_date__isnull=True) | Q(until_date__gte=first_day))
        if location_ids is not None:
            location_ids = list(location_ids)
            rules_q = rules_q.filter(location_id__in=location_ids)
        if appointment_type is not None:
            # Rules restricted to some types count only for those types.
            through = AvailabilityRule.appointment_types.through.objects.filter(
                availabilityrule_id=OuterRef("pk")
            )
            rules_q = rules_q.filter(
                ~Exists(through) | Exists(through.filter(appointmenttype_id=appointment_type.pk))
            )
        # The rules with their changed occurrences in the window, in one query (a rule with
        # several changes comes once per change).
        rows = list(
            rules_q.annotate(
                window_change=FilteredRelation(
                    "overrides",
                    condition=Q(
                        overrides__original_date__gte=first_day,
                        overrides__original_date__lte=last_day,
                    ),
                ),
                change_date=F("window_change__original_date"),
                change_cancelled=F("window_change__is_cancelled"),
                change_start=F("window_change__start_time"),
                change_end=F("window_change__end_time"),
            )
            .select_related("location")
            .order_by("id")
        )
        self.overrides: dict[int, dict[dt.date, Override]] = defaultdict(dict)
        rules: list[AvailabilityRule] = []
        for row in rows:
            if not rules or rules[-1].pk != row.pk:
                rules.append(row)
            if row.change_date is not None:
                self.overrides[row.pk][row.change_date] = Override(
                    is_cancelled=row.change_cancelled,
                    start_time=row.change_start,
                    end_time=row.change_end,
                )
        self.rules = rules
        self.locations: dict[int, Location] = {rule.location_id: rule.location for rule in rules}
        if location_ids is not None:
            # Locations asked about where nobody has rules: their opening hours and holidays
            # still matter to whoever asks (one more query, only then).
            missing = set(location_ids) - set(self.locations)
            if missing:
                self.locations.update(Location.objects.in_bulk(missing))
        self.by_key: dict[tuple[int, int], list[AvailabilityRule]] = defaultdict(list)
        for rule in rules:
            self.by_key[(rule.practitioner_id, rule.location_id)].append(rule)
        self.opening: dict[int, dict[int, list[tuple[dt.time, dt.time]]]] = {}
        for hours in OpeningHours.objects.filter(location_id__in=list(self.locations)).order_by(
            "location_id", "weekday", "opens"
        ):
            self.opening.setdefault(hours.location_id, defaultdict(list))[hours.weekday].append(
                (hours.opens, hours.closes)
            )
        self.exceptions = list(
            AvailabilityException.objects.filter(start__lt=end, end__gt=start)
            .filter(
                Q(practitioner_id__in=self.practitioner_ids)
                | Q(practitioner__isnull=True, location_id__in=list(self.locations))
            )
            .order_by("start")
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
