"""The remittance demo: submitted claims answered by posted 835s, denials in the queue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from billing.demo import LOADER_USERNAME
from billing.models import ClaimStatus
from patientaccounts.selectors import account_balances
from remittance.demo import seed_remittances
from remittance.models import Denial, RemittanceFile

pytestmark = pytest.mark.django_db


def test_answers_submitted_claims_once_with_paid_denied_and_partial(
    make_claim, main_clinic, biller
):
    # given three submitted claims (the last with two lines) and the demo's loader
    UserFactory(username=LOADER_USERNAME, roles=["medical_office_admin"], locations=[main_clinic])
    paid = make_claim("PD00000501")
    denied = make_claim("PD00000502")
    partial = make_claim("PD00000503", charges=("100.00", "50.00"), codes=("99213", "36415"))
    # when
    first = seed_remittances(progress=False)
    second = seed_remittances(progress=False)
    # then
    assert first == {"remittance_files": 2, "claim_payments": 3, "denials": 2}
    assert second == {"remittance_files": 0, "claim_payments": 0, "denials": 0}
    for claim in (paid, denied, partial):
        claim.refresh_from_db()
    assert (paid.status, denied.status, partial.status) == (
        ClaimStatus.PAID,
        ClaimStatus.DENIED,
        ClaimStatus.PARTIALLY_PAID,
    )
    assert RemittanceFile.objects.filter(status="posted").count() == 2
    assert account_balances(patient=paid.patient).patient_due == Decimal("20.00")
    overdue = Denial.objects.get(claim=denied)
    assert overdue.due_date < timezone.localdate()
    assert overdue.cause == "authorization"
    recent = Denial.objects.get(claim=partial)
    assert recent.due_date > timezone.localdate() - dt.timedelta(days=1)
    assert Denial.objects.filter(owner=biller).count() == 1
