"""Running A/R balances: every posting path keeps them equal to the ledger's sums, the report
read from them equals the report from the ledger scan, the rebuild command restores and checks
them, and a patient merge re-keys them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Claim, ClaimStatus
from billing.tests.factories import ClaimFactory, EncounterFactory, PayerFactory
from patientaccounts.ledger import Line, Posting, journal_post, journal_post_many, journal_reverse
from patientaccounts.models import JournalTransaction, LedgerAccount, TransactionKind
from patientaccounts.tests.factories import post_charge, take_payment
from patients import services as patient_services
from patients.tests.factories import PatientFactory
from receivables.aging import AgingReport, Basis, GroupBy, compute_aging, total_outstanding
from receivables.balances import differences, rebuild
from receivables.models import ClaimArBalance, PatientArBalance
from receivables.tests.conftest import bill_visit, remit, set_status

D = Decimal
A = LedgerAccount
K = TransactionKind


def _balances() -> tuple[dict[str, Decimal], dict[tuple[int, dt.date | None], Decimal]]:
    claims = {b.claim_reference: b.amount for b in ClaimArBalance.objects.all()}
    patients = {(b.patient_id, b.service_date): b.amount for b in PatientArBalance.objects.all()}
    return claims, patients


def _same_reports(**scope: object) -> list[AgingReport]:
    """Every combination read from the balances and from the ledger: they must be equal."""
    today = timezone.localdate()
    reports = []
    for by in GroupBy.values:
        for basis in Basis.values:
            fast = compute_aging(by=by, basis=basis, as_of=today, **scope)
            slow = compute_aging(by=by, basis=basis, as_of=today, from_ledger=True, **scope)
            assert fast == slow
            reports.append(fast)
    # days in A/R reads the total alone: the same figure
    total = reports[0].totals.total
    assert total_outstanding(as_of=today, **scope) == total
    assert total_outstanding(as_of=today, from_ledger=True, **scope) == total
    return reports


@pytest.mark.django_db
def test_charges_remittances_payments_and_reversals_keep_the_balances(billing_user, encounter):
    # given: a billed visit (charges 145), remitted (80 paid, 25 contractual, 20 to the patient)
    claim = bill_visit(actor=billing_user, encounter=encounter, codes=("99213", "85025"))
    set_status(claim, ClaimStatus.PARTIALLY_PAID, submitted_at=timezone.now())
    paid, _, transfer = remit(claim, paid="80.00", contractual="25.00", to_patient="20.00")
    take_payment(claim.patient, billing_user, amount="5.00")
    # when: the payment is reversed
    journal_reverse(actor=billing_user, transaction=paid, reason="posted to the wrong claim")
    # then: charges are not in the claim's balance; its credits and their reversal are
    claims, patients = _balances()
    assert claims == {claim.patient_control_number: D("-45.00")}  # -80 -25 -20 +80
    assert patients == {
        (claim.patient_id, claim.date_of_service): D("20.00"),
        (claim.patient_id, None): D("-5.00"),
    }
    assert transfer.service_date == claim.date_of_service
    assert differences() == []
    payer = _same_reports()[0]
    assert payer.totals.insurance == D("100.00")  # 145 - 45
    assert payer.totals.patient == D("15.00")


@pytest.mark.django_db
def test_a_retried_posting_changes_no_balance(patient):
    posting = Posting(
        patient=patient,
        kind=K.CHARGE,
        lines=[Line(A.PATIENT_AR, D("30.00")), Line(A.GROSS_CHARGES, D("-30.00"))],
        service_date=dt.date(2026, 10, 1),
        idempotency_key="charge:retry",
    )
    journal_post(actor=None, posting=posting)
    journal_post(actor=None, posting=posting)
    journal_post_many(actor=None, postings=[posting, posting])
    assert _balances()[1] == {(patient.pk, dt.date(2026, 10, 1)): D("30.00")}
    assert differences() == []


@pytest.mark.django_db
def test_patient_ar_without_a_patient_counts_in_both_reports():
    # no posting path writes one, but the ledger accepts it: both reports must count it
    journal_post(
        actor=None,
        posting=Posting(
            patient=None,
            kind=K.PROVIDER_ADJUSTMENT,
            lines=[Line(A.PATIENT_AR, D("7.00")), Line(A.PROVIDER_ADJUSTMENT, D("-7.00"))],
        ),
    )
    assert PatientArBalance.objects.count() == 0
    payer = _same_reports()[0]
    assert payer.totals.patient == D("7.00")


@pytest.mark.django_db
def test_rebuild_restores_the_balances_and_check_reports_differences(billing_user, encounter):
    claim = bill_visit(actor=billing_user, encounter=encounter, codes=("99213",))
    remit(claim, paid="60.00", to_patient="10.00")
    post_charge(claim.patient, "40.00", service_date=dt.date(2026, 9, 1))
    before = _balances()
    # when: the balances drift (as after ledger rows written around the ledger service)
    ClaimArBalance.objects.filter(claim_reference=claim.patient_control_number).update(
        amount=D("1.00")
    )
    PatientArBalance.objects.filter(service_date=dt.date(2026, 9, 1)).delete()
    # then: --check names them and fails, without changing anything
    problems = differences()
    assert len(problems) == 2
    assert problems[0].startswith(f"claim {claim.patient_control_number}: running balance 1.00")
    with pytest.raises(CommandError, match="differ from the ledger"):
        call_command("rebuild_ar_balances", "--check")
    assert ClaimArBalance.objects.get().amount == D("1.00")
    # and: a rebuild restores them, and a second rebuild changes nothing
    call_command("rebuild_ar_balances", "--no-progress")
    assert _balances() == before
    result = rebuild()
    assert (result.claims, result.patients) == (1, 2)
    assert _balances() == before
    call_command("rebuild_ar_balances", "--check")


@pytest.mark.django_db
def test_patient_merge_adds_the_merged_records_balances_into_the_survivors(
    officemanager, main_clinic
):
    survivor = PatientFactory.create(home_location=main_clinic)
    merged = PatientFactory.create(home_location=main_clinic)
    day = dt.date(2026, 8, 3)
    post_charge(survivor, "25.00", service_date=day)
    post_charge(merged, "35.00", service_date=day)
    post_charge(merged, "10.00", service_date=dt.date(2026, 8, 4))
    # when
    patient_services.patient_merge(
        actor=officemanager, survivor=survivor, merged=merged, reason="same person"
    )
    # then
    assert _balances()[1] == {
        (survivor.pk, day): D("60.00"),
        (survivor.pk, dt.date(2026, 8, 4)): D("10.00"),
    }
    assert differences() == []
    _same_reports()


cents = st.integers(min_value=-30_000, max_value=30_000).filter(bool).map(lambda c: D(c) / 100)
posting_st = st.fixed_dictionaries(
    {
        "who": st.integers(min_value=0, max_value=2),
        "kind": st.sampled_from(
            [K.CHARGE, K.INSURANCE_PAYMENT, K.TRANSFER_TO_PATIENT, K.PATIENT_PAYMENT]
        ),
        "claim": st.one_of(st.none(), st.integers(min_value=0, max_value=3)),
        "age": st.one_of(st.none(), st.integers(min_value=-3, max_value=300)),
        "amount": cents,
        "reverse": st.booleans(),
        "bulk": st.booleans(),
    }
)
ACCOUNTS = {
    K.CHARGE: (A.INSURANCE_AR, A.GROSS_CHARGES),
    K.INSURANCE_PAYMENT: (A.CASH, A.INSURANCE_AR),
    K.TRANSFER_TO_PATIENT: (A.PATIENT_AR, A.INSURANCE_AR),
    K.PATIENT_PAYMENT: (A.CASH, A.PATIENT_AR),
}


@pytest.fixture
def claims(db):
    payers = [PayerFactory(name="Aetna"), PayerFactory(name="Cigna")]
    today = timezone.localdate()
    out = []
    for number in range(4):
        claim = ClaimFactory(
            encounter=EncounterFactory(date_of_service=today - dt.timedelta(days=20 * number)),
            payer=payers[number % 2],
            lines=1,
        )
        set_status(
            claim,
            ClaimStatus.SUBMITTED,
            submitted_at=timezone.now() - dt.timedelta(days=9 * number),
        )
        out.append(Claim.objects.get(pk=claim.pk))
    return out


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(postings=st.lists(posting_st, max_size=12))
def test_property_report_from_balances_equals_the_ledger_scan(claims, main_clinic, postings):
    today = timezone.localdate()
    with transaction.atomic():
        batch: list[Posting] = []
        batch_reverse: list[bool] = []
        posted: list[tuple[JournalTransaction, bool]] = []
        for number, spec in enumerate(postings):
            claim = claims[spec["claim"]] if spec["claim"] is not None else None
            patient = claims[spec["who"]].patient
            debit, credit = ACCOUNTS[spec["kind"]]
            service_date = None
            if spec["age"] is not None:
                service_date = today - dt.timedelta(days=spec["age"])
            posting = Posting(
                patient=claim.patient if claim is not None else patient,
                kind=spec["kind"],
                lines=[Line(debit, spec["amount"]), Line(credit, -spec["amount"])],
                service_date=service_date,
                claim_reference=claim.patient_control_number if claim is not None else "",
                idempotency_key=f"p{number}",
            )
            if spec["bulk"]:
                batch.append(posting)
                batch_reverse.append(spec["reverse"])
            else:
                posted.append((journal_post(actor=None, posting=posting), spec["reverse"]))
        created = journal_post_many(actor=None, postings=batch)
        posted += list(zip(created, batch_reverse, strict=True))
        for txn, reverse in posted:
            if reverse and txn.kind != K.REVERSAL:
                journal_reverse(actor=None, transaction=txn, reason="test")
        assert differences() == []
        _same_reports()
        _same_reports(location_ids={main_clinic.pk})
        _same_reports(location_ids=set())
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_the_migration_fills_the_balances_of_a_ledger_posted_before_it(billing_user, encounter):
    import importlib

    from django.db import connection

    migration = importlib.import_module("receivables.migrations.0001_running_balances")
    claim = bill_visit(actor=billing_user, encounter=encounter, codes=("99213",))
    remit(claim, paid="60.00", to_patient="10.00")
    take_payment(claim.patient, billing_user, amount="4.00")
    kept = _balances()
    ClaimArBalance.objects.all().delete()
    PatientArBalance.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(migration.FILL_CLAIMS)
        cursor.execute(migration.FILL_PATIENTS)
    assert _balances() == kept
    assert kept[0] == {claim.patient_control_number: D("-70.00")}


@pytest.mark.django_db
def test_reports_turn_jit_off_only_while_they_run():
    from django.db import connection

    from receivables.aging import without_jit

    def jit() -> str:
        if connection.vendor != "postgresql":
            return "n/a"  # SQLite has no JIT: without_jit() runs nothing there
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('jit') || ' ' || current_setting('work_mem')")
            return str(cursor.fetchone()[0])

    before = jit()
    with without_jit():
        inside = jit()
        with without_jit():  # nested: no second change, and the outer one restores
            assert jit() == inside
        assert jit() == inside
    assert inside in ("off 64MB", "n/a")
    assert jit() == before
    with pytest.raises(ZeroDivisionError), without_jit():
        _ = 1 / 0
    assert jit() == before
    compute_aging(by=GroupBy.PAYER, basis=Basis.SERVICE, as_of=timezone.localdate())
    assert jit() == before
