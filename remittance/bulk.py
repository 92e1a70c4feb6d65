"""Fast multi-row INSERTs and UPDATEs for the ingest's tables (one statement stream per table).

Django's bulk_create prepares every value through its field machinery, which for the tens of
thousands of CLP/SVC/CAS rows of a large 835 costs more than the database does. The remittance
tables hold plain values (text, numbers, dates, UUIDs, foreign key ids), so they are adapted
here once per type, and the generated ids are read back by public id where they are needed.
`update_rows` writes many rows' columns by primary key: one executemany on SQLite, one
`UPDATE ... FROM unnest(arrays)` per batch on PostgreSQL (no statement per row).
`uuid4_many` makes the public ids of a batch from one read of the random source. On
PostgreSQL the INSERTs are binary COPY with the column types set once (core.bulk_sql).

Overlap (PostgreSQL): `Writes` runs those COPYs in order in a helper thread, on the same
connection and so in the same transaction, while the caller goes on building the next rows
in Python: the server inserts rows and index entries (and, with `check_constraints`, runs the
deferred foreign-key checks of those rows early) on the second core instead of after the
Python work. The ids of the rows a later table points to are taken beforehand from the
table's own sequence (`allocate_ids`), so nothing waits for an INSERT to read them back.
psycopg serialises the connection's use between threads statement by statement (a COPY
holds it to its end, so the rows go in slices and the caller's statements run between
them); the caller must not issue statements that read the queued rows before `wait()`. An
error in the helper is raised in the caller by `wait()` (as Django's exception class), whose
transaction then rolls everything back. On SQLite every write runs at once in the caller
(`Writes` only keeps the order).
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, cast

from django.db import DatabaseError, connection, models, transaction

from core.bulk_sql import binary_types, copy_rows

BATCH = 2000


class _Adapter:
    """Turns Python values into what the driver expects (what the model fields would store),
    deciding the database once and converting each distinct date/time once."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.ops = connection.ops
        self.times: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, uuid.UUID):
            return value if self.postgres else value.hex
        if isinstance(value, Decimal):
            return value if self.postgres else str(value)
        if isinstance(value, dt.date):
            converted = self.times.get(value)
            if converted is None:
                if isinstance(value, dt.datetime):
                    converted = self.ops.adapt_datetimefield_value(value)
                else:
                    converted = self.ops.adapt_datefield_value(value)
                self.times[value] = converted
            return converted
        return value


# Fields whose values (str, int, bool, None) go to the driver as they are.
_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.ForeignKey,
)


def _converters(
    model: type[models.Model], columns: Sequence[str], adapt: _Adapter
) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, converter) for the columns whose values need adapting on this database;
    each converter does what `_Adapter` does for the values its field holds."""
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for position, column in enumerate(columns):
        field = model._meta.get_field(column)
        if isinstance(field, models.UUIDField | models.DecimalField) and adapt.postgres:
            continue  # psycopg adapts them natively, as _Adapter leaves them
        if isinstance(field, models.UUIDField):
            converters.append((position, _uuid_hex(adapt)))
        elif isinstance(field, models.DecimalField):
            converters.append((position, _decimal_text(adapt)))
        elif isinstance(field, models.DateField):  # DateTimeField too
            converters.append((position, _cached(adapt)))
        elif not isinstance(field, _PLAIN):
            converters.append((position, adapt))
    return converters


def _cached(adapt: _Adapter) -> Callable[[Any], Any]:
    """`adapt` for a column of dates or times: each distinct value converted once."""
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            converted = seen[value] = adapt(value)
            return converted

    return convert


def _uuid_hex(adapt: _Adapter) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        return value.hex if type(value) is uuid.UUID else adapt(value)

    return convert


def _decimal_text(adapt: _Adapter) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        return str(value) if type(value) is Decimal else adapt(value)

    return convert


def insert_rows(
    model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """INSERT `rows` (values in the order of `columns`, field attnames) into `model`'s table."""
    quote = connection.ops.quote_name
    names = ", ".join(
        quote(str(cast("models.Field[Any, Any]", model._meta.get_field(c)).column)) for c in columns
    )
    marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    head = f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES "  # noqa: S608
    adapt = _Adapter()
    converters = _converters(model, columns, adapt)
    # SQLite runs a prepared statement per row fast (executemany); PostgreSQL gets COPY: one
    # stream, and no long multi-row VALUES text for psycopg's client-side binding to parse.
    if adapt.postgres:
        table = quote(model._meta.db_table)
        types = binary_types(model, columns)
        with connection.cursor() as cursor:
            return copy_rows(cursor, table, names, rows, types)
    per_statement = 1
    count = 0
    with connection.cursor() as cursor:
        batch: list[list[Any]] = []
        for row in rows:
            line = list(row)
            for position, convert in converters:
                value = line[position]
                if value is not None:
                    line[position] = convert(value)
            batch.append(line)
            if len(batch) >= BATCH:
                count += _flush(cursor, head, marks, batch, per_statement)
                batch = []
        if batch:
            count += _flush(cursor, head, marks, batch, per_statement)
    return count


def _flush(cursor: Any, head: str, marks: str, batch: list[list[Any]], per_statement: int) -> int:
    if per_statement == 1:
        cursor.executemany(head + marks, batch)
        return len(batch)
    for start in range(0, len(batch), per_statement):
        chunk = batch[start : start + per_statement]
        values = ", ".join([marks] * len(chunk))
        cursor.execute(head + values, [value for row in chunk for value in row])
    return len(batch)


def update_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """UPDATE `model`'s rows: each row is (pk, *values in the order of `columns`, attnames).
    The stored values are those `save(update_fields=columns)` writes (same adaptation as
    `insert_rows`); no signals, no auto_now: pass `updated_at` yourself."""
    if not rows:
        return 0
    quote = connection.ops.quote_name
    meta = model._meta
    fields = [cast("models.Field[Any, Any]", meta.get_field(c)) for c in columns]
    table = quote(meta.db_table)
    pk_column = quote(str(cast("models.Field[Any, Any]", meta.pk).column))
    adapt = _Adapter()
    if adapt.postgres:
        # One statement per batch: the values travel as one array per column.
        names = ["pk", *(f"v{n}" for n in range(len(fields)))]
        types = [
            str(cast("models.Field[Any, Any]", meta.pk).rel_db_type(connection)),
            *(str(f.db_type(connection)) for f in fields),
        ]
        assignments = ", ".join(
            f"{quote(str(f.column))} = v.{name}" for f, name in zip(fields, names[1:], strict=True)
        )
        copy_types = binary_types(model, (str(meta.pk.name), *columns))
        if len(rows) >= _COPY_UPDATE_FROM and copy_types is not None:
            _update_from_copy(table, pk_column, assignments, names, types, copy_types, rows)
            return len(rows)
        arrays = ", ".join(f"%s::{kind}[]" for kind in types)
        sql = (
            f"UPDATE {table} SET {assignments} FROM unnest({arrays}) "  # noqa: S608
            f"AS v({', '.join(names)}) WHERE {table}.{pk_column} = v.pk"
        )
        with connection.cursor() as cursor:
            for start in range(0, len(rows), BATCH * 5):
                chunk = rows[start : start + BATCH * 5]
                cursor.execute(sql, [list(column) for column in zip(*chunk, strict=True)])
        return len(rows)
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk_column} = %s"  # noqa: S608
    converters = _converters(model, columns, adapt)  # positions in `columns`, as in `values`
    params = []
    for pk, *values in rows:
        for position, convert in converters:
            value = values[position]
            if value is not None:
                values[position] = convert(value)
        values.append(pk)
        params.append(values)
    with connection.cursor() as cursor:
        for start in range(0, len(params), BATCH):
            cursor.executemany(sql, params[start : start + BATCH])
    return len(rows)


# From this many rows on, update_rows sends the values by binary COPY into a temporary table
# (C dumpers: the arrays of the UPDATE ... FROM unnest path are made into text in Python, which
# cost more than the UPDATE for thousands of claims); fewer rows are not worth the temporary
# table's catalog work.
_COPY_UPDATE_FROM = 500
_UPDATE_TABLE = "remittance_update_rows"


def _update_from_copy(
    table: str,
    pk_column: str,
    assignments: str,
    names: Sequence[str],
    types: Sequence[str],
    copy_types: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """PostgreSQL: `rows` (pk, *values) by binary COPY into a temporary table (dropped at the
    end, and at COMMIT at the latest), then one UPDATE ... FROM it: the same values the
    unnest path writes."""
    quote = connection.ops.quote_name
    temporary = quote(_UPDATE_TABLE)
    definition = ", ".join(f"{n} {kind}" for n, kind in zip(names, types, strict=True))
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {temporary} ({definition}) ON COMMIT DROP")
        copy_rows(cursor, temporary, ", ".join(names), rows, copy_types)
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM {temporary} AS v "  # noqa: S608
            f"WHERE {table}.{pk_column} = v.pk"
        )
        cursor.execute(f"DROP TABLE {temporary}")


_UUID_NEW = object.__new__
# UUID's slots, set directly (UUID.__setattr__ refuses: UUIDs are immutable)
_UUID_SET_INT = uuid.UUID.__dict__["int"].__set__
_UUID_SET_SAFE = uuid.UUID.__dict__["is_safe"].__set__
_VERSION_4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_4_SET = (0x8000 << 48) | (4 << 76)
_TWO_HALVES = struct.Struct(">QQ")  # 16 random bytes as two big-endian 64-bit halves


def uuid4_many(count: int) -> list[uuid.UUID]:
    """`count` random (version 4) UUIDs, as `uuid.uuid4()` makes them (same bits set), from one
    read of the random source and without UUID.__init__'s argument checks per id."""
    unknown = uuid.SafeUUID.unknown
    made: list[uuid.UUID] = []
    append = made.append
    for high, low in _TWO_HALVES.iter_unpack(os.urandom(16 * count)):
        one = _UUID_NEW(uuid.UUID)
        _UUID_SET_INT(one, ((high << 64) | low) & _VERSION_4_CLEAR | _VERSION_4_SET)
        _UUID_SET_SAFE(one, unknown)
        append(one)
    return made


def ids_by_public_id(model: type[models.Model], **filters: Any) -> dict[uuid.UUID, int]:
    """{public_id: id} of `model`'s rows matching `filters` (read with a plain cursor: the
    ORM's per-row result machinery costs more than the query for tens of thousands of rows)."""
    query = model._default_manager.filter(**filters).values_list("public_id", "id").query
    sql, params = query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if connection.features.has_native_uuid_field:
        return dict(rows)
    return {uuid.UUID(public_id): pk for public_id, pk in rows}


def allocate_ids(model: type[models.Model], count: int) -> list[int] | None:
    """PostgreSQL: `count` new ids from `model`'s id sequence, ascending (what INSERTs of
    `count` rows without ids would take, in their order); None on SQLite, whose rows take
    their ids when inserted."""
    if connection.vendor != "postgresql":
        return None
    if not count:
        return []
    meta = model._meta
    table = meta.db_table
    column = str(cast("models.Field[Any, Any]", meta.pk).column)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [connection.ops.quote_name(table), column, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


_DEFERRED_KEYS_SQL = (
    "SELECT conname FROM pg_constraint WHERE contype = 'f' AND condeferrable AND condeferred "
    "AND conrelid IN (SELECT oid FROM pg_class WHERE relname = ANY(%s) "
    "AND relkind IN ('r', 'p') AND pg_table_is_visible(oid)) ORDER BY conname"
)


def _check_deferred_foreign_keys(cursor: Any, tables: list[str]) -> None:
    """Run now the pending checks of the deferred foreign keys of `tables` (rows written so
    far in this transaction), then defer them again as they were: `cursor` is the helper's."""
    cursor.execute(_DEFERRED_KEYS_SQL, [tables])
    names = ", ".join('"' + str(row[0]).replace('"', '""') + '"' for row in cursor.fetchall())
    if names:
        cursor.execute(f"SET CONSTRAINTS {names} IMMEDIATE")
        cursor.execute(f"SET CONSTRAINTS {names} DEFERRED")


_SLICE = 5000  # rows per COPY of the background writes


class Writes:
    """Ordered raw INSERTs of one transaction; on PostgreSQL run by a helper thread while the
    caller works on (see the module docstring). Use as a context manager: leaving it waits for
    the helper (and raises its error, if the block itself raised none).

    `insert(model, columns, rows, via=insert_rows)` queues `via`'s INSERT: in the helper when
    `via` is this module's `insert_rows` on PostgreSQL (rows as `insert_rows` takes them, not
    to be changed afterwards), otherwise at once in the caller after the queued ones (so a
    test can substitute the ORM). `check_constraints(*models)` queues the deferred
    foreign-key checks of the rows inserted so far into those models' tables (SET
    CONSTRAINTS ... IMMEDIATE, then back to DEFERRED: later rows are checked at COMMIT as
    before). `wait()` returns when everything queued is done."""

    def __init__(self) -> None:
        self.background = connection.vendor == "postgresql"
        self._jobs: queue.SimpleQueue[Callable[[Any], Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._cancelled = False

    def __enter__(self) -> Writes:
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            self.wait()
            return
        # The block failed (its transaction rolls back): the writes still queued are skipped.
        # A database error of the block's may only be the echo of the helper's (a statement
        # run after the helper's failed in the aborted transaction): the helper's is raised.
        self._cancelled = True
        self._stop()
        error, self._error = self._error, None
        if error is not None and isinstance(value, DatabaseError):
            with connection.wrap_database_errors:
                raise error from value

    def insert(
        self,
        model: type[models.Model],
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        via: Callable[..., int] | None = None,
    ) -> None:
        via = via or insert_rows
        if not self.background or via is not insert_rows:
            self.wait()
            via(model, columns, rows)
            return
        quote = connection.ops.quote_name
        names = ", ".join(
            quote(str(cast("models.Field[Any, Any]", model._meta.get_field(c)).column))
            for c in columns
        )
        table = quote(model._meta.db_table)
        types = binary_types(model, columns)

        # One COPY per slice: between two slices the caller's own statements get their turn
        # (the connection is held for a whole COPY), so its Python work between them overlaps
        # the server's work on the next slice.
        def copy_slice(part: Sequence[Sequence[Any]]) -> Callable[[Any], int]:
            return lambda cursor: copy_rows(cursor, table, names, part, types)

        for start in range(0, len(rows), _SLICE):
            self._submit(copy_slice(rows[start : start + _SLICE]))

    def check_constraints(self, *models_: type[models.Model]) -> None:
        if not self.background:
            return  # SQLite checks foreign keys at COMMIT (or never, when off)
        tables = [model._meta.db_table for model in models_]
        self._submit(lambda cursor: _check_deferred_foreign_keys(cursor, tables))

    def wait(self) -> None:
        self._stop()
        error, self._error = self._error, None
        if error is not None:
            with connection.wrap_database_errors:
                raise error

    def _submit(self, job: Callable[[Any], Any]) -> None:
        if self._thread is None:
            connection.ensure_connection()
            raw = connection.connection
            self._thread = threading.Thread(
                target=self._run, args=(raw,), name="remittance-writes", daemon=True
            )
            self._thread.start()
        self._jobs.put(job)

    def _run(self, raw: Any) -> None:
        with raw.cursor() as cursor:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                if self._error is None and not self._cancelled:
                    try:
                        job(cursor)
                    except BaseException as error:  # raised in the caller by wait()
                        self._error = error
                # Let a caller waiting for the connection take it before the next job.
                time.sleep(0)

    def _stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
