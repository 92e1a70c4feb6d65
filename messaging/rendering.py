"""The words of each message, from templates/messaging/<channel>/<kind>.txt.

Minimum necessary: a patient message names the patient's first name, the date and time, the
location and the practitioner, and carries signed links. Never a diagnosis, a reason for visit or
any other clinical text. Staff notices carry no patient name at all: staff follow the link and
sign in to see who it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from messaging import links
from messaging.links import Purpose
from messaging.models import Channel, MessageKind
from messaging.timing import zone

if TYPE_CHECKING:
    from core.models import Location
    from messaging.models import OutboundMessage
    from patients.models import Patient
    from scheduling.models import Appointment, WaitlistOffer

SUBJECTS = {
    MessageKind.REMINDER: "Reminder: your appointment on {date}",
    MessageKind.CONFIRMATION: "You are booked: {date} at {time}",
    MessageKind.CANCELLATION_NOTICE: "Your appointment on {date} has been cancelled",
    MessageKind.WAITLIST_OFFER: "An earlier appointment is available: {date} at {time}",
    MessageKind.STAFF_NOTICE: "Appointment {event} by the patient online: {date} at {time}",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)


def first_name(patient: Patient) -> str:
    return (patient.preferred_name or patient.given_name).strip()


def local_date(when: dt.datetime, location: Location) -> str:
    local = when.astimezone(zone(location.time_zone))
    return f"{local:%A}, {local:%B} {local.day}, {local.year}"


def local_time(when: dt.datetime, location: Location) -> str:
    local = when.astimezone(zone(location.time_zone))
    hour = local.hour % 12 or 12
    return f"{hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'} {local.tzname()}"


def location_line(location: Location) -> str:
    parts = [location.name, location.address_line1, location.city]
    return ", ".join(part for part in parts if part)


def practitioner_names(appointment: Appointment) -> str:
    return " and ".join(p.display_name for p in appointment.practitioners.all())


def appointment_context(appointment: Appointment) -> dict[str, Any]:
    location = appointment.location
    return {
        "date": local_date(appointment.start, location),
        "time": local_time(appointment.start, location),
        "practitioner": practitioner_names(appointment),
        "location": location_line(location),
        "location_phone": location.phone,
    }


def offer_context(offer: WaitlistOffer) -> dict[str, Any]:
    location = offer.entry.location
    return {
        "date": local_date(offer.start, location),
        "time": local_time(offer.start, location),
        "practitioner": offer.practitioner.display_name,
        "location": location_line(location),
        "location_phone": location.phone,
        "expires": f"{local_date(offer.expires_at, location)} at "
        f"{local_time(offer.expires_at, location)}",
    }


def staff_appointment_url(appointment: Appointment) -> str:
    """The appointment in the staff UI when scheduling has a page for it, else the calendar."""
    for name in ("scheduling:appointment_detail", "scheduling:appointment"):
        try:
            return links.absolute(reverse(name, kwargs={"public_id": appointment.public_id}))
        except NoReverseMatch:
            continue
    return links.absolute("/")


def _unsubscribe_headers(patient: Patient) -> tuple[str, dict[str, str]]:
    url = links.link_url(Purpose.UNSUBSCRIBE, patient.public_id)
    headers = {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",  # RFC 8058
    }
    return url, headers


def render(message: OutboundMessage, *, event: str = "") -> Rendered:
    """Subject, body and extra email headers for `message` as it stands now."""
    kind = MessageKind(message.kind)
    context: dict[str, Any] = {"event": event}
    if kind is MessageKind.WAITLIST_OFFER:
        offer = message.waitlist_offer
        assert offer is not None  # noqa: S101  (kind implies an offer)
        context |= offer_context(offer)
        context["accept_url"] = links.link_url(Purpose.OFFER_ACCEPT, offer.public_id)
        context["decline_url"] = links.link_url(Purpose.OFFER_DECLINE, offer.public_id)
    else:
        appointment = message.appointment
        assert appointment is not None  # noqa: S101  (every other kind is about an appointment)
        context |= appointment_context(appointment)
        if kind in (MessageKind.REMINDER, MessageKind.CONFIRMATION):
            context["confirm_url"] = links.link_url(Purpose.CONFIRM, appointment.public_id)
            context["cancel_url"] = links.link_url(Purpose.CANCEL, appointment.public_id)
            context["is_confirmed"] = appointment.status == "confirmed"
        if kind is MessageKind.STAFF_NOTICE:
            context["staff_url"] = staff_appointment_url(appointment)
    headers: dict[str, str] = {}
    if message.patient is not None:
        context["first_name"] = first_name(message.patient)
        if message.channel == Channel.EMAIL:
            context["unsubscribe_url"], headers = _unsubscribe_headers(message.patient)
    template = f"messaging/{message.channel}/{kind.value}.txt"
    body = render_to_string(template, context).strip() + "\n"
    subject = SUBJECTS[kind].format(**{k: context.get(k, "") for k in ("date", "time", "event")})
    if message.channel == Channel.SMS:
        body = " ".join(body.split())
    return Rendered(subject=subject[:200], body=body, headers=headers)
