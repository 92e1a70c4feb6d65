"""Appointment change events, sent in a background worker after the transaction commits.

The booking services call `appointment_changed_on_commit(...)`, which queues one task per
change in the same transaction (scheduling.tasks); a worker then sends `appointment_changed`.
Other apps (HL7 SIU feed, reminders, waitlist offers, staff notices) connect receivers to it
instead of being called by scheduling, so scheduling never imports them.

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
    """Queue the announcement of a change (scheduling.tasks.announce_appointment_change).

    Called inside the service's transaction, the task row is written in it (an outbox row): a
    worker sees it when the change commits, and never if it rolls back; the receivers run in
    the worker, not in the request."""
    from scheduling.tasks import announce_appointment_change

    announce_appointment_change.enqueue(appointment_id, str(change), actor_id, via)


# Sent (on commit) when an opened slot is offered to a waitlisted patient; the messaging app
# delivers the offer through the patient's reminder channel. Receivers get offer_id (int).
waitlist_offered = Signal()


def waitlist_offered_on_commit(*, offer_id: int) -> None:
    from scheduling.models import WaitlistOffer

    transaction.on_commit(
        lambda: waitlist_offered.send_robust(sender=WaitlistOffer, offer_id=offer_id)
    )
