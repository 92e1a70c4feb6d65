"""A/R aging: bucket rules, the figures from real postings, and the invariant that the buckets
always sum to the outstanding total (and that total to the ledger's balance)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import ClaimStatus
from billing.tests.factories import ClaimFactory, EncounterFactory, PayerFactory
from patientaccounts.models import LedgerAccount
from patientaccounts.tests.factories import post_charge, take_payment
from receivables.aging import (
    BUCKETS,
    PATIENT_ROW_KEY,
    Basis,
    GroupBy,
    bucket_index,
    compute_aging,
    ledger_balance,
    local_day_start,
)
from receivables.tests.conftest import bill_visit, remit, set_status

D = Decimal
AS_OF = dt.date(2026, 11, 23)


def test_bucket_boundaries_follow_days_outstanding():
    # 30 days is still current, 31 is the next bucket, and so on up to 120+
    ages = [0, 30, 31, 60, 61, 90, 91, 120, 121, 400, -5]
    assert [BUCKETS[bucket_index(days)] for days in ages] == [
        "0-30",
        "0-30",
        "31-60",
        "31-60",
        "61-90",
        "61-90",
        "91-120",
        "91-120",
        "120+",
        "120+",
        "0-30",
    ]


@pytest.mark.django_db
def test_aging_by_payer_from_real_charges_and_remittance_postings(billing_user, encounter):
    # given: a visit billed through billing's services (charges post to the ledger)
    claim = bill_visit(actor=billing_user, encounter=encounter, codes=("99213", "85025"))
    set_status(claim, ClaimStatus.PARTIALLY_PAID, submitted_at=timezone.now())
    # and: the payer paid 80, adjusted 25 contractually and left 20 to the patient
    remit(claim, paid="80.00", contractual="25.00", to_patient="20.00")
    today = timezone.localdate()
    # when
    report = compute_aging(by=GroupBy.PAYER, basis=Basis.SERVICE, as_of=today)
    # then: charges 145 - 125 = 20 still owed by Aetna, 20 by the patient, all current
    by_key = {row.key: row for row in report.rows}
    aetna = by_key[str(claim.payer_id)]
    assert aetna.name == "Aetna"
    assert aetna.buckets == (D("20.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"))
    assert by_key[PATIENT_ROW_KEY].total == D("20.00")
    assert report.totals.total == D("40.00")
    assert report.totals.insurance == D("20.00")
    assert report.totals.patient == D("20.00")


@pytest.mark.django_db
def test_aging_total_equals_the_ledger_balance_of_both_receivable_accounts(
    billing_user, encounter, patient
):
    # given: a billed visit with a partial remittance, plus a self-pay charge and a payment
    claim = bill_visit(actor=billing_user, encounter=encounter, codes=("99213", "36415"))
    set_status(claim, ClaimStatus.SUBMITTED, submitted_at=timezone.now())
    remit(claim, paid="50.00", to_patient="10.00")
    post_charge(patient, "75.00", service_date=timezone.localdate() - dt.timedelta(days=45))
    take_payment(patient, billing_user, amount="30.00")
    today = timezone.localdate()
    # when
    by_payer = compute_aging(by=GroupBy.PAYER, basis=Basis.SERVICE, as_of=today)
    by_patient = compute_aging(by=GroupBy.PATIENT, basis=Basis.SUBMISSION, as_of=today)
    # then
    insurance = ledger_balance(account=LedgerAccount.INSURANCE_AR, as_of=today)
    patient_ar = ledger_balance(account=LedgerAccount.PATIENT_AR, as_of=today)
    assert insurance == D("72.00")  # 120 + 12 - 50 - 10
    assert patient_ar == D("55.00")  # 75 + 10 - 30
    assert by_payer.totals.insurance == insurance
    assert by_payer.totals.patient == patient_ar
    assert by_payer.totals.total == insurance + patient_ar
    assert by_patient.totals.total == insurance + patient_ar
    # the patient's payment settles the oldest charge first: 45 left of the 75, 10 current
    assert by_payer.rows[-1].buckets == (D("10.00"), D("45.00"), D("0.00"), D("0.00"), D("0.00"))


@pytest.mark.django_db
def test_basis_switch_ages_from_service_or_from_submission():
    # given: service 100 days ago, submitted 40 days ago
    payer = PayerFactory(name="Cigna", payer_id="62308")
    claim = ClaimFactory(
        payer=payer,
        encounter=EncounterFactory(date_of_service=AS_OF - dt.timedelta(days=100)),
        lines=1,
    )
    set_status(
        claim, ClaimStatus.SUBMITTED, submitted_at=local_day_start(AS_OF - dt.timedelta(days=40))
    )
    # when
    service = compute_aging(by=GroupBy.PAYER, basis=Basis.SERVICE, as_of=AS_OF)
    submission = compute_aging(by=GroupBy.PAYER, basis=Basis.SUBMISSION, as_of=AS_OF)
    # then
    assert service.rows[0].as_pairs()[3] == ("91-120", D("100.00"))
    assert submission.rows[0].as_pairs()[1] == ("31-60", D("100.00"))


@pytest.mark.django_db
def test_unsubmitted_claims_age_from_the_date_of_service_on_the_submission_basis():
    claim = ClaimFactory(encounter=EncounterFactory(date_of_service=AS_OF - dt.timedelta(days=70)))
    assert claim.submitted_at is None
    report = compute_aging(by=GroupBy.PAYER, basis=Basis.SUBMISSION, as_of=AS_OF)
    assert report.rows[0].as_pairs()[2] == ("61-90", D("100.00"))


@pytest.mark.django_db
def test_void_replaced_and_closed_claims_are_not_receivable():
    encounter = EncounterFactory(date_of_service=AS_OF - dt.timedelta(days=5))
    for status in (ClaimStatus.VOID, ClaimStatus.RESUBMITTED, ClaimStatus.CLOSED):
        ClaimFactory(encounter=encounter, status=status)
    live = ClaimFactory(encounter=encounter, status=ClaimStatus.DENIED)
    report = compute_aging(by=GroupBy.PAYER, basis=Basis.SERVICE, as_of=AS_OF)
    assert [row.key for row in report.rows] == [str(live.payer_id)]


@pytest.mark.django_db
def test_as_of_date_leaves_out_later_postings_and_later_services(billing_user, encounter):
    # given: a claim paid in full today, for a visit 5 days ago
    claim = bill_visit(actor=billing_user, encounter=encounter)
    remit(claim, paid="120.00")
    today = timezone.localdate()
    # when: the aging as of yesterday, and as of a week ago
    yesterday = compute_aging(
        by=GroupBy.PAYER, basis=Basis.SERVICE, as_of=today - dt.timedelta(days=1)
    )
    week_ago = compute_aging(
        by=GroupBy.PAYER, basis=Basis.SERVICE, as_of=today - dt.timedelta(days=7)
    )
    now = compute_aging(by=GroupBy.PAYER, basis=Basis.SERVICE, as_of=today)
    # then: yesterday the payment had not come in; a week ago the visit had not happened
    assert yesterday.totals.insurance == D("120.00")
    assert week_ago.rows == []
    assert now.totals.total == D("0.00")


@pytest.mark.django_db
def test_location_scope_leaves_out_other_locations_claims_and_patients(riverside, main_clinic):
    ClaimFactory(encounter=EncounterFactory(location=riverside, date_of_service=AS_OF))
    post_charge(EncounterFactory(location=riverside).patient, "40.00", service_date=AS_OF)
    report = compute_aging(
        by=GroupBy.PATIENT, basis=Basis.SERVICE, as_of=AS_OF, location_ids={main_clinic.pk}
    )
    everywhere = compute_aging(by=GroupBy.PATIENT, basis=Basis.SERVICE, as_of=AS_OF)
    assert report.rows == []
    assert report.totals.total == D("0.00")
    assert everywhere.totals.total == D("140.00")
    assert everywhere.row_count == 2


@pytest.mark.django_db
def test_by_patient_lists_the_largest_balances_first_and_counts_them_all():
    small = ClaimFactory(encounter=EncounterFactory(date_of_service=AS_OF), lines=1)
    large = ClaimFactory(encounter=EncounterFactory(date_of_service=AS_OF), lines=3)
    report = compute_aging(by=GroupBy.PATIENT, basis=Basis.SERVICE, as_of=AS_OF, limit=1)
    assert report.row_count == 2
    assert report.truncated
    assert [row.mrn for row in report.rows] == [large.patient.mrn]
    assert report.rows[0].public_id == str(large.patient.public_id)
    assert report.totals.total == D("303.00") + D("100.00")
    assert small.patient.mrn not in {row.mrn for row in report.rows}
