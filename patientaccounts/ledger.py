"""Posting to the patient ledger: the only way money moves (import from here).

    journal_post(actor=..., posting=Posting(patient=p, kind=TransactionKind.CHARGE, lines=[
        Line(LedgerAccount.INSURANCE_AR, Decimal("120.00")),
        Line(LedgerAccount.GROSS_CHARGES, Decimal("-120.00")),
    ], service_date=..., claim_reference=..., source="charge", idempotency_key="charge:<id>"))

Amounts are Decimals in cents; positive = debit, negative = credit; the lines of one posting
sum to zero or nothing is saved. Every posting has a patient except provider adjustments, and
insurance payments that hold an unmatched 835 claim payment's cash (cash and unapplied lines
only; migration 0004 allows them in the database). An idempotency key already used returns the
existing transaction (a retried post creates one); the same key with different content is refused.

Every posting (journal_post, journal_post_many, journal_reverse) also adds its INSURANCE_AR and
PATIENT_AR lines to the running A/R balances (receivables.balances.apply_postings) in the same
database transaction: one aggregated UPSERT per balance table and call, so the current-date
aging report reads those small tables instead of the ledger. A retried post (existing key)
changes nothing there either.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, cast

from django.db import IntegrityError, connection
from django.db import transaction as db_transaction
from django.db.models import Field, signals
from django.db.models.base import ModelState
from django.utils import timezone

from audit.models import Action, Category
from audit.services import record, record_many
from core.bulk_sql import binary_types, copy_rows
from patientaccounts.models import JournalEntry, JournalTransaction, LedgerAccount, TransactionKind
from receivables.balances import PostedLines, apply_postings

if TYPE_CHECKING:
    from accounts.models import User
    from patients.models import Patient

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")  # DecimalField(12, 2)
_LIMITS = {"memo": 200, "claim_reference": 64, "payer_reference": 80, "source": 120}
_KEY_LIMIT = 120
_LOOKUP_CHUNK = 5000
_COPY_FROM = 100  # rows: from here on PostgreSQL gets COPY instead of executemany
_ACCOUNTS = frozenset(LedgerAccount.values)
_KINDS = frozenset(TransactionKind.values)
_UNAPPLIED_ONLY = frozenset({LedgerAccount.CASH.value, LedgerAccount.UNAPPLIED.value})


class LedgerError(ValueError):
    """A posting the ledger refuses; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Line:
    account: LedgerAccount | str
    amount: Decimal  # +debit / -credit


@dataclass(frozen=True)
class Posting:
    patient: Patient | None
    kind: TransactionKind | str
    lines: Sequence[Line]
    memo: str = ""
    service_date: dt.date | None = None
    claim_reference: str = ""
    payer_reference: str = ""
    source: str = ""
    idempotency_key: str | None = None
    posted_at: dt.datetime | None = None  # defaults to now; for back-dated imports and demo data


def money(value: object, *, field: str = "amount") -> Decimal:
    """A Decimal in whole cents, or LedgerError naming `field` (floats are refused)."""
    if isinstance(value, float | bool):
        raise LedgerError(field, "must be a Decimal, not a float.")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise LedgerError(field, "is not a number.") from exc
    if not amount.is_finite():
        raise LedgerError(field, "must be a finite number.")
    if amount != amount.quantize(CENT):
        raise LedgerError(field, "must be in whole cents (two decimal places at most).")
    if abs(amount) > MAX_AMOUNT:
        raise LedgerError(field, "is too large.")
    return amount.quantize(CENT)


def _validate(posting: Posting) -> list[tuple[str, Decimal]]:
    """The posting's lines as (account, amount), or LedgerError naming the problem."""
    if str(posting.kind) not in _KINDS:
        raise LedgerError("kind", f"'{posting.kind}' is not a transaction kind.")
    without_patient = (TransactionKind.PROVIDER_ADJUSTMENT, TransactionKind.INSURANCE_PAYMENT)
    if posting.patient is None and posting.kind not in without_patient:
        raise LedgerError("patient", "is required (only provider adjustments have none).")
    if posting.patient is not None and posting.patient.pk is None:
        raise LedgerError("patient", "must be a saved patient.")
    for name, limit in _LIMITS.items():
        if len(getattr(posting, name) or "") > limit:
            raise LedgerError(name, f"must be at most {limit} characters.")
    key = posting.idempotency_key
    if key is not None and (not key.strip() or len(key) > _KEY_LIMIT):
        raise LedgerError("idempotency_key", f"must be 1 to {_KEY_LIMIT} characters.")
    if posting.posted_at is not None and timezone.is_naive(posting.posted_at):
        raise LedgerError("posted_at", "must be timezone-aware.")
    lines = list(posting.lines)
    if len(lines) < 2:
        raise LedgerError("lines", "a transaction needs at least two lines (a debit and a credit).")
    checked = []
    for number, line in enumerate(lines, start=1):
        if str(line.account) not in _ACCOUNTS:
            raise LedgerError(f"lines[{number}].account", f"'{line.account}' is not an account.")
        amount = money(line.amount, field=f"lines[{number}].amount")
        if amount == 0:
            raise LedgerError(f"lines[{number}].amount", "must not be zero.")
        checked.append((str(line.account), amount))
    # Without a patient, an insurance payment is an unmatched 835 claim payment's cash, held as
    # unapplied (remittance.services): nothing else.
    unapplied = {account for account, _ in checked} <= _UNAPPLIED_ONLY
    if (
        posting.patient is None
        and posting.kind == TransactionKind.INSURANCE_PAYMENT
        and not unapplied
    ):
        raise LedgerError(
            "lines", "an insurance payment without a patient moves cash and unapplied only."
        )
    total = sum((amount for _, amount in checked), Decimal("0.00"))
    if total != 0:
        raise LedgerError("lines", f"debits and credits must balance (they differ by {total:.2f}).")
    return checked


def _fingerprint(
    *,
    patient_id: int | None,
    kind: str,
    lines: Iterable[tuple[str, Decimal]],
    service_date: dt.date | None,
    claim_reference: str,
    payer_reference: str,
) -> tuple[Any, ...]:
    return (
        patient_id,
        kind,
        frozenset(Counter((account, amount.quantize(CENT)) for account, amount in lines).items()),
        service_date,
        claim_reference,
        payer_reference,
    )


def _posting_fingerprint(posting: Posting, lines: list[tuple[str, Decimal]]) -> tuple[Any, ...]:
    return _fingerprint(
        patient_id=posting.patient.pk if posting.patient is not None else None,
        kind=str(posting.kind),
        lines=lines,
        service_date=posting.service_date,
        claim_reference=posting.claim_reference,
        payer_reference=posting.payer_reference,
    )


def _stored_fingerprint(txn: JournalTransaction) -> tuple[Any, ...]:
    return _fingerprint(
        patient_id=txn.patient_id,
        kind=txn.kind,
        lines=[(entry.account, entry.amount) for entry in txn.entries.all()],
        service_date=txn.service_date,
        claim_reference=txn.claim_reference,
        payer_reference=txn.payer_reference,
    )


def _existing_for_keys(keys: Iterable[str]) -> dict[str, JournalTransaction]:
    wanted = sorted(set(keys))
    found: dict[str, JournalTransaction] = {}
    # In chunks: SQLite refuses statements with more than 32,766 parameters.
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        rows = JournalTransaction.objects.filter(
            idempotency_key__in=wanted[start : start + _LOOKUP_CHUNK]
        ).prefetch_related("entries")
        found.update((str(txn.idempotency_key), txn) for txn in rows)
    return found


def _same_or_refuse(
    existing: JournalTransaction, posting: Posting, lines: list[tuple[str, Decimal]]
) -> JournalTransaction:
    if _stored_fingerprint(existing) != _posting_fingerprint(posting, lines):
        raise LedgerError(
            "idempotency_key",
            f"'{posting.idempotency_key}' was already used for a different transaction.",
        )
    return existing


def _build(
    *, actor: User | None, posting: Posting, now: dt.datetime, reverses: JournalTransaction | None
) -> JournalTransaction:
    return JournalTransaction(
        patient=posting.patient,
        kind=str(posting.kind),
        posted_at=posting.posted_at or now,
        posted_by=actor if actor is not None and actor.is_authenticated else None,
        memo=posting.memo,
        service_date=posting.service_date,
        claim_reference=posting.claim_reference,
        payer_reference=posting.payer_reference,
        source=posting.source,
        idempotency_key=posting.idempotency_key,
        reverses=reverses,
    )


def _insert_entries(rows: Iterable[tuple[JournalTransaction, list[tuple[str, Decimal]]]]) -> None:
    """Insert the entries of saved transactions with one executemany (the bulk path's hot loop:
    no model instances). Values are adapted as the ORM would for this database."""
    ops = connection.ops
    params = [
        (
            txn.pk,
            account,
            ops.adapt_decimalfield_value(amount, 12, 2),
            txn.patient_id,
            ops.adapt_datefield_value(txn.service_date),
        )
        for txn, lines in rows
        for account, amount in lines
    ]
    if not params:
        return
    table = connection.ops.quote_name(JournalEntry._meta.db_table)
    columns = "transaction_id, account, amount, patient_id, service_date"
    sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s)"  # noqa: S608
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(params) > _COPY_FROM:
            types = binary_types(
                JournalEntry, ("transaction_id", "account", "amount", "patient_id", "service_date")
            )
            copy_rows(cursor, table, columns, params, types)
            return
        for start in range(0, len(params), 2000):
            cursor.executemany(sql, params[start : start + 2000])


def _posted(txn: JournalTransaction, lines: list[tuple[str, Decimal]]) -> PostedLines:
    return PostedLines(
        kind=txn.kind,
        claim_reference=txn.claim_reference,
        patient_id=txn.patient_id,
        service_date=txn.service_date,
        lines=lines,
    )


def _audit_spec(actor: User | None, txn: JournalTransaction, event: str) -> dict[str, Any]:
    return {
        "actor": actor,
        "action": Action.CREATE,
        "event": event,
        "category": Category.PAYMENTS,
        "patient_public_id": txn.patient.public_id if txn.patient is not None else None,
        "obj": txn,
        "fields": ["kind", "lines", "amount"],
        "username": "" if actor is not None else "system",
    }


def _insert(
    *,
    actor: User | None,
    posting: Posting,
    lines: list[tuple[str, Decimal]],
    reverses: JournalTransaction | None = None,
    event: str = "ledger.post",
) -> JournalTransaction:
    txn = _build(actor=actor, posting=posting, now=timezone.now(), reverses=reverses)
    txn.save(force_insert=True)
    _insert_entries([(txn, lines)])
    apply_postings([_posted(txn, lines)])
    record(**_audit_spec(actor, txn, event))
    return txn


def journal_post(*, actor: User | None, posting: Posting) -> JournalTransaction:
    """Post one balanced transaction (atomic, audited). Idempotent on `posting.idempotency_key`."""
    lines = _validate(posting)
    key = posting.idempotency_key
    with db_transaction.atomic():
        if key is not None:
            existing = _existing_for_keys([key]).get(key)
            if existing is not None:
                return _same_or_refuse(existing, posting, lines)
            try:
                with db_transaction.atomic():
                    return _insert(actor=actor, posting=posting, lines=lines)
            except IntegrityError:
                # A concurrent post with the same key won the race: answer with its row.
                existing = _existing_for_keys([key]).get(key)
                if existing is None:
                    raise
                return _same_or_refuse(existing, posting, lines)
        return _insert(actor=actor, posting=posting, lines=lines)


def journal_post_many(
    *, actor: User | None, postings: Sequence[Posting]
) -> list[JournalTransaction]:
    """Post many transactions at once (835 posting, demo seeding): all or nothing.

    Same validation and idempotency as `journal_post`; one bulk insert per table and one
    `record_many` for the audit trail. Returns one transaction per posting, in order (a
    repeated key answers with the same transaction). The rows are those `journal_post` writes;
    they are inserted with raw executemany / multi-row VALUES (no per-object ORM work).
    """
    checked = []
    for number, posting in enumerate(postings, start=1):
        try:
            checked.append((posting, _validate(posting)))
        except LedgerError as exc:
            raise LedgerError(f"postings[{number}].{exc.field}", exc.message) from exc
    now = timezone.now()
    with db_transaction.atomic():
        existing = _existing_for_keys(p.idempotency_key for p, _ in checked if p.idempotency_key)
        # Each item: an existing transaction, or the index of a new posting in `new`.
        result: list[JournalTransaction | int] = []
        new: list[tuple[Posting, list[tuple[str, Decimal]]]] = []
        seen: dict[str, int] = {}
        for posting, lines in checked:
            key = posting.idempotency_key
            if key is not None and key in existing:
                result.append(_same_or_refuse(existing[key], posting, lines))
                continue
            if key is not None and key in seen:
                first_posting, first_lines = new[seen[key]]
                if _posting_fingerprint(first_posting, first_lines) != _posting_fingerprint(
                    posting, lines
                ):
                    raise LedgerError(
                        "idempotency_key", f"'{key}' appears twice with different content."
                    )
                result.append(seen[key])
                continue
            if key is not None:
                seen[key] = len(new)
            result.append(len(new))
            new.append((posting, lines))
        created = _insert_transactions(actor=actor, postings=[p for p, _ in new], now=now)
        if created:
            _insert_entries(zip(created, (lines for _, lines in new), strict=True))
            apply_postings(
                _posted(txn, lines) for txn, (_, lines) in zip(created, new, strict=True)
            )
            record_many(_audit_spec(actor, txn, "ledger.post") for txn in created)
    return [created[item] if isinstance(item, int) else item for item in result]


_TRANSACTION_COLUMNS = (
    "public_id",
    "created_at",
    "updated_at",
    "patient_id",
    "kind",
    "posted_at",
    "posted_by_id",
    "memo",
    "service_date",
    "claim_reference",
    "payer_reference",
    "source",
    "idempotency_key",
    "reverses_id",
)


def _insert_transactions(
    *, actor: User | None, postings: Sequence[Posting], now: dt.datetime
) -> list[JournalTransaction]:
    """INSERT new transactions (no reversals) as `_build` + save would, in one executemany
    (SQLite) or one binary COPY with ids taken from the table's sequence first (PostgreSQL);
    the saved objects, in order."""
    if not postings:
        return []
    ops = connection.ops
    postgres = connection.vendor == "postgresql"
    user = actor if actor is not None and actor.is_authenticated else None
    user_id = user.pk if user is not None else None
    times: dict[dt.datetime, Any] = {}
    dates: dict[dt.date | None, Any] = {}

    def adapt_time(value: dt.datetime) -> Any:
        if value not in times:
            times[value] = ops.adapt_datetimefield_value(value)
        return times[value]

    def adapt_date(value: dt.date | None) -> Any:
        if value not in dates:
            dates[value] = ops.adapt_datefield_value(value)
        return dates[value]

    stamp = adapt_time(now)
    public_ids = _uuid4_many(len(postings))
    values = [
        (
            public_id if postgres else public_id.hex,
            stamp,
            stamp,
            posting.patient.pk if posting.patient is not None else None,
            str(posting.kind),
            adapt_time(posting.posted_at) if posting.posted_at is not None else stamp,
            user_id,
            posting.memo,
            adapt_date(posting.service_date),
            posting.claim_reference,
            posting.payer_reference,
            posting.source,
            posting.idempotency_key,
            None,
        )
        for public_id, posting in zip(public_ids, postings, strict=True)
    ]
    if postgres:
        pks = _allocate_transaction_ids(len(values))
        _copy_with_ids(pks, values)
    else:
        ids = _insert_returning_ids(values)
        pks = [ids[public_id] for public_id in public_ids]
    init_signals = signals.pre_init.has_listeners(
        JournalTransaction
    ) or signals.post_init.has_listeners(JournalTransaction)
    created = []
    for pk, public_id, posting in zip(pks, public_ids, postings, strict=True):
        fields = {
            "id": pk,
            "public_id": public_id,
            "created_at": now,
            "updated_at": now,
            "patient_id": posting.patient.pk if posting.patient is not None else None,
            "kind": str(posting.kind),
            "posted_at": posting.posted_at or now,
            "posted_by_id": user_id,
            "memo": posting.memo,
            "service_date": posting.service_date,
            "claim_reference": posting.claim_reference,
            "payer_reference": posting.payer_reference,
            "source": posting.source,
            "idempotency_key": posting.idempotency_key,
            "reverses_id": None,
        }
        created.append(_saved_instance(fields, posting.patient, user, slow=init_signals))
    return created


_UUID_SET_INT = uuid.UUID.__dict__["int"].__set__
_UUID_SET_SAFE = uuid.UUID.__dict__["is_safe"].__set__
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)
_TWO_HALVES = struct.Struct(">QQ")


def _uuid4_many(count: int) -> list[uuid.UUID]:
    """`count` random (version 4) UUIDs as `uuid.uuid4()` makes them, from one read of the
    random source (the bulk path's ids; as remittance.bulk.uuid4_many, which this app does not
    import)."""
    unknown = uuid.SafeUUID.unknown
    made: list[uuid.UUID] = []
    for high, low in _TWO_HALVES.iter_unpack(os.urandom(16 * count)):
        one = object.__new__(uuid.UUID)
        _UUID_SET_INT(one, ((high << 64) | low) & _UUID4_CLEAR | _UUID4_SET)
        _UUID_SET_SAFE(one, unknown)
        made.append(one)
    return made


def _allocate_transaction_ids(count: int) -> list[int]:
    """PostgreSQL: `count` new ids from the transaction table's id sequence, ascending (those
    INSERTs of `count` rows without ids would take, in their order; the sequence hands each id
    out once, so other writers' rows cannot take them)."""
    meta = JournalTransaction._meta
    column = str(cast("Field[Any, Any]", meta.pk).column)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [connection.ops.quote_name(meta.db_table), column, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _column_list(names: Sequence[str]) -> str:
    """The quoted, comma-separated columns of JournalTransaction fields `names`."""
    quote = connection.ops.quote_name
    meta = JournalTransaction._meta
    return ", ".join(quote(str(cast("Field[Any, Any]", meta.get_field(c)).column)) for c in names)


def _copy_with_ids(pks: list[int], values: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: INSERT transaction rows (`values` in `_TRANSACTION_COLUMNS` order) with the
    ids `pks` by one binary COPY: no reading the ids back afterwards."""
    names = ("id", *_TRANSACTION_COLUMNS)
    with connection.cursor() as cursor:
        copy_rows(
            cursor,
            connection.ops.quote_name(JournalTransaction._meta.db_table),
            _column_list(names),
            [(pk, *row) for pk, row in zip(pks, values, strict=True)],
            binary_types(JournalTransaction, names),
        )


def _insert_returning_ids(values: list[tuple[Any, ...]]) -> dict[uuid.UUID, int]:
    """SQLite: INSERT transaction rows; {public_id: id} of the rows written (PostgreSQL takes
    the ids first: `_allocate_transaction_ids`)."""
    table = connection.ops.quote_name(JournalTransaction._meta.db_table)
    marks = "(" + ", ".join(["%s"] * len(_TRANSACTION_COLUMNS)) + ")"
    head = f"INSERT INTO {table} ({_column_list(_TRANSACTION_COLUMNS)}) VALUES "  # noqa: S608
    ids: dict[uuid.UUID, int] = {}
    with connection.cursor() as cursor:
        # The write lock is held from the first INSERT to the commit, and AUTOINCREMENT ids only
        # grow, so this batch's rows are among those above the highest id seen before.
        cursor.execute(f"SELECT MAX(id) FROM {table}")  # noqa: S608
        (before,) = cursor.fetchone()
        for start in range(0, len(values), 2000):
            cursor.executemany(head + marks, values[start : start + 2000])
        cursor.execute(
            f"SELECT public_id, id FROM {table} WHERE id > %s",  # noqa: S608
            [before or 0],
        )
        ids.update((uuid.UUID(public_id), pk) for public_id, pk in cursor.fetchall())
    return ids


def _saved_instance(
    fields: dict[str, Any], patient: Patient | None, user: User | None, *, slow: bool
) -> JournalTransaction:
    """A saved JournalTransaction holding `fields`, with its patient and poster cached as
    bulk_create leaves them. Assembled directly unless pre/post_init receivers need __init__."""
    if slow:
        txn = JournalTransaction(**fields)
    else:
        txn = JournalTransaction.__new__(JournalTransaction)
        txn.__dict__.update(fields)
        txn._state = ModelState()
    txn._state.adding, txn._state.db = False, connection.alias
    txn._state.fields_cache.update({"patient": patient, "posted_by": user, "reverses": None})
    return txn


def journal_reverse(
    *, actor: User, transaction: JournalTransaction, reason: str
) -> JournalTransaction:
    """Post the exact negation of `transaction` (once). `reason` is a short, non-clinical memo."""
    original = transaction
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("reason", "is required to reverse a transaction.")
    if len(reason) > _LIMITS["memo"]:
        raise LedgerError("reason", f"must be at most {_LIMITS['memo']} characters.")
    if original.pk is None:
        raise LedgerError("transaction", "must be a posted transaction.")
    if original.kind == TransactionKind.REVERSAL:
        raise LedgerError("transaction", "a reversal cannot itself be reversed.")
    lines = [(entry.account, -entry.amount) for entry in original.entries.all()]
    posting = Posting(
        patient=original.patient,
        kind=TransactionKind.REVERSAL,
        lines=[Line(account, amount) for account, amount in lines],
        memo=reason,
        service_date=original.service_date,
        claim_reference=original.claim_reference,
        payer_reference=original.payer_reference,
        source=f"reversal:{original.public_id}",
    )
    _validate(posting)
    already = LedgerError("transaction", "has already been reversed.")
    with db_transaction.atomic():
        if JournalTransaction.objects.filter(reverses=original).exists():
            raise already
        try:
            with db_transaction.atomic():
                return _insert(
                    actor=actor,
                    posting=posting,
                    lines=lines,
                    reverses=original,
                    event="ledger.reverse",
                )
        except IntegrityError as exc:
            raise already from exc
