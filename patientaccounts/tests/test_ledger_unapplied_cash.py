"""Insurance payments without a patient: an unmatched 835 claim payment's cash held as
unapplied (cash and unapplied lines only); every other posting but a provider adjustment still
needs a patient. Neither touches the running A/R balances."""

from __future__ import annotations

from decimal import Decimal

import pytest

from patientaccounts.ledger import LedgerError, Line, Posting, journal_post, journal_post_many
from patientaccounts.models import JournalTransaction, LedgerAccount, TransactionKind
from receivables.models import ClaimArBalance, PatientArBalance

A = LedgerAccount
K = TransactionKind
D = Decimal


def _unapplied(amount: str = "80.00", *, lines: list[Line] | None = None) -> Posting:
    value = D(amount)
    return Posting(
        patient=None,
        kind=K.INSURANCE_PAYMENT,
        lines=lines or [Line(A.CASH, value), Line(A.UNAPPLIED, -value)],
        claim_reference="UNMATCHED01",
        memo="trace 123",
    )


@pytest.mark.django_db
def test_an_unmatched_claim_payment_posts_its_cash_as_unapplied_without_a_patient():
    txn = journal_post(actor=None, posting=_unapplied())
    [bulk] = journal_post_many(actor=None, postings=[_unapplied("-80.00")])
    assert txn.patient_id is None
    assert bulk.patient_id is None
    assert JournalTransaction.objects.filter(patient__isnull=True).count() == 2
    assert not ClaimArBalance.objects.exists()
    assert not PatientArBalance.objects.exists()


@pytest.mark.django_db
def test_an_insurance_payment_without_a_patient_moves_nothing_but_cash_and_unapplied():
    posting = _unapplied(
        lines=[Line(A.CASH, D("80.00")), Line(A.INSURANCE_AR, D("-80.00"))],
    )
    with pytest.raises(LedgerError) as caught:
        journal_post(actor=None, posting=posting)
    assert caught.value.field == "lines"
    assert "cash and unapplied only" in caught.value.message
    with pytest.raises(LedgerError) as bulk:
        journal_post_many(actor=None, postings=[posting])
    assert bulk.value.field == "postings[1].lines"
    assert not JournalTransaction.objects.exists()


@pytest.mark.django_db
def test_other_kinds_still_need_a_patient():
    posting = Posting(
        patient=None,
        kind=K.PATIENT_PAYMENT,
        lines=[Line(A.CASH, D("5.00")), Line(A.UNAPPLIED, D("-5.00"))],
    )
    with pytest.raises(LedgerError, match=r"patient: is required \(only provider adjustments"):
        journal_post(actor=None, posting=posting)
