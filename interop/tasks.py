"""Background delivery of queued HL7 messages (django-tasks, database backend, queue
"interfaces").

Why a task and a command: the OutboundHl7Message row is the source of truth, so nothing is lost
if a task is. Queueing a message enqueues `deliver_hl7_messages` when the transaction commits,
so no request waits on a remote HL7 system and no thread is started in the web process; a
failed attempt enqueues another run for when its back-off ends (`run_after`). The
`hl7_send_pending` command does the same work once, for cron or when no worker runs.
"""

from __future__ import annotations

import datetime as dt
import logging

from django_tasks import task

logger = logging.getLogger(__name__)

QUEUE = "interfaces"


@task(queue_name=QUEUE)
def deliver_hl7_messages() -> dict[str, int]:
    from interop.services import outbound_send_pending

    return outbound_send_pending().as_json()


def enqueue_delivery(run_after: dt.datetime | None = None) -> None:
    """Ask a worker to deliver what is due (now, or at `run_after`)."""
    job = (
        deliver_hl7_messages
        if run_after is None
        else deliver_hl7_messages.using(run_after=run_after)
    )
    try:
        job.enqueue()
    except Exception as exc:  # the queue is a convenience: hl7_send_pending catches up
        logger.warning(
            "could not enqueue HL7 delivery (%s); hl7_send_pending will send it", type(exc).__name__
        )
