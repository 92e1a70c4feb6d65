"""Bulk INSERT helpers shared by the batch writers (audit trail, ledger, remittances)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def copy_rows(cursor: Any, table: str, columns: str, rows: Iterable[Sequence[Any]]) -> int:
    """PostgreSQL: INSERT `rows` into `table` (quoted) `columns` (quoted, comma-separated) with
    COPY: one stream, psycopg adapts each value, and no long multi-row VALUES text for its
    client-side binding to parse. Returns the number of rows written."""
    count = 0
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count
