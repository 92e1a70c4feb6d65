"""Signal receivers: scheduling tells us about appointment changes; we queue SIU messages.

Connected in InteropConfig.ready(). scheduling sends `appointment_changed` on commit with
send_robust, so an error here never undoes a booking; it is logged (without PHI) instead.
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
    except Exception:
        logger.exception("could not queue the SIU message for appointment %s", appointment_id)
        raise


def connect() -> None:
    from scheduling.events import appointment_changed

    appointment_changed.connect(
        queue_siu_for_appointment_change, dispatch_uid="interop.queue_siu_for_appointment_change"
    )
