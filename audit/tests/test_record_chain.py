"""record()'s appends stay one unbroken chain whatever it believes the chain's last row to be.

On PostgreSQL, record() chains a new event to the last row its connection wrote (a hint) and
sends the lock and the INSERT in one round trip; the INSERT only happens if that row is still
the last one. These tests make the hint wrong in each way it can be wrong (another writer
appended since; the transaction that wrote the hinted row rolled back) and check that the chain
still verifies, on SQLite (no hint: the tail is read every time) and on PostgreSQL.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from audit import services
from audit.chain import iter_rows, verify_chain
from audit.models import Action, AuditEvent, Category
from audit.services import record, record_after_writes
from audit.tests.conftest import add_events
from scheduling.tests.conftest import shared_database  # noqa: F401  (a fixture, used below)


def event(number: int) -> dict[str, Any]:
    return {
        "actor": None,
        "username": "clerk",
        "action": Action.READ,
        "event": "patient.view",
        "category": Category.DEMOGRAPHICS,
        "object_id": f"row {number}",
    }


def stored_sequences() -> list[int]:
    return list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))


@pytest.mark.django_db
def test_an_event_follows_rows_another_writer_appended_after_this_ones_last() -> None:
    # given: this connection last wrote row 2; then rows 3 and 4 came from elsewhere (their
    # chain is read from the table, not from this process's memory of it)
    add_events(2)
    believed_last = services._tail_hint()
    add_events(2)
    if believed_last is not None:
        services._tail_hints[connections["default"]] = believed_last

    # when
    created = record(**event(5))

    # then
    assert created.sequence == 5
    assert created.prev_hash == AuditEvent.objects.get(sequence=4).hmac
    assert verify_chain(iter_rows()).intact


@transaction.atomic
def record_then_fail(values: dict[str, Any]) -> None:
    record(**values)
    raise RuntimeError("the change failed")


@pytest.mark.django_db
def test_an_event_after_a_rolled_back_one_takes_its_place_in_the_chain() -> None:
    # given: an event written, then rolled back with the change it described
    add_events(1)
    with pytest.raises(RuntimeError):
        record_then_fail(event(2))

    # when
    created = record(**event(3))

    # then
    assert created.sequence == 2
    assert stored_sequences() == [1, 2]
    assert verify_chain(iter_rows()).intact


@pytest.mark.django_db
def test_the_returned_event_is_the_stored_row() -> None:
    add_events(2)

    created = record(**event(3))

    stored = AuditEvent.objects.get(pk=created.pk)
    assert (stored.sequence, stored.hmac, stored.object_id) == (3, created.hmac, "row 3")


@pytest.mark.django_db
def test_writes_sent_with_an_event_are_done_before_it_in_the_same_transaction() -> None:
    # given: a change written as SQL beside its event (what registration does)
    add_events(1)
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    count_sql = f"SELECT COUNT(*) FROM {table}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE audit_test_change (n integer)")
    writes = [("INSERT INTO audit_test_change (n) VALUES (%s)", [7])]

    # when
    created = record_after_writes(writes, **event(2))

    # then
    with connection.cursor() as cursor:
        cursor.execute("SELECT n FROM audit_test_change")
        assert cursor.fetchall() == [(7,)]
        cursor.execute(count_sql)
        assert cursor.fetchone() == (2,)
    assert created.sequence == 2
    assert verify_chain(iter_rows()).intact


@pytest.mark.django_db(transaction=True)
def test_an_event_outside_any_transaction_is_appended_in_one_statement() -> None:
    # given: a connection in autocommit (a read's event) that has appended before
    add_events(1)

    # when
    with CaptureQueriesContext(connection) as captured:
        created = record(**event(2))

    # then: on PostgreSQL the lock and the INSERT go together, with no BEGIN or COMMIT of their
    # own (one statement is one transaction); the chain is whole either way
    if connection.vendor == "postgresql":
        assert len(captured.captured_queries) == 1
    assert created.sequence == 2
    assert stored_sequences() == [1, 2]
    assert verify_chain(iter_rows()).intact


@pytest.mark.django_db(transaction=True)
def test_an_event_outside_any_transaction_follows_rows_another_writer_appended() -> None:
    # given: as above, this connection last wrote row 2 and rows 3 and 4 came from elsewhere,
    # with no transaction open
    add_events(2)
    believed_last = services._tail_hint()
    add_events(2)
    if believed_last is not None:
        services._tail_hints[connections["default"]] = believed_last

    # when
    created = record(**event(5))
    following = record(**event(6))

    # then
    assert (created.sequence, following.sequence) == (5, 6)
    assert created.prev_hash == AuditEvent.objects.get(sequence=4).hmac
    assert stored_sequences() == [1, 2, 3, 4, 5, 6]
    assert verify_chain(iter_rows()).intact


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_unbroken_chain(shared_database: None) -> None:  # noqa: F811
    # given: six threads with their own connections, each appending twenty events at once
    add_events(1)
    barrier = threading.Barrier(6)
    failures: list[str] = []

    def write(worker: int) -> None:
        try:
            barrier.wait(timeout=60)
            for number in range(20):
                record(**event(worker * 100 + number))
        except Exception as exc:  # the test looks for any error
            failures.append(repr(exc))
        finally:
            connections.close_all()

    # when
    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    # then
    assert not failures
    assert stored_sequences() == list(range(1, 122))
    assert verify_chain(iter_rows()).intact
