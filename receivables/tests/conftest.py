"""Receivables fixtures: billing's clean claim setup at Main Street Clinic, and helpers that post
remittance-like movements to the real ledger (the remittance app posts the same shapes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import User
from billing.models import Claim, ClaimStatus
from billing.services import (
    LineInput,
    charge_line_add,
    claim_create_from_encounter,
)
from billing.tests.conftest import (  # noqa: F401  (fixtures re-exported for these tests)
    coverage,
    encounter,
    fees,
    patient,
    payer,
    practitioner,
    provider,
)
from patientaccounts.ledger import Line, Posting, journal_post
from patientaccounts.models import JournalTransaction, LedgerAccount, TransactionKind

A = LedgerAccount
K = TransactionKind


@pytest.fixture
def billing_user(persona: Callable[[str], User]) -> User:
    return persona("billing")


def bill_visit(*, actor: User, encounter: Any, codes: tuple[str, ...] = ("99213",)) -> Claim:  # noqa: F811
    """Charges entered through billing's services (posted to the ledger), then a draft claim."""
    for code in codes:
        charge_line_add(actor=actor, encounter=encounter, line=LineInput(code=code))
    return claim_create_from_encounter(actor=actor, encounter=encounter)


def set_status(claim: Claim, status: str, *, submitted_at: dt.datetime | None = None) -> Claim:
    """Move a claim's status directly (the claim life cycle is billing's, tested there)."""
    Claim.objects.filter(pk=claim.pk).update(status=status, submitted_at=submitted_at)
    claim.refresh_from_db()
    return claim


def remit(
    claim: Claim,
    *,
    paid: str = "0",
    contractual: str = "0",
    to_patient: str = "0",
    posted_at: dt.datetime | None = None,
) -> list[JournalTransaction]:
    """Post an 835-like remittance for `claim` to the ledger, tagged with its control number."""
    out = []
    moves = [
        (K.INSURANCE_PAYMENT, A.CASH, paid),
        (K.CONTRACTUAL_ADJUSTMENT, A.CONTRACTUAL, contractual),
        (K.TRANSFER_TO_PATIENT, A.PATIENT_AR, to_patient),
    ]
    for kind, account, amount in moves:
        value = Decimal(amount)
        if not value:
            continue
        out.append(
            journal_post(
                actor=None,
                posting=Posting(
                    patient=claim.patient,
                    kind=kind,
                    lines=[Line(account, value), Line(A.INSURANCE_AR, -value)],
                    service_date=claim.date_of_service if kind == K.TRANSFER_TO_PATIENT else None,
                    claim_reference=claim.patient_control_number,
                    source="test-835",
                    posted_at=posted_at,
                ),
            )
        )
    return out


__all__ = ["ClaimStatus", "bill_visit", "remit", "set_status"]
