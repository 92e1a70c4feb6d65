"""An unmatched claim payment's cash is in the ledger at once (unapplied), and moves to the
claim's insurance A/R when someone applies it: the deposit always equals the 835's BPR."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from billing.x12.edi835_samples import SampleClaim, SampleLine, SampleRemittance, render_835
from patientaccounts.ledger import LedgerError, Line, Posting
from patientaccounts.models import JournalEntry, JournalTransaction, LedgerAccount
from patientaccounts.selectors import account_balances, deposit_report
from receivables.aging import Basis, GroupBy, compute_aging, ledger_balance
from remittance import services
from remittance.models import UnmatchedRemittance
from remittance.services import remittance_ingest, unmatched_resolve

from .conftest import SERVICE_DATE

PAID = SampleLine(
    "99213",
    Decimal("100.00"),
    Decimal("70.00"),
    (("CO", "45", Decimal("20.00")), ("PR", "2", Decimal("10.00"))),
    service_date=SERVICE_DATE,
)
DENIED = SampleLine("99213", Decimal("100.00"), Decimal("0"), (("CO", "50", Decimal("100.00")),))


def ingest(*claims: SampleClaim, trace: str = "TRACE-UA1"):
    data = render_835(SampleRemittance(claims=list(claims), trace=trace)).encode()
    return remittance_ingest(actor=None, data=data, file_name=f"{trace}.835")


def total(account: str, **filters: object) -> Decimal:
    entries = JournalEntry.objects.filter(account=account, **filters)
    return sum((e.amount for e in entries), Decimal("0"))


def aging_matches_the_ledger() -> bool:
    today = timezone.localdate()
    receivable = ledger_balance(account=LedgerAccount.INSURANCE_AR, as_of=today) + ledger_balance(
        account=LedgerAccount.PATIENT_AR, as_of=today
    )
    reports = [
        compute_aging(by=by, basis=Basis.SERVICE, as_of=today, from_ledger=from_ledger)
        for by in (GroupBy.PAYER, GroupBy.PATIENT)
        for from_ledger in (False, True)
    ]
    return all(report.totals.total == receivable for report in reports)


def test_unmatched_cash_is_deposited_as_unapplied_without_a_patient(make_claim):
    # given a matched and an unmatched claim payment in one 835
    make_claim("PD00000201")
    # when it is ingested
    report = ingest(SampleClaim("PD00000201", (PAID,)), SampleClaim("GARBLED-1", (PAID,)))
    # then the whole deposit (the BPR) is in cash, the unmatched part credited to unapplied
    assert (report.matched, report.unmatched) == (1, 1)
    assert total(LedgerAccount.CASH) == report.total_paid == Decimal("140.00")
    assert total(LedgerAccount.UNAPPLIED) == Decimal("-70.00")
    held = JournalTransaction.objects.get(entries__account=LedgerAccount.UNAPPLIED)
    assert held.patient is None
    assert held.kind == "insurance_payment"
    assert held.claim_reference == "GARBLED-1"
    assert held.payer_reference
    assert "TRACE-UA1" in held.memo
    assert "GARBLED-1" in held.memo
    assert "SAMPLE HEALTH PLAN" in held.memo.upper()
    assert sorted(held.entries.values_list("account", "amount")) == [
        ("cash", Decimal("70.00")),
        ("unapplied", Decimal("-70.00")),
    ]
    assert held.idempotency_key.endswith(":unapplied")
    assert aging_matches_the_ledger()


def test_resolving_moves_the_cash_from_unapplied_to_the_claim(make_claim, biller):
    # given an unmatched payment held as unapplied cash, and the claim it belongs to
    claim = make_claim("PD00000202")
    ingest(SampleClaim("GARBLED-2", (PAID,)))
    cash_before = total(LedgerAccount.CASH)
    # when a biller applies it
    unmatched_resolve(actor=biller, unmatched=UnmatchedRemittance.objects.get(), claim=claim)
    # then unapplied is back to zero, cash is counted once, and the claim's A/R is credited
    assert total(LedgerAccount.CASH) == cash_before == Decimal("70.00")
    assert total(LedgerAccount.UNAPPLIED) == Decimal("0")
    applied = JournalTransaction.objects.get(patient=claim.patient, kind="insurance_payment")
    assert sorted(applied.entries.values_list("account", "amount")) == [
        ("contractual", Decimal("20.00")),
        ("insurance_ar", Decimal("-100.00")),
        ("patient_ar", Decimal("10.00")),
        ("unapplied", Decimal("70.00")),
    ]
    assert applied.claim_reference == "PD00000202"
    balances = account_balances(patient=claim.patient)
    assert (balances.insurance_pending, balances.patient_due) == (Decimal("0"), Decimal("10"))
    assert aging_matches_the_ledger()


def test_an_unmatched_reversal_takes_the_unapplied_cash_back(db):
    # given an unmatched payment held as unapplied cash
    ingest(SampleClaim("GARBLED-3", (PAID,)))
    # when a later 835 reverses it (CLP02 = 22, amounts negated), still unmatched
    negative = SampleLine(
        "99213",
        Decimal("-100.00"),
        Decimal("-70.00"),
        (("CO", "45", Decimal("-20.00")), ("PR", "2", Decimal("-10.00"))),
        service_date=SERVICE_DATE,
    )
    report = ingest(SampleClaim("GARBLED-3", (negative,), status="22"), trace="TRACE-UA2")
    # then the reversal's deposit (negative) comes out of cash and out of unapplied
    assert report.unmatched == 1
    assert total(LedgerAccount.CASH) == Decimal("0")
    assert total(LedgerAccount.UNAPPLIED) == Decimal("0")
    assert JournalTransaction.objects.filter(patient__isnull=True).count() == 2


def test_resolving_an_unmatched_reversal_credits_unapplied_not_cash(make_claim, biller):
    # given a claim paid by an earlier 835, and an unmatched reversal of that payment
    claim = make_claim("PD00000204")
    ingest(SampleClaim("PD00000204", (PAID,)))
    negative = SampleLine(
        "99213",
        Decimal("-100.00"),
        Decimal("-70.00"),
        (("CO", "45", Decimal("-20.00")), ("PR", "2", Decimal("-10.00"))),
        service_date=SERVICE_DATE,
    )
    ingest(SampleClaim("GARBLED-4", (negative,), status="22"), trace="TRACE-UA4")
    assert total(LedgerAccount.CASH) == Decimal("0")
    # when a biller applies the reversal to the claim
    unmatched_resolve(actor=biller, unmatched=UnmatchedRemittance.objects.get(), claim=claim)
    # then cash went down once, unapplied is settled, and the claim is owed again
    assert total(LedgerAccount.CASH) == Decimal("0")
    assert total(LedgerAccount.UNAPPLIED) == Decimal("0")
    balances = account_balances(patient=claim.patient)
    assert (balances.insurance_pending, balances.patient_due) == (Decimal("100"), Decimal("0"))
    assert aging_matches_the_ledger()


def test_an_unmatched_payment_of_nothing_posts_nothing(db):
    ingest(SampleClaim("GARBLED-5", (DENIED,), status="4"))
    assert UnmatchedRemittance.objects.count() == 1
    assert not JournalTransaction.objects.exists()


def test_reingesting_the_file_posts_the_unapplied_cash_once(db):
    data = render_835(SampleRemittance(claims=[SampleClaim("GARBLED-6", (PAID,))])).encode()
    remittance_ingest(actor=None, data=data, file_name="a.835")
    remittance_ingest(actor=None, data=data, file_name="b.835")
    assert total(LedgerAccount.CASH) == Decimal("70.00")
    assert JournalTransaction.objects.count() == 1


def test_the_deposit_report_still_reconciles(make_claim, persona, main_clinic):
    # given insurance cash, matched and unapplied, posted today
    make_claim("PD00000207")
    ingest(SampleClaim("PD00000207", (PAID,)), SampleClaim("GARBLED-7", (PAID,)))
    # when the day's close-out is run
    report = deposit_report(
        user=persona("officemanager"), location=main_clinic, day=timezone.localdate()
    )
    # then it reconciles (front-desk payments and refunds only; insurance cash is not in it)
    assert report.reconciles


def test_only_cash_and_unapplied_may_post_without_a_patient():
    posting = Posting(
        patient=None,
        kind="insurance_payment",
        lines=[Line(LedgerAccount.CASH, Decimal("5")), Line(LedgerAccount.INSURANCE_AR, -5)],
    )
    with pytest.raises(LedgerError, match="cash and unapplied only"):
        services._check_without_patient(posting)


def test_an_entry_queued_before_unapplied_cash_is_resolved_to_cash(make_claim, biller, monkeypatch):
    # given an entry whose cash was not deposited at ingest (queued before this design)
    claim = make_claim("PD00000209")
    monkeypatch.setattr(services, "_unapplied_posting", lambda **kwargs: None)
    ingest(SampleClaim("GARBLED-9", (PAID,)))
    assert not JournalTransaction.objects.filter(patient__isnull=True).exists()
    # when it is resolved
    unmatched_resolve(actor=biller, unmatched=UnmatchedRemittance.objects.get(), claim=claim)
    # then the payment is deposited then, as cash, and nothing is unapplied
    assert total(LedgerAccount.CASH) == Decimal("70.00")
    assert total(LedgerAccount.UNAPPLIED) == Decimal("0")
    assert account_balances(patient=claim.patient).insurance_pending == Decimal("0")
