"""Fixtures for the audit trail's tests: a chain of real events, and raw-SQL tampering that works
on SQLite and PostgreSQL (where the append-only trigger must be switched off first)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import Action, AuditEvent, Category, Outcome
from audit.services import record


def add_events(count: int, **overrides: Any) -> list[AuditEvent]:
    """`count` real events appended through audit.services.record (so the chain is genuine)."""
    values: dict[str, Any] = {
        "actor": None,
        "username": "someone",
        "action": Action.READ,
        "event": "patient.view",
        "category": Category.DEMOGRAPHICS,
        "outcome": Outcome.SUCCESS,
    }
    values.update(overrides)
    return [record(**values) for _ in range(count)]


@pytest.fixture
def events(db: None) -> list[AuditEvent]:
    """A chain of 9 events, sequence 1..9."""
    return add_events(9)


@contextmanager
def tampering() -> Iterator[Any]:
    """A cursor that may UPDATE and DELETE audit rows, as an attacker with SQL access could.

    On PostgreSQL the append-only trigger refuses that; a superuser can switch triggers off for
    the session with session_replication_role = replica (the test cluster's user is one).
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture
def at_time(monkeypatch: pytest.MonkeyPatch) -> Callable[[dt.datetime], None]:
    """Make `timezone.now()` return the given (aware) time until the test ends."""

    def freeze(moment: dt.datetime) -> None:
        assert timezone.is_aware(moment)
        monkeypatch.setattr(timezone, "now", lambda: moment)

    return freeze
