"""Fast multi-row INSERTs for the ingest's own tables (one executemany per table).

Django's bulk_create prepares every value through its field machinery, which for the tens of
thousands of CLP/SVC/CAS rows of a large 835 costs more than the database does. The remittance
tables hold plain values (text, numbers, dates, UUIDs, foreign key ids), so they are adapted
here once per type, and the generated ids are read back by public id where they are needed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, cast

from django.db import connection, models

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
    # SQLite runs a prepared statement per row fast (executemany); PostgreSQL wants few round
    # trips, so it gets multi-row VALUES lists (well under its 65,535 parameters).
    per_statement = 1 if not adapt.postgres else max(1, 20_000 // len(columns))
    count = 0
    with connection.cursor() as cursor:
        batch: list[list[Any]] = []
        for row in rows:
            batch.append([adapt(v) for v in row])
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


def ids_by_public_id(model: type[models.Model], **filters: Any) -> dict[uuid.UUID, int]:
    rows = model._default_manager.filter(**filters).values_list("public_id", "id")
    return dict(rows)
