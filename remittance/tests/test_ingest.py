"""remittance_ingest: matching, ledger posting, statuses, denials, idempotency, quarantine."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from billing.models import ClaimEvent, ClaimStatus
from billing.tests.factories import ClaimFactory, PayerFactory
from billing.x12.edi835_samples import (
    SampleClaim,
    SampleLine,
    SamplePlb,
    SampleRemittance,
    render_835,
)
from patientaccounts.models import JournalEntry, JournalTransaction, LedgerAccount
from patientaccounts.selectors import account_balances
from remittance import services
from remittance.models import (
    ClaimRemittance,
    Denial,
    FileStatus,
    LineRemittance,
    MatchMethod,
    ProviderAdjustment,
    RemittanceAdjustment,
    RemittanceFile,
    RemittancePayment,
    UnmatchedRemittance,
)
from remittance.services import ALREADY_POSTED, claim_prior_payer_fill, remittance_ingest

from .conftest import SERVICE_DATE

PAID_LINE = SampleLine(
    code="99213",
    charge=Decimal("100.00"),
    paid=Decimal("70.00"),
    adjustments=(("CO", "45", Decimal("20.00")), ("PR", "2", Decimal("10.00"))),
    service_date=SERVICE_DATE,
)
DENIED_LINE = SampleLine(
    code="99213",
    charge=Decimal("100.00"),
    paid=Decimal("0"),
    adjustments=(("CO", "50", Decimal("100.00")),),
    service_date=SERVICE_DATE,
    remark_codes=("N115",),
)
PAYMENT_DATE = dt.date(2024, 1, 15)


def file_for(*claims: SampleClaim, trace: str = "TRACE0001", **extra: object) -> bytes:
    remittance = SampleRemittance(claims=list(claims), trace=trace, **extra)
    return render_835(remittance).encode()


def ingest(data: bytes, actor=None, **kwargs):
    return remittance_ingest(actor=actor, data=data, file_name="era.835", **kwargs)


def row_counts() -> dict[str, int]:
    models = [
        RemittanceFile,
        RemittancePayment,
        ClaimRemittance,
        LineRemittance,
        RemittanceAdjustment,
        ProviderAdjustment,
        UnmatchedRemittance,
        Denial,
        JournalTransaction,
        JournalEntry,
        ClaimEvent,
    ]
    return {model.__name__: model.objects.count() for model in models}


def ledger_total(account: str, patient=None) -> Decimal:
    entries = JournalEntry.objects.filter(account=account)
    if patient is not None:
        entries = entries.filter(patient=patient)
    return sum((e.amount for e in entries), Decimal("0"))


def test_posts_a_paid_claim_matched_by_patient_control_number(make_claim, biller):
    # given a submitted claim of 100.00 whose charge sits in insurance A/R
    claim = make_claim("PD00000001")
    # when the payer pays 70, with CO-45 20 and PR-2 10
    report = ingest(file_for(SampleClaim("PD00000001", (PAID_LINE,))), actor=biller)
    # then
    assert (report.status, report.matched, report.unmatched) == (FileStatus.POSTED, 1, 0)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.PAID
    assert (claim.paid_amount, claim.patient_responsibility) == (Decimal("70"), Decimal("10"))
    assert claim.payer_claim_number == ""
    balances = account_balances(patient=claim.patient)
    assert balances.insurance_pending == Decimal("0")
    assert balances.patient_due == Decimal("10")
    assert ledger_total(LedgerAccount.CASH, claim.patient) == Decimal("70")
    assert ledger_total(LedgerAccount.CONTRACTUAL, claim.patient) == Decimal("20")
    steps = list(claim.events.values_list("from_status", "to_status"))
    assert steps == [("submitted", "accepted"), ("accepted", "paid")]
    assert ClaimRemittance.objects.get().match_method == MatchMethod.PCN


def test_every_ledger_transaction_of_a_posted_file_balances(make_claim):
    make_claim("PD00000001")
    ingest(file_for(SampleClaim("PD00000001", (PAID_LINE,))))
    for txn in JournalTransaction.objects.prefetch_related("entries"):
        assert sum(e.amount for e in txn.entries.all()) == 0


def test_denied_claim_goes_to_the_denial_queue_and_is_not_written_off(make_claim, payer):
    # given
    claim = make_claim("PD00000002")
    # when the payer pays nothing: CO-50 (not medically necessary)
    report = ingest(file_for(SampleClaim("PD00000002", (DENIED_LINE,), status="4")))
    # then the claim is denied, its balance stays with the payer, and a denial is queued
    claim.refresh_from_db()
    assert report.denied == 1
    assert claim.status == ClaimStatus.DENIED
    assert account_balances(patient=claim.patient).insurance_pending == Decimal("100")
    assert ledger_total(LedgerAccount.CONTRACTUAL) == Decimal("0")
    denial = Denial.objects.get()
    assert (denial.claim, denial.carc, denial.rarc, denial.group_code) == (
        claim,
        "50",
        "N115",
        "CO",
    )
    assert denial.cause == "medical_necessity"
    assert denial.amount == Decimal("100")
    assert denial.due_date == PAYMENT_DATE + dt.timedelta(days=payer.appeal_days)
    assert denial.status == "open"


def test_claim_with_one_denied_line_is_partially_paid_and_only_paid_lines_adjust(make_claim):
    claim = make_claim("PD00000003", charges=("100.00", "100.00"), codes=("99213", "99213"))
    ingest(file_for(SampleClaim("PD00000003", (PAID_LINE, DENIED_LINE))))
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.PARTIALLY_PAID
    assert ledger_total(LedgerAccount.CONTRACTUAL) == Decimal("20")
    assert account_balances(patient=claim.patient).insurance_pending == Decimal("100")
    assert Denial.objects.get().carc == "50"


def test_matches_by_payer_claim_number_when_the_control_number_is_unknown(make_claim):
    claim = make_claim("PD00000004")
    claim.payer_claim_number = "ICN-77"
    claim.save()
    ingest(file_for(SampleClaim("MANGLED", (PAID_LINE,), payer_claim_number="ICN-77")))
    remit = ClaimRemittance.objects.get()
    assert (remit.claim, remit.match_method) == (claim, MatchMethod.PAYER_CLAIM_NUMBER)


def test_matches_by_patient_dates_and_lines_when_the_payer_dropped_a_modifier(make_claim):
    # given our claim billed 20610-RT for 210.00
    claim = make_claim(
        "PD00000005", charges=("210.00",), codes=("20610",), modifiers=("RT",), member_id="W55"
    )
    # when the remittance names neither our control number nor a known payer claim number,
    # and reports the line without its modifier
    line = SampleLine("20610", Decimal("210.00"), Decimal("200.00"), (("CO", "45", Decimal(10)),))
    sample = SampleClaim("UNKNOWN", (line,), member_id="w-55", service_date=SERVICE_DATE)
    report = ingest(file_for(sample))
    # then
    remit = ClaimRemittance.objects.get()
    assert (remit.claim, remit.match_method) == (claim, MatchMethod.PATIENT_DATES_LINES)
    assert report.matched == 1


def test_unmatched_claim_payment_is_queued_and_not_dropped(make_claim):
    report = ingest(file_for(SampleClaim("NOBODY", (PAID_LINE,))))
    assert (report.matched, report.unmatched) == (0, 1)
    unmatched = UnmatchedRemittance.objects.get()
    assert unmatched.status == "open"
    assert unmatched.claim_remittance.patient_control_number == "NOBODY"
    # its cash is deposited as unapplied (no patient), nothing else is posted
    held = JournalTransaction.objects.exclude(kind="charge").get()
    assert (held.kind, held.patient, held.claim_reference) == ("insurance_payment", None, "NOBODY")
    assert ledger_total(LedgerAccount.UNAPPLIED) == Decimal("-70")


def test_provider_adjustments_post_without_a_patient(make_claim):
    make_claim("PD00000006")
    plb = (SamplePlb("WO", Decimal("5.00"), "OVERPAY1"), SamplePlb("L6", Decimal("-1.25")))
    ingest(file_for(SampleClaim("PD00000006", (PAID_LINE,)), plb=plb))
    rows = list(ProviderAdjustment.objects.order_by("id"))
    assert [(r.reason_code, r.reference, r.amount) for r in rows] == [
        ("WO", "OVERPAY1", Decimal("5.00")),
        ("L6", "", Decimal("-1.25")),
    ]
    assert all(r.transaction is not None and r.transaction.patient is None for r in rows)
    assert ledger_total(LedgerAccount.PROVIDER_ADJUSTMENT) == Decimal("3.75")
    assert ledger_total(LedgerAccount.CASH) == Decimal("70") - Decimal("3.75")


def test_reversal_reverses_the_earlier_postings_of_the_claim(make_claim, biller):
    # given a claim paid by an earlier remittance
    claim = make_claim("PD00000007")
    ingest(file_for(SampleClaim("PD00000007", (PAID_LINE,))), actor=biller)
    # when the payer takes it back (CLP02 = 22, every amount negated)
    negative = SampleLine(
        "99213",
        Decimal("-100.00"),
        Decimal("-70.00"),
        (("CO", "45", Decimal("-20.00")), ("PR", "2", Decimal("-10.00"))),
        service_date=SERVICE_DATE,
    )
    reversal = SampleClaim("PD00000007", (negative,), status="22")
    report = ingest(file_for(reversal, trace="TRACE0002"), actor=biller)
    # then the account is back where the charge left it, through linked reversals
    assert report.status == FileStatus.POSTED
    balances = account_balances(patient=claim.patient)
    assert (balances.insurance_pending, balances.patient_due) == (Decimal("100"), Decimal("0"))
    assert JournalTransaction.objects.filter(kind="reversal", reverses__isnull=False).count() == 1
    claim.refresh_from_db()
    assert claim.paid_amount == Decimal("0")
    assert claim.status == ClaimStatus.PAID
    assert claim.events.filter(note__startswith="Payer reversed").exists()


def test_the_same_file_posts_once(make_claim):
    # given
    make_claim("PD00000008")
    data = file_for(SampleClaim("PD00000008", (PAID_LINE,)))
    ingest(data)
    before = row_counts()
    # when
    again = ingest(data)
    # then
    assert again.status == ALREADY_POSTED
    assert "already posted" in again.message
    assert row_counts() == before


def test_same_trace_with_other_content_is_quarantined(make_claim):
    # given
    make_claim("PD00000009")
    ingest(file_for(SampleClaim("PD00000009", (PAID_LINE,))))
    posted = JournalTransaction.objects.count()
    # when a different file reuses payer + trace
    other = file_for(SampleClaim("PD00000009", (PAID_LINE,)), payment_date=dt.date(2024, 2, 1))
    report = ingest(other)
    # then
    assert report.status == FileStatus.QUARANTINED
    assert "trace TRACE0001" in report.message
    assert "already posted" in report.message
    assert JournalTransaction.objects.count() == posted
    row = RemittanceFile.objects.get(status=FileStatus.QUARANTINED)
    assert row.content.startswith("ISA*")
    assert row.payments.get().quarantined
    # and sending the quarantined file again adds nothing
    before = row_counts()
    again = ingest(other)
    assert again.status == FileStatus.QUARANTINED
    assert again.message.startswith("already quarantined")
    assert row_counts() == before


def test_refused_file_is_recorded_with_a_message_naming_the_segment(db):
    data = file_for(SampleClaim("X", (PAID_LINE,))).replace(b"BPR*I*70*", b"BPR*I*71*")
    report = ingest(data)
    assert report.status == FileStatus.REFUSED
    assert report.message.startswith("segment 4 (BPR) BPR02: the payment does not balance")
    assert RemittanceFile.objects.get().status == FileStatus.REFUSED
    assert not ClaimRemittance.objects.exists()


def test_dry_run_reports_matches_and_writes_nothing(make_claim):
    make_claim("PD00000010")
    before = row_counts()
    report = ingest(file_for(SampleClaim("PD00000010", (PAID_LINE,))), dry_run=True)
    assert (report.status, report.matched, report.claims) == (FileStatus.DRY_RUN, 1, 1)
    assert row_counts() == before


def test_a_crash_mid_file_leaves_nothing_posted(make_claim, monkeypatch):
    # given
    make_claim("PD00000011")
    before = row_counts()
    audit_rows = AuditEvent.objects.count()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "record_many", crash)
    # when
    with pytest.raises(RuntimeError):
        ingest(file_for(SampleClaim("PD00000011", (PAID_LINE,))))
    # then
    assert row_counts() == before
    assert AuditEvent.objects.count() == audit_rows


def test_progress_is_reported_to_the_end(make_claim):
    make_claim("PD00000012")
    seen: list[tuple[int, int]] = []
    ingest(
        file_for(SampleClaim("PD00000012", (PAID_LINE,))), progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (1, 1)


@given(paid=st.decimals(min_value=0, max_value=100, places=2), seed=st.integers(0, 10**6))
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_reingesting_a_file_changes_nothing(make_claim, paid, seed):
    # given a posted remittance for a new claim
    pcn = f"P{uuid.uuid4().hex[:12]}"
    claim = make_claim(pcn)
    contractual = Decimal("100.00") - paid
    line = SampleLine(
        "99213", Decimal("100.00"), paid, (("CO", "45", contractual),) if contractual else ()
    )
    data = file_for(SampleClaim(pcn, (line,)), trace=f"T{seed}-{pcn}")
    ingest(data)
    before = (row_counts(), account_balances(patient=claim.patient))
    # when
    report = ingest(data)
    # then
    assert report.status == ALREADY_POSTED
    assert (row_counts(), account_balances(patient=claim.patient)) == before


def test_fills_the_prior_payer_rows_of_a_waiting_secondary_claim(make_claim, biller):
    # given a primary claim and its secondary claim waiting as a draft
    primary = make_claim("PD00000013")
    secondary = ClaimFactory(
        encounter=primary.encounter,
        patient=primary.patient,
        sequence="S",
        status=ClaimStatus.DRAFT,
        payer=PayerFactory(payer_id="SEC01"),
    )
    # when the primary payer's remittance is posted
    ingest(file_for(SampleClaim("PD00000013", (PAID_LINE,))), actor=biller)
    # then the secondary claim carries the primary's payment and CAS, claim and line level
    payments = {(p.claim_line_id is None, p.amount) for p in secondary.prior_payments.all()}
    assert payments == {(True, Decimal("70")), (False, Decimal("70"))}
    adjustments = sorted(
        (a.group_code, a.reason_code, a.amount) for a in secondary.prior_adjustments.all()
    )
    assert adjustments == [("CO", "45", Decimal("20")), ("PR", "2", Decimal("10"))]
    assert all(a.claim_line is not None for a in secondary.prior_adjustments.all())
    assert {p.source_claim for p in secondary.prior_payments.all()} == {primary}


def test_prior_payer_fill_serves_a_secondary_claim_created_after_the_remittance(make_claim):
    # given a primary claim already paid
    primary = make_claim("PD00000014")
    ingest(file_for(SampleClaim("PD00000014", (PAID_LINE,))))
    secondary = ClaimFactory(
        encounter=primary.encounter,
        patient=primary.patient,
        sequence="S",
        status=ClaimStatus.DRAFT,
        payer=PayerFactory(payer_id="SEC02"),
    )
    # when
    filled = claim_prior_payer_fill(actor=None, claim=secondary)
    # then
    assert filled
    assert secondary.prior_payments.filter(claim_line__isnull=True).get().amount == Decimal("70")
    assert secondary.prior_adjustments.count() == 2


def test_prior_payer_fill_refuses_a_primary_claim(make_claim):
    primary = make_claim("PD00000015")
    assert not claim_prior_payer_fill(actor=None, claim=primary)


def test_reversal_and_correction_in_one_file_reverse_only_the_earlier_payment(make_claim, biller):
    # given a claim paid 70 by an earlier remittance
    claim = make_claim("PD00000016")
    ingest(file_for(SampleClaim("PD00000016", (PAID_LINE,))), actor=biller)
    # when the payer reverses it and pays 60 instead, in one file
    negative = SampleLine(
        "99213",
        Decimal("-100.00"),
        Decimal("-70.00"),
        (("CO", "45", Decimal("-20.00")), ("PR", "2", Decimal("-10.00"))),
        service_date=SERVICE_DATE,
    )
    corrected = SampleLine(
        "99213",
        Decimal("100.00"),
        Decimal("60.00"),
        (("CO", "45", Decimal("30.00")), ("PR", "2", Decimal("10.00"))),
        service_date=SERVICE_DATE,
    )
    data = file_for(
        SampleClaim("PD00000016", (negative,), status="22"),
        SampleClaim("PD00000016", (corrected,)),
        trace="TRACE0003",
    )
    report = ingest(data, actor=biller)
    # then the first payment is reversed (linked) and the correction stands
    assert report.status == FileStatus.POSTED
    balances = account_balances(patient=claim.patient)
    assert (balances.insurance_pending, balances.patient_due) == (Decimal("0"), Decimal("10"))
    assert ledger_total(LedgerAccount.CASH, claim.patient) == Decimal("60")
    assert ledger_total(LedgerAccount.CONTRACTUAL, claim.patient) == Decimal("30")
    reversal = JournalTransaction.objects.get(kind="reversal")
    assert reversal.reverses is not None
    assert reversal.reverses.source != f"835:{report.sha256}"
    claim.refresh_from_db()
    assert claim.paid_amount == Decimal("60")


def test_the_number_of_queries_does_not_grow_with_the_claims(make_claim):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for(count: int, prefix: str) -> int:
        claims = [SampleClaim(f"{prefix}{n}", (PAID_LINE, DENIED_LINE)) for n in range(count)]
        for claim in claims:
            make_claim(
                claim.patient_control_number,
                charges=("100.00", "100.00"),
                codes=("99213", "99213"),
            )
        with CaptureQueriesContext(connection) as captured:
            report = ingest(file_for(*claims, trace=f"TRACE-{prefix}"))
        assert report.matched == count
        return len(captured.captured_queries)

    assert queries_for(2, "QA") == queries_for(6, "QB")
