"""Background work for the outbox (django-tasks; run workers with `manage.py db_worker`).

- `deliver_message(message_id)` is enqueued (after commit) when a message becomes due now.
- `deliver_due_messages()` delivers everything due, plans reminders that are missing, and
  enqueues itself again with `run_after` = the next message's due time. django-tasks has no
  periodic scheduler, so this self-re-enqueueing sweep is the worker's clock; `ensure_sweep`
  keeps at most one waiting sweep per due time, so chains do not multiply.
- `manage.py run_reminders` does the same once, for cron, and works without a worker.

Every step is idempotent (messages are claimed under a row lock with a lease), so a duplicate
task, two workers or a cron run beside a worker never send a message twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Q
from django.utils import timezone
from django_tasks import TaskResultStatus, task

logger = logging.getLogger(__name__)

QUEUE = "messages"
# A sweep never re-enqueues itself sooner than this (no hot loop on a stuck message).
SWEEP_MIN_INTERVAL = dt.timedelta(seconds=15)


@task(queue_name=QUEUE)
def deliver_message(message_id: int) -> str:
    from messaging import services

    return str(services.message_deliver(message_id=message_id))


@task(queue_name=QUEUE)
def deliver_due_messages() -> dict[str, int]:
    from messaging import services

    try:
        services.reminders_plan_missing()
        return services.deliver_due()
    finally:
        next_due = services.next_due_at()
        if next_due is not None:
            ensure_sweep(at=max(next_due, timezone.now() + SWEEP_MIN_INTERVAL))


def _supports_defer() -> bool:
    return bool(deliver_due_messages.get_backend().supports_defer)


def ensure_sweep(*, at: dt.datetime) -> None:
    """Make sure a `deliver_due_messages` run is waiting for `at` or earlier."""
    if not _supports_defer():
        return  # e.g. the immediate backend: cron (run_reminders) does the sweeping
    backend = deliver_due_messages.get_backend()
    if backend.__class__.__module__.startswith("django_tasks_db"):
        from django_tasks_db.models import DBTaskResult, get_date_max

        waiting = DBTaskResult.objects.filter(
            task_path=deliver_due_messages.module_path,
            backend_name=deliver_due_messages.backend,
            status=TaskResultStatus.READY,
        ).filter(Q(run_after__lte=at) | Q(run_after=get_date_max()))
        if waiting.exists():
            return
    deliver_due_messages.using(run_after=at).enqueue()


def schedule_delivery(*, message_id: int, due: dt.datetime) -> None:
    """Enqueue delivery now if due, else make sure a sweep wakes up in time."""
    if due <= timezone.now():
        deliver_message.enqueue(message_id)
    else:
        ensure_sweep(at=due)
