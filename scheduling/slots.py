"""Finding open slots: the next times an appointment type can be booked.

A slot is open when the practitioner is available then (rules, occurrence changes, opening
hours, exceptions: scheduling.availability), the appointment [start, start + duration) fits in
that time, [start, start + duration + buffer) overlaps none of the practitioner's blocking
appointments (whose rows already include their own buffers), and a free resource of every kind
the type requires is at the location.

Slot starts lie on a grid of local wall-clock time counted from midnight at the location:
every 15 minutes when the type's duration is a multiple of 15, else every 10 minutes when it is
a multiple of 10, else every 5 minutes (so 09:00, 09:15, 09:30... for a 30-minute visit), and
right after a busy period the next start is the next grid point.

Speed: availability is loaded once for the window; busy times are fetched per chunk of days for
all practitioners in one query (index (practitioner, start)), the first chunk one day long and
each next one twice as long, and the walk stops as soon as a chunk yields `limit` slots. The
inner loop works on integer epoch seconds.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, Func, QuerySet
from django.utils import timezone

from core.models import Location
from scheduling.availability import Availability, zone
from scheduling.models import (
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentType,
    Practitioner,
    Resource,
)
from scheduling.services import MAX_APPOINTMENT_SPAN

THIRD_NEXT_HORIZON = dt.timedelta(days=180)
_MAX_CHUNK = dt.timedelta(days=16)


@dataclass(frozen=True)
class Slot:
    start: dt.datetime
    end: dt.datetime
    practitioner: Practitioner
    location: Location
    resources: tuple[Resource, ...] = field(default=())


def slot_step_minutes(appointment_type: AppointmentType) -> int:
    duration = appointment_type.duration_minutes
    if duration % 15 == 0:
        return 15
    if duration % 10 == 0:
        return 10
    return 5


def _ts(moment: dt.datetime) -> int:
    return int(moment.timestamp())


class EpochSeconds(Func):
    """Whole seconds since 1970 of a datetime column, computed by the database: reading busy
    times as integers spares parsing thousands of timestamps per search."""

    output_field = BigIntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s)) AS bigint)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "CAST(strftime('%%%%s', %(expressions)s) AS integer)"
        return self.as_sql(compiler, connection, template=template, **extra)


def _interval_rows(queryset: QuerySet[Any], key: str) -> Iterable[tuple[int, int, int]]:
    """(key, start, end) of each row, times in epoch seconds."""
    if connection.vendor in ("postgresql", "sqlite"):
        return queryset.values_list(key, EpochSeconds("start"), EpochSeconds("end"))
    return (
        (k, _ts(start), _ts(end)) for k, start, end in queryset.values_list(key, "start", "end")
    )


def _from_ts(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _merge_ints(rows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(rows):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


class _ResourcePool:
    """Required resources at each location and their busy times in the current chunk."""

    def __init__(self, kinds: Sequence[str], location_ids: Iterable[int]) -> None:
        self.kinds = list(kinds)
        self.by_location: dict[int, list[Resource]] = defaultdict(list)
        if self.kinds:
            for resource in Resource.objects.filter(
                location_id__in=list(location_ids), kind__in=set(self.kinds), is_active=True
            ).order_by("name", "id"):
                self.by_location[resource.location_id].append(resource)
        self.busy: dict[int, list[tuple[int, int]]] = {}

    @property
    def ids(self) -> list[int]:
        return [r.pk for rows in self.by_location.values() for r in rows]

    def load(self, lower: dt.datetime, upper: dt.datetime, after: dt.datetime) -> None:
        self.busy = defaultdict(list)
        if not self.kinds or not self.ids:
            return
        booked = AppointmentResource.objects.filter(
            resource_id__in=self.ids, blocks=True, start__gte=lower, start__lt=upper, end__gt=after
        )
        for rid, start, end in _interval_rows(booked, "resource_id"):
            self.busy[rid].append((start, end))
        for rows in self.busy.values():
            rows.sort()

    def _free(self, resource: Resource, start: int, end: int) -> bool:
        rows = self.busy.get(resource.pk)
        if not rows:
            return True
        upto = bisect.bisect_left(rows, (end, end))
        overlapping = [(s, e) for s, e in rows[:upto] if e > start]
        if resource.capacity == 1:
            return not overlapping
        points = sorted([(s, 1) for s, _ in overlapping] + [(e, -1) for _, e in overlapping])
        peak = current = 0
        for _, delta in points:
            current += delta
            peak = max(peak, current)
        return peak < resource.capacity

    def pick(self, location_id: int, start: int, end: int) -> tuple[Resource, ...] | None:
        if not self.kinds:
            return ()
        chosen: list[Resource] = []
        available = self.by_location.get(location_id, [])
        for kind in self.kinds:
            resource = next(
                (
                    r
                    for r in available
                    if r.kind == kind and r not in chosen and self._free(r, start, end)
                ),
                None,
            )
            if resource is None:
                return None
            chosen.append(resource)
        return tuple(chosen)


def _practitioners_for(
    appointment_type: AppointmentType, practitioners: Iterable[Practitioner] | None
) -> list[Practitioner]:
    allowed = set(appointment_type.allowed_practitioners.values_list("id", flat=True))
    rows = Practitioner.objects.filter(is_active=True)
    if practitioners is not None:
        wanted = {p.pk for p in practitioners}
        allowed = (allowed & wanted) if allowed else wanted
        if not allowed:
            return []
    if allowed:
        rows = rows.filter(pk__in=allowed)
    return list(rows)


def _search(
    *,
    appointment_type: AppointmentType,
    start: dt.datetime,
    end: dt.datetime,
    practitioners: Iterable[Practitioner] | None,
    location_ids: list[int] | None,
    limit: int,
    distinct: bool,
) -> list[Slot]:
    start = max(start, timezone.now())
    if limit <= 0 or start >= end or not appointment_type.is_active:
        return []
    chosen = _practitioners_for(appointment_type, practitioners)
    if not chosen:
        return []
    by_id = {p.pk: p for p in chosen}
    duration = appointment_type.duration_minutes * 60
    held = duration + appointment_type.buffer_minutes * 60
    step = slot_step_minutes(appointment_type) * 60
    reach = dt.timedelta(seconds=held)
    availability = Availability(
        practitioner_ids=list(by_id),
        start=start,
        end=end + reach,
        location_ids=location_ids,
        appointment_type=appointment_type,
    )
    keys = availability.keys()
    if not keys:
        return []
    pool = _ResourcePool(
        [str(k) for k in appointment_type.required_resource_kinds or []], {loc for _, loc in keys}
    )
    order = {pid: n for n, pid in enumerate(sorted(by_id, key=lambda pk: _name_key(by_id[pk])))}
    found: list[tuple[int, int, int, int, tuple[Resource, ...]]] = []
    chunk_start, size = start, dt.timedelta(days=1)
    while chunk_start < end and len(found) < limit:
        chunk_end = min(chunk_start + size, end)
        busy = _busy(list(by_id), chunk_start, chunk_end + reach)
        pool.load(chunk_start - MAX_APPOINTMENT_SPAN, chunk_end + reach, chunk_start)
        in_chunk: list[tuple[int, int, int, int, tuple[Resource, ...]]] = []
        cap = limit - len(found)
        stop = _ts(chunk_end)
        for pid, loc in keys:
            tz = availability.tz(loc)
            emitted = 0
            rows = busy.get(pid, [])
            for free_start, free_end in availability.free(pid, loc, chunk_start, chunk_end + reach):
                offset = int(free_start.astimezone(tz).utcoffset().total_seconds())  # type: ignore[union-attr]
                lo, hi = _ts(free_start), _ts(free_end)
                s = lo + (-(lo + offset)) % step
                j = bisect.bisect_right(rows, (s, s)) - 1 if rows else 0
                j = max(j, 0)
                while s + duration <= hi and s < stop and emitted < cap:
                    while j < len(rows) and rows[j][1] <= s:
                        j += 1
                    if j < len(rows) and rows[j][0] < s + held:
                        after = rows[j][1]
                        s = after + (-(after + offset)) % step
                        continue
                    picked = pool.pick(loc, s, s + held)
                    if picked is not None:
                        in_chunk.append((s, order[pid], pid, loc, picked))
                        emitted += 1
                        nxt = s + held if distinct else s + step
                    else:
                        nxt = s + step
                    s = nxt + (-(nxt + offset)) % step
        in_chunk.sort(key=lambda item: (item[0], item[1], item[3]))
        found += in_chunk[:cap]
        chunk_start, size = chunk_end, min(size * 2, _MAX_CHUNK)
    locations = availability.locations
    return [
        Slot(
            start=_from_ts(s),
            end=_from_ts(s + duration),
            practitioner=by_id[pid],
            location=locations[loc],
            resources=picked,
        )
        for s, _, pid, loc, picked in found[:limit]
    ]


def _name_key(practitioner: Practitioner) -> tuple[str, str, int]:
    return (practitioner.family_name, practitioner.given_name, practitioner.pk)


def _busy(
    practitioner_ids: list[int], after: dt.datetime, before: dt.datetime
) -> dict[int, list[tuple[int, int]]]:
    """Merged busy times (epoch seconds) of each practitioner overlapping [after, before)."""
    raw: dict[int, list[tuple[int, int]]] = defaultdict(list)
    booked = AppointmentPractitioner.objects.filter(
        practitioner_id__in=practitioner_ids,
        blocks=True,
        start__gte=after - MAX_APPOINTMENT_SPAN,
        start__lt=before,
        end__gt=after,
    )
    for pid, start, end in _interval_rows(booked, "practitioner_id"):
        raw[pid].append((start, end))
    return {pid: _merge_ints(rows) for pid, rows in raw.items()}


def slot_find(
    *,
    appointment_type: AppointmentType,
    start: dt.datetime,
    end: dt.datetime,
    practitioners: Iterable[Practitioner] | None = None,
    location: Location | None = None,
    limit: int = 10,
    locations: Iterable[Location] | None = None,
) -> list[Slot]:
    """The first `limit` open slots for the type in [start, end) (never before now), earliest
    first, across the given practitioners (None: everyone who takes the type) at `location`
    (or any of `locations`; None: anywhere they work)."""
    location_ids: list[int] | None = None
    if location is not None:
        location_ids = [location.pk]
    if locations is not None:
        scope = [loc.pk for loc in locations]
        location_ids = [pk for pk in location_ids if pk in scope] if location_ids else scope
    return _search(
        appointment_type=appointment_type,
        start=start,
        end=end,
        practitioners=practitioners,
        location_ids=location_ids,
        limit=limit,
        distinct=False,
    )


def third_next_available(
    *,
    practitioner: Practitioner,
    appointment_type: AppointmentType,
    after: dt.datetime | None = None,
    location: Location | None = None,
) -> dt.datetime | None:
    """The start of the practitioner's third next available appointment of this type (the
    access measure: the first two are often fresh cancellations). Counts slots that could all
    be booked together (none overlaps the previous one); None when fewer than three are open
    within 180 days."""
    after = after or timezone.now()
    slots = _search(
        appointment_type=appointment_type,
        start=after,
        end=after + THIRD_NEXT_HORIZON,
        practitioners=[practitioner],
        location_ids=[location.pk] if location is not None else None,
        limit=3,
        distinct=True,
    )
    return slots[2].start if len(slots) >= 3 else None


def location_time_zone(location: Location) -> dt.tzinfo:
    return zone(location.time_zone)
