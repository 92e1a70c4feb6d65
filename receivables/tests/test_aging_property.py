"""Property: over random claims, remittances and patient postings, every aging report's buckets
sum to the outstanding total, match an independent Python computation, and the total equals the
ledger's balance of the two receivable accounts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Claim, ClaimStatus
from billing.tests.factories import ClaimFactory, EncounterFactory, PayerFactory
from patientaccounts.aging import age_balance
from patientaccounts.models import (
    JournalEntry,
    JournalTransaction,
    LedgerAccount,
    TransactionKind,
)
from receivables.aging import (
    PATIENT_ROW_KEY,
    Basis,
    GroupBy,
    bucket_index,
    compute_aging,
    ledger_balance,
    local_day_start,
)

D = Decimal
# An as-of date in the past, so that postings after it (AFTER) are still in the past: the
# ledger is never post-dated (see receivables.aging.covers_every_posting).
AS_OF = timezone.localdate() - dt.timedelta(days=10)
BEFORE = local_day_start(AS_OF) + dt.timedelta(hours=12)
AFTER = local_day_start(AS_OF + dt.timedelta(days=2))

cents = st.integers(min_value=-40_000, max_value=40_000).map(lambda c: D(c) / 100)
charges = st.integers(min_value=1, max_value=200_000).map(lambda c: D(c) / 100)
claim_st = st.fixed_dictionaries(
    {
        "who": st.integers(min_value=0, max_value=2),
        "payer": st.integers(min_value=0, max_value=1),
        "age": st.integers(min_value=0, max_value=400),
        "submitted_after": st.one_of(st.none(), st.integers(min_value=0, max_value=200)),
        "charge": charges,
        "credits": st.lists(st.tuples(cents.filter(bool), st.booleans()), max_size=3),
    }
)
patient_st = st.tuples(
    st.integers(min_value=0, max_value=2),
    st.one_of(st.none(), st.integers(min_value=-10, max_value=400)),
    cents.filter(bool),
    st.booleans(),
)


def _txn(patient_id, kind, lines, *, posted_at, service_date=None, ref=""):
    txn = JournalTransaction.objects.create(
        patient_id=patient_id,
        kind=kind,
        posted_at=posted_at,
        service_date=service_date,
        claim_reference=ref,
    )
    JournalEntry.objects.bulk_create(
        JournalEntry(
            transaction=txn,
            account=account,
            amount=amount,
            patient_id=patient_id,
            service_date=service_date,
        )
        for account, amount in lines
    )


@pytest.fixture
def templates(db):
    payers = [PayerFactory(name="Aetna"), PayerFactory(name="Cigna")]
    return [
        ClaimFactory(encounter=EncounterFactory(), status=ClaimStatus.VOID, lines=0)
        for _ in range(3)
    ], payers


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    claims=st.lists(claim_st, max_size=8),
    patient_items=st.lists(patient_st, max_size=10),
    basis=st.sampled_from(Basis.values),
)
def test_property_buckets_sum_to_the_outstanding_total_and_the_ledger(
    templates, claims, patient_items, basis
):
    template_claims, payers = templates
    with transaction.atomic():
        expected_payer: dict[str, list[Decimal]] = defaultdict(lambda: [D("0.00")] * 5)
        expected_patient: dict[int, list[Decimal]] = defaultdict(lambda: [D("0.00")] * 5)
        for number, spec in enumerate(claims):
            template = template_claims[spec["who"]]
            dos = AS_OF - dt.timedelta(days=spec["age"])
            submitted = None
            if spec["submitted_after"] is not None:
                submitted = local_day_start(dos + dt.timedelta(days=spec["submitted_after"]))
            claim = Claim.objects.create(
                patient=template.patient,
                encounter=template.encounter,
                coverage=template.coverage,
                payer=payers[spec["payer"]],
                billing_provider=template.billing_provider,
                rendering_practitioner=template.rendering_practitioner,
                patient_control_number=f"HY{number:06d}",
                status=ClaimStatus.SUBMITTED,
                date_of_service=dos,
                submitted_at=submitted,
                total_charge=spec["charge"],
            )
            _txn(
                claim.patient_id,
                TransactionKind.CHARGE,
                [
                    (LedgerAccount.INSURANCE_AR, spec["charge"]),
                    (LedgerAccount.GROSS_CHARGES, -spec["charge"]),
                ],
                posted_at=local_day_start(dos),
                service_date=dos,
            )
            owed = spec["charge"]
            for amount, on_time in spec["credits"]:
                _txn(
                    claim.patient_id,
                    TransactionKind.INSURANCE_PAYMENT,
                    [(LedgerAccount.CASH, amount), (LedgerAccount.INSURANCE_AR, -amount)],
                    posted_at=BEFORE if on_time else AFTER,
                    ref=claim.patient_control_number,
                )
                owed -= amount if on_time else 0
            on_basis = dos
            if basis == Basis.SUBMISSION and submitted is not None and submitted.date() <= AS_OF:
                on_basis = submitted.date()
            index = bucket_index((AS_OF - on_basis).days)
            expected_payer[str(claim.payer_id)][index] += owed
            expected_patient[claim.patient_id][index] += owed
        per_patient: dict[int, list[tuple[dt.date | None, Decimal]]] = defaultdict(list)
        for who, age, amount, on_time in patient_items:
            patient_id = template_claims[who].patient_id
            service_date = None if age is None else AS_OF - dt.timedelta(days=age)
            _txn(
                patient_id,
                TransactionKind.CHARGE,
                [(LedgerAccount.PATIENT_AR, amount), (LedgerAccount.GROSS_CHARGES, -amount)],
                posted_at=BEFORE if on_time else AFTER,
                service_date=service_date,
            )
            if on_time:
                per_patient[patient_id].append((service_date, amount))
        patient_buckets = [D("0.00")] * 5
        for patient_id, items in per_patient.items():
            aging = age_balance(items, as_of=AS_OF)
            for index, (_, value) in enumerate(aging.as_pairs()):
                patient_buckets[index] += value
                expected_patient[patient_id][index] += value

        by_payer = compute_aging(by=GroupBy.PAYER, basis=basis, as_of=AS_OF)
        by_patient = compute_aging(by=GroupBy.PATIENT, basis=basis, as_of=AS_OF)

        ledger_total = ledger_balance(
            account=LedgerAccount.INSURANCE_AR, as_of=AS_OF
        ) + ledger_balance(account=LedgerAccount.PATIENT_AR, as_of=AS_OF)
        for report in (by_payer, by_patient):
            for row in [*report.rows, report.totals]:
                assert sum(row.buckets, D("0")) == row.total == row.insurance + row.patient
            assert report.totals.total == ledger_total
        rows = {row.key: list(row.buckets) for row in by_payer.rows}
        expected = {key: value for key, value in expected_payer.items() if any(value)}
        if any(patient_buckets):
            expected[PATIENT_ROW_KEY] = patient_buckets
        assert rows == expected
        names = {t.patient_id: str(t.patient.public_id) for t in template_claims}
        assert {row.public_id: list(row.buckets) for row in by_patient.rows} == {
            names[pid]: value for pid, value in expected_patient.items() if any(value)
        }
        transaction.set_rollback(True)
