"""Remittances received (X12 835): files, payments, claim payments, their lines and
adjustments, provider adjustments (PLB), the unmatched queue and the denial work queue.

Rows are written by `remittance.services.remittance_ingest` only. A posted remittance is a
final document: corrections come as new remittances (reversals), never as edits.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models import AdjustmentGroup, DenialCause
from core.models import BaseModel

ZERO = Decimal("0")


class FileStatus(models.TextChoices):
    POSTED = "posted", "Posted"
    QUARANTINED = "quarantined", "Quarantined (trace already posted with other content)"
    REFUSED = "refused", "Refused (not a valid 835)"
    DRY_RUN = "dry_run", "Dry run (nothing posted)"


class RemittanceFile(BaseModel):
    """One 835 file as received. The SHA-256 of its bytes is posted at most once."""

    sha256 = models.CharField(max_length=64)
    file_name = models.CharField(max_length=255)
    received_at = models.DateTimeField()
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=12, choices=FileStatus.choices)
    message = models.CharField(max_length=500, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    interchange_control_number = models.CharField(max_length=9, blank=True)
    payment_count = models.PositiveIntegerField(default=0)
    claim_count = models.PositiveIntegerField(default=0)
    matched_count = models.PositiveIntegerField(default=0)
    unmatched_count = models.PositiveIntegerField(default=0)
    denied_count = models.PositiveIntegerField(default=0)
    total_paid = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    total_adjusted = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    total_provider_adjustments = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    # Kept for quarantined files only, so that someone can compare them with the posted one.
    content = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["sha256"], name="remit_file_sha_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["sha256"],
                condition=Q(status="posted"),
                name="remittance_remittancefile_posted_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"


class RemittancePayment(BaseModel):
    """One transaction set (ST..SE): a payment (check/EFT trace TRN02) from one payer."""

    file = models.ForeignKey(RemittanceFile, on_delete=models.PROTECT, related_name="payments")
    payer = models.ForeignKey(
        "billing.Payer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payer_reference = models.CharField("payer id (TRN03)", max_length=80)
    payer_name = models.CharField(max_length=120, blank=True)
    trace_number = models.CharField("trace (TRN02)", max_length=80)
    handling_code = models.CharField(max_length=2)
    credit_debit = models.CharField(max_length=1)
    method = models.CharField(max_length=3)
    payment_date = models.DateField(null=True, blank=True)
    paid_total = models.DecimalField("paid (BPR02, signed)", max_digits=14, decimal_places=2)
    payee_name = models.CharField(max_length=120, blank=True)
    payee_npi = models.CharField(max_length=80, blank=True)
    quarantined = models.BooleanField(default=False)

    class Meta:
        ordering = ["file_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["payer_reference", "trace_number"],
                condition=Q(quarantined=False),
                name="remittance_remittancepayment_unique_trace",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.payer_name} {self.trace_number}"


class MatchMethod(models.TextChoices):
    PCN = "pcn", "Patient control number"
    PAYER_CLAIM_NUMBER = "payer_claim_number", "Payer claim number"
    PATIENT_DATES_LINES = "patient_dates_lines", "Patient, dates and lines"
    MANUAL = "manual", "Matched by hand from the unmatched queue"
    UNMATCHED = "unmatched", "Unmatched"


class ClaimRemittance(BaseModel):
    """One CLP: how the payer adjudicated one claim, and which of our claims it is."""

    payment = models.ForeignKey(RemittancePayment, on_delete=models.PROTECT, related_name="claims")
    position = models.PositiveIntegerField(help_text="Order of the CLP in its transaction set.")
    claim = models.ForeignKey(
        "billing.Claim",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="remittances",
    )
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    match_method = models.CharField(max_length=20, choices=MatchMethod.choices)
    patient_control_number = models.CharField("CLP01", max_length=38)
    status_code = models.CharField("CLP02", max_length=2)
    charge = models.DecimalField(max_digits=12, decimal_places=2)
    paid = models.DecimalField(max_digits=12, decimal_places=2)
    patient_responsibility = models.DecimalField(max_digits=12, decimal_places=2)
    filing_indicator = models.CharField(max_length=2, blank=True)
    payer_claim_number = models.CharField("CLP07", max_length=50, blank=True)
    service_start = models.DateField(null=True, blank=True)
    service_end = models.DateField(null=True, blank=True)
    # NM1*QC as the payer wrote it: needed to work the unmatched queue.
    patient_last_name = models.CharField(max_length=60, blank=True)
    patient_first_name = models.CharField(max_length=35, blank=True)
    member_id = models.CharField(max_length=80, blank=True)
    is_reversal = models.BooleanField(default=False)
    is_denied = models.BooleanField(default=False)

    class Meta:
        ordering = ["payment_id", "position"]
        # No index of its own beyond the foreign keys' (claim, patient, payment): the claim's
        # was a second copy of the claim foreign key's, and no query filters on match_method
        # (the unmatched queue reads UnmatchedRemittance); each was one more index entry per
        # CLP for the 835 poster to write.

    def __str__(self) -> str:
        return f"CLP {self.patient_control_number} {self.paid}"


class LineRemittance(BaseModel):
    claim_remittance = models.ForeignKey(
        ClaimRemittance, on_delete=models.PROTECT, related_name="lines"
    )
    position = models.PositiveSmallIntegerField()
    claim_line = models.ForeignKey(
        "billing.ClaimLine",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # the partial index below: the 835 poster leaves it empty
    )
    qualifier = models.CharField(max_length=2)
    code = models.CharField(max_length=48)
    modifiers = models.CharField(max_length=11, blank=True)  # "25:59"
    original_code = models.CharField(max_length=48, blank=True)  # SVC06 when re-coded
    charge = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    paid = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    units = models.DecimalField(max_digits=9, decimal_places=3, null=True, blank=True)
    service_date = models.DateField(null=True, blank=True)
    control_number = models.CharField("REF*6R", max_length=50, blank=True)
    allowed = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    remark_codes = models.CharField("RARC (LQ*HE)", max_length=100, blank=True)

    class Meta:
        ordering = ["claim_remittance_id", "position"]
        indexes = [
            # Lookups by claim line (a claim line's PROTECT check) match only rows that have
            # one; the rows the 835 poster writes have none and so cost no index entry.
            models.Index(
                fields=["claim_line"],
                condition=models.Q(claim_line__isnull=False),
                name="remit_line_claim_line_idx",
            )
        ]

    def __str__(self) -> str:
        return f"SVC {self.code} {self.paid}"


class AdjustmentLevel(models.TextChoices):
    CLAIM = "claim", "Claim"
    LINE = "line", "Service line"


class RemittanceAdjustment(BaseModel):
    """One CAS triplet (group, CARC, amount, quantity), at claim or line level."""

    claim_remittance = models.ForeignKey(
        ClaimRemittance, on_delete=models.PROTECT, related_name="adjustments"
    )
    line = models.ForeignKey(
        LineRemittance,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adjustments",
    )
    level = models.CharField(max_length=5, choices=AdjustmentLevel.choices)
    group_code = models.CharField(max_length=2, choices=AdjustmentGroup.choices)
    reason_code = models.CharField("CARC", max_length=5)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)

    class Meta:
        ordering = ["claim_remittance_id", "line_id", "id"]

    def __str__(self) -> str:
        return f"{self.group_code}-{self.reason_code} {self.amount}"


class ProviderAdjustment(BaseModel):
    """One PLB pair: a provider-level adjustment (positive amounts reduce the payment)."""

    payment = models.ForeignKey(
        RemittancePayment, on_delete=models.PROTECT, related_name="provider_adjustments"
    )
    provider_identifier = models.CharField(max_length=80)
    fiscal_period_date = models.DateField(null=True, blank=True)
    reason_code = models.CharField(max_length=2)
    reference = models.CharField(max_length=80, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    transaction = models.ForeignKey(
        "patientaccounts.JournalTransaction",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["payment_id", "id"]

    def __str__(self) -> str:
        return f"PLB {self.reason_code} {self.amount}"


class UnmatchedStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class UnmatchedRemittance(BaseModel):
    """A claim payment that matched none of our claims: kept here until someone resolves it."""

    claim_remittance = models.OneToOneField(
        ClaimRemittance, on_delete=models.PROTECT, related_name="unmatched"
    )
    status = models.CharField(
        max_length=10, choices=UnmatchedStatus.choices, default=UnmatchedStatus.OPEN
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_claim = models.ForeignKey(
        "billing.Claim", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["status", "created_at", "id"]
        indexes = [models.Index(fields=["status", "created_at"], name="remit_unmatched_idx")]

    def __str__(self) -> str:
        return f"unmatched {self.claim_remittance_id} ({self.status})"


class DenialStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    APPEALED = "appealed", "Appealed"
    RESUBMITTED = "resubmitted", "Resubmitted"
    WRITTEN_OFF = "written_off", "Written off"
    CLOSED = "closed", "Closed"


class Denial(BaseModel):
    """A denied claim (or denied lines of a claim) to work: appeal, resubmit or write off."""

    claim = models.ForeignKey("billing.Claim", on_delete=models.PROTECT, related_name="denials")
    claim_remittance = models.ForeignKey(
        ClaimRemittance, on_delete=models.PROTECT, related_name="denials"
    )
    carc = models.CharField("CARC", max_length=5)
    rarc = models.CharField("RARC", max_length=7, blank=True)
    group_code = models.CharField(max_length=2, choices=AdjustmentGroup.choices)
    amount = models.DecimalField("amount denied", max_digits=12, decimal_places=2)
    cause = models.CharField(max_length=20, choices=DenialCause.choices, default=DenialCause.OTHER)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    due_date = models.DateField(help_text="Appeal deadline: remittance date + payer appeal days.")
    status = models.CharField(
        max_length=12, choices=DenialStatus.choices, default=DenialStatus.OPEN
    )
    notes = models.TextField(blank=True, help_text="Text brought in with the denial (import).")
    replacement_claim = models.ForeignKey(
        "billing.Claim", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    write_off = models.ForeignKey(
        "patientaccounts.JournalTransaction",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["due_date", "id"]
        indexes = [
            models.Index(fields=["status", "due_date"], name="remit_denial_queue_idx"),
            models.Index(fields=["owner", "status"], name="remit_denial_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"denial {self.carc} on claim {self.claim_id}"

    @property
    def is_overdue(self) -> bool:
        """Still to work (open or in progress) and past the appeal deadline."""
        return (
            self.status in (DenialStatus.OPEN, DenialStatus.IN_PROGRESS)
            and self.due_date < timezone.localdate()
        )


class DenialNote(BaseModel):
    """One note on a denial's timeline: append-only, with its author and time."""

    denial = models.ForeignKey(Denial, on_delete=models.PROTECT, related_name="timeline")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=20, default="note")  # note, status, assign, appeal...
    text = models.TextField(max_length=2000)

    class Meta:
        ordering = ["denial_id", "created_at", "id"]
        indexes = [models.Index(fields=["denial", "created_at"], name="remit_denialnote_idx")]

    def __str__(self) -> str:
        return f"{self.kind} on denial {self.denial_id}"


class AppealLetter(BaseModel):
    """An appeal letter as sent: the PDF bytes, their SHA-256, who made it and when."""

    denial = models.ForeignKey(Denial, on_delete=models.PROTECT, related_name="appeal_letters")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    sha256 = models.CharField(max_length=64)
    pdf = models.BinaryField()

    class Meta:
        ordering = ["denial_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"appeal letter {self.sha256[:12]}"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class IngestJob(BaseModel):
    """An uploaded 835 waiting for (or done by) the background ingest. The bytes are kept until
    the ingest has run, then dropped (the posted rows and the file's SHA-256 remain)."""

    file_name = models.CharField(max_length=255)
    content = models.BinaryField(blank=True)
    dry_run = models.BooleanField(default=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    stage = models.CharField(max_length=60, blank=True)
    report = models.JSONField(default=dict, blank=True)
    file = models.ForeignKey(
        RemittanceFile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"ingest {self.file_name} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {JobStatus.DONE, JobStatus.FAILED}
