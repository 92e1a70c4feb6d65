"""record_many's batch path writes exactly the rows record() writes one by one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection, transaction

from audit.chain import compute_hmac, iter_rows, verify_chain
from audit.models import Action, AuditEvent, Category, Outcome
from audit.services import record, record_many
from audit.tests.conftest import add_events
from core import request_context
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

# Columns that differ between two writes of the same event (time, and the hashes over it).
VOLATILE = {"id", "occurred_at", "prev_hash", "hmac"}


class UndoError(Exception):
    """Raised to roll a savepoint back after its rows were read."""


def rows_of_batch_then_undo(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table after record_many(events); the batch is then rolled back."""
    rows: list[dict[str, Any]] = []
    try:
        with transaction.atomic():
            record_many(events)
            rows = stored_rows()
            raise UndoError
    except UndoError:
        return rows


@contextmanager
def request(**values: Any) -> Iterator[None]:
    token = request_context.set_current(request_context.RequestContext(**values))
    try:
        yield
    finally:
        request_context.reset(token)


def stored_rows() -> list[dict[str, Any]]:
    """The audit table as the database holds it (raw values, no ORM conversion)."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY sequence")  # noqa: S608
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def specs(user: Any, patient: Any) -> list[dict[str, Any]]:
    return [
        {
            "actor": user,
            "action": Action.CREATE,
            "event": "ledger.post",
            "category": Category.PAYMENTS,
            "patient": patient,
            "obj": patient,
            "fields": ["kind", "lines", "amount", "kind"],
        },
        {
            "actor": None,
            "username": "system",
            "action": Action.UPDATE,
            "event": "claim.status",
            "category": Category.BILLING,
            "patient_public_id": str(uuid.uuid4()).upper(),
            "object_type": "billing.Claim",
            "object_id": "x" * 70,
            "reason": "submitted -> paid \x00 é ✓",
            "outcome": Outcome.FAILURE,
        },
        {
            "actor": user,
            "action": Action.READ,
            "event": "patient.view",
            "category": Category.DEMOGRAPHICS,
            "patient_public_id": "not a uuid",
            "fields": [],
        },
    ]


@pytest.mark.parametrize(
    "context",
    [
        {"ip": "203.0.113.7", "user_agent": "Bench/1.0", "request_id": "r-1", "session_ref": "s1"},
        {"ip": "2001:DB8::1", "user_agent": "ü" * 500, "request_id": "r-2"},
        {"ip": "not an address"},
    ],
)
def test_batched_rows_are_the_rows_record_writes_one_by_one(context, frontdesk) -> None:
    # given
    add_events(2)
    patient = PatientFactory()
    events = specs(frontdesk, patient) * 2
    with request(**context):
        # when: the batch, read back, then undone
        batched = rows_of_batch_then_undo(events)
        # and the same events through record(), one at a time
        for spec in events:
            record(**spec)
    singly = stored_rows()

    # then
    def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]

    assert len(batched) == len(singly) == 8
    assert stable(batched) == stable(singly)
    assert verify_chain(iter_rows()).intact


def test_every_batched_row_carries_the_hmac_of_its_stored_content(frontdesk) -> None:
    # given
    add_events(1)
    with request(ip="2001:db8::5", user_agent="ä\x00b"):
        # when
        record_many(specs(frontdesk, PatientFactory()))

    # then
    rows = list(iter_rows())
    assert [row["sequence"] for row in rows] == [1, 2, 3, 4]
    assert all(row["hmac"] == compute_hmac(row) for row in rows)
    assert [row["prev_hash"] for row in rows[1:]] == [row["hmac"] for row in rows[:-1]]


def test_returned_events_are_the_saved_rows(frontdesk) -> None:
    # given
    add_events(3)

    # when
    created = record_many(specs(frontdesk, PatientFactory()))

    # then
    stored = {event.pk: event for event in AuditEvent.objects.filter(sequence__gt=3)}
    assert sorted(stored) == sorted(event.pk for event in created)
    for event in created:
        saved = stored[event.pk]
        assert not event._state.adding
        assert (event.sequence, event.hmac, event.prev_hash) == (
            saved.sequence,
            saved.hmac,
            saved.prev_hash,
        )
        assert event.occurred_at == saved.occurred_at
        assert event.fields == saved.fields
    with pytest.raises(PermissionError):
        created[0].save()


def test_a_record_after_a_batch_continues_its_chain(frontdesk) -> None:
    # given
    record_many(specs(frontdesk, PatientFactory()))

    # when
    event = record(actor=None, username="x", action=Action.READ, event="e", category="audit")

    # then
    assert event.sequence == 4
    assert event.prev_hash == AuditEvent.objects.get(sequence=3).hmac
    assert verify_chain(iter_rows()).intact
