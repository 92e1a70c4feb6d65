"""The patient ledger (double-entry, append-only) and the patient-account documents built on it.

Every money movement of the revenue cycle is a `JournalTransaction` whose `JournalEntry` rows
sum to exactly zero (positive = debit, negative = credit). Rows are never updated or deleted:
the model and queryset refuse it, and on PostgreSQL a trigger (migration 0002) rejects UPDATE,
DELETE and TRUNCATE. Corrections are reversals (a new transaction negating another, once).
Post only through `patientaccounts.ledger`.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import BaseModel

_M = TypeVar("_M", bound=models.Model)

APPEND_ONLY_MESSAGE = "Ledger rows are append-only: post a reversal instead."


class LedgerAccount(models.TextChoices):
    PATIENT_AR = "patient_ar", "Patient A/R"
    INSURANCE_AR = "insurance_ar", "Insurance A/R"
    GROSS_CHARGES = "gross_charges", "Gross charges"
    CONTRACTUAL = "contractual", "Contractual adjustments"
    OTHER_ADJUSTMENT = "other_adjustment", "Other adjustments and write-offs"
    CASH = "cash", "Cash (deposits)"
    UNAPPLIED = "unapplied", "Unapplied payments"
    REFUNDS = "refunds", "Refunds"
    PROVIDER_ADJUSTMENT = "provider_adjustment", "Provider-level adjustments"


class TransactionKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    INSURANCE_PAYMENT = "insurance_payment", "Insurance payment"
    CONTRACTUAL_ADJUSTMENT = "contractual_adjustment", "Contractual adjustment"
    OTHER_ADJUSTMENT = "other_adjustment", "Other adjustment"
    TRANSFER_TO_PATIENT = "transfer_to_patient", "Transfer to patient responsibility"
    PATIENT_PAYMENT = "patient_payment", "Patient payment"
    REFUND = "refund", "Refund"
    REVERSAL = "reversal", "Reversal"
    PROVIDER_ADJUSTMENT = "provider_adjustment", "Provider adjustment"
    WRITE_OFF = "write_off", "Write-off"


# The one change a ledger row accepts: moving to another patient when two records of the same
# person are merged (patients.services.patient_merge re-points every relation with update()).
# The money (accounts, amounts, dates) never changes; the PostgreSQL trigger enforces the same.
MERGE_REKEY_FIELDS = frozenset({"patient", "patient_id"})


class AppendOnlyQuerySet(models.QuerySet[_M]):
    def update(self, **kwargs: Any) -> int:
        if kwargs and set(kwargs) <= MERGE_REKEY_FIELDS:
            return super().update(**kwargs)
        raise PermissionError(APPEND_ONLY_MESSAGE)

    def delete(self) -> NoReturn:
        raise PermissionError(APPEND_ONLY_MESSAGE)

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError(APPEND_ONLY_MESSAGE)


class AppendOnlyModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError(APPEND_ONLY_MESSAGE)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError(APPEND_ONLY_MESSAGE)


class JournalTransaction(AppendOnlyModel, BaseModel):
    """One balanced posting on a patient's account (or a provider-level one without a patient)."""

    # No single-column index: pa_txn_patient_posted_idx (patient, posted_at) serves lookups
    # by patient, and every ledger write would pay for a second one.
    patient = models.ForeignKey(
        "patients.Patient",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="journal_transactions",
        db_index=False,
    )
    kind = models.CharField(max_length=30, choices=TransactionKind.choices)
    posted_at = models.DateTimeField()
    posted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    memo = models.CharField(max_length=200, blank=True)
    service_date = models.DateField(null=True, blank=True)
    claim_reference = models.CharField(max_length=64, blank=True)
    payer_reference = models.CharField(max_length=80, blank=True)
    source = models.CharField(max_length=120, blank=True)
    idempotency_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    reverses = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversed_by",
    )

    objects = AppendOnlyQuerySet["JournalTransaction"].as_manager()

    class Meta:
        ordering = ["posted_at", "id"]
        indexes = [
            models.Index(fields=["patient", "posted_at"], name="pa_txn_patient_posted_idx"),
            models.Index(fields=["claim_reference"], name="pa_txn_claim_ref_idx"),
            models.Index(fields=["kind", "posted_at"], name="pa_txn_kind_posted_idx"),
        ]
        constraints = [
            # Without a patient: provider (PLB) adjustments, and insurance payments that hold an
            # unmatched 835 claim payment's cash as unapplied (the ledger allows cash and
            # unapplied lines only there: a check constraint cannot see the entries).
            models.CheckConstraint(
                condition=Q(patient__isnull=False)
                | Q(kind__in=["provider_adjustment", "insurance_payment"]),
                name="patientaccounts_journaltransaction_patient_required",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.public_id}"


class JournalEntry(AppendOnlyModel):
    """One line of a transaction: an account and a signed amount (+debit / -credit)."""

    transaction = models.ForeignKey(
        JournalTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.CharField(max_length=30, choices=LedgerAccount.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    # Copied from the transaction so balances and aging are one indexed scan. No single-column
    # index: pa_entry_patient_account_idx (patient, account) serves lookups by patient.
    patient = models.ForeignKey(
        "patients.Patient",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="journal_entries",
        db_index=False,
    )
    service_date = models.DateField(null=True, blank=True)

    objects = AppendOnlyQuerySet["JournalEntry"].as_manager()

    class Meta:
        ordering = ["transaction_id", "id"]
        indexes = [
            models.Index(fields=["patient", "account"], name="pa_entry_patient_account_idx"),
            models.Index(fields=["account", "transaction"], name="pa_entry_account_txn_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0), name="patientaccounts_journalentry_amount_not_zero"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.amount}"


# --- Documents built on the ledger ---------------------------------------------------------


class DocumentCounter(models.Model):
    """Sequential document numbers (receipts, statements), allocated under a row lock."""

    name = models.CharField(max_length=30, unique=True)
    value = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class PaymentMethod(models.TextChoices):
    CASH = "cash", "Cash"
    CHECK = "check", "Check"
    CARD = "card", "Card (processed on the terminal)"
    OTHER = "other", "Other"


class PlanFrequency(models.TextChoices):
    MONTHLY = "monthly", "Monthly"


class PlanStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Paid in full"
    CANCELLED = "cancelled", "Cancelled"


class PaymentPlan(BaseModel):
    """An agreement to pay a balance in monthly instalments; instalments are PatientPayments."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="payment_plans"
    )
    total = models.DecimalField(max_digits=12, decimal_places=2)
    instalment_amount = models.DecimalField(max_digits=12, decimal_places=2)
    frequency = models.CharField(
        max_length=10, choices=PlanFrequency.choices, default=PlanFrequency.MONTHLY
    )
    start_date = models.DateField()
    next_due = models.DateField()
    status = models.CharField(max_length=10, choices=PlanStatus.choices, default=PlanStatus.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total__gt=0), name="patientaccounts_paymentplan_total_positive"
            ),
            models.CheckConstraint(
                condition=Q(instalment_amount__gt=0) & Q(instalment_amount__lte=models.F("total")),
                name="patientaccounts_paymentplan_instalment_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Plan {self.total} ({self.get_status_display()})"


class PatientPayment(BaseModel):
    """A payment taken at the front desk or received by mail (no card processing here)."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="payments"
    )
    paid_by = models.CharField(max_length=120, blank=True)  # a guarantor, when not the patient
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    method = models.CharField(max_length=10, choices=PaymentMethod.choices)
    reference = models.CharField(max_length=60, blank=True)
    received_at = models.DateTimeField()
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    location = models.ForeignKey("core.Location", on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(max_length=120, unique=True)
    receipt_number = models.CharField(max_length=20, unique=True)
    plan = models.ForeignKey(
        PaymentPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    transaction = models.OneToOneField(
        JournalTransaction, on_delete=models.PROTECT, related_name="patient_payment"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["location", "received_at"], name="pa_payment_loc_received_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="patientaccounts_patientpayment_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Receipt {self.receipt_number}"


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", "Awaiting approval"
    POSTED = "posted", "Approved and posted"
    REJECTED = "rejected", "Rejected"


class RefundRequest(BaseModel):
    """A refund of a credit balance: requested by one user, approved (and posted) by another."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="refund_requests"
    )
    location = models.ForeignKey("core.Location", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    method = models.CharField(max_length=10, choices=PaymentMethod.choices)
    reason = models.CharField(max_length=300)
    status = models.CharField(
        max_length=10, choices=RefundStatus.choices, default=RefundStatus.REQUESTED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)
    transaction = models.OneToOneField(
        JournalTransaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refund_request",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "location"], name="pa_refund_status_loc_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="patientaccounts_refundrequest_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(status="requested")
                | (Q(decided_by__isnull=False) & ~Q(decided_by=models.F("requested_by"))),
                name="patientaccounts_refundrequest_second_person_decides",
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} ({self.get_status_display()})"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class StatementRun(BaseModel):
    """A batch of statements for every patient of a location with a balance due."""

    location = models.ForeignKey(
        "core.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    statement_date = models.DateField()
    message = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Statement run {self.statement_date} ({self.done}/{self.total})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * self.done / self.total))

    @property
    def is_finished(self) -> bool:
        return self.status in {RunStatus.DONE, RunStatus.FAILED}


class Statement(BaseModel):
    """A patient statement (the patient is the guarantor for now): balance, aging, new lines."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="statements"
    )
    number = models.CharField(max_length=20, unique=True)
    statement_date = models.DateField()
    period_start = models.DateTimeField(null=True, blank=True)  # the previous statement's end
    period_end = models.DateTimeField()
    balance = models.DecimalField(max_digits=12, decimal_places=2)
    aging_current = models.DecimalField(max_digits=12, decimal_places=2)
    aging_31_60 = models.DecimalField(max_digits=12, decimal_places=2)
    aging_61_90 = models.DecimalField(max_digits=12, decimal_places=2)
    aging_91_120 = models.DecimalField(max_digits=12, decimal_places=2)
    aging_over_120 = models.DecimalField(max_digits=12, decimal_places=2)
    message = models.CharField(max_length=300, blank=True)
    run = models.ForeignKey(
        StatementRun, null=True, blank=True, on_delete=models.PROTECT, related_name="statements"
    )
    generated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-statement_date", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "statement_date"],
                name="patientaccounts_statement_one_per_patient_per_day",
            ),
        ]

    def __str__(self) -> str:
        return f"Statement {self.number}"

    def aging_pairs(self) -> list[tuple[str, Any]]:
        return [
            ("0-30", self.aging_current),
            ("31-60", self.aging_31_60),
            ("61-90", self.aging_61_90),
            ("91-120", self.aging_91_120),
            ("120+", self.aging_over_120),
        ]


class DisputeStatus(models.TextChoices):
    OPEN = "open", "Open"
    INVESTIGATING = "investigating", "Investigating"
    RESOLVED = "resolved", "Resolved"
    REJECTED = "rejected", "Rejected"


class DisputeReason(models.TextChoices):
    AMOUNT_INCORRECT = "amount_incorrect", "Amount is incorrect"
    NOT_RECEIVED = "not_received", "Service not received"
    INSURANCE_SHOULD_PAY = "insurance_should_pay", "Insurance should have paid"
    DUPLICATE = "duplicate", "Billed twice"
    PAYMENT_NOT_APPLIED = "payment_not_applied", "Payment not applied"
    OTHER = "other", "Other"


class BillingDispute(BaseModel):
    """A patient's dispute of (part of) their bill, worked to a resolution."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="billing_disputes"
    )
    reason = models.CharField(max_length=30, choices=DisputeReason.choices)
    details = models.TextField(blank=True)
    disputed_amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(
        max_length=15, choices=DisputeStatus.choices, default=DisputeStatus.OPEN
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="pa_dispute_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(disputed_amount__gt=0),
                name="patientaccounts_billingdispute_amount_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"Dispute {self.public_id} ({self.get_status_display()})"

    @property
    def is_closed(self) -> bool:
        return self.status in {DisputeStatus.RESOLVED, DisputeStatus.REJECTED}


class DisputeEventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    NOTE = "note", "Note"
    STATUS = "status", "Status changed"
    ASSIGNED = "assigned", "Owner changed"
    LETTER = "letter", "Letter printed"


class DisputeEvent(BaseModel):
    """One entry of a dispute's timeline."""

    dispute = models.ForeignKey(BillingDispute, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=DisputeEventKind.choices)
    text = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.dispute_id}"
