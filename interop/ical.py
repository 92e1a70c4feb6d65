"""The per-practitioner iCalendar (RFC 5545) feed, written with the icalendar library.

Minimum necessary: an event's SUMMARY is the appointment type and, by default, the patient's
initials ("Follow-up visit · J.D."); a feed may be set to the type only. No names, dates of
birth, reasons or phone numbers: the URL is a bearer secret that calendar apps keep and sync.
UID is the appointment's public id, so a rescheduled appointment moves in the subscriber's
calendar instead of appearing twice; times are UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from icalendar import Calendar, Event
from unidecode import unidecode

from interop.models import FeedDetail
from scheduling.models import AppointmentStatus

if TYPE_CHECKING:
    from scheduling.models import Appointment, Practitioner

PRODID = "-//patientdesk//practitioner calendar feed//EN"
EVENT_STATUS: dict[str, str] = {AppointmentStatus.PROPOSED: "TENTATIVE"}


def initials(given_name: str, family_name: str) -> str:
    letters = [unidecode(name).strip()[:1].upper() for name in (given_name, family_name)]
    return "".join(f"{letter}." for letter in letters if letter.isalnum())


def summary(appointment: Appointment, detail: str) -> str:
    text = appointment.appointment_type.name
    if detail == FeedDetail.INITIALS:
        patient = appointment.patient
        marks = initials(patient.given_name, patient.family_name)
        if marks:
            text = f"{text} · {marks}"
    return text


def build_calendar(
    *,
    practitioner: Practitioner,
    appointments: Iterable[Appointment],
    detail: str,
    now: dt.datetime,
) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"{practitioner.display_name}: appointments")
    calendar.add("x-published-ttl", dt.timedelta(minutes=15))
    stamp = now.astimezone(dt.UTC)
    for appointment in appointments:
        event = Event()
        event.add("uid", str(appointment.public_id))
        event.add("dtstamp", stamp)
        event.add("dtstart", appointment.start.astimezone(dt.UTC))
        event.add("dtend", appointment.end.astimezone(dt.UTC))
        event.add("summary", summary(appointment, detail))
        event.add("status", EVENT_STATUS.get(appointment.status, "CONFIRMED"))
        event.add("transp", "OPAQUE")
        event.add("last-modified", appointment.updated_at.astimezone(dt.UTC))
        place = appointment.location.name
        if appointment.room is not None:
            place = f"{place}, {appointment.room.name}"
        event.add("location", place)
        event.add("categories", [appointment.appointment_type.name])
        calendar.add_component(event)
    return calendar.to_ical()
