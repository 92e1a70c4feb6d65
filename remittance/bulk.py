"""Fast multi-row INSERTs and UPDATEs for the ingest's tables (one statement stream per table).

Django's bulk_create prepares every value through its field machinery, which for the tens of
thousands of CLP/SVC/CAS rows of a large 835 costs more than the database does. The remittance
tables hold plain values (text, numbers, dates, UUIDs, foreign key ids), so they are adapted
here once per type, and the generated ids are read back by public id where they are needed.
`update_rows` writes many rows' columns by primary key: one executemany on SQLite, one
`UPDATE ... FROM unnest(arrays)` per batch on PostgreSQL (no statement per row).
`uuid4_many` makes the public ids of a batch from one read of the random source. On
PostgreSQL the INSERTs are binary COPY with the column types set once (core.bulk_sql).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, cast

from django.db import connection, models

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


_UUID_NEW = object.__new__
_UUID_SET = object.__setattr__
_VERSION_4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_4_SET = (0x8000 << 48) | (4 << 76)


def uuid4_many(count: int) -> list[uuid.UUID]:
    """`count` random (version 4) UUIDs, as `uuid.uuid4()` makes them (same bits set), from one
    read of the random source and without UUID.__init__'s argument checks per id."""
    data = os.urandom(16 * count)
    made = []
    unknown = uuid.SafeUUID.unknown
    for start in range(0, 16 * count, 16):
        value = int.from_bytes(data[start : start + 16]) & _VERSION_4_CLEAR | _VERSION_4_SET
        one = _UUID_NEW(uuid.UUID)
        _UUID_SET(one, "int", value)
        _UUID_SET(one, "is_safe", unknown)
        made.append(one)
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
