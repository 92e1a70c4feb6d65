"""The 835 poster's overlapped writes (remittance.bulk.Writes, allocate_ids) and the audit
batch's HMAC payload: same rows, same chain, nothing half-posted when something fails."""

from __future__ import annotations

import copy
import datetime as dt
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import services as audit_services
from billing.models import Claim, ClaimStatus
from remittance import bulk, services
from remittance.models import ClaimRemittance, LineRemittance, RemittanceAdjustment

from .test_ingest import PAID_LINE, AuditEvent, SampleClaim, file_for, ingest, row_counts

# --- the audit batch's payload ---------------------------------------------------------------

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
_SHARED = st.sampled_from(["", "system", 'a "quoted" \\ name', "é ✓ 𝄞", "\n\t\x01"])


def _row(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": values["user_id"],
        "username": values["username"],
        "roles": values["roles"],
        "session_ref": values["session_ref"],
        "patient_public_id": values["patient_public_id"],
        "action": "update",
        "event": values["event"],
        "category": "billing",
        "object_type": values["object_type"],
        "object_id": values["object_id"],
        "outcome": "success",
        "ip": values["ip"],
        "user_agent": values["user_agent"],
        "request_id": "",
        "reason": values["reason"],
        "fields": values["fields"],
    }


_ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "user_id": st.one_of(st.none(), st.integers(1, 5)),
            "username": _SHARED,
            "roles": _SHARED,
            "session_ref": _SHARED,
            "patient_public_id": st.one_of(st.none(), st.sampled_from([str(uuid.UUID(int=7))])),
            "event": st.one_of(_SHARED, _TEXT),
            "object_type": _SHARED,
            "object_id": st.one_of(_SHARED, _TEXT),
            "ip": st.sampled_from([None, "203.0.113.7", "2001:db8::1"]),
            "user_agent": _SHARED,
            "reason": st.one_of(_SHARED, _TEXT),
            "fields": st.lists(st.one_of(_SHARED, _TEXT), max_size=3).map(sorted),
        }
    ).map(_row),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(rows=_ROWS)
def test_the_batch_chain_is_the_chain_record_computes(rows: list[dict[str, Any]]) -> None:
    """_chain_batch (record_many) hashes the payload _chain_rows (record) hashes, byte for
    byte, whatever the text: the same sequences, times, links and HMACs (each row twice, so
    that the batch reuses what it encoded)."""
    fixed = dt.datetime(2026, 11, 23, 7, 0, 0, 123456, tzinfo=dt.UTC)
    original = timezone.now
    timezone.now = lambda: fixed
    try:
        reference = [copy.deepcopy(row) for row in rows + rows]
        audit_services._chain_rows(reference, (41, "f" * 64))
        batched = [copy.deepcopy(row) for row in rows + rows]
        audit_services._chain_batch(batched, (41, "f" * 64))
    finally:
        timezone.now = original
    assert batched == reference
    assert [row["sequence"] for row in batched] == list(range(42, 42 + 2 * len(rows)))


# --- Writes and allocate_ids ----------------------------------------------------------------


def _claim_remittance_row(payment_id: int, claim: Claim, position: int) -> tuple[Any, ...]:
    now = timezone.now()
    return (
        uuid.uuid4(),
        now,
        now,
        payment_id,
        position,
        claim.pk,
        claim.patient_id,
        "pcn",
        claim.patient_control_number,
        "1",
        Decimal("100.00"),
        Decimal("80.00"),
        Decimal("20.00"),
        "",
        "",
        None,
        None,
        "",
        "",
        "",
        False,
        False,
    )


def test_allocated_ids_are_new_ascending_ids_of_the_table(make_claim):
    # given
    make_claim("BW0000001")
    ingest(file_for(SampleClaim("BW0000001", (PAID_LINE,)), trace="BW-1"))
    highest = ClaimRemittance.objects.order_by("-pk").values_list("pk", flat=True).first()
    # when
    ids = bulk.allocate_ids(ClaimRemittance, 3)
    # then: PostgreSQL hands out three fresh ids in order; SQLite leaves them to the INSERT
    if connection.vendor == "postgresql":
        assert ids is not None
        assert len(ids) == 3
        assert ids == sorted(ids)
        assert highest is not None
        assert ids[0] > highest
    else:
        assert ids is None


def test_writes_run_in_the_helper_thread_on_postgresql_and_in_order(make_claim, monkeypatch):
    # given
    claims = [make_claim(f"BW00000{n}2") for n in range(3)]
    ingest(file_for(SampleClaim(claims[0].patient_control_number, (PAID_LINE,)), trace="BW-2"))
    payment_id = ClaimRemittance.objects.get().payment_id
    threads: list[str] = []
    real_copy_rows = bulk.copy_rows

    def watched(*args: Any, **kwargs: Any) -> int:
        threads.append(threading.current_thread().name)
        return real_copy_rows(*args, **kwargs)

    monkeypatch.setattr(bulk, "copy_rows", watched)
    rows = [_claim_remittance_row(payment_id, c, n) for n, c in enumerate(claims, start=10)]
    # when
    with transaction.atomic(), bulk.Writes() as writes:
        for row in rows:
            writes.insert(ClaimRemittance, services._CLAIM_REMITTANCE_COLUMNS, [row])
        writes.check_constraints(ClaimRemittance)
    # then
    stored = list(
        ClaimRemittance.objects.filter(position__gte=10)
        .order_by("pk")
        .values_list("public_id", "position")
    )
    assert stored == [(row[0], row[4]) for row in rows]
    if connection.vendor == "postgresql":
        assert threads == ["remittance-writes"] * 3
    else:
        assert threads == []


@pytest.mark.django_db(transaction=True)
def test_a_foreign_key_the_helper_checks_fails_as_an_integrity_error(make_claim):
    # given a line pointing at no claim remittance
    make_claim("BW0000003")
    now = timezone.now()
    bad = (uuid.uuid4(), now, now, 10**9, 1, None, "HC", "99213", "", "")
    bad += (None, None, None, None, "", None, "")
    columns = services._LINE_COLUMNS
    before = LineRemittance.objects.count()

    # when / then: raised when the checks run (early on PostgreSQL, at COMMIT on SQLite)
    def write_bad_line(*, then_read: bool) -> None:
        with transaction.atomic(), bulk.Writes() as writes:
            writes.insert(LineRemittance, columns, [bad])
            writes.check_constraints(LineRemittance, RemittanceAdjustment)
            if then_read:  # a statement of the caller's after the failed check
                LineRemittance.objects.count()

    with pytest.raises(IntegrityError):
        write_bad_line(then_read=False)
    with pytest.raises(IntegrityError):
        write_bad_line(then_read=True)
    assert LineRemittance.objects.count() == before


def test_a_crash_while_the_helper_writes_leaves_nothing_posted(make_claim, monkeypatch):
    # given
    claim = make_claim("BW0000004")
    before = row_counts()
    audit_rows = AuditEvent.objects.count()

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("lost the connection")

    # the CAS rows' INSERT fails: in the helper thread on PostgreSQL, inline on SQLite
    table = connection.ops.quote_name(RemittanceAdjustment._meta.db_table)
    real_copy_rows, real_flush = bulk.copy_rows, bulk._flush

    def copy_or_crash(cursor: Any, name: str, *args: Any, **kwargs: Any) -> int:
        return crash() if name == table else real_copy_rows(cursor, name, *args, **kwargs)

    def flush_or_crash(cursor: Any, head: str, *args: Any, **kwargs: Any) -> int:
        return crash() if table in head else real_flush(cursor, head, *args, **kwargs)

    monkeypatch.setattr(bulk, "copy_rows", copy_or_crash)
    monkeypatch.setattr(bulk, "_flush", flush_or_crash)
    # when
    with pytest.raises(RuntimeError, match="lost the connection"):
        ingest(file_for(SampleClaim("BW0000004", (PAID_LINE,)), trace="BW-4"))
    # then
    assert row_counts() == before
    assert AuditEvent.objects.count() == audit_rows
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED


def test_a_crash_while_planning_leaves_nothing_posted(make_claim, monkeypatch):
    # given the background writes under way when the planning fails
    claim = make_claim("BW0000005")
    before = row_counts()

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(services._Poster, "_plan_claims", crash)
    # when
    with pytest.raises(RuntimeError, match="bug"):
        ingest(file_for(SampleClaim("BW0000005", (PAID_LINE,)), trace="BW-5"))
    # then
    assert row_counts() == before
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED


# --- the indexes the poster writes ----------------------------------------------------------


def _plan(sql: str, params: list[Any]) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row) for row in cursor.fetchall())


def test_lookups_by_claim_line_and_by_claim_still_use_an_index(make_claim):
    # given
    make_claim("BW0000006")
    ingest(file_for(SampleClaim("BW0000006", (PAID_LINE,)), trace="BW-6"))
    line_table = connection.ops.quote_name(LineRemittance._meta.db_table)
    claim_table = connection.ops.quote_name(ClaimRemittance._meta.db_table)
    # when: a claim line's PROTECT check and a claim's remittances are looked up
    by_line = _plan(f"SELECT id FROM {line_table} WHERE claim_line_id IN (%s, %s)", [1, 2])  # noqa: S608
    by_claim = _plan(f"SELECT id FROM {claim_table} WHERE claim_id = %s", [1])  # noqa: S608
    # then the partial index serves the first, the foreign key's index the second
    assert "remit_line_claim_line_idx" in by_line
    assert "remittance_claimremittance_claim_id" in by_claim  # the foreign key's index
    assert "remit_claimremit_claim_idx" not in by_claim
