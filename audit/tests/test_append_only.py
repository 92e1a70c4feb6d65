"""The audit table is append-only: the ORM refuses changes, and on PostgreSQL so does a trigger."""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from audit.chain import Anchor, compute_hmac, iter_rows, verify_chain
from audit.models import Action, AuditEvent, Category
from audit.services import record
from audit.tests.conftest import add_events
from core import request_context


def test_saving_an_existing_event_is_refused(events: list[AuditEvent]) -> None:
    event = AuditEvent.objects.get(sequence=3)
    event.reason = "edited"

    with pytest.raises(PermissionError, match="append-only"):
        event.save()

    assert AuditEvent.objects.get(sequence=3).reason == ""


def test_deleting_an_event_is_refused(events: list[AuditEvent]) -> None:
    with pytest.raises(PermissionError, match="append-only"):
        AuditEvent.objects.get(sequence=3).delete()

    assert AuditEvent.objects.filter(sequence=3).exists()


def test_queryset_update_is_refused(events: list[AuditEvent]) -> None:
    with pytest.raises(PermissionError, match="append-only"):
        AuditEvent.objects.filter(sequence__lte=3).update(reason="edited")

    assert not AuditEvent.objects.filter(reason="edited").exists()


def test_queryset_delete_is_refused(events: list[AuditEvent]) -> None:
    with pytest.raises(PermissionError, match="append-only"):
        AuditEvent.objects.all().delete()

    assert AuditEvent.objects.count() == 9


def test_bulk_update_is_refused(events: list[AuditEvent]) -> None:
    rows = list(AuditEvent.objects.filter(sequence__lte=2))
    for row in rows:
        row.reason = "edited"

    with pytest.raises(PermissionError, match="append-only"):
        AuditEvent.objects.bulk_update(rows, ["reason"])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET reason = 'edited' WHERE sequence = 4",
        "DELETE FROM audit_auditevent WHERE sequence = 4",
        "TRUNCATE audit_auditevent",
    ],
)
def test_raw_sql_changes_are_rejected_by_the_database_on_postgresql(
    events: list[AuditEvent], statement: str
) -> None:
    if connection.vendor == "postgresql":
        # when / then: the trigger from migration 0002 refuses the statement
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
        assert AuditEvent.objects.count() == 9
        assert verify_chain(iter_rows()).intact
    else:
        # SQLite (the embedded demo database) has no such trigger: its protection is the ORM
        # guard above and detection by verify_audit, which the raw change cannot escape.
        sqlite_statement = statement.replace("TRUNCATE", "DELETE FROM")
        with connection.cursor() as cursor:
            cursor.execute(sqlite_statement)
        assert not verify_chain(iter_rows(), expect_last=Anchor(9, events[-1].hmac)).intact


def test_the_trigger_exists_only_where_the_database_supports_it(db: None) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname, tgenabled FROM pg_trigger "
                "WHERE tgrelid = 'audit_auditevent'::regclass AND NOT tgisinternal ORDER BY tgname"
            )
            # 'O': enabled (fires in the normal "origin" replication role)
            assert cursor.fetchall() == [
                ("audit_auditevent_no_truncate", "O"),
                ("audit_auditevent_no_update_delete", "O"),
            ]
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'audit_auditevent'"
            )
            assert cursor.fetchall() == []


def test_appending_still_works_with_the_trigger_in_place(events: list[AuditEvent]) -> None:
    add_events(2)

    assert list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True)) == [
        *range(1, 12)
    ]
    assert verify_chain(iter_rows()).intact


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "2001:DB8:0:0:0:0:0:1", "::ffff:192.0.2.10", "fe80::1%eth0", "bogus"],
)
def test_stored_rows_hash_the_same_after_a_round_trip_through_the_database(
    db: None, address: str
) -> None:
    # given: a request context with an unusual client address and a non-canonical patient id
    token = request_context.set_current(
        request_context.RequestContext(
            request_id="r" * 70, ip=address, user_agent="agent\x00with NUL", session_ref="s"
        )
    )
    try:
        record(
            actor=None,
            action=Action.READ,
            event="patient.view",
            category=Category.DEMOGRAPHICS,
            patient_public_id=str(uuid.UUID(int=7)).upper(),
            reason="line one\nline two ✓",
            fields=["family_name", "birth_date"],
        )
    finally:
        request_context.reset(token)

    # when
    row = AuditEvent.objects.values().get()

    # then
    assert compute_hmac(row) == row["hmac"]
    assert verify_chain(iter_rows()).intact
