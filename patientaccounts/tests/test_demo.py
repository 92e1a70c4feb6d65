from __future__ import annotations

import pytest

from core.demo import seed_locations, seed_users
from patientaccounts.demo import seed_accounts
from patientaccounts.models import (
    BillingDispute,
    PatientPayment,
    PaymentPlan,
    RefundRequest,
    Statement,
)
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_seed_accounts_fills_every_account_screen_once():
    # given: the demo clinic and users, and patients without any charges yet
    locations, _ = seed_locations()
    seed_users(locations)
    PatientFactory.create_batch(6, home_location=locations["main"])
    # when
    report = seed_accounts(progress=False)
    again = seed_accounts(progress=False)
    # then
    assert report["charges"] == 6
    assert report["payments"] >= 3
    assert report["plans"] == report["refunds"] == report["disputes"] == 1
    assert PaymentPlan.objects.get().payments.count() == 1
    assert RefundRequest.objects.get().status == "requested"
    assert BillingDispute.objects.get().status == "investigating"
    assert Statement.objects.count() == report["statements"] > 0
    assert again["skipped"] == "already seeded"
    assert PatientPayment.objects.count() == report["payments"]


def test_seed_accounts_without_the_demo_users_explains_what_to_run():
    assert "seed_demo" in seed_accounts(progress=False)["skipped"]
