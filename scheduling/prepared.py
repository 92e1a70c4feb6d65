"""Server-side prepared statements for the booking's batched statements on PostgreSQL.

Django's psycopg cursors bind parameters on the client (psycopg's ClientCursor): each statement
reaches PostgreSQL as new text, which the server parses, analyses and plans every time. A
booking sends the same few statements with new values all day long. `run(statements)` sends a
batch of them in one round trip (psycopg pipeline mode) through server-binding psycopg cursors on
Django's own connection, each statement prepared on the server the first time the connection
runs it (`prepare=True`): later executions skip parsing and, once PostgreSQL uses a generic
plan (its own choice after five executions where that plan looks no more costly, or forced with
`plan_cache_mode`, as the booking does: scheduling.services), planning.

When (`available()`): PostgreSQL with psycopg 3, on a connection that allows prepared
statements, and nothing installed with `connection.execute_wrapper()` (these statements do not
go through Django's cursor wrapper). Django opens connections with psycopg's
`prepare_threshold` None, which disables prepared statements (a connection pooler in
transaction mode, such as PgBouncer before 1.21 or without `max_prepared_statements`, cannot
keep them); the database's OPTIONS `prepare_threshold` (any number) allows them, which
config/settings.py sets only with `PATIENTDESK_PREPARED_STATEMENTS=1` (off by default: the
full benchmark measured the day view and multi-process booking slower with it on, see
docs/performance.md). Elsewhere the callers send the same statements through Django's cursor.

What stays as with Django's cursor: errors are Django's (IntegrityError, OperationalError, ...
with psycopg's error as `__cause__`, through `connection.wrap_database_errors`), a transaction
that needs a rollback is refused the same way, and each statement is listed in
`connection.queries` while queries are logged (the tests' query counts). The first statement
of a transaction carries psycopg's BEGIN in the same round trip.

Statement text must be the same on every call: give lists as one array parameter
(`= ANY(%s)`) rather than IN lists of varying length. Parameters are typed by psycopg from
their Python values; ints are sent as int8 (psycopg would choose int2, int4 or int8 by the
value, and each choice would be another prepared statement). A SELECT should cast its output
columns (`x::bigint`): PostgreSQL re-plans a prepared statement by itself after DDL on a table
it reads (a migration, an added index, ANALYZE), but refuses to run it if its result columns
changed type.

Prepared statements belong to the session, not to the transaction: a rollback leaves them on
the server. psycopg still forgets every statement prepared on the connection (and sends
DEALLOCATE ALL) after a ROLLBACK of the transaction and after DROP, ALTER, DISCARD ALL or
DEALLOCATE ALL run on it; they are prepared again on their next use. It keeps at most
`prepared_max` (100) per connection.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

try:  # psycopg 3; with psycopg2 `available()` is False
    import psycopg
    from psycopg.types.numeric import Int8
except ImportError:  # pragma: no cover
    psycopg = None  # type: ignore[assignment]
    Int8 = int  # type: ignore[assignment,misc]

Statement = tuple[str, Sequence[Any]]

# False sends the booking's statements through Django's cursor even where prepared statements
# are allowed (tests compare both paths).
ENABLED = True


def available() -> bool:
    """Whether `run` can be used on the default connection now (see the module's notes)."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each `connection.x` looks the connection up
    if not ENABLED or db.vendor != "postgresql" or db.execute_wrappers:
        return False
    db.ensure_connection()
    return psycopg is not None and getattr(db.connection, "prepare_threshold", None) is not None


def _typed(params: Sequence[Any]) -> list[Any]:
    """`params` with every int (not bool) as int8, also inside lists."""
    typed: list[Any] = []
    for value in params:
        if type(value) is int:
            value = Int8(value)
        elif type(value) is list:
            value = [Int8(item) if type(item) is int else item for item in value]
        typed.append(value)
    return typed


def run(statements: Sequence[Statement]) -> list[list[tuple[Any, ...]] | None]:
    """Run `statements` in one round trip, each prepared on the server once per connection;
    each statement's rows (None for a statement that returns none). Only when `available()`.
    An error is raised as Django's cursor raises it; the statements after the failing one do
    not run."""
    db = connections[DEFAULT_DB_ALIAS]
    db.validate_no_broken_transaction()
    raw = db.connection
    cursors = []
    began = time.monotonic()
    with db.wrap_database_errors:
        with raw.pipeline():
            for sql, params in statements:
                cursor = psycopg.Cursor(raw)
                cursor.execute(sql, _typed(params), prepare=True)
                cursors.append(cursor)
        results = [
            cursor.fetchall() if cursor.description is not None else None for cursor in cursors
        ]
    if db.queries_logged:
        duration = (time.monotonic() - began) / len(statements)
        ops: Any = db.ops  # PostgreSQL's: compose_sql binds as psycopg's ClientCursor would
        for sql, params in statements:
            db.queries_log.append(
                {"sql": ops.compose_sql(sql, _typed(params)), "time": f"{duration:.3f}"}
            )
    for cursor in cursors:
        cursor.close()
    return results
