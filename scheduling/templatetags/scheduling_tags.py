"""Template tags for screens outside scheduling: the patient page's appointments (patients does
not import scheduling, so its template loads this tag), the home page's check-in board link, and
plain-words filters for availability rules and weekdays."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django import template
from django.http import Http404
from django.utils.safestring import SafeString, mark_safe

from core.capabilities import Capability
from scheduling.availability import zone
from scheduling.models import WEEKDAYS, AvailabilityRule
from scheduling.selectors import appointments_for_patient, split_upcoming
from scheduling.view_selectors import (
    MOVABLE,
    STATUS_ICONS,
    Grid,
    frontdesk_counts_for_user,
)

register = template.Library()

DAY_ABBREVIATIONS = {
    "MO": "Mon",
    "TU": "Tue",
    "WE": "Wed",
    "TH": "Thu",
    "FR": "Fri",
    "SA": "Sat",
    "SU": "Sun",
}
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}
PAST_SHOWN = 10


def describe_rrule(text: str, start: dt.time | None = None, end: dt.time | None = None) -> str:
    """An RRULE in plain words, e.g. "Every Mon, Wed, Fri 08:00-12:00" (with an en dash);
    rules it cannot put into words are shown as written."""
    parts: dict[str, str] = {}
    for piece in (text or "").strip().removeprefix("RRULE:").split(";"):
        name, _, value = piece.partition("=")
        if name and value:
            parts[name.strip().upper()] = value.strip().upper()
    words = _frequency_words(parts)
    if words is None:
        words = f"Repeats {text.strip()}"
    if "COUNT" in parts and parts["COUNT"].isdigit():
        words += f", {parts['COUNT']} times"
    if "UNTIL" in parts:
        until = parts["UNTIL"][:8]
        if until.isdigit():
            words += f", until {until[:4]}-{until[4:6]}-{until[6:]}"
    if start is not None and end is not None:
        words += f" {start:%H:%M}\u2013{end:%H:%M}"
    return words


def _days(value: str) -> list[str] | None:
    names = []
    for day in value.split(","):
        name = DAY_ABBREVIATIONS.get(day.strip()[-2:])
        if name is None:
            return None
        names.append(name)
    return names


def _frequency_words(parts: dict[str, str]) -> str | None:
    freq = parts.get("FREQ")
    given = parts.get("INTERVAL", "1")
    interval = int(given) if given.isdigit() and int(given) > 0 else 1
    allowed = {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL", "WKST"}
    if set(parts) - allowed:
        return None
    if freq == "DAILY" and "BYDAY" not in parts and "BYMONTHDAY" not in parts:
        return "Every day" if interval == 1 else f"Every {interval} days"
    if freq == "WEEKLY" and "BYMONTHDAY" not in parts:
        days = _days(parts["BYDAY"]) if "BYDAY" in parts else None
        if "BYDAY" in parts and days is None:
            return None
        on = ", ".join(days) if days else "week"
        if interval == 1:
            return f"Every {on}"
        return f"Every {interval} weeks on {on}" if days else f"Every {interval} weeks"
    if freq == "MONTHLY" and "BYDAY" in parts and "," not in parts["BYDAY"]:
        day = parts["BYDAY"]
        number, name = day[:-2], DAY_ABBREVIATIONS.get(day[-2:])
        if name is None or not number.lstrip("+-").isdigit() or int(number) not in ORDINALS:
            return None
        every = "every month" if interval == 1 else f"every {interval} months"
        return f"The {ORDINALS[int(number)]} {name} of {every}"
    if freq == "MONTHLY" and "BYMONTHDAY" in parts and parts["BYMONTHDAY"].isdigit():
        every = "every month" if interval == 1 else f"every {interval} months"
        return f"Day {parts['BYMONTHDAY']} of {every}"
    return None


@register.filter
def rule_words(rule: AvailabilityRule) -> str:
    return describe_rrule(rule.rrule, rule.start_time, rule.end_time)


@register.filter
def weekday_names(days: Iterable[int]) -> str:
    names = dict(WEEKDAYS)
    return ", ".join(names[d][:3] for d in sorted(days or []) if d in names)


@register.inclusion_tag("scheduling/_patient_appointments.html", takes_context=True)
def patient_appointments(context: template.Context, patient: Any) -> dict[str, Any]:
    """The patient's upcoming and past appointments with book, cancel and reschedule links
    (nothing when the user may not see the schedule or this patient)."""
    user = context.get("user")
    caps = context.get("caps", {})
    if user is None or not user.can(Capability.VIEW_SCHEDULE):
        return {"shown": False}
    try:
        rows = appointments_for_patient(user=user, patient=patient)
    except Http404:
        return {"shown": False}
    upcoming, past = split_upcoming(rows)
    return {
        "shown": True,
        "patient": patient,
        "upcoming": [_line(a) for a in upcoming],
        "past": [_line(a) for a in past[:PAST_SHOWN]],
        "more_past": max(0, len(past) - PAST_SHOWN),
        "caps": caps,
        "can_book": user.can(Capability.SCHEDULE_APPOINTMENTS),
    }


def _line(appointment: Any) -> dict[str, Any]:
    tz = zone(appointment.location.time_zone)
    start, end = appointment.start.astimezone(tz), appointment.end.astimezone(tz)
    return {
        "appointment": appointment,
        "when": f"{start:%a %m/%d/%Y %H:%M}\u2013{end:%H:%M}",
        "status_icon": STATUS_ICONS.get(appointment.status, "bi-circle"),
        "movable": appointment.status in MOVABLE,
    }


@register.inclusion_tag("scheduling/_checkin_link.html", takes_context=True)
def checkin_board_link(context: template.Context) -> dict[str, Any]:
    """For the front desk's home page: today's expected and waiting patients, and the board."""
    user = context.get("user")
    if user is None or not user.is_authenticated or not user.can(Capability.CHECK_IN):
        return {"shown": False}
    return {"shown": True, "counts": frontdesk_counts_for_user(user=user)}


# ---- the calendar grid, printed in Python ----------------------------------------------------
# A busy day has thousands of cells; scheduling.view_selectors builds each cell's HTML once (every
# value escaped there), several times faster than the template engine, and this only joins them.


@register.simple_tag
def calendar_rows(grid: Grid) -> SafeString:
    """The grid's <tr> rows: a time header and the cells that start in each row."""
    lines = []
    for row in grid.rows:
        classes = ("hour" if row.is_hour else "") + (" now" if row.is_now else "")
        lines.append(
            f'<tr data-minute="{row.minute}" class="{classes.strip()}">'
            f'<th scope="row">{row.time}</th>{"".join(row.cells)}</tr>'
        )
    return mark_safe("\n".join(lines))  # noqa: S308  (the cells are escaped where they are built)
