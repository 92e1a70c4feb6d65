"""KPIs over a period, checked against figures computed by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.models import ClaimEvent, ClaimFrequency, ClaimStatus
from billing.tests.factories import (
    ChargeLineFactory,
    ClaimFactory,
    EncounterFactory,
    PayerFactory,
)
from patientaccounts.ledger import Line, Posting, journal_post
from patientaccounts.models import LedgerAccount, TransactionKind
from receivables.aging import local_day_start
from receivables.kpis import compute_kpis, ratio

D = Decimal
A = LedgerAccount
K = TransactionKind
S = ClaimStatus
START, END = dt.date(2026, 9, 1), dt.date(2026, 9, 30)


def at(day: dt.date) -> dt.datetime:
    return local_day_start(day) + dt.timedelta(hours=10)


def claim_with_timeline(payer, status, submitted: dt.date, *steps: tuple[str, dt.date], **kw):
    """A claim whose timeline holds `submitted` then `steps` (status, day)."""
    claim = ClaimFactory(
        payer=payer,
        status=status,
        submitted_at=at(submitted),
        encounter=EncounterFactory(date_of_service=dt.date(2026, 8, 25)),
        **kw,
    )
    previous = S.READY
    for to_status, day in [(S.SUBMITTED, submitted), *steps]:
        ClaimEvent.objects.create(
            claim=claim, at=at(day), from_status=previous, to_status=to_status
        )
        previous = to_status
    return claim


def post(patient, kind, debit, credit, amount, day, service_date=None):
    value = D(amount)
    return journal_post(
        actor=None,
        posting=Posting(
            patient=patient,
            kind=kind,
            lines=[Line(debit, value), Line(credit, -value)],
            service_date=service_date,
            posted_at=at(day),
        ),
    )


@pytest.fixture
def period_data(db):
    payer = PayerFactory(name="Aetna")
    sep = dt.date(2026, 9, 1)
    claims = [
        # clean: paid the first time
        claim_with_timeline(
            payer,
            S.PAID,
            sep.replace(day=5),
            (S.ACCEPTED, sep.replace(day=6)),
            (S.PAID, sep.replace(day=20)),
        ),
        # denied
        claim_with_timeline(payer, S.DENIED, sep.replace(day=6), (S.DENIED, sep.replace(day=15))),
        # rejected: not clean, not adjudicated
        claim_with_timeline(
            payer, S.REJECTED, sep.replace(day=7), (S.REJECTED, sep.replace(day=8))
        ),
        # partially paid the first time: clean
        claim_with_timeline(
            payer, S.PARTIALLY_PAID, sep.replace(day=10), (S.PARTIALLY_PAID, sep.replace(day=25))
        ),
        # submitted in August, paid in September: adjudicated here, first pass in August
        claim_with_timeline(payer, S.PAID, dt.date(2026, 8, 20), (S.PAID, sep.replace(day=2))),
        # denied, appealed, then paid: adjudicated once, denied, not clean
        claim_with_timeline(
            payer,
            S.PAID,
            sep.replace(day=12),
            (S.DENIED, sep.replace(day=14)),
            (S.APPEALED, sep.replace(day=16)),
            (S.PAID, sep.replace(day=28)),
        ),
        # clean
        claim_with_timeline(payer, S.PAID, sep.replace(day=15), (S.PAID, sep.replace(day=29))),
    ]
    patient = claims[0].patient
    # the ledger in September: charges 3,000; payments 1,200 (insurance) + 300 (patient);
    # contractual adjustments 500. One charge of 999 in August.
    # the charge lines (gross charges by date of service): 3,000 in September, 999 in August
    for amount, day in (
        ("1000.00", dt.date(2026, 9, 3)),
        ("1500.00", dt.date(2026, 9, 10)),
        ("500.00", dt.date(2026, 9, 20)),
        ("999.00", dt.date(2026, 8, 31)),
    ):
        ChargeLineFactory(
            encounter=EncounterFactory(date_of_service=day),
            line_number=1,
            amount=D(amount),
            fee_amount=D(amount),
        )
    for amount, day in (("1000.00", 3), ("1500.00", 10), ("500.00", 20)):
        post(
            patient,
            K.CHARGE,
            A.PATIENT_AR,
            A.GROSS_CHARGES,
            amount,
            sep.replace(day=day),
            service_date=sep.replace(day=day),
        )
    post(
        patient,
        K.CHARGE,
        A.PATIENT_AR,
        A.GROSS_CHARGES,
        "999.00",
        dt.date(2026, 8, 31),
        service_date=dt.date(2026, 8, 31),
    )
    post(patient, K.INSURANCE_PAYMENT, A.CASH, A.INSURANCE_AR, "1200.00", sep.replace(day=21))
    post(patient, K.PATIENT_PAYMENT, A.CASH, A.PATIENT_AR, "300.00", sep.replace(day=22))
    post(
        patient,
        K.CONTRACTUAL_ADJUSTMENT,
        A.CONTRACTUAL,
        A.INSURANCE_AR,
        "500.00",
        sep.replace(day=21),
    )
    return claims


def test_kpis_match_the_figures_computed_by_hand(period_data):
    # when
    report = compute_kpis(start=START, end=END)
    kpis = {kpi.key: kpi for kpi in report.kpis}
    # then: denial rate = 2 denied of 6 adjudicated
    assert (kpis["denial_rate"].numerator, kpis["denial_rate"].denominator) == (D(2), D(6))
    assert kpis["denial_rate"].value == D("33.3")
    # clean-claim rate = 3 paid first time of 6 submitted in September
    assert (kpis["clean_claim_rate"].numerator, kpis["clean_claim_rate"].denominator) == (
        D(3),
        D(6),
    )
    assert kpis["clean_claim_rate"].value == D("50.0")
    # net collection rate = 1,500 / (3,000 - 500)
    assert kpis["net_collection_rate"].numerator == D("1500.00")
    assert kpis["net_collection_rate"].denominator == D("2500.00")
    assert kpis["net_collection_rate"].value == D("60.0")
    # days in A/R: A/R = 7 claims x 100 + patient 3,999 - 300 = 4,399; 3,000 / 30 days = 100
    assert kpis["days_in_ar"].numerator == D("4399.00")
    assert kpis["days_in_ar"].denominator == D("100.00")
    assert kpis["days_in_ar"].value == D("44.0")
    assert kpis["days_in_ar"].display == "44.0 days"


def test_kpis_scoped_to_locations_count_their_claims_and_patients_only(period_data):
    from core.models import Location

    clean, denied = period_data[0], period_data[1]

    def figures(scope: set[int]) -> dict[str, tuple[Decimal, Decimal]]:
        report = compute_kpis(start=START, end=END, location_ids=scope)
        return {kpi.key: (kpi.numerator, kpi.denominator) for kpi in report.kpis}

    # each claim's encounter is at a location of its own; the patient of the first claim,
    # who made every payment, lives at that claim's location
    here = figures({clean.encounter.location_id})
    assert here["denial_rate"] == (D(0), D(1))
    assert here["net_collection_rate"] == (D("1500.00"), D("-500.00"))
    there = figures({denied.encounter.location_id})
    assert there["denial_rate"] == (D(1), D(1))
    assert there["net_collection_rate"] == (D("0.00"), D("0.00"))
    assert figures({clean.encounter.location_id, denied.encounter.location_id})["denial_rate"] == (
        D(1),
        D(2),
    )
    # every location: the claims' counts and the charges are the unscoped ones
    every = figures(set(Location.objects.values_list("id", flat=True)))
    unscoped = {
        k.key: (k.numerator, k.denominator) for k in compute_kpis(start=START, end=END).kpis
    }
    assert every["denial_rate"] == unscoped["denial_rate"] == (D(2), D(6))
    assert every["net_collection_rate"] == unscoped["net_collection_rate"]
    assert figures(set())["denial_rate"] == (D(0), D(0))


def test_every_kpi_carries_its_definition_and_formula(period_data):
    report = compute_kpis(start=START, end=END, trend=False)
    assert [kpi.name for kpi in report.kpis] == [
        "Days in A/R",
        "Denial rate",
        "Clean-claim (first-pass) rate",
        "Net collection rate",
    ]
    for kpi in report.kpis:
        assert kpi.definition
        assert "÷" in kpi.formula


def test_trend_gives_each_month_its_own_rates(period_data):
    report = compute_kpis(start=dt.date(2026, 8, 1), end=END)
    august, september = report.trend
    assert august.month == dt.date(2026, 8, 1)
    assert august.denial_rate is None  # nothing adjudicated in August
    assert august.clean_claim_rate == D("100.0")  # the August claim was paid first time
    assert august.net_collection_rate == D("0.0")  # 999 + 7 x 100 charged, nothing collected
    assert september.denial_rate == D("33.3")
    assert september.clean_claim_rate == D("50.0")
    assert september.net_collection_rate == D("60.0")


def test_replacement_claims_are_not_counted_as_first_submissions(period_data):
    original = period_data[2]
    ClaimFactory(
        payer=original.payer,
        encounter=original.encounter,
        frequency_code=ClaimFrequency.REPLACEMENT,
        replaces=original,
        status=S.PAID,
        submitted_at=at(dt.date(2026, 9, 20)),
    )
    report = compute_kpis(start=START, end=END, trend=False)
    assert report.kpis[2].denominator == D(6)


@pytest.mark.django_db
def test_an_empty_period_has_no_ratios_rather_than_a_division_error():
    report = compute_kpis(start=START, end=END)
    assert [kpi.value for kpi in report.kpis] == [None, None, None, None]
    assert [kpi.display for kpi in report.kpis] == ["n/a"] * 4
    assert len(report.trend) == 1


def test_ratio_rounds_half_up_to_one_decimal():
    assert ratio(D(1), D(3)) == D("33.3")
    assert ratio(D(2), D(3)) == D("66.7")
    assert ratio(D(1), D(0)) is None
    assert ratio(D("4399"), D("100"), percent=False) == D("44.0")


def test_a_period_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="end"):
        compute_kpis(start=END, end=START)
