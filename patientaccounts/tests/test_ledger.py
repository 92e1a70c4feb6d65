from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from patientaccounts.ledger import (
    LedgerError,
    Line,
    Posting,
    journal_post,
    journal_post_many,
    journal_reverse,
)
from patientaccounts.models import (
    JournalEntry,
    JournalTransaction,
    LedgerAccount,
    TransactionKind,
)
from patientaccounts.selectors import account_balances, ledger_lines
from patientaccounts.tests.factories import post_charge
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

D = Decimal
ACCOUNTS = list(LedgerAccount)


def charge(patient, amount="120.00", **kw):
    value = D(amount)
    return Posting(
        patient=patient,
        kind=TransactionKind.CHARGE,
        lines=[Line(LedgerAccount.INSURANCE_AR, value), Line(LedgerAccount.GROSS_CHARGES, -value)],
        service_date=dt.date(2026, 10, 5),
        claim_reference="PCN123",
        source="charge",
        **kw,
    )


def test_posts_a_balanced_charge_with_its_entries_and_an_audit_row(frontdesk):
    # given
    patient = PatientFactory()
    # when
    txn = journal_post(actor=frontdesk, posting=charge(patient))
    # then
    assert sorted((e.account, e.amount) for e in txn.entries.all()) == [
        ("gross_charges", D("-120.00")),
        ("insurance_ar", D("120.00")),
    ]
    assert all(e.patient_id == patient.pk for e in txn.entries.all())
    event = AuditEvent.objects.get(event="ledger.post")
    assert event.patient_public_id == patient.public_id
    assert event.category == "payments"
    assert event.object_id == str(txn.public_id)


def test_refuses_lines_that_do_not_balance_and_saves_nothing(frontdesk):
    patient = PatientFactory()
    posting = Posting(
        patient=patient,
        kind=TransactionKind.CHARGE,
        lines=[
            Line(LedgerAccount.PATIENT_AR, D("10.00")),
            Line(LedgerAccount.GROSS_CHARGES, D("-9.99")),
        ],
    )
    with pytest.raises(LedgerError, match="balance") as info:
        journal_post(actor=frontdesk, posting=posting)
    assert info.value.field == "lines"
    assert not JournalTransaction.objects.exists()
    assert not JournalEntry.objects.exists()
    assert not AuditEvent.objects.filter(event="ledger.post").exists()


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([Line(LedgerAccount.CASH, D("5.00"))], "lines"),
        (
            [Line(LedgerAccount.CASH, D("0.005")), Line(LedgerAccount.PATIENT_AR, D("-0.005"))],
            "lines[1].amount",
        ),
        (
            [Line(LedgerAccount.CASH, 5.0), Line(LedgerAccount.PATIENT_AR, D("-5.00"))],
            "lines[1].amount",
        ),
        (
            [Line(LedgerAccount.CASH, D("0")), Line(LedgerAccount.PATIENT_AR, D("0"))],
            "lines[1].amount",
        ),
        (
            [Line("petty_cash", D("5.00")), Line(LedgerAccount.PATIENT_AR, D("-5.00"))],
            "lines[1].account",
        ),
        (
            [Line(LedgerAccount.CASH, D("NaN")), Line(LedgerAccount.PATIENT_AR, D("-5.00"))],
            "lines[1].amount",
        ),
    ],
)
def test_refuses_malformed_lines_naming_the_field(frontdesk, lines, field):
    patient = PatientFactory()
    posting = Posting(patient=patient, kind=TransactionKind.PATIENT_PAYMENT, lines=lines)
    with pytest.raises(LedgerError) as info:
        journal_post(actor=frontdesk, posting=posting)
    assert info.value.field == field
    assert not JournalTransaction.objects.exists()


def test_requires_a_patient_except_for_provider_adjustments(frontdesk):
    lines = [
        Line(LedgerAccount.PROVIDER_ADJUSTMENT, D("3.00")),
        Line(LedgerAccount.CASH, D("-3.00")),
    ]
    with pytest.raises(LedgerError) as info:
        journal_post(actor=frontdesk, posting=Posting(patient=None, kind="charge", lines=lines))
    assert info.value.field == "patient"
    txn = journal_post(
        actor=None,
        posting=Posting(patient=None, kind=TransactionKind.PROVIDER_ADJUSTMENT, lines=lines),
    )
    assert txn.patient is None
    assert AuditEvent.objects.get(event="ledger.post").username == "system"


def test_a_retried_post_with_the_same_key_creates_one_transaction(frontdesk):
    patient = PatientFactory()
    first = journal_post(actor=frontdesk, posting=charge(patient, idempotency_key="k-1"))
    again = journal_post(actor=frontdesk, posting=charge(patient, idempotency_key="k-1"))
    assert again.pk == first.pk
    assert JournalTransaction.objects.count() == 1
    assert JournalEntry.objects.count() == 2


def test_the_same_key_with_different_content_is_refused_naming_the_key(frontdesk):
    patient = PatientFactory()
    journal_post(actor=frontdesk, posting=charge(patient, idempotency_key="k-2"))
    with pytest.raises(LedgerError, match="k-2") as info:
        journal_post(actor=frontdesk, posting=charge(patient, "99.00", idempotency_key="k-2"))
    assert info.value.field == "idempotency_key"
    assert JournalTransaction.objects.count() == 1


def test_balance_is_the_sum_of_entries_by_account(frontdesk):
    patient = PatientFactory()
    post_charge(patient, "80.00", to_patient=True)
    post_charge(patient, "200.00", to_patient=False)
    journal_post(
        actor=frontdesk,
        posting=Posting(
            patient=patient,
            kind=TransactionKind.PATIENT_PAYMENT,
            lines=[
                Line(LedgerAccount.CASH, D("30.00")),
                Line(LedgerAccount.PATIENT_AR, D("-30.00")),
            ],
        ),
    )
    balances = account_balances(patient=patient)
    assert balances.patient_due == D("50.00")
    assert balances.insurance_pending == D("200.00")
    assert balances.total == D("250.00")
    assert [line.running_balance for line in ledger_lines(patient=patient)] == [
        D("80.00"),
        D("280.00"),
        D("250.00"),
    ]


def test_reversal_negates_the_transaction_once(frontdesk):
    # given
    patient = PatientFactory()
    original = post_charge(patient, "75.00")
    # when
    reversal = journal_reverse(actor=frontdesk, transaction=original, reason="Entered twice")
    # then
    assert reversal.kind == "reversal"
    assert reversal.reverses_id == original.pk
    assert account_balances(patient=patient).total == D("0.00")
    assert AuditEvent.objects.filter(event="ledger.reverse").count() == 1
    with pytest.raises(LedgerError, match="already been reversed"):
        journal_reverse(actor=frontdesk, transaction=original, reason="again")
    with pytest.raises(LedgerError, match="cannot itself be reversed"):
        journal_reverse(actor=frontdesk, transaction=reversal, reason="undo")
    with pytest.raises(LedgerError) as info:
        journal_reverse(actor=frontdesk, transaction=original, reason="  ")
    assert info.value.field == "reason"


def test_rows_refuse_update_and_delete_through_the_orm():
    patient = PatientFactory()
    txn = post_charge(patient)
    entry = txn.entries.first()
    with pytest.raises(PermissionError):
        txn.save()
    with pytest.raises(PermissionError):
        txn.delete()
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        JournalEntry.objects.filter(pk=entry.pk).update(amount=D("1.00"))
    with pytest.raises(PermissionError):
        JournalTransaction.objects.all().delete()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE patientaccounts_journalentry SET amount = 1",
        "DELETE FROM patientaccounts_journalentry",
        "UPDATE patientaccounts_journaltransaction SET memo = 'edited'",
    ],
)
def test_the_database_rejects_raw_changes_to_ledger_rows_on_postgresql(statement):
    patient = PatientFactory()
    post_charge(patient)
    if connection.vendor == "postgresql":
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
        assert JournalEntry.objects.count() == 2
    else:
        # SQLite has no trigger: the ORM guard (tested above) protects the rows there.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM sqlite_master "
                "WHERE type = 'trigger' AND tbl_name LIKE 'patientaccounts%'"
            )
            assert cursor.fetchone() == (0,)


def test_postgresql_has_update_delete_and_truncate_triggers_on_both_tables():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgrelid IN ('patientaccounts_journalentry'::regclass, "
                "'patientaccounts_journaltransaction'::regclass) "
                # the ledger's own guards (receivables' KPI rollup triggers are tested there)
                "AND tgname LIKE 'patientaccounts%%' ORDER BY tgname"
            )
            assert cursor.fetchall() == [
                ("patientaccounts_journalentry_no_truncate", "O"),
                ("patientaccounts_journalentry_no_update_delete", "O"),
                ("patientaccounts_journaltransaction_no_truncate", "O"),
                ("patientaccounts_journaltransaction_no_update_delete", "O"),
            ]
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            assert not [row for row in cursor.fetchall() if "journal" in row[0]]


def test_post_many_inserts_in_bulk_with_one_audit_row_each_and_honours_keys(frontdesk):
    # given
    patients = PatientFactory.create_batch(3)
    journal_post(actor=frontdesk, posting=charge(patients[0], idempotency_key="bulk-0"))
    postings = [charge(p, idempotency_key=f"bulk-{i}") for i, p in enumerate(patients)]
    postings.append(charge(patients[2], idempotency_key="bulk-2"))
    # when
    txns = journal_post_many(actor=None, postings=postings)
    # then
    assert len(txns) == 4
    assert txns[2].pk == txns[3].pk
    assert JournalTransaction.objects.count() == 3
    assert JournalEntry.objects.count() == 6
    assert AuditEvent.objects.filter(event="ledger.post").count() == 3


def test_post_many_is_all_or_nothing_and_names_the_bad_posting(frontdesk):
    patients = PatientFactory.create_batch(2)
    bad = Posting(
        patient=patients[1],
        kind=TransactionKind.CHARGE,
        lines=[
            Line(LedgerAccount.PATIENT_AR, D("1.00")),
            Line(LedgerAccount.GROSS_CHARGES, D("-2.00")),
        ],
    )
    with pytest.raises(LedgerError) as info:
        journal_post_many(actor=frontdesk, postings=[charge(patients[0]), bad])
    assert info.value.field == "postings[2].lines"
    assert not JournalTransaction.objects.exists()


cents = st.integers(min_value=-(10**9), max_value=10**9).filter(bool).map(lambda c: D(c) / 100)
_hypothesis = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_hypothesis
@given(
    amounts=st.lists(cents, min_size=1, max_size=6),
    accounts=st.lists(st.sampled_from(ACCOUNTS), min_size=7, max_size=7),
)
def test_property_balanced_line_sets_are_accepted_and_balance_is_their_sum(
    frontdesk, amounts, accounts
):
    patient = PatientFactory()
    balancing = -sum(amounts)
    if balancing == 0:
        amounts = amounts[:-1] or [D("1.00")]
        balancing = -sum(amounts)
    lines = [Line(acc, amt) for acc, amt in zip(accounts, [*amounts, balancing], strict=False)]
    txn = journal_post(
        actor=frontdesk,
        posting=Posting(patient=patient, kind=TransactionKind.OTHER_ADJUSTMENT, lines=lines),
    )
    assert sum(e.amount for e in txn.entries.all()) == 0
    expected_patient = sum(
        (ln.amount for ln in lines if ln.account == LedgerAccount.PATIENT_AR), D(0)
    )
    expected_insurance = sum(
        (ln.amount for ln in lines if ln.account == LedgerAccount.INSURANCE_AR), D(0)
    )
    balances = account_balances(patient=patient)
    assert balances.patient_due == expected_patient
    assert balances.insurance_pending == expected_insurance
    # reversal brings the balance back exactly
    journal_reverse(actor=frontdesk, transaction=txn, reason="property")
    after = account_balances(patient=patient)
    assert after.patient_due == 0
    assert after.insurance_pending == 0


@_hypothesis
@given(amounts=st.lists(cents, min_size=2, max_size=6))
def test_property_unbalanced_line_sets_are_refused_with_nothing_saved(frontdesk, amounts):
    if sum(amounts) == 0:
        amounts = [*amounts[:-1], amounts[-1] + D("0.01")]
    amounts = [a for a in amounts if a] or [D("0.01"), D("0.01")]
    if len(amounts) < 2:
        amounts.append(D("0.01"))
    patient = PatientFactory()
    before = (JournalTransaction.objects.count(), JournalEntry.objects.count())
    lines = [Line(LedgerAccount.CASH, amt) for amt in amounts]
    with pytest.raises(LedgerError):
        journal_post(
            actor=frontdesk, posting=Posting(patient=patient, kind="other_adjustment", lines=lines)
        )
    assert (JournalTransaction.objects.count(), JournalEntry.objects.count()) == before


@_hypothesis
@given(
    key=st.text(alphabet="abcdef0123456789-:", min_size=1, max_size=40), retries=st.integers(1, 4)
)
def test_property_retried_posts_with_one_key_create_one_transaction(frontdesk, key, retries):
    patient = PatientFactory()
    key = f"{patient.pk}:{key}"
    results = {
        journal_post(actor=frontdesk, posting=charge(patient, idempotency_key=key)).pk
        for _ in range(retries + 1)
    }
    assert len(results) == 1
    assert JournalTransaction.objects.filter(idempotency_key=key).count() == 1


def test_a_patient_merge_moves_the_ledger_to_the_surviving_record(officemanager, main_clinic):
    # given two records of one person, each with ledger activity
    from patients.services import patient_merge

    survivor = PatientFactory(home_location=main_clinic)
    merged = PatientFactory(home_location=main_clinic)
    post_charge(survivor, "10.00")
    post_charge(merged, "25.00")
    # when they are merged
    patient_merge(actor=officemanager, survivor=survivor, merged=merged, reason="Same person")
    # then the survivor's balance includes both, and the money did not change
    assert account_balances(patient=survivor).patient_due == D("35.00")
    assert not JournalEntry.objects.filter(patient=merged).exists()
    assert not JournalTransaction.objects.filter(patient=merged).exists()
    assert sum(e.amount for e in JournalEntry.objects.all()) == 0


def test_only_the_patient_may_change_in_a_bulk_update():
    txn = post_charge(PatientFactory())
    with pytest.raises(PermissionError):
        JournalEntry.objects.filter(transaction=txn).update(patient=None, amount=D("1.00"))
    with pytest.raises(PermissionError):
        JournalTransaction.objects.filter(pk=txn.pk).update(memo="edited")


# --- the bulk path writes exactly what journal_post writes -----------------------------------


class UndoError(Exception):
    """Rolls a savepoint back once its rows were read."""


def _raw(table: str) -> list[dict[str, object]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _ledger_snapshot() -> dict[str, list[tuple[object, ...]]]:
    """The stored rows (raw database values) of both ledger tables and their audit events,
    keyed by idempotency key instead of the ids and public ids that differ between runs."""
    key_of = dict(JournalTransaction.objects.values_list("pk", "idempotency_key"))
    key_of_public = {
        str(public_id): key
        for public_id, key in JournalTransaction.objects.values_list("public_id", "idempotency_key")
    }
    volatile = {"id", "public_id", "created_at", "updated_at", "sequence", "occurred_at"}
    volatile |= {"prev_hash", "hmac"}

    def rows(table: str, **rekey: dict[object, object]) -> list[tuple[object, ...]]:
        result = []
        for row in _raw(table):
            for column, mapping in rekey.items():
                row[column] = mapping[row[column]]
            result.append(tuple(sorted((k, str(v)) for k, v in row.items() if k not in volatile)))
        return sorted(result)

    audit = [
        row
        for row in rows(AuditEvent._meta.db_table, object_id=key_of_public | {"": ""})
        if ("event", "ledger.post") in row
    ]
    return {
        "transactions": rows(JournalTransaction._meta.db_table),
        "entries": rows(JournalEntry._meta.db_table, transaction_id=key_of),
        "audit": audit,
    }


def _varied_postings(patients) -> list[Posting]:
    at = dt.datetime(2026, 10, 6, 14, 30, 15, 123456, tzinfo=dt.UTC)
    return [
        charge(patients[0], idempotency_key="fast-1", posted_at=at, memo="Office visit"),
        Posting(
            patient=patients[1],
            kind=TransactionKind.INSURANCE_PAYMENT,
            lines=[
                Line(LedgerAccount.CASH, D("80.1")),
                Line(LedgerAccount.CONTRACTUAL, D("19.90")),
                Line(LedgerAccount.PATIENT_AR, D("20")),
                Line(LedgerAccount.INSURANCE_AR, D("-120.00")),
            ],
            service_date=dt.date(2026, 9, 30),
            claim_reference="PCN-2",
            payer_reference="PAYER 1",
            source="835:abc",
            idempotency_key="fast-2",
            posted_at=at + dt.timedelta(seconds=1),
        ),
        Posting(
            patient=None,
            kind=TransactionKind.PROVIDER_ADJUSTMENT,
            lines=[
                Line(LedgerAccount.PROVIDER_ADJUSTMENT, D("25.00")),
                Line(LedgerAccount.CASH, D("-25.00")),
            ],
            memo="835 PLB WO, trace 1",
            payer_reference="PAYER 1",
            idempotency_key="fast-3",
            posted_at=at,
        ),
        charge(patients[0], "0.01", idempotency_key="fast-4", posted_at=at),
    ]


def _snapshot_of_bulk_then_undo(actor, postings) -> dict[str, list[tuple[object, ...]]]:
    snapshot: dict[str, list[tuple[object, ...]]] = {}
    try:
        with transaction.atomic():
            journal_post_many(actor=actor, postings=postings)
            snapshot = _ledger_snapshot()
            raise UndoError
    except UndoError:
        return snapshot


@pytest.mark.parametrize("as_user", [True, False], ids=["user", "system"])
def test_post_many_stores_exactly_the_rows_journal_post_stores(as_user, frontdesk):
    # given
    actor = frontdesk if as_user else None
    postings = _varied_postings(PatientFactory.create_batch(2))
    # when the same postings go through the bulk path (then undone) and one by one
    bulk = _snapshot_of_bulk_then_undo(actor, postings)
    for posting in postings:
        journal_post(actor=actor, posting=posting)
    single = _ledger_snapshot()
    # then the stored rows are identical
    assert len(bulk["transactions"]) == 4
    assert len(bulk["entries"]) == 10
    assert len(bulk["audit"]) == 4
    assert bulk == single


def test_post_many_returns_saved_transactions_as_the_database_holds_them(frontdesk):
    # given
    patients = PatientFactory.create_batch(2)
    postings = [*_varied_postings(patients), charge(patients[1], idempotency_key="fast-5")]
    before = timezone.now()
    # when
    txns = journal_post_many(actor=frontdesk, postings=postings)
    # then
    assert [t.idempotency_key for t in txns] == [p.idempotency_key for p in postings]
    fields = [f.attname for f in JournalTransaction._meta.concrete_fields]
    for txn, posting in zip(txns, postings, strict=True):
        stored = JournalTransaction.objects.get(pk=txn.pk)
        assert {f: getattr(txn, f) for f in fields} == {f: getattr(stored, f) for f in fields}
        assert txn.patient is posting.patient
        assert txn.posted_by == frontdesk
        assert not txn._state.adding
    assert before <= txns[-1].posted_at == txns[-1].created_at <= timezone.now()
    with pytest.raises(PermissionError):
        txns[0].save()


def test_post_many_finds_used_keys_across_lookup_chunks(frontdesk, monkeypatch):
    # given keys already used, looked up two at a time
    from patientaccounts import ledger

    monkeypatch.setattr(ledger, "_LOOKUP_CHUNK", 2)
    patients = PatientFactory.create_batch(5)
    first = journal_post_many(
        actor=frontdesk,
        postings=[charge(p, idempotency_key=f"chunk-{n}") for n, p in enumerate(patients)],
    )
    # when the same postings come again with a new one
    again = journal_post_many(
        actor=frontdesk,
        postings=[
            *(charge(p, idempotency_key=f"chunk-{n}") for n, p in enumerate(patients)),
            charge(patients[0], idempotency_key="chunk-new"),
        ],
    )
    # then only the new one is written
    assert [t.pk for t in again[:5]] == [t.pk for t in first]
    assert JournalTransaction.objects.count() == 6
    assert AuditEvent.objects.filter(event="ledger.post").count() == 6


def test_post_many_gives_ids_in_posting_order_and_later_posts_follow_them(frontdesk):
    # given a bulk post (PostgreSQL: its ids taken from the sequence before the COPY)
    patients = PatientFactory.create_batch(2)
    txns = journal_post_many(actor=frontdesk, postings=_varied_postings(patients))
    # when a single post follows
    later = journal_post(actor=frontdesk, posting=charge(patients[0], idempotency_key="after-1"))
    # then each returned id is its own row's, ascending in posting order, below the next post's
    ids = [t.pk for t in txns]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    stored = dict(JournalTransaction.objects.filter(pk__in=ids).values_list("pk", "public_id"))
    assert stored == {t.pk: t.public_id for t in txns}
    assert later.pk > ids[-1]
