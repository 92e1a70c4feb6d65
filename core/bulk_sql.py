"""Bulk INSERT helpers shared by the batch writers (audit trail, ledger, remittances).

On PostgreSQL the writers INSERT with COPY. With the column types known (`binary_types`), the
COPY is binary: psycopg dumps each value with its C binary dumper (about half the CPU of text
COPY, where every value's dumper is looked up and its text made) and the server parses no text.
A column of a type not in `_BINARY_TYPES` (json, inet...) makes the rows go as text COPY.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, cast

from django.db import connection, models

# PostgreSQL column types (Field.db_type without its modifier) -> the type psycopg dumps for
# binary COPY, which must be the column's own type.
_BINARY_TYPES = {
    "integer": "int4",
    "bigint": "int8",
    "smallint": "int2",
    "boolean": "bool",
    "uuid": "uuid",
    "timestamp with time zone": "timestamptz",
    "date": "date",
    "numeric": "numeric",
    "varchar": "varchar",
    "text": "text",
}


@cache
def _binary_types_cached(model: type[models.Model], columns: tuple[str, ...]) -> tuple[str, ...]:
    types = []
    for column in columns:
        field = cast("models.Field[Any, Any]", model._meta.get_field(column))
        kind = _BINARY_TYPES.get(str(field.db_type(connection)).split("(")[0].strip())
        if kind is None:
            return ()
        types.append(kind)
    return tuple(types)


def binary_types(model: type[models.Model], columns: Sequence[str]) -> list[str] | None:
    """The binary COPY type of each of `model`'s `columns` (field names or attnames), or None
    when one is of another type (then the rows go as text COPY). PostgreSQL only."""
    types = _binary_types_cached(model, tuple(columns))
    return list(types) if types else None


def copy_rows(
    cursor: Any,
    table: str,
    columns: str,
    rows: Iterable[Sequence[Any]],
    types: Sequence[str] | None = None,
) -> int:
    """PostgreSQL: INSERT `rows` into `table` (quoted) `columns` (quoted, comma-separated) with
    COPY: one stream and no long multi-row VALUES text for psycopg's client-side binding to
    parse. With `types` (one per column, see `binary_types`) the COPY is binary and each value
    must be the Python type of its column (int, str, Decimal, date, aware datetime, UUID).
    Returns the number of rows written."""
    count = 0
    binary = " (FORMAT BINARY)" if types else ""
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN{binary}") as copy:
        if types:
            copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
            count += 1
    return count
