"""Running A/R balances: small tables kept equal to sums over the ledger, so the current-date
aging report reads them instead of scanning millions of ledger entries.

* `ClaimArBalance`: per claim reference (a claim's patient control number, as
  `JournalTransaction.claim_reference` carries it), the sum of the INSURANCE_AR entries of every
  non-charge transaction posted against it (payments, adjustments and transfers to the patient
  are credits, their reversals debits). Charge postings are left out: the claim's total charge
  already counts them (see receivables.aging).
* `PatientArBalance`: per (patient, service date or none), the sum of the PATIENT_AR entries.

Both are written only by `receivables.balances`, which `patientaccounts.ledger` calls in the same
database transaction as every posting (journal_post, journal_post_many, journal_reverse); the
`rebuild_ar_balances` command rebuilds them from the ledger and `--check` compares them with it.

A patient merge (patients.services.patient_merge) re-points every relation to the surviving
record with `queryset.update(patient=survivor)`: on `PatientArBalance` that update is a re-key
that adds the merged record's amounts into the survivor's rows (two records of the same person
may both owe for the same service date), then removes the merged record's rows.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q


class ClaimArBalance(models.Model):
    claim_reference = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        verbose_name = "claim A/R running balance"

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
