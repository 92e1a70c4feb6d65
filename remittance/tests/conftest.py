"""Remittance fixtures: submitted claims at Main Street Clinic with their charges posted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest

from accounts.models import User
from billing.models import Claim, ClaimStatus, Payer
from billing.posting import post_charge
from billing.tests.factories import ClaimFactory, EncounterFactory, PayerFactory
from core.models import Location
from patients.tests.factories import CoverageFactory, PatientFactory

SERVICE_DATE = dt.date(2024, 1, 2)


@pytest.fixture
def biller(persona: Callable[[str], User]) -> User:
    return persona("billing")


@pytest.fixture
def payer(db: None) -> Payer:
    return PayerFactory(name="Sample Health Plan", payer_id="1999999999", appeal_days=90)


@pytest.fixture
def make_claim(main_clinic: Location, payer: Payer) -> Callable[..., Claim]:
    """make_claim(pcn, charges=[...], codes=[...], status=submitted): a claim whose charge
    lines are posted to the ledger (insurance A/R), with a coverage at `payer`."""

    def make(
        pcn: str,
        *,
        charges: tuple[str, ...] = ("100.00",),
        codes: tuple[str, ...] = ("99213",),
        modifiers: tuple[str, ...] = (),
        status: str = ClaimStatus.SUBMITTED,
        member_id: str = "",
    ) -> Claim:
        patient = PatientFactory(home_location=main_clinic)
        coverage = CoverageFactory(
            patient=patient,
            payer_name=payer.name,
            payer_identifier=payer.payer_id,
            **({"member_id": member_id} if member_id else {}),
        )
        encounter = EncounterFactory(
            patient=patient, location=main_clinic, date_of_service=SERVICE_DATE
        )
        claim = ClaimFactory(
            encounter=encounter,
            patient=patient,
            payer=payer,
            coverage=coverage,
            patient_control_number=pcn,
            status=status,
            lines=len(charges),
        )
        for line, charge, code in zip(
            claim.lines.order_by("line_number"), charges, codes, strict=True
        ):
            line.charge = Decimal(charge)
            line.code = code
            if modifiers:
                line.modifier1 = modifiers[0]
            line.save()
            charge_line = line.charge_line
            charge_line.amount = Decimal(charge)
            charge_line.code = code
            charge_line.save()
            post_charge(actor=None, line=charge_line)
        claim.total_charge = sum((Decimal(c) for c in charges), Decimal("0"))
        claim.save()
        return claim

    return make
