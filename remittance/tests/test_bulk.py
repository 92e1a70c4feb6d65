"""The ingest's raw writers (remittance.bulk) store exactly what the ORM stores."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, models, transaction
from django.utils import timezone

from audit.models import AuditEvent
from billing.models import Claim, ClaimEvent
from billing.x12.edi835_samples import SampleClaim, SampleLine
from remittance import bulk, services
from remittance.models import (
    ClaimRemittance,
    Denial,
    LineRemittance,
    RemittanceAdjustment,
    RemittancePayment,
    UnmatchedRemittance,
)

from .conftest import SERVICE_DATE
from .test_ingest import DENIED_LINE, PAID_LINE, file_for, ingest

_SKIPPED = {"id", "public_id", "created_at", "updated_at"}
_MODELS: tuple[type[models.Model], ...] = (
    ClaimRemittance,
    LineRemittance,
    RemittanceAdjustment,
    UnmatchedRemittance,
    Denial,
    ClaimEvent,
)


def _orm_insert(model: type[models.Model], columns: Sequence[str], rows: Any) -> int:
    """What insert_rows does, through the ORM (model instances, bulk_create)."""
    objects = [model(**dict(zip(columns, row, strict=True))) for row in rows]
    model._default_manager.bulk_create(objects)
    return len(objects)


def _orm_update(model: type[models.Model], columns: Sequence[str], rows: Any) -> int:
    """What update_rows does, through the ORM (QuerySet.update prepares every field)."""
    for pk, *values in rows:
        model._default_manager.filter(pk=pk).update(**dict(zip(columns, values, strict=True)))
    return len(rows)


def _snapshot(claims: Sequence[Claim]) -> dict[str, list[dict[str, Any]]]:
    """The rows an ingest wrote, comparable between two runs: ids replaced by their rank among
    the rows of the same model (autoincrement ids are not reused after a rollback)."""
    ranks: dict[type[models.Model], dict[int, int]] = {
        model: {
            pk: n
            for n, pk in enumerate(
                model._default_manager.order_by("pk").values_list("pk", flat=True)
            )
        }
        for model in (*_MODELS, RemittancePayment)
    }
    taken: dict[str, list[dict[str, Any]]] = {}
    for model in _MODELS:
        rows = []
        for row in model._default_manager.order_by("pk").values():
            for field in model._meta.concrete_fields:
                target = field.related_model if field.is_relation else None
                if target in ranks and row[field.attname] is not None:
                    row[field.attname] = ranks[target][row[field.attname]]
            rows.append({k: v for k, v in row.items() if k not in _SKIPPED})
        taken[model.__name__] = rows
    taken["Claim"] = [
        {k: v for k, v in row.items() if k != "updated_at"}
        for row in Claim.objects.filter(pk__in=[c.pk for c in claims]).order_by("pk").values()
    ]
    taken["audit"] = list(
        AuditEvent.objects.filter(event__in=["denial.create", "claim.status"])
        .order_by("sequence")
        .values_list("event", "object_type", "patient_public_id", "fields", "reason")
    )
    return taken


def _awkward_file() -> bytes:
    """Paid, partly denied, denied and unmatched claim payments; text that COPY must escape."""
    denied = SampleLine(
        code="99214",
        charge=Decimal("80.00"),
        paid=Decimal("0"),
        adjustments=(("CO", "16", Decimal("80.00")),),
        service_date=SERVICE_DATE,
        remark_codes=("MA130", "N382"),
    )
    return file_for(
        SampleClaim("BK0000001", (PAID_LINE,), payer_claim_number="ICN\\1"),
        SampleClaim("BK0000002", (PAID_LINE, DENIED_LINE), patient_last="O\\BRIEN"),
        SampleClaim("BK0000003", (denied,), status="4"),
        SampleClaim("BK9999999", (PAID_LINE,), patient_first="NO\\MATCH"),
        trace="TRACE-BULK",
    )


def test_the_raw_writers_store_the_rows_the_orm_stores(make_claim, monkeypatch):
    # given claims an 835 pays, denies and misses
    claims = [
        make_claim("BK0000001"),
        make_claim("BK0000002", charges=("100.00", "100.00"), codes=("99213", "99213")),
        make_claim("BK0000003", charges=("80.00",), codes=("99214",)),
    ]
    data = _awkward_file()
    fixed = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: fixed)
    # when it is ingested by the raw writers (then undone) and through the ORM
    with transaction.atomic():
        fast_report = ingest(data)
        fast = _snapshot(claims)
        transaction.set_rollback(True)
    monkeypatch.setattr(services, "insert_rows", _orm_insert)
    monkeypatch.setattr(services, "update_rows", _orm_update)
    slow_report = ingest(data)
    slow = _snapshot(claims)
    # then the rows are the same, and there are rows of every kind
    assert (fast_report.matched, fast_report.unmatched) == (slow_report.matched, 1) == (3, 1)
    assert fast == slow
    assert {name: len(rows) for name, rows in fast.items()} == {
        "ClaimRemittance": 4,
        "LineRemittance": 5,
        "RemittanceAdjustment": 8,
        "UnmatchedRemittance": 1,
        "Denial": 2,
        "ClaimEvent": 6,
        "Claim": 3,
        "audit": 5,
    }
    assert fast["ClaimRemittance"][1]["patient_last_name"] == "O\\BRIEN"
    assert fast["Claim"][0]["payer_claim_number"] == "ICN\\1"
    # and each denial's audit event names the denial
    for denial in Denial.objects.all():
        assert AuditEvent.objects.filter(
            event="denial.create", object_type="remittance.Denial", object_id=str(denial.public_id)
        ).exists()


def test_insert_rows_writes_every_kind_of_value_as_the_orm_does(make_claim):
    # given a claim remittance row with text that needs escaping, NULLs, dates and booleans
    claim = make_claim("BK0000009")
    ingest(file_for(SampleClaim("BK0000009", (PAID_LINE,))))
    parent = ClaimRemittance.objects.get()
    now = parent.created_at
    values = {
        "claim_remittance_id": parent.pk,
        "position": 7,
        "claim_line_id": None,
        "qualifier": "HC",
        "code": "tab\there\\back\nline\rcr",
        "modifiers": "",
        "original_code": "HC:99213:25",
        "charge": Decimal("1234567.89"),
        "paid": Decimal("-0.01"),
        "units": None,
        "service_date": SERVICE_DATE,
        "control_number": "ü€",
        "allowed": Decimal("0"),
        "remark_codes": "N1,N2",
    }
    columns = ["public_id", "created_at", "updated_at", *values]
    # when the same values go through insert_rows and through the ORM
    fast_id, slow_id = uuid.uuid4(), uuid.uuid4()
    bulk.insert_rows(LineRemittance, columns, [(fast_id, now, now, *values.values())])
    LineRemittance.objects.create(public_id=slow_id, **values)
    # then the stored rows are equal
    fast = LineRemittance.objects.filter(public_id=fast_id).values().get()
    slow = LineRemittance.objects.filter(public_id=slow_id).values().get()
    assert {k: v for k, v in fast.items() if k not in _SKIPPED} == {
        k: v for k, v in slow.items() if k not in _SKIPPED
    }
    assert fast["code"] == values["code"]
    stored = list(values)
    assert _stored(LineRemittance, stored, fast["id"]) == _stored(
        LineRemittance, stored, slow["id"]
    )
    assert fast["created_at"] == now
    assert claim.pk


@pytest.mark.parametrize("copy_from", [1, 10**9], ids=["copy-into-temporary", "unnest"])
def test_update_rows_writes_what_save_writes(make_claim, monkeypatch, copy_from):
    # given two equal claims (and, on PostgreSQL, either way of sending the values)
    monkeypatch.setattr(bulk, "_COPY_UPDATE_FROM", copy_from)
    first, second = make_claim("BK0000010"), make_claim("BK0000011")
    stamp = first.created_at
    changes = {
        "status": "paid",
        "status_changed_at": stamp,
        "adjudicated_at": None,
        "paid_amount": Decimal("12.34"),
        "patient_responsibility": Decimal("0.50"),
        "payer_claim_number": "A\tB\\C",
        "updated_at": stamp,
    }
    # when one is updated by update_rows and the other saved through the ORM
    bulk.update_rows(Claim, list(changes), [(first.pk, *changes.values())])
    for name, value in changes.items():
        setattr(second, name, value)
    Claim.objects.filter(pk=second.pk).update(**changes)
    # then the changed columns hold the same values, as stored (not only as read back)
    fast = Claim.objects.filter(pk=first.pk).values(*changes).get()
    slow = Claim.objects.filter(pk=second.pk).values(*changes).get()
    assert fast == slow == changes
    assert _stored(Claim, list(changes), first.pk) == _stored(Claim, list(changes), second.pk)


def _stored(model: type[models.Model], columns: list[str], pk: int) -> tuple[Any, ...]:
    """The columns of one row as the database driver returns them (no field conversion)."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {names} FROM {quote(model._meta.db_table)} WHERE id = %s",  # noqa: S608
            [pk],
        )
        return tuple(cursor.fetchone())


def test_uuid4_many_makes_distinct_version_4_uuids():
    made = bulk.uuid4_many(500)
    assert len(set(made)) == 500
    for value in made[:50]:
        assert value.version == 4
        assert value.variant == uuid.RFC_4122
        assert uuid.UUID(str(value)) == value
        assert hash(uuid.UUID(value.hex)) == hash(value)
    assert bulk.uuid4_many(0) == []


def test_uuid4_many_sets_the_bits_uuid4_sets_on_the_random_bytes(monkeypatch):
    # given the random source's bytes
    data = bytes(range(256)) * 2
    monkeypatch.setattr(bulk.os, "urandom", lambda size: data[:size])
    # when
    made = bulk.uuid4_many(32)
    # then each id is UUID(bytes=..., version=4) of its 16 bytes, equal in every respect
    expected = [uuid.UUID(bytes=data[at : at + 16], version=4) for at in range(0, 512, 16)]
    assert made == expected
    assert [(m.int, m.is_safe, str(m)) for m in made] == [
        (e.int, e.is_safe, str(e)) for e in expected
    ]


def test_lean_claims_are_the_claims_the_orm_reads(make_claim):
    # given claims
    claims = [make_claim(f"LEAN{n}") for n in range(3)]
    wanted = [c.patient_control_number for c in claims]
    # when read lean and through the ORM
    lean = sorted(services._lean_claims(patient_control_number__in=wanted), key=lambda c: c.pk)
    orm = sorted(services._claims().filter(patient_control_number__in=wanted), key=lambda c: c.pk)
    # then the same instances: fields read, fields deferred, saved state
    assert [c.pk for c in lean] == [c.pk for c in orm] == sorted(c.pk for c in claims)
    for mine, theirs in zip(lean, orm, strict=True):
        assert type(mine) is Claim
        assert {k: v for k, v in vars(mine).items() if k != "_state"} == {
            k: v for k, v in vars(theirs).items() if k != "_state"
        }
        assert mine.get_deferred_fields() == theirs.get_deferred_fields()
        assert (mine._state.adding, mine._state.db) == (False, theirs._state.db)
        assert mine.total_charge == Claim.objects.get(pk=mine.pk).total_charge  # deferred: read
    # and with init receivers connected, through the ORM itself
    from django.db.models.signals import post_init

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    post_init.connect(receiver, sender=Claim)
    try:
        read = services._lean_claims(patient_control_number__in=wanted)
    finally:
        post_init.disconnect(receiver, sender=Claim)
    assert sorted(seen) == sorted(c.pk for c in read) == sorted(c.pk for c in claims)
