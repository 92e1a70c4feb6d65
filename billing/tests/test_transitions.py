"""The claim life cycle: exactly the allowed arrows, and prior-payer data on secondary claims."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import User
from billing import services
from billing.models import ALLOWED, Claim, ClaimPriorAdjustment, ClaimStatus, Encounter, Payer
from billing.services import BillingError, LineInput, PriorAdjustment, PriorPayment
from patients.models import Patient
from patients.tests.factories import CoverageFactory

pytestmark = pytest.mark.django_db

MOVES = [(a, b) for a in ClaimStatus.values for b in ClaimStatus.values if b != ClaimStatus.READY]


def test_the_life_cycle_of_the_issue_is_encoded() -> None:
    s = ClaimStatus
    assert ALLOWED[s.DRAFT] >= {s.READY}
    assert ALLOWED[s.READY] >= {s.SUBMITTED}
    assert ALLOWED[s.SUBMITTED] >= {s.ACCEPTED, s.REJECTED}
    assert ALLOWED[s.ACCEPTED] >= {s.PAID, s.PARTIALLY_PAID, s.DENIED}
    for status in (s.REJECTED, s.DENIED):
        assert ALLOWED[status] >= {s.APPEALED, s.RESUBMITTED}
    for status in (s.PAID, s.PARTIALLY_PAID, s.DENIED, s.VOID):
        assert s.CLOSED in ALLOWED[status]
    assert ALLOWED[s.CLOSED] == frozenset()
    assert set(ALLOWED) == set(s.values)


def _reachable(start: str) -> set[str]:
    reached, frontier = {start}, [start]
    while frontier:
        for target in ALLOWED[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    return reached


def test_every_status_can_be_reached_from_draft_and_can_reach_closed() -> None:
    assert _reachable(ClaimStatus.DRAFT) == set(ClaimStatus.values)
    for status in ClaimStatus.values:
        assert ClaimStatus.CLOSED in _reachable(status)


@pytest.fixture
def claim(billing_user: User, encounter: Encounter) -> Claim:
    services.charge_line_add(actor=billing_user, encounter=encounter, line=LineInput(code="99213"))
    return services.claim_create_from_encounter(actor=billing_user, encounter=encounter)


def test_claim_transition_follows_exactly_the_allowed_arrows(
    billing_user: User, claim: Claim
) -> None:
    for source, target in MOVES:
        # given
        Claim.objects.filter(pk=claim.pk).update(status=source)

        # when
        try:
            services.claim_transition(actor=billing_user, claim=claim, to_status=target)
            moved = True
        except BillingError:
            moved = False

        # then
        assert moved == (target in ALLOWED[source]), (source, target)
        claim.refresh_from_db()
        assert claim.status == (target if moved else source)


@pytest.fixture
def secondary(billing_user: User, claim: Claim, patient: Patient, encounter: Encounter) -> Claim:
    Payer.objects.create(name="Medicare", payer_id="04412")
    CoverageFactory(patient=patient, payer_name="Medicare", payer_identifier="04412", order=2)
    Claim.objects.filter(pk=claim.pk).update(status=ClaimStatus.ACCEPTED)
    services.claim_transition(actor=billing_user, claim=claim, to_status=ClaimStatus.PAID)
    return services.claim_create_from_encounter(actor=billing_user, encounter=encounter)


def test_records_the_primarys_payment_and_adjustments_on_the_secondary(
    billing_user: User, claim: Claim, secondary: Claim
) -> None:
    # when
    services.claim_prior_payer_record(
        actor=billing_user,
        claim=secondary,
        source_claim=claim,
        payments=[
            PriorPayment(amount=Decimal("80.00"), paid_date=dt.date(2026, 1, 5)),
            PriorPayment(amount=Decimal("80.00"), line_number=1),
        ],
        adjustments=[
            PriorAdjustment("CO", "45", Decimal("20.00"), line_number=1),
            PriorAdjustment("PR", "2", Decimal("20.00"), line_number=1),
        ],
    )

    # then
    assert secondary.prior_payments.count() == 2
    assert sorted(
        ClaimPriorAdjustment.objects.filter(claim=secondary).values_list("group_code", flat=True)
    ) == ["CO", "PR"]
    assert services.claim_scrub(actor=billing_user, claim=secondary) == []


def test_recording_again_replaces_the_earlier_record(
    billing_user: User, claim: Claim, secondary: Claim
) -> None:
    for amount in (Decimal("50.00"), Decimal("80.00")):
        services.claim_prior_payer_record(
            actor=billing_user,
            claim=secondary,
            source_claim=claim,
            payments=[PriorPayment(amount=amount)],
            adjustments=[],
        )

    assert list(secondary.prior_payments.values_list("amount", flat=True)) == [Decimal("80.00")]


@pytest.mark.parametrize(
    ("adjustment", "field"),
    [
        (PriorAdjustment("XX", "45", Decimal("1.00")), "adjustments.1.group_code"),
        (PriorAdjustment("CO", " ", Decimal("1.00")), "adjustments.1.reason_code"),
        (PriorAdjustment("CO", "45", Decimal("1.00"), line_number=9), "adjustments.1.line_number"),
    ],
)
def test_refuses_a_bad_adjustment_naming_it(
    billing_user: User, claim: Claim, secondary: Claim, adjustment: PriorAdjustment, field: str
) -> None:
    with pytest.raises(BillingError) as caught:
        services.claim_prior_payer_record(
            actor=billing_user,
            claim=secondary,
            source_claim=claim,
            payments=[],
            adjustments=[adjustment],
        )

    assert caught.value.field == field


def test_a_primary_claim_has_no_prior_payer(billing_user: User, claim: Claim) -> None:
    with pytest.raises(BillingError):
        services.claim_prior_payer_record(
            actor=billing_user, claim=claim, source_claim=claim, payments=[], adjustments=[]
        )
