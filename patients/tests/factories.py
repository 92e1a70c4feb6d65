from __future__ import annotations

import datetime as dt

import factory

from core.tests.factories import LocationFactory
from patients.models import Coverage, Patient, PatientFlag, PatientIdentifier
from patients.mrn import make_mrn


class PatientFactory(factory.django.DjangoModelFactory[Patient]):
    """A patient row built directly (no audit). Use patients.services for behaviour under test."""

    class Meta:
        model = Patient
        skip_postgeneration_save = True

    mrn = factory.Sequence(lambda n: make_mrn(5_000_000 + n))
    home_location = factory.SubFactory(LocationFactory)
    family_name = factory.Faker("last_name")
    given_name = factory.Faker("first_name")
    birth_date = factory.Faker(
        "date_between", start_date=dt.date(1940, 1, 1), end_date=dt.date(2020, 1, 1)
    )
    sex_at_birth = "F"
    phone_mobile = ""
    email = ""

    @factory.post_generation
    def mrn_identifier(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            PatientIdentifier.objects.get_or_create(
                system=PatientIdentifier.MRN_SYSTEM, value=self.mrn, defaults={"patient": self}
            )


class CoverageFactory(factory.django.DjangoModelFactory[Coverage]):
    class Meta:
        model = Coverage

    patient = factory.SubFactory(PatientFactory)
    payer_name = "Aetna"
    payer_identifier = "60054"
    plan_name = "Aetna Choice POS II"
    member_id = factory.Sequence(lambda n: f"W{100000000 + n}")
    group_number = "GRP-100"
    relationship = "self"
    order = 1


class PatientFlagFactory(factory.django.DjangoModelFactory[PatientFlag]):
    class Meta:
        model = PatientFlag

    patient = factory.SubFactory(PatientFactory)
    kind = "fall_risk"
    severity = "warning"
