"""Writing audit events. Call `record` inside the same transaction as the change it describes."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable, Mapping
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


def _event_row(
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
    ctx: request_context.RequestContext | None = None,
) -> dict[str, Any]:
    """The columns of one event, except those the chain fills in (sequence, time, hashes)."""
    ctx = ctx if ctx is not None else request_context.current()
    if patient is not None and patient_public_id is None:
        patient_public_id = patient.public_id
    if obj is not None:
        object_type = object_type or obj._meta.label
        object_id = object_id or str(getattr(obj, "public_id", obj.pk))
    user_obj = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return {
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
        "ip": _normalise_ip(ctx.ip),
        "user_agent": _text(ctx.user_agent, 400),
        "request_id": _text(ctx.request_id, 64),
        "reason": _text(reason),
        "fields": sorted({_text(str(name)) for name in fields}),
    }


def _chain_tail() -> tuple[int, str]:
    """The last row's sequence and HMAC (0 and GENESIS for an empty trail); call under the lock."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT sequence, hmac FROM {table} ORDER BY sequence DESC LIMIT 1"  # noqa: S608
        )
        last = cursor.fetchone()
    return (int(last[0]), str(last[1])) if last else (0, GENESIS)


def _chain(rows: list[dict[str, Any]]) -> list[AuditEvent]:
    """Number, timestamp and hash the rows after the current tail (the lock must be held)."""
    sequence, prev_hash = _chain_tail()
    events = []
    for row in rows:
        sequence += 1
        row["sequence"] = sequence
        row["occurred_at"] = timezone.now()
        row["prev_hash"] = prev_hash
        row["hmac"] = prev_hash = compute_hmac(row)
        events.append(AuditEvent(**row))
    return events


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
    Inside a caller's transaction the event shares its fate (no savepoint of its own: an audit
    row that cannot be written must undo the change it describes).
    """
    row = _event_row(
        actor=actor,
        action=action,
        event=event,
        category=category,
        patient=patient,
        patient_public_id=patient_public_id,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        reason=reason,
        fields=fields,
        username=username,
    )
    with transaction.atomic(savepoint=False):
        _lock_chain()
        (event_row,) = _chain([row])
        event_row.save(force_insert=True)
    return event_row


def record_many(events: Iterable[Mapping[str, Any]]) -> list[AuditEvent]:
    """Append several events at once, in the order given: one lock, one read of the chain's
    tail, the chain computed here, one bulk insert. Each item holds `record()`'s keyword
    arguments. For batch writers (imports) that would otherwise call `record()` per row."""
    ctx = request_context.current()
    rows = [_event_row(**dict(spec), ctx=ctx) for spec in events]
    if not rows:
        return []
    with transaction.atomic(savepoint=False):
        _lock_chain()
        created = _chain(rows)
        AuditEvent.objects.bulk_create(created, batch_size=500)
    return created
