"""Writing audit events. Call `record` inside the same transaction as the change it describes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone

from audit.chain import GENESIS, compute_hmac
from audit.models import Action, AuditEvent, Category, Outcome
from core import request_context

if TYPE_CHECKING:
    from accounts.models import User

_PG_LOCK_KEY = 7_316_2024  # constant advisory-lock key serialising audit appends on PostgreSQL


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_LOCK_KEY])
    # SQLite: settings use BEGIN IMMEDIATE, so the open transaction already holds the write lock.


def record(
    *,
    actor: User | None,
    action: Action | str,
    event: str,
    category: Category | str,
    patient: Any | None = None,
    patient_public_id: uuid.UUID | str | None = None,
    obj: Any | None = None,
    object_type: str = "",
    object_id: str = "",
    outcome: Outcome | str = Outcome.SUCCESS,
    reason: str = "",
    fields: Iterable[str] = (),
    username: str = "",
) -> AuditEvent:
    """Append one audit event, chained to the previous one.

    `fields` takes field NAMES only: values (PHI, passwords, tokens) never go in the trail.
    """
    ctx = request_context.current()
    if patient is not None and patient_public_id is None:
        patient_public_id = patient.public_id
    if obj is not None:
        object_type = object_type or obj._meta.label
        object_id = object_id or str(getattr(obj, "public_id", obj.pk))
    user_obj = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        _lock_chain()
        last = AuditEvent.objects.order_by("-sequence").values("sequence", "hmac").first()
        row: dict[str, Any] = {
            "sequence": (last["sequence"] + 1) if last else 1,
            "occurred_at": timezone.now(),
            "user_id": user_obj.pk if user_obj else None,
            "username": (user_obj.get_username() if user_obj else username)[:150],
            "roles": user_obj.role_slugs if user_obj else "",
            "session_ref": ctx.session_ref,
            "patient_public_id": str(patient_public_id) if patient_public_id else None,
            "action": str(action),
            "event": event,
            "category": str(category),
            "object_type": object_type,
            "object_id": object_id,
            "outcome": str(outcome),
            "ip": ctx.ip,
            "user_agent": ctx.user_agent,
            "request_id": ctx.request_id,
            "reason": reason,
            "fields": sorted(set(fields)),
            "prev_hash": last["hmac"] if last else GENESIS,
        }
        row["hmac"] = compute_hmac(row)
        event_row = AuditEvent(**row)
        event_row.save(force_insert=True)
    return event_row
