"""Appointment change events, sent after the transaction commits.

The booking services call `appointment_changed_on_commit(...)`; other apps (HL7 SIU feed,
reminders, waitlist offers, staff notices) connect receivers to `appointment_changed` instead of
being called by scheduling, so scheduling never imports them.

Receivers get: sender=Appointment class, appointment_id (int), change (AppointmentChange),
actor_id (int | None), via (str: "ui", "api", "patient-link", "hl7", "system").
"""

from __future__ import annotations

from django.db import models, transaction
from django.dispatch import Signal

appointment_changed = Signal()


class AppointmentChange(models.TextChoices):
    BOOKED = "booked", "Booked (SIU^S12)"
    RESCHEDULED = "rescheduled", "Rescheduled (SIU^S13)"
    MODIFIED = "modified", "Modified (SIU^S14)"
    CANCELLED = "cancelled", "Cancelled (SIU^S15)"
    NO_SHOW = "no_show", "No-show (SIU^S26)"
    STATUS = "status", "Status changed (confirmed, arrived, in room, completed)"


def appointment_changed_on_commit(
    *, appointment_id: int, change: AppointmentChange, actor_id: int | None, via: str = "ui"
) -> None:
    from scheduling.models import Appointment

    def send() -> None:
        appointment_changed.send_robust(
            sender=Appointment,
            appointment_id=appointment_id,
            change=change,
            actor_id=actor_id,
            via=via,
        )

    transaction.on_commit(send)


# Sent (on commit) when an opened slot is offered to a waitlisted patient; the messaging app
# delivers the offer through the patient's reminder channel. Receivers get offer_id (int).
waitlist_offered = Signal()


def waitlist_offered_on_commit(*, offer_id: int) -> None:
    from scheduling.models import WaitlistOffer

    transaction.on_commit(
        lambda: waitlist_offered.send_robust(sender=WaitlistOffer, offer_id=offer_id)
    )
