"""Demo data for patient accounts: payments, a payment plan, a refund awaiting approval,
statements and a billing dispute, all through the real services (so the ledger, receipts and
audit trail are what a clinic would see).

Call after billing's demo (its charges reach the patient ledger through `journal_post`):
`seed_accounts(progress=...)` works on the patients of the demo's main clinic that owe a
balance. If none do (billing's demo has not run), it posts a few patient-responsibility demo
charges first, so every patient-account screen has data. Running it again adds nothing.
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import ROUND_UP, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from tqdm import tqdm

from accounts.models import User
from core.models import Location
from patientaccounts import services
from patientaccounts.ledger import Line, Posting, journal_post_many
from patientaccounts.models import (
    JournalEntry,
    LedgerAccount,
    PatientPayment,
    TransactionKind,
)
from patientaccounts.selectors import account_balances
from patients.models import Patient

DEMO_PREFIX = "demo:"
ACCOUNTS = 12  # patients whose accounts get activity
CENT = Decimal("0.01")


def _user(username: str) -> User | None:
    return User.objects.filter(username=username, is_active=True).first()


def _owing(location: Location, limit: int) -> list[Patient]:
    ids = list(
        JournalEntry.objects.filter(
            account=LedgerAccount.PATIENT_AR, patient__home_location=location
        )
        .values("patient")
        .annotate(due=Sum("amount"))
        .filter(due__gt=0)
        .order_by("patient")
        .values_list("patient", flat=True)[:limit]
    )
    return list(Patient.objects.filter(pk__in=ids).select_related("home_location").order_by("pk"))


def _demo_charges(location: Location, today: dt.date) -> int:
    """Patient-responsibility charges for a few patients (only when billing left none)."""
    patients = list(Patient.objects.filter(home_location=location).order_by("pk")[:ACCOUNTS])
    postings = []
    for index, patient in enumerate(patients):
        amount = Decimal(35 + (index * 37) % 260).quantize(CENT)
        postings.append(
            Posting(
                patient=patient,
                kind=TransactionKind.CHARGE,
                lines=[
                    Line(LedgerAccount.PATIENT_AR, amount),
                    Line(LedgerAccount.GROSS_CHARGES, -amount),
                ],
                memo="Office visit (demo)",
                service_date=today - dt.timedelta(days=(index * 13) % 150),
                source="demo",
                idempotency_key=f"{DEMO_PREFIX}charge:{patient.public_id}",
            )
        )
    journal_post_many(actor=None, postings=postings)
    return len(postings)


def seed_accounts(*, progress: bool) -> dict[str, Any]:
    """Add the patient-account demo data once; returns what was created."""
    report: dict[str, Any] = {
        "charges": 0,
        "payments": 0,
        "plans": 0,
        "refunds": 0,
        "statements": 0,
        "disputes": 0,
    }
    if PatientPayment.objects.filter(idempotency_key__startswith=DEMO_PREFIX).exists():
        report["skipped"] = "already seeded"
        return report
    frontdesk, manager = _user("frontdesk"), _user("officeadmin")
    billing = _user("billing")
    location = Location.objects.filter(code="main").first()
    if not (frontdesk and manager and billing and location):
        report["skipped"] = "the demo users and locations are missing: run seed_demo first"
        return report
    today = timezone.localdate()
    with transaction.atomic():
        patients = _owing(location, ACCOUNTS)
        if len(patients) < 4:
            report["charges"] = _demo_charges(location, today)
            patients = _owing(location, ACCOUNTS)
        steps = tqdm(
            total=len(patients),
            unit="account",
            desc="Seeding patient accounts",
            file=sys.stderr,
            disable=not progress,
        )
        methods = [("cash", ""), ("check", "1001"), ("card", "x4242 auth 7Q2KD1")]
        for index, patient in enumerate(patients):
            due = account_balances(patient=patient).patient_due
            key = f"{DEMO_PREFIX}payment:{patient.public_id}"
            if index == 0:  # an overpayment, and a refund of the credit awaiting approval
                services.payment_take(
                    actor=frontdesk,
                    patient=patient,
                    amount=due + Decimal("25.00"),
                    method="check",
                    reference="2045",
                    idempotency_key=key,
                )
                services.refund_request(
                    actor=frontdesk,
                    patient=patient,
                    amount="25.00",
                    method="check",
                    reason="Paid twice at check-out (demo)",
                )
                report["payments"] += 1
                report["refunds"] += 1
            elif index == 1 and due >= Decimal("40.00"):  # a plan with its first instalment
                instalment = (due / 4).quantize(CENT, rounding=ROUND_UP)
                plan = services.payment_plan_create(
                    actor=frontdesk,
                    patient=patient,
                    total=due,
                    instalment_amount=instalment,
                    start_date=today,
                )
                services.payment_take(
                    actor=frontdesk,
                    patient=patient,
                    amount=instalment,
                    method="card",
                    reference="x1881 auth 5H7TQ0",
                    idempotency_key=key,
                    plan=plan,
                )
                report["plans"] += 1
                report["payments"] += 1
            elif index % 2 == 0:  # a partial payment
                method, reference = methods[index % len(methods)]
                services.payment_take(
                    actor=frontdesk,
                    patient=patient,
                    amount=max(CENT, (due / 2).quantize(CENT)),
                    method=method,
                    reference=reference,
                    idempotency_key=key,
                )
                report["payments"] += 1
            if index == 3:
                dispute = services.dispute_open(
                    actor=manager,
                    patient=patient,
                    reason="insurance_should_pay",
                    disputed_amount=min(due, Decimal("60.00")),
                    details="Patient says the visit was covered by the plan (demo).",
                )
                services.dispute_update(actor=manager, dispute=dispute, status="investigating")
                services.dispute_add_note(
                    actor=manager, dispute=dispute, text="Asked the payer for the EOB (demo)."
                )
                report["disputes"] += 1
            if account_balances(patient=patient).patient_due > 0:
                services.statement_generate(
                    actor=billing,
                    patient=patient,
                    statement_date=today,
                    message="Questions? Call the billing office Monday to Friday, 8 to 5.",
                )
                report["statements"] += 1
            steps.update(1)
        steps.close()
    return report
