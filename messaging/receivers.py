"""Receivers for scheduling's events (connected in MessagingConfig.ready()).

appointment_changed is sent by a background worker (scheduling.tasks), after the change has
committed: planning reminders costs a booking nothing. These plan rows in the outbox and enqueue
delivery, so no request waits on a mail server or an SMS gateway either. A failure is logged
here without its text and not re-raised: Signal.send_robust would log the exception's message,
which may quote patient data.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def on_appointment_changed(
    sender: object,
    *,
    appointment_id: int,
    change: str,
    actor_id: int | None = None,
    via: str = "ui",
    **kwargs: Any,
) -> None:
    from messaging import services

    try:
        services.appointment_change_notify(appointment_id=appointment_id, change=change, via=via)
    except Exception as exc:
        # Logged without PHI (no exception text: it may quote values). Cron's run_reminders plans
        # missing reminders again later.
        logger.error(
            "messaging: planning messages for appointment %s (%s) failed: %s",
            appointment_id,
            change,
            type(exc).__name__,
        )


def on_waitlist_offered(sender: object, *, offer_id: int, **kwargs: Any) -> None:
    from messaging import services
    from scheduling.models import WaitlistOffer

    try:
        offer = WaitlistOffer.objects.filter(pk=offer_id).first()
        if offer is not None:
            services.waitlist_offer_queue(offer=offer)
    except Exception as exc:
        logger.error(
            "messaging: sending waitlist offer %s failed: %s",
            offer_id,
            type(exc).__name__,
        )
