"""Running A/R balances: small tables kept equal to sums over the ledger, so the current-date
aging report reads them instead of scanning millions of ledger entries.

* `ClaimArBalance`: per claim reference (a claim's patient control number, as
  `JournalTransaction.claim_reference` carries it), the sum of the INSURANCE_AR entries of every
  non-charge transaction posted against it (payments, adjustments and transfers to the patient
  are credits, their reversals debits). Charge postings are left out: the claim's total charge
  already counts them (see receivables.aging). Beside that amount, the row carries the claim's
  A/R attributes (patient, payer, location, dates, receivable or not, and its base: total
  charge less earlier payers' amounts), kept by database triggers on billing's tables
  (receivables.triggers), so the claim's outstanding insurance balance is `base + amount` and
  the current-date aging report reads this one narrow table.
* `PatientArBalance`: per (patient, service date or none), the sum of the PATIENT_AR entries.

The amounts are written only by `receivables.balances`, which `patientaccounts.ledger` calls in
the same database transaction as every posting (journal_post, journal_post_many,
journal_reverse); the claim attributes only by the triggers; the `rebuild_ar_balances` command
rebuilds both (amounts from the ledger, attributes from the claims) and `--check` compares them.

A patient merge (patients.services.patient_merge) re-points every relation to the surviving
record with `queryset.update(patient=survivor)`: on `PatientArBalance` that update is a re-key
that adds the merged record's amounts into the survivor's rows (two records of the same person
may both owe for the same service date), then removes the merged record's rows.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Cast, Round


def _cents(expression: Any) -> Cast:
    """An amount as whole cents (a bigint): the reports sum integers, several times cheaper
    than numerics on PostgreSQL, and exact (ROUND guards SQLite's floating-point decimals)."""
    return Cast(Round(expression * 100), models.BigIntegerField())


class ClaimArBalance(models.Model):
    claim_reference = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # The claim's own A/R attributes, kept by database triggers (receivables.triggers) from
    # billing's claims, encounters and prior-payer amounts; plain columns, not foreign keys:
    # nothing but the triggers and the rebuild writes them.
    claim_id = models.BigIntegerField(null=True, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True)
    payer_id = models.BigIntegerField(null=True, blank=True)
    location_id = models.BigIntegerField(null=True, blank=True)
    date_of_service = models.DateField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    receivable = models.BooleanField(default=False, db_default=False)
    original = models.BooleanField(default=False, db_default=False)  # frequency code 1
    base = models.DecimalField(max_digits=14, decimal_places=2, default=0, db_default=0)
    # From the claim's timeline: ever paid (or partially), ever rejected/denied/appealed/replaced.
    ever_paid = models.BooleanField(default=False, db_default=False)
    ever_not_clean = models.BooleanField(default=False, db_default=False)
    # base + amount in cents, computed by the database on every write: what the aging reads.
    outstanding_cents = models.GeneratedField(
        expression=_cents(F("base") + F("amount")),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )

    class Meta:
        verbose_name = "claim A/R running balance"
        indexes = [models.Index(fields=["claim_id"], name="recv_claim_bal_claim_idx")]

    def __str__(self) -> str:
        return f"{self.claim_reference} {self.amount}"


class PatientArBalanceQuerySet(models.QuerySet["PatientArBalance"]):
    def update(self, **kwargs: Any) -> int:
        """A patient merge's `update(patient=survivor)` re-keys (see the module docstring)."""
        if len(kwargs) == 1 and set(kwargs) <= {"patient", "patient_id"}:
            from receivables.balances import rekey_patient_balances

            target = next(iter(kwargs.values()))
            target_id = target.pk if isinstance(target, models.Model) else target
            return rekey_patient_balances(self, patient_id=int(target_id))
        return super().update(**kwargs)


class PatientArBalance(models.Model):
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="ar_balances"
    )
    service_date = models.DateField(null=True, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    amount_cents = models.GeneratedField(
        expression=_cents(F("amount")), output_field=models.BigIntegerField(), db_persist=True
    )

    objects = PatientArBalanceQuerySet.as_manager()

    class Meta:
        verbose_name = "patient A/R running balance"
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "service_date"], name="recv_patient_ar_bal_dated_uniq"
            ),
            # NULL service dates are distinct in a plain unique index: one undated row each.
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(service_date__isnull=True),
                name="recv_patient_ar_bal_undated_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.service_date} {self.amount}"


class MoneyRollup(models.Model):
    """Delta rows of the KPIs' cash and contractual adjustments per 15-minute UTC bucket of the
    posting time and per location (the patient's home location): the figure is the sum of the
    rows. Written only by the PostgreSQL triggers of receivables.rollups (empty on SQLite)."""

    bucket = models.DateTimeField()
    location_id = models.BigIntegerField(null=True, blank=True)
    cash_cents = models.BigIntegerField()
    contractual_cents = models.BigIntegerField()

    class Meta:
        verbose_name = "KPI money rollup"
        # its covering index (bucket) INCLUDE (...) is PostgreSQL's: receivables.rollups

    def __str__(self) -> str:
        return f"{self.bucket} {self.location_id} {self.cash_cents}/{self.contractual_cents}"


class ChargeRollup(models.Model):
    """Delta rows of the KPIs' gross charges per date of service and location (the encounter's):
    the figure is the sum of the rows. Written only by the PostgreSQL triggers of
    receivables.rollups (empty on SQLite)."""

    service_date = models.DateField()
    location_id = models.BigIntegerField()
    gross_cents = models.BigIntegerField()

    class Meta:
        verbose_name = "KPI charge rollup"
        # its covering index (service_date) INCLUDE (...) is PostgreSQL's: receivables.rollups

    def __str__(self) -> str:
        return f"{self.service_date} {self.location_id} {self.gross_cents}"
