"""Billing fixtures: a clean claim setup at Main Street Clinic (the personas' location)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import User
from billing.models import BillingProvider, Encounter, FeeSchedule, Payer
from billing.tests.factories import (
    BillingProviderFactory,
    EncounterFactory,
    FeeScheduleEntryFactory,
    FeeScheduleFactory,
    PayerFactory,
)
from core.models import Location
from patients.models import Coverage, Patient
from patients.tests.factories import CoverageFactory, PatientFactory
from scheduling.models import Practitioner
from scheduling.tests.factories import PractitionerFactory


@pytest.fixture
def billing_user(persona: Callable[[str], User]) -> User:
    return persona("billing")


@pytest.fixture
def payer(db: None) -> Payer:
    return PayerFactory(name="Aetna", payer_id="60054")


@pytest.fixture
def provider(db: None) -> BillingProvider:
    return BillingProviderFactory(is_default=True)


@pytest.fixture
def practitioner(main_clinic: Location) -> Practitioner:
    return PractitionerFactory(npi="1245319599", locations=[main_clinic])


@pytest.fixture
def fees(payer: Payer) -> FeeSchedule:
    """Default fees: 99213 $120, 85025 $25, 36415 $12, 20610 $200 (RT $210)."""
    schedule = FeeScheduleFactory(name="Standard 2020", effective_start=dt.date(2020, 1, 1))
    for code, amount, modifier in [
        ("99213", "120.00", ""),
        ("85025", "25.00", ""),
        ("36415", "12.00", ""),
        ("20610", "200.00", ""),
        ("20610", "210.00", "RT"),
    ]:
        FeeScheduleEntryFactory(
            schedule=schedule, code=code, amount=Decimal(amount), modifier=modifier
        )
    return schedule


@pytest.fixture
def patient(main_clinic: Location) -> Patient:
    return PatientFactory(
        home_location=main_clinic,
        family_name="Rivera",
        given_name="Ana",
        birth_date=dt.date(1980, 5, 17),
        address_line1="12 Elm Street",
        city="Springfield",
        state="IL",
        postal_code="62701",
    )


@pytest.fixture
def coverage(patient: Patient, payer: Payer) -> Coverage:
    return CoverageFactory(
        patient=patient, payer_name=payer.name, payer_identifier=payer.payer_id, order=1
    )


@pytest.fixture
def encounter(
    patient: Patient,
    main_clinic: Location,
    practitioner: Practitioner,
    provider: BillingProvider,
    coverage: Coverage,
    fees: FeeSchedule,
) -> Encounter:
    return EncounterFactory(
        patient=patient,
        location=main_clinic,
        rendering_practitioner=practitioner,
        billing_provider=provider,
        date_of_service=timezone.localdate() - dt.timedelta(days=5),
        diagnoses=["J45909", "E119"],
    )
