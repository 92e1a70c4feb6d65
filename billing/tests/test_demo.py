"""The billing demo: reference data, claims in every status, and the bulk benchmark path."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from billing.demo import DEMO_STATUSES, LOADER_USERNAME, seed_billing
from billing.models import BillingProvider, Claim, ClaimLine, ClaimStatus, FeeScheduleEntry, Payer
from billing.npi import npi_is_valid
from billing.scrubber import scrub
from core.models import Location
from patients.tests.factories import CoverageFactory, PatientFactory
from scheduling.models import AppointmentStatus
from scheduling.tests.factories import AppointmentFactory, PractitionerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_clinic(main_clinic: Location) -> Location:
    UserFactory(username=LOADER_USERNAME, roles=["billing_specialist"], locations=[main_clinic])
    practitioner = PractitionerFactory(locations=[main_clinic])
    for index in range(len(DEMO_STATUSES) + 4):
        patient = PatientFactory(
            home_location=main_clinic,
            address_line1=f"{index + 1} Elm Street",
            city="Hartford",
            state="CT",
            postal_code="06103",
        )
        CoverageFactory(patient=patient, payer_identifier="60054", order=1, subscriber_name="")
        AppointmentFactory(
            patient=patient,
            location=main_clinic,
            start=timezone.now() - dt.timedelta(days=index + 1),
            status=AppointmentStatus.COMPLETED,
            practitioners=[practitioner],
        )
    return main_clinic


def test_seeds_payers_fees_and_a_valid_billing_provider_once(demo_clinic: Location) -> None:
    # when
    first = seed_billing(progress=False)
    second = seed_billing(progress=False)

    # then
    assert first["payers"] == 8
    assert second["payers"] == 0
    assert Payer.objects.count() == 8
    provider = BillingProvider.objects.get(is_default=True)
    assert npi_is_valid(provider.npi)
    cpt = FeeScheduleEntry.objects.filter(code__regex=r"^[0-9]")
    assert cpt.count() >= 36
    assert not cpt.exclude(description="").exists()


def test_the_demo_has_claims_in_every_status(demo_clinic: Location) -> None:
    seed_billing(progress=False)

    statuses = set(Claim.objects.values_list("status", flat=True))

    assert statuses == set(ClaimStatus.values)
    ready = Claim.objects.filter(status=ClaimStatus.READY)
    assert ready.count() >= 3
    assert all(scrub(claim) == [] or all(p.severity == "warning" for p in scrub(claim))
               for claim in ready)  # fmt: skip


def test_the_bulk_path_adds_claims_of_four_lines_whose_totals_add_up(
    demo_clinic: Location,
) -> None:
    seed_billing(progress=False)
    before = Claim.objects.count()

    report = seed_billing(claims=30, progress=False)

    assert report["bulk_claims"] == 30
    assert Claim.objects.count() == before + 30
    bulk = Claim.objects.order_by("-id")[:30]
    for claim in bulk:
        lines = list(ClaimLine.objects.filter(claim=claim))
        assert len(lines) == 4
        assert sum(line.charge for line in lines) == claim.total_charge
    numbers = list(Claim.objects.values_list("patient_control_number", flat=True))
    assert len(numbers) == len(set(numbers))
