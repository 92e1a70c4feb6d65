"""The claim scrubber: reads a claim once into `ClaimFacts`, then runs every rule of
`billing.scrub_rules` (pure functions kept as data) and returns every problem at once."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from billing.models import LIVE_STATUSES, Claim, ClaimLine, Modifier, PlaceOfService
from billing.scrub_rules import ClaimFacts, LineFacts, PriorPayerFacts, Problem, run_all


def _signature(lines: list[ClaimLine]) -> tuple[tuple[str, dt.date], ...]:
    return tuple(sorted((line.code, line.service_date) for line in lines))


def duplicates_of(claim: Claim, lines: list[ClaimLine]) -> tuple[str, ...]:
    """Other live claims for the same patient, payer and date of service with the same codes.
    A replacement or void of the original is not its duplicate."""
    mine = _signature(lines)
    others = (
        Claim.objects.filter(
            patient_id=claim.patient_id,
            payer_id=claim.payer_id,
            date_of_service=claim.date_of_service,
            status__in=LIVE_STATUSES,
        )
        .exclude(pk=claim.pk)
        .exclude(pk=claim.replaces_id or 0)
        .exclude(replaces_id=claim.pk)
        .prefetch_related("lines")
    )
    return tuple(
        other.patient_control_number
        for other in others
        if other.frequency_code == claim.frequency_code
        and _signature(list(other.lines.all())) == mine
    )


def facts_for_claim(claim: Claim, *, today: dt.date | None = None) -> ClaimFacts:
    claim = (
        Claim.objects.select_related(
            "patient", "coverage", "payer", "billing_provider", "rendering_practitioner", "replaces"
        )
        .prefetch_related("lines")
        .get(pk=claim.pk)
    )
    patient, coverage, provider = claim.patient, claim.coverage, claim.billing_provider
    lines = list(claim.lines.all())
    diagnoses = tuple(claim.encounter.diagnoses.order_by("position").values_list("code", flat=True))
    prior = [
        (payer_id, indicator, sequence or "P", msp_type or "")
        for payer_id, indicator, sequence, msp_type in claim.prior_payments.order_by(
            "id"
        ).values_list(
            "payer__payer_id",
            "payer__claim_filing_indicator",
            "source_claim__sequence",
            "source_claim__coverage__medicare_secondary_type",
        )
    ]
    return ClaimFacts(
        today=today or timezone.localdate(),
        payer_id=claim.payer.payer_id,
        timely_filing_days=claim.payer.timely_filing_days,
        member_id=coverage.member_id,
        relationship=coverage.relationship,
        subscriber_name=coverage.subscriber_name,
        subscriber_birth_date=coverage.subscriber_birth_date,
        patient_family_name=patient.family_name,
        patient_given_name=patient.given_name,
        patient_birth_date=patient.birth_date,
        patient_sex=patient.sex_at_birth,
        patient_address_line1=patient.address_line1,
        patient_city=patient.city,
        patient_state=patient.state,
        patient_postal_code=patient.postal_code,
        billing_npi=provider.npi,
        billing_taxonomy=provider.taxonomy_code,
        billing_tax_id=provider.tax_id,
        billing_postal_code=provider.postal_code,
        rendering_npi=claim.rendering_practitioner.npi,
        place_of_service=claim.place_of_service,
        diagnoses=diagnoses,
        lines=tuple(
            LineFacts(
                number=line.line_number,
                code=line.code,
                modifiers=tuple(line.modifiers),
                units=line.units,
                charge=line.charge,
                pointers=tuple(line.pointers),
                service_date=line.service_date,
                place_of_service=line.place_of_service,
            )
            for line in lines
        ),
        total_charge=claim.total_charge,
        frequency_code=claim.frequency_code,
        original_payer_claim_number=claim.replaces.payer_claim_number if claim.replaces else "",
        sequence=claim.sequence,
        payer_filing_indicator=claim.payer.claim_filing_indicator,
        medicare_secondary_type=coverage.medicare_secondary_type,
        prior_payments=len(prior),
        prior_payers=tuple(PriorPayerFacts(*row) for row in prior),
        duplicate_of=duplicates_of(claim, lines),
        known_modifiers=frozenset(
            Modifier.objects.filter(is_active=True).values_list("code", flat=True)
        ),
        known_places=frozenset(
            PlaceOfService.objects.filter(is_active=True).values_list("code", flat=True)
        ),
    )


def scrub(claim: Claim, *, today: dt.date | None = None) -> list[Problem]:
    """Every problem of the claim, errors first, in plain words with the field to fix."""
    return run_all(facts_for_claim(claim, today=today))
