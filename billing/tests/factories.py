"""Billing factories: rows built directly (no audit, no checks). Use billing.services for
behaviour under test. Other apps import these (remittance, patient accounts, 837 tests)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from billing.models import (
    BillingProvider,
    ChargeLine,
    Claim,
    ClaimBatch,
    ClaimLine,
    ClaimStatus,
    Encounter,
    EncounterDiagnosis,
    FeeSchedule,
    FeeScheduleEntry,
    InsurancePlan,
    Payer,
    RenderingProviderProfile,
)
from core.tests.factories import LocationFactory
from patients.tests.factories import CoverageFactory, PatientFactory
from scheduling.tests.factories import PractitionerFactory


class PayerFactory(factory.django.DjangoModelFactory[Payer]):
    class Meta:
        model = Payer
        django_get_or_create = ("payer_id",)

    name = factory.Sequence(lambda n: f"Example Health Plan {n}")
    payer_id = factory.Sequence(lambda n: f"{60000 + n}")
    claim_filing_indicator = "CI"
    address_line1 = "PO Box 981106"
    city = "El Paso"
    state = "TX"
    postal_code = "79998"


class InsurancePlanFactory(factory.django.DjangoModelFactory[InsurancePlan]):
    class Meta:
        model = InsurancePlan

    payer = factory.SubFactory(PayerFactory)
    name = factory.Sequence(lambda n: f"Choice PPO {n}")
    plan_type = "ppo"


class FeeScheduleFactory(factory.django.DjangoModelFactory[FeeSchedule]):
    class Meta:
        model = FeeSchedule

    payer = None
    name = factory.Sequence(lambda n: f"Standard fees {n}")
    effective_start = dt.date(2020, 1, 1)
    effective_end = None


class FeeScheduleEntryFactory(factory.django.DjangoModelFactory[FeeScheduleEntry]):
    class Meta:
        model = FeeScheduleEntry

    schedule = factory.SubFactory(FeeScheduleFactory)
    code = "99213"
    modifier = ""
    amount = Decimal("120.00")


class BillingProviderFactory(factory.django.DjangoModelFactory[BillingProvider]):
    class Meta:
        model = BillingProvider

    name = "Main Street Medical Group"
    npi = "1234567893"
    taxonomy_code = "207Q00000X"
    tax_id = "123456789"
    address_line1 = "100 Main Street"
    city = "Springfield"
    state = "IL"
    postal_code = "627011234"


class RenderingProviderProfileFactory(factory.django.DjangoModelFactory[RenderingProviderProfile]):
    class Meta:
        model = RenderingProviderProfile

    practitioner = factory.SubFactory(PractitionerFactory)
    taxonomy_code = "207Q00000X"


class EncounterFactory(factory.django.DjangoModelFactory[Encounter]):
    """An encounter with its patient at the same location. Pass `diagnoses=["J45909", ...]`."""

    class Meta:
        model = Encounter
        skip_postgeneration_save = True

    location = factory.SubFactory(LocationFactory)
    patient = factory.SubFactory(
        PatientFactory,
        home_location=factory.SelfAttribute("..location"),
        address_line1="12 Elm Street",
        city="Springfield",
        state="IL",
        postal_code="62701",
    )
    date_of_service = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=3))
    rendering_practitioner = factory.SubFactory(PractitionerFactory)
    billing_provider = factory.SubFactory(BillingProviderFactory)
    place_of_service = "11"

    @factory.post_generation
    def diagnoses(self, create: bool, extracted: list[str] | None, **kwargs: Any) -> None:
        if create:
            for position, code in enumerate(extracted or ["J45909"], start=1):
                EncounterDiagnosis.objects.create(encounter=self, position=position, code=code)


class ChargeLineFactory(factory.django.DjangoModelFactory[ChargeLine]):
    class Meta:
        model = ChargeLine

    encounter = factory.SubFactory(EncounterFactory)
    line_number = factory.Sequence(lambda n: n + 1)
    code = "99213"
    units = Decimal("1")
    pointer1 = 1
    fee_amount = Decimal("120.00")
    amount = Decimal("120.00")
    service_date = factory.SelfAttribute("encounter.date_of_service")


class ClaimBatchFactory(factory.django.DjangoModelFactory[ClaimBatch]):
    class Meta:
        model = ClaimBatch

    payer = factory.SubFactory(PayerFactory)
    file_name = factory.Sequence(lambda n: f"837P-{n:06d}.x12")
    interchange_control_number = factory.Sequence(lambda n: 900_000 + n)
    group_control_number = factory.Sequence(lambda n: 900_000 + n)
    transaction_set_control_number = "0001"


class ClaimFactory(factory.django.DjangoModelFactory[Claim]):
    """A claim with `lines` claim lines (default 1) copied from new charge lines; the total is
    their sum. The coverage points at the payer (payer_identifier = payer.payer_id)."""

    class Meta:
        model = Claim
        skip_postgeneration_save = True

    encounter = factory.SubFactory(EncounterFactory)
    patient = factory.SelfAttribute("encounter.patient")
    payer = factory.SubFactory(PayerFactory)
    coverage = factory.SubFactory(
        CoverageFactory,
        patient=factory.SelfAttribute("..patient"),
        payer_name=factory.SelfAttribute("..payer.name"),
        payer_identifier=factory.SelfAttribute("..payer.payer_id"),
        subscriber_name="",
    )
    billing_provider = factory.SelfAttribute("encounter.billing_provider")
    rendering_practitioner = factory.SelfAttribute("encounter.rendering_practitioner")
    patient_control_number = factory.Sequence(lambda n: f"TF{n:08d}")
    status = ClaimStatus.DRAFT
    place_of_service = factory.SelfAttribute("encounter.place_of_service")
    date_of_service = factory.SelfAttribute("encounter.date_of_service")

    @factory.post_generation
    def lines(self, create: bool, extracted: int | None, **kwargs: Any) -> None:
        if not create:
            return
        count = 1 if extracted is None else extracted
        codes = ["99213", "85025", "36415", "81002", "93000", "90471"]
        total = Decimal("0")
        start = self.encounter.lines.count()
        for index in range(count):
            number = start + index + 1
            amount = Decimal("100.00") + index
            charge = ChargeLine.objects.create(
                encounter=self.encounter,
                line_number=number,
                code=codes[index % len(codes)],
                units=Decimal("1"),
                pointer1=1,
                fee_amount=amount,
                amount=amount,
                service_date=self.date_of_service,
            )
            ClaimLine.objects.create(
                claim=self,
                charge_line=charge,
                line_number=index + 1,
                code=charge.code,
                units=charge.units,
                pointer1=1,
                charge=amount,
                service_date=charge.service_date,
            )
            total += amount
        self.total_charge = total
        self.save(update_fields=["total_charge"])
