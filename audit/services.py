"""Writing audit events. Call `record` inside the same transaction as the change it describes."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import signals
from django.db.models.base import ModelState
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from audit.chain import CHAINED_FIELDS, GENESIS
from audit.chain import _canonical as canonical
from audit.models import Action, AuditEvent, Category, Outcome
from core import request_context
from core.bulk_sql import copy_rows

if TYPE_CHECKING:
    from accounts.models import User

_PG_LOCK_KEY = 7_316_2024  # constant advisory-lock key serialising audit appends on PostgreSQL


# The statement that serialises appends on PostgreSQL. On SQLite the open transaction already
# holds the write lock (settings use BEGIN IMMEDIATE).
_PG_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s)"

Statement = tuple[str, Sequence[Any]]


def batches_statements() -> bool:
    """True when several SQL statements can be sent in one `execute` (one round trip):
    PostgreSQL with client-side parameter binding, Django's default, where psycopg uses the
    simple query protocol. Each statement still runs on its own, with its own snapshot."""
    return (
        connection.vendor == "postgresql"
        and connection.settings_dict.get("OPTIONS", {}).get("server_side_binding") is not True
    )


def run_statements(cursor: Any, statements: Sequence[Statement]) -> None:
    """Run `statements` on `cursor`: in one round trip when the database allows it (the
    cursor is then on the first statement's result; `cursor.nextset()` moves on), else one by
    one (the cursor holds the last statement's result).

    A batch is bound statement by statement (psycopg's client-side binding, what it would do
    to the joined text, `mogrify`) and sent without parameters: each statement's text stays
    short enough for psycopg's cache of parsed queries (4096 characters, 50 parameters), which
    a long joined text would miss on every call."""
    if batches_statements() and len(statements) > 1:
        bind = cursor.cursor.mogrify  # the psycopg ClientCursor under Django's wrapper
        cursor.execute(
            "; ".join(
                bind(sql, params) if params or "%" in sql else sql for sql, params in statements
            ),
            None,
        )
        return
    for sql, params in statements:
        cursor.execute(sql, params)


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
    context_columns: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of one event, except those the chain fills in (sequence, time, hashes).
    `context_columns` (from `_context_columns(ctx)`) saves a batch recomputing them per row."""
    if context_columns is None:
        context_columns = _context_columns(ctx if ctx is not None else request_context.current())
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
        "session_ref": context_columns["session_ref"],
        "patient_public_id": _normalise_uuid(patient_public_id),
        "action": str(action),
        "event": _text(event, 60),
        "category": str(category),
        "object_type": _text(object_type, 60),
        "object_id": _text(object_id, 64),
        "outcome": str(outcome),
        "ip": context_columns["ip"],
        "user_agent": context_columns["user_agent"],
        "request_id": context_columns["request_id"],
        "reason": _text(reason),
        "fields": sorted({_text(str(name)) for name in fields}),
    }


def _context_columns(ctx: request_context.RequestContext) -> dict[str, Any]:
    """The columns an event takes from the request it was recorded in."""
    return {
        "session_ref": _text(ctx.session_ref, 16),
        "ip": _normalise_ip(ctx.ip),
        "user_agent": _text(ctx.user_agent, 400),
        "request_id": _text(ctx.request_id, 64),
    }


def _lock_and_read_tail(writes: Sequence[Statement] = ()) -> tuple[int, str]:
    """Run `writes` (statements returning no rows), take the chain lock, and read the last
    row's sequence and HMAC (0 and GENESIS for an empty trail). On PostgreSQL all of it is one
    round trip: the tail is read by a statement of its own, after the lock is granted, so it
    sees every row committed by the lock's previous holder."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    tail_sql = f"SELECT sequence, hmac FROM {table} ORDER BY sequence DESC LIMIT 1"  # noqa: S608
    statements = list(writes)
    if connection.vendor == "postgresql":
        statements.append((_PG_LOCK_SQL, [_PG_LOCK_KEY]))
    statements.append((tail_sql, []))
    with connection.cursor() as cursor:
        run_statements(cursor, statements)
        if batches_statements() and len(statements) > 1:
            for _ in range(len(statements) - 1):
                cursor.nextset()
        last = cursor.fetchone()
    return (int(last[0]), str(last[1])) if last else (0, GENESIS)


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
    return _append(row, writes=())


def record_after_writes(writes: Sequence[Statement], **event: Any) -> AuditEvent:
    """Run `writes` (SQL statements that return no rows: the INSERTs of the change the event
    describes), then append the event as `record(**event)` does. On PostgreSQL the writes
    travel in one round trip with the chain lock and the event's INSERT (or, the first time on
    a connection or after another writer's append, the tail read). Registration uses this."""
    return _append(_event_row(**event), writes=writes)


def _append(row: dict[str, Any], *, writes: Sequence[Statement]) -> AuditEvent:
    """Chain and insert one row. No ORM query is built per event: the INSERT's text is made
    once per database vendor (`_insert_parts`) and only the columns that need the field's
    adaptation are adapted, as `record_many` does; the saved object is assembled directly.

    Outside any transaction (a read's event, on a connection in autocommit), an event with no
    writes is first tried on its own: PostgreSQL runs the lock and the guarded INSERT, sent as
    one multi-statement query, as one implicit transaction, so the lock is held until the row
    is in and no BEGIN or COMMIT round trip is needed. A stale hint writes nothing there; the
    tail it reads becomes the hint of the usual transaction below."""
    if not writes and _in_autocommit() and batches_statements():
        hint = _tail_hint()
        if hint is not None:
            pk, tail = _append_after_hint(row, (), hint)
            if pk is not None:
                (event_row,) = _event_instances([row], {row["sequence"]: pk})
                _remember_tail(event_row)
                return event_row
            if tail is not None:
                _tail_hints[connections[DEFAULT_DB_ALIAS]] = tail
    with transaction.atomic(savepoint=False):
        pk, tail = None, None
        hint = _tail_hint() if batches_statements() else None
        if hint is not None:
            pk, tail = _append_after_hint(row, writes, hint)
            writes = ()  # sent with that attempt, whatever its outcome
        if pk is None:
            # A stale hint came back with the real tail, read under the lock (still held).
            _chain_rows([row], tail if tail is not None else _lock_and_read_tail(writes))
            if _save_signals_connected():
                event_row = AuditEvent(**row)
                event_row.save(force_insert=True)  # sends them, as before
                _remember_tail(event_row)
                return event_row
            pk = _insert_one(row)
        (event_row,) = _event_instances([row], {row["sequence"]: pk})
        _remember_tail(event_row)
    return event_row


def _in_autocommit() -> bool:
    """True outside any transaction: each statement sent commits on its own."""
    return not connection.in_atomic_block and connection.get_autocommit()


def _save_signals_connected() -> bool:
    return signals.pre_save.has_listeners(AuditEvent) or signals.post_save.has_listeners(AuditEvent)


@dataclass(frozen=True)
class _InsertParts:
    """The pieces of an audit row's INSERT for one database vendor, made once."""

    names: tuple[str, ...]  # attribute names, in column order
    adapted: tuple[tuple[int, Any], ...]  # (position, field) of the columns to adapt
    table: str
    columns: str
    marks: str


_insert_parts_by_vendor: dict[str, _InsertParts] = {}


def _insert_parts() -> _InsertParts:
    parts = _insert_parts_by_vendor.get(connection.vendor)
    if parts is None:
        meta = AuditEvent._meta
        fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
        quote = connection.ops.quote_name
        parts = _InsertParts(
            names=tuple(str(f.attname) for f in fields),
            adapted=tuple((n, f) for n, f in enumerate(fields) if f.attname in _ADAPTED),
            table=quote(meta.db_table),
            columns=", ".join(quote(str(f.column)) for f in fields),
            marks=", ".join(["%s"] * len(fields)),
        )
        _insert_parts_by_vendor[connection.vendor] = parts
    return parts


def _row_values(row: dict[str, Any], parts: _InsertParts) -> list[Any]:
    """The row's values in column order, adapted as the ORM's INSERT adapts them."""
    values = [row[name] for name in parts.names]
    for position, model_field in parts.adapted:
        values[position] = model_field.get_db_prep_save(values[position], connection)
    return values


def _insert_one(row: dict[str, Any]) -> int:
    """INSERT one chained row (the lock is held); its id."""
    parts = _insert_parts()
    sql = f"INSERT INTO {parts.table} ({parts.columns}) VALUES ({parts.marks})"  # noqa: S608
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(sql + " RETURNING id", _row_values(row, parts))
            return int(cursor.fetchone()[0])
        cursor.execute(sql, _row_values(row, parts))
        return int(cursor.lastrowid)


# The last (sequence, HMAC) each connection wrote or read: a hint that saves reading the tail
# before an append on PostgreSQL. Never trusted: the INSERT that uses it checks, under the lock,
# that this row is still the last one (another process may have appended since, or the
# transaction that wrote it may have rolled back), and inserts nothing otherwise.
_tail_hints: WeakKeyDictionary[Any, tuple[int, str]] = WeakKeyDictionary()


def _tail_hint() -> tuple[int, str] | None:
    return _tail_hints.get(connections[DEFAULT_DB_ALIAS])


def _remember_tail(event_row: AuditEvent) -> None:
    _tail_hints[connections[DEFAULT_DB_ALIAS]] = (event_row.sequence, event_row.hmac)


def _append_after_hint(
    row: dict[str, Any], writes: Sequence[Statement], hint: tuple[int, str]
) -> tuple[int | None, tuple[int, str] | None]:
    """PostgreSQL: the writes, the lock and the event's INSERT chained to the hinted tail, in
    one round trip; the INSERT adds the row only if the hinted row is still the chain's last
    (it runs after the lock is granted, so it sees every committed append). (The new row's id,
    None); or, when the hint was stale, (None, the chain's real tail) read by the same
    statement under the lock: the writes are done, the event is not appended yet."""
    _chain_rows([row], hint)
    parts = _insert_parts()
    table = parts.table
    # WITH (INSERT ... SELECT <the values> WHERE <the hinted row is the last one>) SELECT its
    # id and the last row as this statement's snapshot sees it (without the row it inserts).
    # "The last one" is asked as max(sequence) = the hinted sequence: a backward scan of the
    # sequence index for one entry, whatever the table's statistics (a NOT EXISTS (... sequence
    # > hint) was planned as a sequential scan of the whole trail when they were stale).
    guarded = (
        f"WITH inserted AS (INSERT INTO {table} ({parts.columns}) "  # noqa: S608
        f"SELECT {parts.marks} WHERE EXISTS "
        f"(SELECT 1 FROM {table} WHERE sequence = %s AND hmac = %s) "
        f"AND (SELECT max(sequence) FROM {table}) = %s RETURNING id) "
        f"SELECT (SELECT id FROM inserted), tail.sequence, tail.hmac FROM (SELECT 1) AS one "
        f"LEFT JOIN (SELECT sequence, hmac FROM {table} ORDER BY sequence DESC LIMIT 1) AS tail "
        f"ON true"
    )
    statements = [
        *writes,
        (_PG_LOCK_SQL, [_PG_LOCK_KEY]),
        (guarded, [*_row_values(row, parts), hint[0], hint[1], hint[0]]),
    ]
    with connection.cursor() as cursor:
        run_statements(cursor, statements)
        for _ in range(len(statements) - 1):
            cursor.nextset()
        inserted, sequence, last_hmac = cursor.fetchone()
    if inserted is not None:
        return int(inserted), None
    return None, ((int(sequence), str(last_hmac)) if sequence is not None else (0, GENESIS))


def record_many(events: Iterable[Mapping[str, Any]]) -> list[AuditEvent]:
    """Append several events at once, in the order given: one lock, one read of the chain's
    tail, the chain computed here, one bulk insert. Each item holds `record()`'s keyword
    arguments. For batch writers (imports) that would otherwise call `record()` per row.

    The rows, HMACs and chain are exactly those `record()` would write one by one; the batch
    path only skips the per-object ORM work: what repeats across a batch (the actor's user
    columns, field lists, patient ids, short texts) is worked out once (`_event_rows`); each
    row's HMAC payload is the canonical JSON `audit.chain.compute_hmac` hashes, assembled from
    per-value encoded pieces (`_chain_batch`); PostgreSQL gets a binary COPY (`_insert_events`),
    SQLite one executemany."""
    shared = _context_columns(request_context.current())
    rows = _event_rows(events, shared)
    if not rows:
        return []
    with transaction.atomic(savepoint=False):
        tail = _lock_and_read_tail()
        _chain_batch(rows, tail)
        ids = _insert_events(rows, after=tail[0])
        created = _event_instances(rows, ids)
        _remember_tail(created[-1])
    return created


_SPEC_KEYS = frozenset(
    {
        "actor",
        "action",
        "event",
        "category",
        "patient",
        "patient_public_id",
        "obj",
        "object_type",
        "object_id",
        "outcome",
        "reason",
        "fields",
        "username",
    }
)
_REQUIRED_KEYS = frozenset({"actor", "action", "event", "category"})
_SUCCESS = str(Outcome.SUCCESS)


def _event_rows(
    events: Iterable[Mapping[str, Any]], context_columns: dict[str, Any]
) -> list[dict[str, Any]]:
    """`_event_row(**spec, context_columns=...)` for each spec, with what repeats across a
    batch computed once per distinct value (an actor's user columns, field lists, patient
    ids, short texts). A spec `_event_row` would refuse (unknown or missing arguments) goes to
    it, which raises as `record()` does."""
    rows: list[dict[str, Any]] = []
    users: dict[int, tuple[Any, int | None, str | None, str]] = {}
    field_lists: dict[tuple[Any, ...], list[str]] = {}
    patient_ids: dict[Any, str | None] = {}
    texts: dict[tuple[str, int], str] = {}
    labels: dict[type, str] = {}
    session_ref = context_columns["session_ref"]
    ip = context_columns["ip"]
    user_agent = context_columns["user_agent"]
    request_id = context_columns["request_id"]

    def short(value: Any, limit: int) -> str:
        if type(value) is not str:
            return _text(value, limit)
        key = (value, limit)
        found = texts.get(key)
        if found is None:
            found = texts[key] = _text(value, limit)
        return found

    for spec in events:
        keys = spec.keys()
        if not keys <= _SPEC_KEYS or not keys >= _REQUIRED_KEYS:
            rows.append(_event_row(**dict(spec), context_columns=context_columns))
            continue
        actor = spec["actor"]
        user = users.get(id(actor))
        if user is None:
            authenticated = actor is not None and getattr(actor, "is_authenticated", False)
            user = users[id(actor)] = (
                actor,  # held, so that its id is not reused by another object meanwhile
                actor.pk if authenticated else None,
                _text(actor.get_username(), 150) if authenticated else None,
                _text(actor.role_slugs, 300) if authenticated else "",
            )
        _, user_id, username, roles = user
        if username is None:
            username = short(spec.get("username", ""), 150)
        patient_public_id = spec.get("patient_public_id")
        patient = spec.get("patient")
        if patient is not None and patient_public_id is None:
            patient_public_id = patient.public_id
        if patient_public_id is None:
            patient_column = None
        else:
            try:
                patient_column = patient_ids[patient_public_id]
            except KeyError:
                patient_column = patient_ids[patient_public_id] = _normalise_uuid(patient_public_id)
            except TypeError:  # not hashable: as _event_row does
                patient_column = _normalise_uuid(patient_public_id)
        object_type = spec.get("object_type", "")
        object_id = spec.get("object_id", "")
        obj = spec.get("obj")
        if obj is not None:
            if not object_type:
                kind = type(obj)
                object_type = labels.get(kind) or labels.setdefault(kind, obj._meta.label)
            object_id = object_id or str(getattr(obj, "public_id", obj.pk))
        fields = spec.get("fields", ())
        if type(fields) is list or type(fields) is tuple:
            key = tuple(fields)
            try:
                names = field_lists[key]
            except KeyError:
                names = field_lists[key] = sorted({_text(str(name)) for name in fields})
            except TypeError:  # unhashable names
                names = sorted({_text(str(name)) for name in fields})
            names = list(names)
        else:
            names = sorted({_text(str(name)) for name in fields})
        outcome = spec.get("outcome", _SUCCESS)
        rows.append(
            {
                "user_id": user_id,
                "username": username,
                "roles": roles,
                "session_ref": session_ref,
                "patient_public_id": patient_column,
                "action": str(spec["action"]),
                "event": short(spec["event"], 60),
                "category": str(spec["category"]),
                "object_type": short(object_type, 60),
                "object_id": short(object_id, 64),
                "outcome": outcome if type(outcome) is str else str(outcome),
                "ip": ip,
                "user_agent": user_agent,
                "request_id": request_id,
                "reason": _text(spec.get("reason", "")),
                "fields": names,
            }
        )
    return rows


def _chain_rows(rows: list[dict[str, Any]], tail: tuple[int, str]) -> None:
    """Number, timestamp and hash `rows` in place, without model instances (the
    lock must be held). The payload is `audit.chain.compute_hmac`'s, byte for byte."""
    sequence, prev_hash = tail
    keyed = hmac.new(settings.AUDIT_HMAC_KEY.encode(), digestmod=hashlib.sha256)
    encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
    now = timezone.now
    for row in rows:
        sequence += 1
        row["sequence"] = sequence
        row["occurred_at"] = now()
        row["prev_hash"] = prev_hash
        payload = {}
        for name in CHAINED_FIELDS:
            value = row.get(name)
            payload[name] = value if type(value) is str else canonical(value)
        digest = keyed.copy()
        digest.update(encode(payload).encode())
        row["hmac"] = prev_hash = digest.hexdigest()


_SORTED_CHAINED = tuple(sorted(CHAINED_FIELDS))
# json.dumps' own string encoder (ensure_ascii=True, the C one when available).
_json_string = json.encoder.encode_basestring_ascii
# The chained fields that differ from row to row; the others mostly repeat across a batch.
_VARYING = ("object_id", "occurred_at", "prev_hash", "sequence")
_REPEATED = tuple(name for name in _SORTED_CHAINED if name not in _VARYING)
_REPEATED_KEYS = tuple(name for name in _REPEATED if name != "fields")


def _encoded(value: Any) -> str:
    """A payload value as compute_hmac's json.dumps writes it (after `canonical`)."""
    value = canonical(value) if type(value) is not str else value
    if type(value) is list:
        return "[" + ",".join(_json_string(item) for item in value) + "]"
    return _json_string(value)


def _payload_template(row: dict[str, Any]) -> tuple[str, ...]:
    """The canonical JSON of `row` cut at the `_VARYING` values: the literal text before
    each of them, in `_SORTED_CHAINED` order, and the text after the last."""
    pieces: list[str] = []
    literal = "{"
    for number, name in enumerate(_SORTED_CHAINED):
        literal += ("," if number else "") + _json_string(name) + ":"
        if name in _VARYING:
            pieces.append(literal)
            literal = ""
        else:
            literal += _encoded(row.get(name))
    pieces.append(literal + "}")
    return tuple(pieces)


# The order of the varying values in the payload (sorted keys), as `_payload_template` cuts it.
_VARYING_ORDER = tuple(name for name in _SORTED_CHAINED if name in _VARYING)


def _chain_batch(rows: list[dict[str, Any]], tail: tuple[int, str]) -> None:
    """`_chain_rows` for a batch (the lock must be held): the same sequences, times and HMACs.
    The payload hashed is `audit.chain.compute_hmac`'s canonical JSON byte for byte (keys
    sorted, no separating spaces, ASCII escapes): the text of the values that repeat across a
    batch is made once per distinct combination (`_payload_template`) and only the row's own
    values (sequence, time, object id, previous HMAC) are encoded per row."""
    if _VARYING_ORDER != ("object_id", "occurred_at", "prev_hash", "sequence"):
        raise AssertionError("the payload's varying keys changed order")  # pragma: no cover
    sequence, prev_hash = tail
    keyed = hmac.new(settings.AUDIT_HMAC_KEY.encode(), digestmod=hashlib.sha256)
    quote = _json_string
    now = timezone.now
    templates: dict[tuple[Any, ...], tuple[str, ...]] = {}
    for row in rows:
        sequence += 1
        row["sequence"] = sequence
        occurred_at = row["occurred_at"] = now()
        row["prev_hash"] = prev_hash
        try:
            # The values are str or None (user_id: int or None; fields: a list): keyed with
            # the type of user_id, equal keys encode alike.
            fields = row.get("fields")
            key = (
                tuple(fields) if type(fields) is list else fields,
                type(row.get("user_id")),
                *map(row.get, _REPEATED_KEYS),
            )
            template = templates.get(key)
            if template is None:
                template = templates[key] = _payload_template(row)
        except TypeError:  # a value that cannot be a key: no reuse
            template = _payload_template(row)
        object_id = row.get("object_id")
        payload = (
            template[0]
            + (quote(object_id) if type(object_id) is str else _encoded(object_id))
            + template[1]
            + quote(occurred_at.isoformat(timespec="microseconds"))
            + template[2]
            + quote(prev_hash)
            + template[3]
            + '"'
            + str(sequence)
            + '"'
            + template[4]
        )
        digest = keyed.copy()
        digest.update(payload.encode())
        row["hmac"] = prev_hash = digest.hexdigest()


# Columns whose values need the field's adaptation for the database (the others are plain
# str/int/None, passed as they are); the cached ones repeat across a batch.
_ADAPTED = frozenset({"occurred_at", "patient_public_id", "ip", "fields"})
_CACHED = frozenset({"patient_public_id", "ip", "fields"})


def _insert_events(rows: list[dict[str, Any]], *, after: int) -> dict[int, int]:
    """INSERT the chained rows; {sequence: id} of the rows written (sequences after `after`).
    PostgreSQL: binary COPY (`_copy_events`); SQLite: executemany of the adapted values."""
    meta = AuditEvent._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = ", ".join(quote(str(f.column)) for f in fields)
    ids: dict[int, int] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _copy_events(cursor, table, columns, fields, rows)
        else:
            values = _adapted_values(fields, rows)
            head = f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608
            marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
            for start in range(0, len(values), 2000):
                cursor.executemany(head + marks, values[start : start + 2000])
        # The chain lock is held: every row after `after` is one of these.
        cursor.execute(
            f"SELECT sequence, id FROM {table} WHERE sequence > %s",  # noqa: S608
            [after],
        )
        ids.update(cursor.fetchall())
    return ids


def _adapted_values(fields: Sequence[Any], rows: list[dict[str, Any]]) -> list[list[Any]]:
    """The rows' values in column order, adapted as the ORM adapts them (the cached columns
    once per distinct value)."""
    names = [str(f.attname) for f in fields]
    prepare: list[tuple[int, Any, dict[Any, Any] | None]] = [
        (position, field, {} if field.attname in _CACHED else None)
        for position, field in enumerate(fields)
        if field.attname in _ADAPTED
    ]
    values = []
    for row in rows:
        line = [row[name] for name in names]
        for position, field, cache in prepare:
            value = line[position]
            if cache is None:
                line[position] = field.get_db_prep_save(value, connection)
                continue
            key = tuple(value) if isinstance(value, list) else value
            adapted = cache.get(key, cache)
            if adapted is cache:
                adapted = cache[key] = field.get_db_prep_save(value, connection)
            line[position] = adapted
        values.append(line)
    return values


# PostgreSQL column types of the audit table -> the type psycopg dumps for binary COPY.
_AUDIT_BINARY_TYPES = {
    "bigint": "int8",
    "integer": "int4",
    "timestamp with time zone": "timestamptz",
    "varchar": "varchar",
    "text": "text",
    "uuid": "uuid",
    "inet": "inet",
    "jsonb": "jsonb",
}


def _copy_events(
    cursor: Any, table: str, columns: str, fields: Sequence[Any], rows: list[dict[str, Any]]
) -> None:
    """PostgreSQL: binary COPY of the chained rows, each value as the Python object psycopg's
    binary dumper of its column type takes (the patient id as a UUID, the address as an
    ipaddress object, the field names as the JSON list, times as aware datetimes): the
    values the ORM would store, without text for the server to parse. A column of another
    type (a later migration) sends the ORM-adapted values as text COPY instead."""
    types = []
    for field in fields:
        kind = _AUDIT_BINARY_TYPES.get(str(field.db_type(connection)).split("(")[0].strip())
        if kind is None:
            copy_rows(cursor, table, columns, _adapted_values(fields, rows))
            return
        types.append(kind)
    names = [str(f.attname) for f in fields]
    convert: dict[str, Any] = {
        "patient_public_id": uuid.UUID,
        "ip": ipaddress.ip_address,
    }
    converted: list[tuple[int, Any, dict[Any, Any]]] = [
        (position, convert[name], {}) for position, name in enumerate(names) if name in convert
    ]
    values = []
    for row in rows:
        line = [row[name] for name in names]
        for position, function, cache in converted:
            value = line[position]
            if value is not None:
                found = cache.get(value)
                if found is None:
                    found = cache[value] = function(value)
                line[position] = found
        values.append(line)
    copy_rows(cursor, table, columns, values, types)


def _event_instances(rows: list[dict[str, Any]], ids: dict[int, int]) -> list[AuditEvent]:
    """Saved AuditEvent objects for the inserted rows. Without pre/post_init receivers the
    instances are assembled directly (what `Model.__init__` would set, minus its overhead)."""
    alias = connection.alias
    if signals.pre_init.has_listeners(AuditEvent) or signals.post_init.has_listeners(AuditEvent):
        created = []
        for row in rows:
            event = AuditEvent(id=ids[row["sequence"]], **row)
            event._state.adding, event._state.db = False, alias
            created.append(event)
        return created
    created = []
    new = AuditEvent.__new__
    for row in rows:
        event = new(AuditEvent)
        event.__dict__.update(row)
        event.id = ids[row["sequence"]]
        state = event._state = ModelState()
        state.adding, state.db = False, alias
        created.append(event)
    return created
