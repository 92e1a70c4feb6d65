"""Writing audit events. Call `record` inside the same transaction as the change it describes."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

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


def _normalise_ip(value: str | None) -> str | None:
    """The address as every database returns it, so the HMAC matches on SQLite and PostgreSQL."""
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return clean_ipv6_address(str(address).split("%")[0])  # no zone id: inet has none
    return str(address)


def _text(value: str, limit: int | None = None) -> str:
    """NUL characters cannot be stored by PostgreSQL (a crafted header must not cause a 500)."""
    value = (value or "").replace("\x00", "")
    return value[:limit] if limit else value


def _normalise_uuid(value: uuid.UUID | str | None) -> str | None:
    if not value:
        return None
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        return None


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
    ip = _normalise_ip(ctx.ip)
    with transaction.atomic():
        _lock_chain()
        last = AuditEvent.objects.order_by("-sequence").values("sequence", "hmac").first()
        row: dict[str, Any] = {
            "sequence": (last["sequence"] + 1) if last else 1,
            "occurred_at": timezone.now(),
            "user_id": user_obj.pk if user_obj else None,
            "username": _text(user_obj.get_username() if user_obj else username, 150),
            "roles": _text(user_obj.role_slugs, 300) if user_obj else "",
            "session_ref": _text(ctx.session_ref, 16),
            "patient_public_id": _normalise_uuid(patient_public_id),
            "action": str(action),
            "event": _text(event, 60),
            "category": str(category),
            "object_type": _text(object_type, 60),
            "object_id": _text(object_id, 64),
            "outcome": str(outcome),
            "ip": ip,
            "user_agent": _text(ctx.user_agent, 400),
            "request_id": _text(ctx.request_id, 64),
            "reason": _text(reason),
            "fields": sorted({_text(str(name)) for name in fields}),
            "prev_hash": last["hmac"] if last else GENESIS,
        }
        row["hmac"] = compute_hmac(row)
        event_row = AuditEvent(**row)
        event_row.save(force_insert=True)
    return event_row
