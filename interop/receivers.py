"""Signal receivers: scheduling tells us about appointment changes; we queue SIU messages.

Connected in InteropConfig.ready(). scheduling sends `appointment_changed` from a background
worker after the change committed (scheduling.tasks), with send_robust, so an error here never
undoes a booking; it is logged (without PHI) instead.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def queue_siu_for_appointment_change(
    sender: Any,
    *,
    appointment_id: int,
    change: str,
    actor_id: int | None = None,
    via: str = "ui",
    **kwargs: Any,
) -> None:
    from interop.services import outbound_queue_for_appointment

    try:
        outbound_queue_for_appointment(
            appointment_id=appointment_id, change=str(change), actor_id=actor_id, via=via
        )
    except Exception as exc:
        # Logged without the exception's text or traceback (they may quote patient data), and
        # not re-raised: Signal.send_robust would log them. hl7_send_pending does not re-plan
        # a lost SIU message, so this is an error for the interface team to look at.
        logger.error(
            "could not queue the SIU message for appointment %s (%s): %s",
            appointment_id,
            change,
            type(exc).__name__,
        )


def connect() -> None:
    from scheduling.events import appointment_changed

    appointment_changed.connect(
        queue_siu_for_appointment_change, dispatch_uid="interop.queue_siu_for_appointment_change"
    )
