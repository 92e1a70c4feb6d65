"""Reads the scheduling screens need beyond scheduling.selectors: the location a request is about,
the calendar grid (day and week, per practitioner or per room) built in a fixed number of queries,
a practitioner's week, availability for the management screen and the front desk's counts.

The grid is computed here in Python (rows of local wall-clock time, one column per practitioner,
room or day) so that the templates only print it: a 30-practitioner day with 600 appointments
renders without a query per appointment and without per-cell template logic.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, Outcome
from audit.services import record
from core.capabilities import Capability
from core.models import Location
from scheduling.availability import Availability, Interval, occurrence_starts, to_utc, zone
from scheduling.models import (
    Appointment,
    AppointmentStatus,
    AvailabilityException,
    AvailabilityOccurrence,
    AvailabilityRule,
    Practitioner,
    Resource,
    ResourceCategory,
    WaitlistEntry,
)
from scheduling.selectors import (
    CalendarEntry,
    CheckinBoard,
    calendar_entries,
    calendar_entries_for_location_day,
    day_bounds,
    practitioners_for_location,
    practitioners_for_user,
)
from scheduling.setup_cache import UNREAD

if TYPE_CHECKING:
    from accounts.models import User

AUDIT_CATEGORY = "scheduling"
S = AppointmentStatus
STEPS = (5, 10, 15)
DEFAULT_STEP = 15
DEFAULT_HOURS = (8 * 60, 18 * 60)
_ZERO = uuid.UUID(int=0)
MOVABLE = frozenset({S.PROPOSED, S.BOOKED, S.CONFIRMED})
# Shown as text beside an icon: status is never told by colour alone.
STATUS_ICONS: dict[str, str] = {
    S.PROPOSED: "bi-question-circle",
    S.BOOKED: "bi-calendar-check",
    S.CONFIRMED: "bi-check2-circle",
    S.ARRIVED: "bi-person-check",
    S.IN_ROOM: "bi-door-open",
    S.COMPLETED: "bi-check-all",
    S.CANCELLED: "bi-x-circle",
    S.NO_SHOW: "bi-person-x",
}


# ---- locations and practitioners the user may work with ---------------------------------------


def locations_for_user(*, user: User) -> list[Location]:
    """The user's active locations, by name (read once per request with the user's scope)."""
    return [location for location in user.location_list if location.is_active]


def location_get_for_user(
    *, user: User, public_id: uuid.UUID | str | None, event: str = "location.view"
) -> Location:
    """The location asked for (one of the user's), or the user's first one when none is asked
    for. Another location, or one that does not exist, is a 404 with a denied event."""
    if public_id is None:
        first = next(iter(locations_for_user(user=user)), None)
        if first is None:
            raise Http404("You have no locations.")
        return first
    wanted = str(public_id)
    mine = next((loc for loc in user.location_list if str(loc.public_id) == wanted), None)
    if mine is not None:
        return mine
    location = Location.objects.filter(public_id=public_id).first()
    if location is None or location.pk not in user.location_ids:
        record(
            actor=user,
            action=Action.READ,
            event=event,
            category=AUDIT_CATEGORY,
            object_type="core.Location",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such location.")
    return location


def practitioner_get_for_user(
    *, user: User, public_id: uuid.UUID | str, event: str = "practitioner.view"
) -> Practitioner:
    """An active practitioner who works at one of the user's locations (else 404, audited)."""
    practitioner = next(
        (p for p in practitioners_for_user(user=user) if str(p.public_id) == str(public_id)), None
    )
    if practitioner is None:
        record(
            actor=user,
            action=Action.READ,
            event=event,
            category=AUDIT_CATEGORY,
            object_type="scheduling.Practitioner",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such practitioner.")
    return practitioner


def rooms_for_location(location: Location) -> list[Resource]:
    return list(
        Resource.objects.filter(
            location=location, category=ResourceCategory.ROOM, is_active=True
        ).order_by("name", "id")
    )


# ---- the calendar grid ---------------------------------------------------------------------


# Cells are printed here, once each, as HTML (every value escaped): a busy day has thousands of
# cells, and building them as objects for the template engine (or a template tag) to print was
# most of the day view's time. `calendar_rows` (scheduling_tags) only joins the rows.
_HHMM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1441)]
_STATUS_TEXT = {value: escape(label) for value, label in S.choices}
_FREE_CELL = '<td class="free"></td>'


@dataclass
class Row:
    """One row of local time; `cells` holds the HTML of the cells that start in it (cells
    covered by a rowspan from above are left out)."""

    time: str
    minute: int
    is_hour: bool
    cells: list[str] = field(default_factory=list)
    is_now: bool = False


@dataclass
class Column:
    key: str
    label: str
    sublabel: str
    day: dt.date
    practitioner: Practitioner | None = None
    resource: Resource | None = None
    free: list[Interval] = field(default_factory=list)
    exceptions: list[AvailabilityException] = field(default_factory=list)
    appointments: list[CalendarEntry] = field(default_factory=list)
    allows_overbooking: bool = False
    # Local minutes from the column's midnight (see _measure): each appointment's (start, end),
    # in the order of `appointments`, and each free interval's.
    minutes: list[tuple[int, int]] = field(default_factory=list, repr=False)
    free_minutes: list[tuple[int, int]] = field(default_factory=list, repr=False)


@dataclass
class Grid:
    location: Location
    days: list[dt.date]
    step: int
    by: str
    columns: list[Column]
    rows: list[Row]
    cancelled: list[CalendarEntry]
    now_minute: int | None
    type_legend: list[tuple[str, str]]

    @property
    def appointment_count(self) -> int:
        return sum(len(c.appointments) for c in self.columns)


def _minutes(moment: dt.datetime, day: dt.date, tz: dt.tzinfo) -> int:
    """Local wall-clock minutes of `moment` counted from midnight starting `day` (may be < 0 or
    > 1440 for moments on other days)."""
    local = moment.astimezone(tz)
    return (local.date() - day).days * 1440 + local.hour * 60 + local.minute


class _Clock:
    """Local wall-clock minutes from the midnight starting `day`: plain arithmetic on timestamps
    within a day that has one UTC offset throughout, the zone's rules otherwise."""

    def __init__(self, day: dt.date, tz: dt.tzinfo) -> None:
        self.day, self.tz = day, tz
        midnight = to_utc(day, dt.time.min, tz)
        following = to_utc(day + dt.timedelta(days=1), dt.time.min, tz)
        self.base = midnight.timestamp()
        self.uniform = following - midnight == dt.timedelta(days=1)

    def __call__(self, moment: dt.datetime) -> int:
        seconds = moment.timestamp() - self.base
        if self.uniform and 0 <= seconds < 86400:
            return int(seconds // 60)
        return _minutes(moment, self.day, self.tz)


def _hhmm(minute: int) -> str:
    return _HHMM[max(0, min(minute, 1440))]


def _opening_minutes(availability: Availability, location: Location, day: dt.date) -> list[int]:
    hours = availability.opening.get(location.pk, {}).get(day.weekday(), [])
    return [
        m
        for opens, closes in hours
        for m in (opens.hour * 60 + opens.minute, closes.hour * 60 + closes.minute)
    ]


def _measure(columns: Sequence[Column], tz: dt.tzinfo) -> None:
    """Fill each column's `minutes` and `free_minutes`, once for the whole grid (the step, the
    grid's range and the cells all work in local minutes)."""
    clocks: dict[dt.date, _Clock] = {}
    for column in columns:
        clock = clocks.get(column.day)
        if clock is None:
            clock = clocks[column.day] = _Clock(column.day, tz)
        column.minutes = [(clock(a.start), clock(a.end)) for a in column.appointments]
        column.free_minutes = [(clock(start), clock(end)) for start, end in column.free]


def _grid_range(
    columns: Sequence[Column], availability: Availability, location: Location, step: int
) -> tuple[int, int]:
    points: list[int] = []
    for day in {c.day for c in columns}:
        points += _opening_minutes(availability, location, day)
    for column in columns:
        for start, end in column.free_minutes:
            points += (start, end)
        for start, end in column.minutes:
            points += (start, end)
    if not points:
        first, last = DEFAULT_HOURS
    else:
        first, last = max(0, min(points)), min(1440, max(points))
    first -= first % step
    last += -last % step
    if last <= first:
        last = first + step
    return first, min(last, 1440)


def auto_step(columns: Sequence[Column], location: Location) -> int:
    """The longest row step (15, 10 or 5 minutes) on which every appointment starts and ends, so
    that appointments which follow each other are not drawn as overlapping."""
    if any(len(c.minutes) != len(c.appointments) for c in columns):
        _measure(columns, zone(location.time_zone))
    # Local minutes from local midnight: their remainder by 60 is the minute of the hour.
    marks = {minute % 60 for column in columns for pair in column.minutes for minute in pair}
    return next((s for s in (15, 10) if all(m % s == 0 for m in marks)), 5)


class _Blocks:
    """Draws appointments as calendar blocks: a link to the appointment's panel (draggable when
    it can move) with its time, status (icon and words: never colour alone), patient, type and
    alerts. What appointments of one type, status and overbooking share is made (and escaped)
    once per grid."""

    def __init__(self, prefix: str, can_move: bool) -> None:
        self.prefix, self.can_move = prefix, can_move
        self._shared: dict[tuple[Any, str, bool], tuple[str, bool, str, str]] = {}

    def _parts(self, kind: Any, status: str, overbooked: bool) -> tuple[str, bool, str, str]:
        head = (
            f'<a class="appt appt-type-{escape(kind.code)} appt-{escape(status)}'
            + (' appt-overbooked" ' if overbooked else '" ')
            + 'href="'
        )
        middle = (
            f'<span class="appt-status"><i class="bi {STATUS_ICONS.get(status, "bi-circle")}" '
            f'aria-hidden="true"></i> {_STATUS_TEXT.get(status) or escape(status)}</span></span>'
        )
        tail = f'<span class="appt-type">{escape(kind.name)}' + (
            " · overbooked</span>" if overbooked else "</span>"
        )
        return head, self.can_move and status in MOVABLE, middle, tail

    def html(self, appointment: CalendarEntry, start: int, end: int) -> str:
        kind, status = appointment.appointment_type, appointment.status
        key = (kind, status, appointment.is_overbooked)
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared[key] = self._parts(*key)
        head, movable, middle, tail = shared
        href = f"{self.prefix}{appointment.public_id}/"
        link = (
            f'" data-panel draggable="true" data-move="{href}reschedule/">'
            if movable
            else '" data-panel>'
        )
        patient = appointment.patient
        text = (
            f"{head}{href}{link}"
            f'<span class="appt-line"><span class="appt-time">{_hhmm(start)}\u2013'
            f"{_hhmm(end)}</span> {middle}"
            f'<span class="appt-patient">{escape(patient.family_name)}, '
            f"{escape(patient.given_name)}</span>{tail}"
        )
        for flag in patient.banner_flags:
            text += (
                f'<span class="badge {flag.badge_class}"><span class="visually-hidden">'
                f"{escape(flag.get_severity_display())} alert: </span>"
                f"{escape(flag.get_kind_display())}</span>"
            )
        return text + "</a>"


def _state(
    minute: int, step: int, free: list[tuple[int, int]], blocked: list[tuple[int, int, str]]
) -> tuple[str, str]:
    for start, end, label in blocked:
        if start < minute + step and minute < end:
            return "exception", label
    for start, end in free:
        if start <= minute and minute + step <= end:
            return "slot", ""
    return "off", ""


def _spanned(kind: str, rowspan: int, label: str) -> str:
    if kind == "exception":
        return (
            f'<td class="exception" rowspan="{rowspan}">'
            f'<span class="exception-label">{escape(label)}</span></td>'
        )
    return f'<td class="off" rowspan="{rowspan}"></td>'


def _column_cells(
    column: Column,
    *,
    first: int,
    count: int,
    step: int,
    tz: dt.tzinfo,
    book_url: str,
    slot_query: str,
    can_add: bool,
    blocks: _Blocks,
) -> list[str | None]:
    """The HTML of the column's cell in each row: where a cell starts, None where a rowspan
    covers it. Empty bookable steps are links to the booking panel when `book_url` is given
    (plain free cells otherwise). The column is measured (_measure)."""
    cells: list[str | None] = [None] * count
    taken = [False] * count
    # Appointments: overlapping ones share one cell (side by side), spanning all their rows.
    spans: list[tuple[int, dt.datetime, int, int, int, int, CalendarEntry]] = []
    last_row = count - 1
    for appointment, (start, end) in zip(column.appointments, column.minutes, strict=True):
        r0 = (start - first) // step
        r0 = 0 if r0 < 0 else last_row if r0 > last_row else r0
        r1 = -(-(end - first) // step)
        r1 = count if r1 > count else r1
        spans.append(
            (
                r0,
                appointment.start,
                appointment.pk,
                r1 if r1 > r0 else r0 + 1,
                start,
                end,
                appointment,
            )
        )
    spans.sort(key=lambda item: item[:3])
    slot_base = escape(f"{book_url}?{slot_query}&start={column.day.isoformat()}T")
    index, total = 0, len(spans)
    while index < total:
        r0, _, _, r1, start, end, appointment = spans[index]
        html = [blocks.html(appointment, start, end)]
        index += 1
        while index < total and spans[index][0] < r1:
            _, _, _, other_r1, start, end, appointment = spans[index]
            if other_r1 > r1:
                r1 = other_r1
            html.append(blocks.html(appointment, start, end))
            index += 1
        if can_add and column.allows_overbooking:
            html.append(
                f'<a class="appt-add" href="{slot_base}{_hhmm(first + r0 * step)}'
                '&amp;overbook=1" data-panel aria-label="Overbook at this time">'
                '<i class="bi bi-plus" aria-hidden="true"></i></a>'
            )
        cells[r0] = (
            f'<td class="busy" rowspan="{r1 - r0}"><div class="appts">{"".join(html)}</div></td>'
        )
        taken[r0:r1] = [True] * (r1 - r0)
    free = column.free_minutes
    blocked: list[tuple[int, int, str]] = []
    if column.exceptions:
        clock = _Clock(column.day, tz)
        blocked = [
            (clock(exc.start), clock(exc.end), f"{exc.get_kind_display()}: {exc.reason}")
            for exc in column.exceptions
        ]
    label = escape(column.label)
    # A run of "off" or "exception" rows is one cell: (row it starts in, kind, label, rowspan).
    run: list[Any] | None = None
    for row in range(count):
        if taken[row]:
            _close(cells, run)
            run = None
            continue
        minute = first + row * step
        kind, text = _state(minute, step, free, blocked)
        if kind == "slot":
            _close(cells, run)
            run = None
            if book_url:
                time = _HHMM[minute]
                cells[row] = (
                    f'<td class="slot"><a href="{slot_base}{time}" data-panel data-slot '
                    f'tabindex="-1" aria-label="Book {time}, {label}"></a></td>'
                )
            else:
                cells[row] = _FREE_CELL
        elif run is not None and run[1] == kind and run[2] == text:
            run[3] += 1
        else:
            _close(cells, run)
            run = [row, kind, text, 1]
    _close(cells, run)
    return cells


def _close(cells: list[str | None], run: list[Any] | None) -> None:
    """Write the cell of a finished run of "off" or "exception" rows."""
    if run is not None:
        cells[run[0]] = _spanned(run[1], run[3], run[2])


def _rows(
    columns: Sequence[Column],
    *,
    location: Location,
    first: int,
    last: int,
    step: int,
    book_url: str,
    can_move: bool,
    can_add: bool,
) -> list[Row]:
    tz = zone(location.time_zone)
    count = (last - first) // step
    rows = [
        Row(
            time=_hhmm(first + n * step),
            minute=first + n * step,
            is_hour=(first + n * step) % 60 == 0,
        )
        for n in range(count)
    ]
    base = f"location={location.public_id}"
    prefix = reverse("scheduling:appointment", args=[_ZERO]).removesuffix(f"{_ZERO}/")
    blocks = _Blocks(prefix, can_move)
    for column in columns:
        if column.practitioner is not None:
            query = f"{base}&practitioner={column.practitioner.public_id}"
        elif column.resource is not None:
            query = f"{base}&resource={column.resource.public_id}"
        else:
            query = base
        cells = _column_cells(
            column,
            first=first,
            count=count,
            step=step,
            tz=tz,
            book_url=book_url,
            slot_query=query,
            can_add=can_add,
            blocks=blocks,
        )
        for row, cell in zip(rows, cells, strict=True):
            if cell is not None:
                row.cells.append(cell)
    return rows


def _now_minute(location: Location, days: Sequence[dt.date], now: dt.datetime) -> int | None:
    local = now.astimezone(zone(location.time_zone))
    if local.date() not in days:
        return None
    return local.hour * 60 + local.minute


def _legend(appointments: Iterable[CalendarEntry]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for appointment in appointments:
        kind = appointment.appointment_type
        seen.setdefault(kind.code, kind.name)
    return sorted(seen.items(), key=lambda item: item[1])


def _split_cancelled(
    rows: Iterable[CalendarEntry],
) -> tuple[list[CalendarEntry], list[CalendarEntry]]:
    shown: list[CalendarEntry] = []
    cancelled: list[CalendarEntry] = []
    for appointment in rows:
        (cancelled if appointment.status == S.CANCELLED else shown).append(appointment)
    return shown, cancelled


def calendar_day(
    *,
    user: User,
    location: Location,
    day: dt.date,
    step: int | None = None,
    by: str = "practitioner",
    book_url: str = "",
    now: dt.datetime | None = None,
) -> Grid:
    """The day at a location, one column per practitioner (or per room), in a fixed number of
    queries whatever the number of appointments."""
    appointments = calendar_entries_for_location_day(user=user, location=location, day=day)
    practitioners = practitioners_for_location(location=location, user=user, with_setup_token=True)
    shown, cancelled = _split_cancelled(appointments)
    start, end = day_bounds(location, day)
    availability = Availability(
        practitioner_ids=[p.pk for p in practitioners],
        start=start,
        end=end,
        location_ids=[location.pk],
        token=_setup_token(practitioners),
    )
    if by == "room":
        columns = _room_columns(location, day, shown, availability, start, end)
    else:
        columns = _practitioner_columns(location, day, shown, practitioners, availability)
    return _grid(
        user=user,
        location=location,
        days=[day],
        step=step,
        by=by,
        columns=columns,
        availability=availability,
        cancelled=cancelled,
        book_url=book_url,
        now=now,
        legend=_legend(shown),
    )


def _setup_token(practitioners: Sequence[Practitioner]) -> str | object | None:
    """The setup token the practitioners' query read with them (UNREAD when it found none)."""
    if not practitioners:
        return UNREAD
    token = practitioners[0].setup_token  # type: ignore[attr-defined]
    return None if token is None else str(token)


def _grid(
    *,
    user: User,
    location: Location,
    days: list[dt.date],
    step: int | None,
    by: str,
    columns: list[Column],
    availability: Availability,
    cancelled: list[CalendarEntry],
    book_url: str,
    now: dt.datetime | None,
    legend: list[tuple[str, str]],
) -> Grid:
    _measure(columns, zone(location.time_zone))
    step = step if step in STEPS else auto_step(columns, location)
    first, last = _grid_range(columns, availability, location, step)
    can_book = user.can(Capability.SCHEDULE_APPOINTMENTS)
    rows = _rows(
        columns,
        location=location,
        first=first,
        last=last,
        step=step,
        book_url=book_url if can_book else "",
        can_move=can_book and by != "room",
        can_add=can_book and user.can(Capability.OVERBOOK),
    )
    now_minute = _now_minute(location, days, now or timezone.now())
    if now_minute is not None:
        for row in rows:
            row.is_now = row.minute <= now_minute < row.minute + step
    return Grid(
        location=location,
        days=days,
        step=step,
        by=by,
        columns=columns,
        rows=rows,
        cancelled=cancelled,
        now_minute=now_minute,
        type_legend=legend,
    )


def _practitioner_columns(
    location: Location,
    day: dt.date,
    appointments: Sequence[CalendarEntry],
    practitioners: Sequence[Practitioner],
    availability: Availability,
) -> list[Column]:
    start, end = day_bounds(location, day)
    by_practitioner: dict[int, list[CalendarEntry]] = {p.pk: [] for p in practitioners}
    for appointment in appointments:
        for practitioner_id in appointment.practitioner_ids:
            by_practitioner.setdefault(practitioner_id, []).append(appointment)
    # Practitioners with appointments here who no longer work here (one query, only then).
    missing = set(by_practitioner) - {p.pk for p in practitioners}
    extra = Practitioner.objects.in_bulk(missing).values() if missing else []
    everyone = [*practitioners, *sorted(extra, key=lambda p: (p.family_name, p.pk))]
    return [
        Column(
            key=str(p.public_id),
            label=p.display_name,
            sublabel=p.specialty,
            day=day,
            practitioner=p,
            free=availability.free(p.pk, location.pk, start, end),
            exceptions=availability.exceptions_for(p.pk, location.pk, start, end),
            appointments=by_practitioner[p.pk],
            allows_overbooking=p.allows_overbooking,
        )
        for p in everyone
    ]


def _room_columns(
    location: Location,
    day: dt.date,
    appointments: Sequence[CalendarEntry],
    availability: Availability,
    start: dt.datetime,
    end: dt.datetime,
) -> list[Column]:
    rooms = rooms_for_location(location)
    opening = availability.opening_intervals(location.pk, start, end)
    free = [(start, end)] if opening is None else opening
    holidays = [
        exc
        for exc in availability.exceptions
        if exc.practitioner_id is None and exc.location_id == location.pk
    ]
    by_room: dict[int, list[CalendarEntry]] = {room.pk: [] for room in rooms}
    unassigned: list[CalendarEntry] = []
    for appointment in appointments:
        placed = False
        for resource_id in appointment.resource_ids:
            if resource_id in by_room:
                by_room[resource_id].append(appointment)
                placed = True
        if not placed:
            unassigned.append(appointment)
    columns = [
        Column(
            key=str(room.public_id),
            label=room.name,
            sublabel=room.kind.replace("-", " "),
            day=day,
            resource=room,
            free=free,
            exceptions=holidays,
            appointments=by_room[room.pk],
        )
        for room in rooms
    ]
    if unassigned or not columns:
        columns.append(
            Column(
                key="no-room",
                label="No room",
                sublabel="appointments without a room",
                day=day,
                free=[],
                exceptions=[],
                appointments=unassigned,
            )
        )
    return columns


def week_days(day: dt.date) -> list[dt.date]:
    monday = day - dt.timedelta(days=day.weekday())
    return [monday + dt.timedelta(days=n) for n in range(7)]


def appointments_for_practitioner_week(
    *, user: User, location: Location, practitioner: Practitioner, days: Sequence[dt.date]
) -> list[CalendarEntry]:
    """The practitioner's appointments at the location over `days` (local), by start, audited as
    one query event."""
    if not user.can(Capability.VIEW_SCHEDULE) or location.pk not in user.location_ids:
        raise Http404("No such location.")
    start, _ = day_bounds(location, days[0])
    _, end = day_bounds(location, days[-1])
    rows = calendar_entries(
        Appointment.objects.filter(
            location=location,
            practitioners=practitioner,
            start__gte=start,
            start__lt=end,
        ).order_by("start", "id")
    )
    record(
        actor=user,
        action=Action.QUERY,
        event="appointment.week_list",
        category=AUDIT_CATEGORY,
        object_type="scheduling.Appointment",
        object_id=f"{location.code} {days[0].isoformat()} +7: {len(rows)}"[:64],
    )
    return rows


def calendar_week(
    *,
    user: User,
    location: Location,
    practitioner: Practitioner,
    day: dt.date,
    step: int | None = None,
    book_url: str = "",
    now: dt.datetime | None = None,
) -> Grid:
    """One practitioner's week at a location: a column per day, same blocks as the day view."""
    days = week_days(day)
    appointments = appointments_for_practitioner_week(
        user=user, location=location, practitioner=practitioner, days=days
    )
    shown, cancelled = _split_cancelled(appointments)
    start, _ = day_bounds(location, days[0])
    _, end = day_bounds(location, days[-1])
    availability = Availability(
        practitioner_ids=[practitioner.pk], start=start, end=end, location_ids=[location.pk]
    )
    tz = zone(location.time_zone)
    columns = []
    for current in days:
        day_start, day_end = day_bounds(location, current)
        columns.append(
            Column(
                key=current.isoformat(),
                label=f"{current:%a %d %b}",
                sublabel="",
                day=current,
                practitioner=practitioner,
                free=availability.free(practitioner.pk, location.pk, day_start, day_end),
                exceptions=availability.exceptions_for(
                    practitioner.pk, location.pk, day_start, day_end
                ),
                appointments=[a for a in shown if a.start.astimezone(tz).date() == current],
                allows_overbooking=practitioner.allows_overbooking,
            )
        )
    grid = _grid(
        user=user,
        location=location,
        days=days,
        step=step,
        by="week",
        columns=columns,
        availability=availability,
        cancelled=cancelled,
        book_url=book_url,
        now=now,
        legend=_legend(shown),
    )
    return grid


# ---- the check-in board ---------------------------------------------------------------------


@dataclass
class BoardLine:
    """One row of the check-in board, in time order, with times at the location."""

    appointment: Appointment
    start: str
    status_icon: str
    minutes_late: int | None  # expected and not here yet, start passed
    arrived: str
    arrived_late: int | None  # arrived after the start: how many minutes
    waiting_minutes: int | None  # arrived, not yet in a room
    waited_minutes: int | None  # from arrival to rooming
    roomed: str
    errors: list[str]
    can_no_show: bool


def board_lines(
    board: CheckinBoard, *, now: dt.datetime, row_errors: dict[str, list[str]] | None = None
) -> list[BoardLine]:
    tz = zone(board.location.time_zone)
    rows = [
        *board.expected, *board.arrived, *board.in_room,
        *board.completed, *board.no_show, *board.cancelled,
    ]  # fmt: skip
    rows.sort(key=lambda row: (row.appointment.start, row.appointment.pk))
    errors = row_errors or {}
    lines = []
    for row in rows:
        a = row.appointment
        arrived_late = None
        if a.arrived_at is not None and a.arrived_at > a.start:
            arrived_late = int((a.arrived_at - a.start).total_seconds() // 60) or None
        waited = None
        if a.arrived_at is not None and a.roomed_at is not None:
            waited = max(0, int((a.roomed_at - a.arrived_at).total_seconds() // 60))
        lines.append(
            BoardLine(
                appointment=a,
                start=f"{a.start.astimezone(tz):%H:%M}",
                status_icon=STATUS_ICONS.get(a.status, "bi-circle"),
                minutes_late=row.minutes_late,
                arrived=f"{a.arrived_at.astimezone(tz):%H:%M}" if a.arrived_at else "",
                arrived_late=arrived_late,
                waiting_minutes=row.waiting_minutes,
                waited_minutes=waited,
                roomed=f"{a.roomed_at.astimezone(tz):%H:%M}" if a.roomed_at else "",
                errors=errors.get(str(a.public_id), []),
                can_no_show=a.status in MOVABLE and a.start <= now,
            )
        )
    return lines


# ---- the front desk's counts (no patient data) ----------------------------------------------


@dataclass
class FrontDeskCounts:
    expected: int
    waiting: int


def frontdesk_counts_for_user(*, user: User, now: dt.datetime | None = None) -> FrontDeskCounts:
    """Today's still-expected and waiting patients at the user's locations (one query)."""
    now = now or timezone.now()
    if not user.can(Capability.CHECK_IN) or not user.location_ids:
        return FrontDeskCounts(0, 0)
    today = Q()
    for location in Location.objects.filter(pk__in=user.location_ids):
        local_day = now.astimezone(zone(location.time_zone)).date()
        start, end = day_bounds(location, local_day)
        today |= Q(location_id=location.pk, start__gte=start, start__lt=end)
    counts = Appointment.objects.filter(today).aggregate(
        expected=Count("id", filter=Q(status__in=[S.PROPOSED, S.BOOKED, S.CONFIRMED])),
        waiting=Count("id", filter=Q(status=S.ARRIVED)),
    )
    return FrontDeskCounts(counts["expected"] or 0, counts["waiting"] or 0)


# ---- availability management ----------------------------------------------------------------


@dataclass
class Occurrence:
    rule: AvailabilityRule
    day: dt.date
    start: dt.time
    end: dt.time
    override: AvailabilityOccurrence | None

    @property
    def state(self) -> str:
        if self.override is None:
            return "planned"
        return "cancelled" if self.override.is_cancelled else "changed"


@dataclass
class PractitionerAvailability:
    practitioner: Practitioner
    location: Location
    rules: list[AvailabilityRule]
    occurrences: list[Occurrence]
    exceptions: list[AvailabilityException]


def availability_for_practitioner(
    *, practitioner: Practitioner, location: Location, today: dt.date, weeks: int = 4
) -> PractitionerAvailability:
    """The practitioner's rules at the location, their occurrences over the next `weeks` (with
    per-occurrence changes) and the exceptions ahead (their own and the location's holidays)."""
    rules = list(
        AvailabilityRule.objects.filter(practitioner=practitioner, location=location)
        .prefetch_related("appointment_types")
        .order_by("-is_active", "start_date", "start_time", "id")
    )
    last = today + dt.timedelta(weeks=weeks) - dt.timedelta(days=1)
    overrides = {
        (o.rule_id, o.original_date): o
        for o in AvailabilityOccurrence.objects.filter(
            rule__in=rules, original_date__gte=today, original_date__lte=last
        )
    }
    occurrences: list[Occurrence] = []
    for rule in rules:
        if not rule.is_active:
            continue
        dtstart = dt.datetime.combine(rule.start_date, rule.start_time)
        for moment in occurrence_starts(rule.rrule, dtstart, max(today, rule.start_date), last):
            if rule.until_date is not None and moment.date() > rule.until_date:
                continue
            override = overrides.get((rule.pk, moment.date()))
            start = override.start_time if override and override.start_time else rule.start_time
            end = override.end_time if override and override.end_time else rule.end_time
            occurrences.append(Occurrence(rule, moment.date(), start, end, override))
    occurrences.sort(key=lambda o: (o.day, o.start, o.rule.pk))
    tz = zone(location.time_zone)
    since = to_utc(today, dt.time.min, tz)
    exceptions = list(
        AvailabilityException.objects.filter(end__gt=since)
        .filter(Q(practitioner=practitioner) | Q(practitioner__isnull=True, location=location))
        .select_related("practitioner", "location")
        .order_by("start", "id")[:50]
    )
    return PractitionerAvailability(
        practitioner=practitioner,
        location=location,
        rules=rules,
        occurrences=occurrences,
        exceptions=exceptions,
    )


def rule_get_for_user(*, user: User, public_id: uuid.UUID | str) -> AvailabilityRule:
    """A rule at one of the user's locations (else 404, audited)."""
    rule = (
        AvailabilityRule.objects.select_related("practitioner", "location")
        .filter(public_id=public_id)
        .first()
    )
    if rule is None or rule.location_id not in user.location_ids:
        record(
            actor=user,
            action=Action.READ,
            event="availability_rule.view",
            category=AUDIT_CATEGORY,
            object_type="scheduling.AvailabilityRule",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such availability rule.")
    return rule


def exception_get_for_user(*, user: User, public_id: uuid.UUID | str) -> AvailabilityException:
    exception = (
        AvailabilityException.objects.select_related("practitioner", "location")
        .filter(public_id=public_id)
        .first()
    )
    if exception is None or exception.location_id not in user.location_ids:
        record(
            actor=user,
            action=Action.READ,
            event="availability_exception.view",
            category=AUDIT_CATEGORY,
            object_type="scheduling.AvailabilityException",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such exception.")
    return exception


def waitlist_entry_get_for_user(*, user: User, public_id: uuid.UUID | str) -> WaitlistEntry:
    """A waitlist entry at one of the user's locations (else 404, audited)."""
    entry = (
        WaitlistEntry.objects.select_related("patient", "location")
        .filter(public_id=public_id)
        .first()
    )
    if entry is None or entry.location_id not in user.location_ids:
        record(
            actor=user,
            action=Action.READ,
            event="waitlist.view",
            category=AUDIT_CATEGORY,
            patient_public_id=entry.patient.public_id if entry else None,
            object_type="scheduling.WaitlistEntry",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such waitlist entry.")
    return entry


def book_url(patient_public_id: uuid.UUID | str | None = None) -> str:
    if patient_public_id is None:
        return reverse("scheduling:book")
    return reverse("scheduling:book_for_patient", args=[patient_public_id])
