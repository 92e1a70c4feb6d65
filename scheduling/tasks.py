"""Background work of the scheduling app (django-tasks; workers run `manage.py db_worker`).

`announce_appointment_change` sends `scheduling.events.appointment_changed` in a worker: the
booking services enqueue ONE such task per change inside their own transaction (an outbox row
of django-tasks-db, committed or rolled back with the change), so no booking waits on the other
apps' receivers (reminder planning, the HL7 SIU feed), and no announcement is lost between a
commit and a crash. The receivers keep their own idempotence (messaging's `run_reminders` plans
missing reminders again; interop's outbox is keyed by appointment and change).

`announce_queued_changes()` runs the queued announcements at once in this process: for tests,
for seeding scripts and as a cron fallback where no worker runs.
"""

from __future__ import annotations

import logging

from django_tasks import task

logger = logging.getLogger(__name__)

QUEUE = "default"


@task(queue_name=QUEUE)
def announce_appointment_change(
    appointment_id: int, change: str, actor_id: int | None, via: str
) -> int:
    """Tell the other apps (receivers of appointment_changed) about one change; returns how
    many receivers failed (each failure is logged by the receiver, without PHI)."""
    from scheduling.events import AppointmentChange, appointment_changed
    from scheduling.models import Appointment

    responses = appointment_changed.send_robust(
        sender=Appointment,
        appointment_id=appointment_id,
        change=AppointmentChange(change),
        actor_id=actor_id,
        via=via,
    )
    failed = [r for _, r in responses if isinstance(r, Exception)]
    for error in failed:
        logger.error(
            "scheduling: a receiver of appointment %s (%s) failed: %s",
            appointment_id,
            change,
            type(error).__name__,
        )
    return len(failed)


def announce_queued_changes() -> int:
    """Run the queued announcements now, oldest first, in this process; returns how many. Each
    is claimed under a row lock first (as db_worker does), so a worker running beside this
    never sends one twice."""
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    queued = (
        DBTaskResult.objects.ready()
        .filter(task_path=announce_appointment_change.module_path)
        .order_by("enqueued_at", "id")
    )
    done = 0
    while True:
        with transaction.atomic():
            row = queued.get_locked()
            if row is None:
                return done
            row.claim("announce_queued_changes")
        try:
            result = announce_appointment_change.call(
                *row.args_kwargs["args"], **row.args_kwargs["kwargs"]
            )
        except Exception as exc:  # recorded on the row, as a worker does
            row.set_failed(exc)
        else:
            row.set_successful(result)
        done += 1
