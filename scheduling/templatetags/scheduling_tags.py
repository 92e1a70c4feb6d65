"""Template tags for screens outside scheduling: the patient page's appointments (patients does
not import scheduling, so its template loads this tag), the home page's check-in board link, and
plain-words filters for availability rules and weekdays."""

from __future__ import annotations

import datetime as dt
import html
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
    Block,
    Cell,
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
# A busy day has thousands of cells; building them here with html.escape is several times faster
# than the template engine, which keeps the day view of a large location well inside its budget.


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _block_html(block: Block) -> str:
    a = block.appointment
    patient = a.patient
    parts = [
        f'<a class="appt {block.classes}" href="{block.href}" data-panel',
        f' draggable="true" data-move="{block.href}reschedule/">' if block.movable else ">",
        f'<span class="appt-line"><span class="appt-time">{block.time}</span> ',
        f'<span class="appt-status"><i class="bi {block.status_icon}" aria-hidden="true"></i> ',
        f"{_e(a.get_status_display())}</span></span>",
        f'<span class="appt-patient">{_e(patient.family_name)}, {_e(patient.given_name)}</span>',
        f'<span class="appt-type">{_e(a.appointment_type.name)}',
        " · overbooked" if a.is_overbooked else "",
        "</span>",
    ]
    for flag in patient.banner_flags:
        parts.append(
            f'<span class="badge {flag.badge_class}"><span class="visually-hidden">'
            f"{_e(flag.get_severity_display())} alert: </span>{_e(flag.get_kind_display())}</span>"
        )
    parts.append("</a>")
    return "".join(parts)


def _cell_html(cell: Cell) -> str:
    if cell.kind == "slot":
        return (
            f'<td class="slot"><a href="{_e(cell.href)}" data-panel data-slot tabindex="-1" '
            f'aria-label="{_e(cell.label)}"></a></td>'
        )
    if cell.kind == "busy":
        blocks = "".join(_block_html(block) for block in cell.blocks)
        add = ""
        if cell.add_href:
            add = (
                f'<a class="appt-add" href="{_e(cell.add_href)}" data-panel '
                'aria-label="Overbook at this time">'
                '<i class="bi bi-plus" aria-hidden="true"></i></a>'
            )
        return (
            f'<td class="busy" rowspan="{cell.rowspan}"><div class="appts">{blocks}{add}</div></td>'
        )
    if cell.kind == "exception":
        return (
            f'<td class="exception" rowspan="{cell.rowspan}">'
            f'<span class="exception-label">{_e(cell.label)}</span></td>'
        )
    if cell.kind == "free":
        return '<td class="free"></td>'
    return f'<td class="off" rowspan="{cell.rowspan}"></td>'


@register.simple_tag
def calendar_rows(grid: Grid) -> SafeString:
    """The grid's <tr> rows: a time header and the cells that start in each row."""
    lines = []
    for row in grid.rows:
        classes = ("hour" if row.is_hour else "") + (" now" if row.is_now else "")
        cells = "".join(_cell_html(cell) for cell in row.cells)
        lines.append(
            f'<tr data-minute="{row.minute}" class="{classes.strip()}">'
            f'<th scope="row">{row.time}</th>{cells}</tr>'
        )
    return mark_safe("\n".join(lines))  # noqa: S308  (every value above is escaped)
