"""Appointment change events, sent in a background worker after the transaction commits.

The booking services call `appointment_changed_on_commit(...)`, which queues one task per
change in the same transaction (scheduling.tasks); a worker then sends `appointment_changed`.
Other apps (HL7 SIU feed, reminders, waitlist offers, staff notices) connect receivers to it
instead of being called by scheduling, so scheduling never imports them.

Receivers get: sender=Appointment class, appointment_id (int), change (AppointmentChange),
actor_id (int | None), via (str: "ui", "api", "patient-link", "hl7", "system").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models import signals
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


@dataclass(frozen=True)
class QueuedAnnouncement:
    """The task row `appointment_changed_on_commit` writes, built but not saved, for a service
    that inserts it with its other rows in one round trip (scheduling.services booking)."""

    row: Any  # django_tasks_db.models.DBTaskResult, unsaved
    backend: Any

    def insert_statement(self) -> tuple[str, list[Any]]:
        """The row's INSERT, after the pre_save signal its save() would send (django-tasks-db
        sets run_after there)."""
        from scheduling.sql_inserts import insert_statement

        model = type(self.row)
        if signals.pre_save.has_listeners(model):
            signals.pre_save.send(
                sender=model, instance=self.row, raw=False, using="default", update_fields=None
            )
        return insert_statement([self.row])

    def announce_enqueued(self) -> None:
        """After the row is inserted: the post_save signal its save() would send, and
        django-tasks' `task_enqueued`, as enqueue sends it."""
        from django_tasks.signals import task_enqueued

        model = type(self.row)
        if signals.post_save.has_listeners(model):
            signals.post_save.send(
                sender=model,
                instance=self.row,
                created=True,
                update_fields=None,
                raw=False,
                using="default",
            )
        if task_enqueued.has_listeners(type(self.backend)):
            task_enqueued.send(type(self.backend), task_result=self.row.task_result)


def announcement_row(
    *, appointment_id: int, change: AppointmentChange, actor_id: int | None, via: str = "ui"
) -> QueuedAnnouncement | None:
    """The row `appointment_changed_on_commit(...)` would insert, unsaved (the same values
    django-tasks-db's `enqueue` gives it), or None when the task backend is not
    django-tasks-db's (then call appointment_changed_on_commit)."""
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.compat import normalize_json
    from django_tasks_db.models import DBTaskResult

    from scheduling.tasks import announce_appointment_change as task

    backend = task.get_backend()
    if type(backend) is not DatabaseBackend:
        return None
    backend.validate_task(task)
    args = (appointment_id, str(change), actor_id, via)
    row = DBTaskResult(
        id=backend._get_id(),
        args_kwargs=normalize_json({"args": args, "kwargs": {}}),
        priority=task.priority,
        task_path=task.module_path,
        queue_name=task.queue_name,
        run_after=task.run_after,
        backend_name=backend.alias,
    )
    return QueuedAnnouncement(row=row, backend=backend)


# Sent (on commit) when an opened slot is offered to a waitlisted patient; the messaging app
# delivers the offer through the patient's reminder channel. Receivers get offer_id (int).
waitlist_offered = Signal()


def waitlist_offered_on_commit(*, offer_id: int) -> None:
    from scheduling.models import WaitlistOffer

    transaction.on_commit(
        lambda: waitlist_offered.send_robust(sender=WaitlistOffer, offer_id=offer_id)
    )
