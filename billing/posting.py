"""Charges to the patient ledger (patientaccounts.ledger is the only way money moves).

Decision: a charge posts when it is ENTERED (not when the claim is submitted), so the account
shows what was done the day it was done, self-pay visits (which never become claims) post the
same way, and a correction posts as its reversing line plus the new line. The debit goes to
insurance A/R when the patient had an active coverage on the date of service, else to patient
A/R; the credit to gross charges. A reversing line (negative amount) posts the mirror image.
The idempotency key is the charge line's public id, so a retried entry posts once.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils import timezone

from patientaccounts.ledger import Line, Posting, journal_post, journal_post_many
from patientaccounts.models import LedgerAccount, TransactionKind

if TYPE_CHECKING:
    import datetime as dt

    from accounts.models import User
    from billing.models import ChargeLine
    from patients.models import Patient


def has_active_coverage(patient: Patient, on: dt.date) -> bool:
    return (
        patient.coverages.filter(is_active=True)
        .filter(Q(effective_start__isnull=True) | Q(effective_start__lte=on))
        .filter(Q(effective_end__isnull=True) | Q(effective_end__gte=on))
        .exists()
    )


def charge_posting(line: ChargeLine, *, insured: bool) -> Posting:
    encounter = line.encounter
    receivable = LedgerAccount.INSURANCE_AR if insured else LedgerAccount.PATIENT_AR
    amount = Decimal(line.amount).quantize(Decimal("0.01"))
    return Posting(
        patient=encounter.patient,
        kind=TransactionKind.CHARGE,
        lines=[Line(receivable, amount), Line(LedgerAccount.GROSS_CHARGES, -amount)],
        memo=f"{'reversal of ' if line.corrects_id else ''}charge {line.code}"[:200],
        service_date=line.service_date,
        source="charge",
        idempotency_key=f"charge:{line.public_id}",
    )


def post_charge(*, actor: User | None, line: ChargeLine) -> bool:
    """Post one charge line (no-op for a zero charge, which the ledger refuses). Sets posted_at."""
    if not line.amount:
        return False
    insured = has_active_coverage(line.encounter.patient, line.service_date)
    journal_post(actor=actor, posting=charge_posting(line, insured=insured))
    line.posted_at = timezone.now()
    line.save(update_fields=["posted_at", "updated_at"])
    return True


def post_charges_bulk(
    *, actor: User | None, lines: Sequence[ChargeLine], insured: bool = True
) -> int:
    """The bulk path (demo seeding): one journal_post_many; the caller sets posted_at."""
    postings = [charge_posting(line, insured=insured) for line in lines if line.amount]
    journal_post_many(actor=actor, postings=postings)
    return len(postings)
