"""Reads for the messaging screens, with the access check and the audit event in one place.

The signed-link readers stand in for a login: the holder of a valid link is the patient, so each
read is audited with the username "patient-link".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.utils import timezone

from audit.models import Action, Outcome
from audit.services import record
from core.capabilities import Capability
from messaging.links import LinkError, Purpose, read_token
from messaging.models import MessageKind, MessageStatus, OutboundMessage
from messaging.services import ACTIVE_APPOINTMENT_STATUSES, AUDIT_CATEGORY, PATIENT_LINK
from patients.models import Patient
from scheduling.models import Appointment, WaitlistOffer

if TYPE_CHECKING:
    from accounts.models import User

S = MessageStatus


def _audit_link_read(event: str, *, patient: Patient | None, obj: object | None, ok: bool) -> None:
    record(
        actor=None,
        username=PATIENT_LINK,
        action=Action.READ,
        event=event,
        category=AUDIT_CATEGORY,
        patient=patient,
        obj=obj,
        outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
    )


def appointment_for_link(*, token: str, purpose: Purpose) -> Appointment:
    """The appointment a confirm/cancel link points to; LinkError when the link is broken or the
    appointment has started (links are valid until the appointment start)."""
    public_id = read_token(token, purpose)
    appointment = (
        Appointment.objects.select_related("patient", "location", "appointment_type")
        .prefetch_related("practitioners")
        .filter(public_id=public_id)
        .first()
    )
    if appointment is None:
        raise LinkError("This link no longer leads to an appointment.")
    if appointment.start <= timezone.now():
        _audit_link_read(
            "appointment.link_view", patient=appointment.patient, obj=appointment, ok=False
        )
        raise LinkError("This link has expired: the appointment time has passed.", expired=True)
    _audit_link_read("appointment.link_view", patient=appointment.patient, obj=appointment, ok=True)
    return appointment


def offer_for_link(*, token: str, purpose: Purpose) -> WaitlistOffer:
    """The waitlist offer an accept/decline link points to. Its status (taken, declined...) is
    for the page to explain; only a broken link or a slot already in the past is an error."""
    public_id = read_token(token, purpose)
    offer = (
        WaitlistOffer.objects.select_related("entry__patient", "entry__location", "practitioner")
        .filter(public_id=public_id)
        .first()
    )
    if offer is None:
        raise LinkError("This link no longer leads to an offer.")
    patient = offer.entry.patient
    if offer.start <= timezone.now():
        _audit_link_read("waitlist_offer.link_view", patient=patient, obj=offer, ok=False)
        raise LinkError("This offer has expired: the appointment time has passed.", expired=True)
    _audit_link_read("waitlist_offer.link_view", patient=patient, obj=offer, ok=True)
    return offer


def patient_for_unsubscribe(*, token: str) -> Patient:
    public_id = read_token(token, Purpose.UNSUBSCRIBE)
    patient = Patient.objects.filter(public_id=public_id).first()
    if patient is None:
        raise LinkError("This link no longer leads to a patient record.")
    return patient


def outbound_for_appointment(*, appointment: Appointment) -> list[OutboundMessage]:
    """The messages about one appointment, newest first. The caller has already checked that the
    user may see the appointment (scheduling.selectors.appointment_get_for_user)."""
    return list(OutboundMessage.objects.filter(appointment=appointment).order_by("-created_at"))


@dataclass(frozen=True)
class ReminderCall:
    """An upcoming appointment whose patient got no reminder: someone should phone them."""

    appointment: Appointment
    patient: Patient
    reason: str


def _reminder_calls_queryset(location_ids: frozenset[int], until: dt.datetime) -> QuerySet:
    reminders = OutboundMessage.objects.filter(
        appointment=OuterRef("pk"), kind=MessageKind.REMINDER
    )
    reached = reminders.filter(status__in=[S.QUEUED, S.SENT, S.DELIVERED])
    not_reached = reminders.filter(status__in=[S.SUPPRESSED, S.FAILED])
    not_reached_rows = OutboundMessage.objects.filter(
        kind=MessageKind.REMINDER, status__in=[S.SUPPRESSED, S.FAILED]
    ).order_by("-updated_at")
    return (
        Appointment.objects.filter(
            location_id__in=location_ids,
            status__in=ACTIVE_APPOINTMENT_STATUSES,
            start__gt=timezone.now(),
            start__lte=until,
        )
        .filter(Exists(not_reached))
        .exclude(Exists(reached))
        .select_related("patient", "location", "appointment_type")
        .prefetch_related(
            "practitioners",
            Prefetch("outbound_messages", queryset=not_reached_rows, to_attr="unreached"),
        )
        .order_by("start", "id")
    )


def reminder_calls_for_user(*, user: User, days: int = 7) -> list[ReminderCall]:
    """Upcoming appointments at the user's locations whose reminders could not go out (no
    consent, opted out, no number or address, delivery failed): the front desk's call list.
    A fixed number of queries whatever the length of the list."""
    if not user.can(Capability.VIEW_SCHEDULE):
        return []
    until = timezone.now() + dt.timedelta(days=days)
    rows = []
    for appointment in _reminder_calls_queryset(user.location_ids, until):
        latest = appointment.unreached[0]
        reason = latest.status_reason if latest.status == S.SUPPRESSED else "delivery failed"
        rows.append(
            ReminderCall(appointment=appointment, patient=appointment.patient, reason=reason)
        )
    record(
        actor=user,
        action=Action.QUERY,
        event="messaging.reminder_calls",
        category=AUDIT_CATEGORY,
        reason=f"{len(rows)} appointment(s)",
    )
    return rows
