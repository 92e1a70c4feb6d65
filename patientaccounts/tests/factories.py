"""Test data for patient accounts: ledger postings go through the real ledger service."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from patientaccounts.ledger import Line, Posting, journal_post
from patientaccounts.models import JournalTransaction, LedgerAccount, TransactionKind
from patients.models import Patient


def post_charge(
    patient: Patient,
    amount: str | Decimal = "100.00",
    *,
    service_date: dt.date | None = None,
    to_patient: bool = True,
    actor: object = None,
) -> JournalTransaction:
    """A charge owed by the patient (PATIENT_AR) or by their insurer (INSURANCE_AR)."""
    account = LedgerAccount.PATIENT_AR if to_patient else LedgerAccount.INSURANCE_AR
    value = Decimal(amount)
    return journal_post(
        actor=actor,
        posting=Posting(
            patient=patient,
            kind=TransactionKind.CHARGE,
            lines=[Line(account, value), Line(LedgerAccount.GROSS_CHARGES, -value)],
            service_date=service_date or dt.date(2026, 11, 1),
            source="charge",
        ),
    )


def take_payment(patient: Patient, actor: object, amount: str = "40.00", **kw: object) -> object:
    """A front-desk payment through the real service (a fresh idempotency key each time)."""
    import uuid

    from patientaccounts.services import payment_take

    kw.setdefault("method", "cash")
    return payment_take(
        actor=actor,
        patient=patient,
        amount=amount,
        idempotency_key=str(uuid.uuid4()),
        **kw,
    )


def give_credit(patient: Patient, amount: str = "50.00") -> JournalTransaction:
    """An overpayment: the patient has a credit balance of `amount`."""
    value = Decimal(amount)
    return journal_post(
        actor=None,
        posting=Posting(
            patient=patient,
            kind=TransactionKind.PATIENT_PAYMENT,
            lines=[Line(LedgerAccount.CASH, value), Line(LedgerAccount.PATIENT_AR, -value)],
            source="front-desk",
        ),
    )
