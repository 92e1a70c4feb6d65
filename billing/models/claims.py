"""Encounters, charge lines, claims, their timeline and 837P batches."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from billing.models.reference import BillingProvider, Payer
from core.models import BaseModel, Location


class EncounterStatus(models.TextChoices):
    OPEN = "open", "Open: charges being entered"
    BILLED = "billed", "Billed: claim created"
    VOID = "void", "Void"


class Encounter(BaseModel):
    """A visit (or any service event) whose charges are billed. The appointment is optional:
    a charge can also be entered without one."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="encounters"
    )
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    date_of_service = models.DateField()
    appointment = models.ForeignKey(
        "scheduling.Appointment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="encounters",
    )
    rendering_practitioner = models.ForeignKey(
        "scheduling.Practitioner", on_delete=models.PROTECT, related_name="encounters"
    )
    billing_provider = models.ForeignKey(
        BillingProvider, on_delete=models.PROTECT, related_name="encounters"
    )
    place_of_service = models.CharField(max_length=2, default="11")
    status = models.CharField(
        max_length=10, choices=EncounterStatus.choices, default=EncounterStatus.OPEN
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-date_of_service", "-id"]
        indexes = [
            models.Index(fields=["patient", "date_of_service"], name="billing_encounter_pat_idx"),
            models.Index(fields=["status", "date_of_service"], name="billing_encounter_status_idx"),
            models.Index(fields=["location", "status"], name="billing_encounter_loc_idx"),
        ]

    def __str__(self) -> str:
        return f"encounter {self.public_id} on {self.date_of_service}"


class EncounterDiagnosis(BaseModel):
    """An ICD-10-CM code at position 1..12 (X12 HI), stored without the dot, upper-case."""

    encounter = models.ForeignKey(Encounter, on_delete=models.CASCADE, related_name="diagnoses")
    position = models.PositiveSmallIntegerField()
    code = models.CharField("ICD-10-CM code", max_length=7)

    class Meta:
        ordering = ["encounter_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["encounter", "position"], name="billing_encounterdx_unique_position"
            ),
            models.UniqueConstraint(
                fields=["encounter", "code"], name="billing_encounterdx_unique_code"
            ),
            models.CheckConstraint(
                condition=Q(position__gte=1) & Q(position__lte=12),
                name="billing_encounterdx_position_1_to_12",
            ),
        ]

    def __str__(self) -> str:
        return self.display_code

    @property
    def display_code(self) -> str:
        from billing.icd10 import display_code

        return display_code(self.code)


class ServiceLineFields(models.Model):
    """What a charge line and a claim line share (837P SV1 and its pointers)."""

    line_number = models.PositiveSmallIntegerField()
    code = models.CharField("CPT/HCPCS code", max_length=5)
    modifier1 = models.CharField(max_length=2, blank=True)
    modifier2 = models.CharField(max_length=2, blank=True)
    modifier3 = models.CharField(max_length=2, blank=True)
    modifier4 = models.CharField(max_length=2, blank=True)
    units = models.DecimalField(max_digits=9, decimal_places=3, default=Decimal("1"))
    pointer1 = models.PositiveSmallIntegerField("diagnosis pointer 1", null=True, blank=True)
    pointer2 = models.PositiveSmallIntegerField("diagnosis pointer 2", null=True, blank=True)
    pointer3 = models.PositiveSmallIntegerField("diagnosis pointer 3", null=True, blank=True)
    pointer4 = models.PositiveSmallIntegerField("diagnosis pointer 4", null=True, blank=True)
    service_date = models.DateField()

    class Meta:
        abstract = True

    @property
    def modifiers(self) -> list[str]:
        return [m for m in (self.modifier1, self.modifier2, self.modifier3, self.modifier4) if m]

    @property
    def pointers(self) -> list[int]:
        return [p for p in (self.pointer1, self.pointer2, self.pointer3, self.pointer4) if p]


class ChargeLine(ServiceLineFields, BaseModel):
    """A posted charge. Never edited once on a submitted claim: a correction is a reversing line
    (negative units and amount, `corrects` = the original) followed by a new line."""

    encounter = models.ForeignKey(Encounter, on_delete=models.CASCADE, related_name="lines")
    fee_amount = models.DecimalField(
        "fee schedule amount per unit", max_digits=12, decimal_places=2, null=True, blank=True
    )
    amount = models.DecimalField("charge", max_digits=12, decimal_places=2)
    override_reason = models.CharField(max_length=200, blank=True)
    corrects = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrections"
    )
    posted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["encounter_id", "line_number"]
        indexes = [models.Index(fields=["service_date"], name="billing_chargeline_date_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["encounter", "line_number"], name="billing_chargeline_unique_number"
            ),
            models.CheckConstraint(condition=~Q(units=0), name="billing_chargeline_units_not_zero"),
            models.UniqueConstraint(
                fields=["corrects"],
                condition=Q(corrects__isnull=False),
                name="billing_chargeline_reversed_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line_number}: {self.code} {self.amount}"

    @property
    def is_reversal(self) -> bool:
        return self.corrects_id is not None


class ClaimStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    READY = "ready", "Ready to batch"
    SUBMITTED = "submitted", "Submitted"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    PAID = "paid", "Paid"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    DENIED = "denied", "Denied"
    APPEALED = "appealed", "Appealed"
    RESUBMITTED = "resubmitted", "Resubmitted (replaced)"
    VOID = "void", "Void"
    CLOSED = "closed", "Closed"


S = ClaimStatus

# The claim life cycle. Only billing.services changes a status, and only along these arrows.
ALLOWED: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.READY, S.VOID}),
    S.READY: frozenset({S.DRAFT, S.SUBMITTED, S.VOID}),
    S.SUBMITTED: frozenset({S.ACCEPTED, S.REJECTED, S.VOID}),
    S.ACCEPTED: frozenset({S.PAID, S.PARTIALLY_PAID, S.DENIED, S.VOID}),
    S.REJECTED: frozenset({S.APPEALED, S.RESUBMITTED, S.VOID}),
    S.DENIED: frozenset({S.APPEALED, S.RESUBMITTED, S.VOID, S.CLOSED}),
    S.APPEALED: frozenset({S.PAID, S.PARTIALLY_PAID, S.DENIED, S.CLOSED}),
    S.PAID: frozenset({S.RESUBMITTED, S.VOID, S.CLOSED}),
    S.PARTIALLY_PAID: frozenset({S.APPEALED, S.RESUBMITTED, S.VOID, S.CLOSED}),
    S.RESUBMITTED: frozenset({S.CLOSED}),
    S.VOID: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}

# Claims that still count for duplicate detection (not replaced, voided or closed unpaid).
LIVE_STATUSES = frozenset(set(ClaimStatus.values) - {S.VOID, S.RESUBMITTED, S.CLOSED})


class ClaimFrequency(models.TextChoices):
    ORIGINAL = "1", "Original"
    REPLACEMENT = "7", "Replacement of a prior claim"
    VOID = "8", "Void of a prior claim"


class PayerSequence(models.TextChoices):
    """SBR01: the payer's responsibility sequence, from Coverage.order."""

    PRIMARY = "P", "Primary"
    SECONDARY = "S", "Secondary"
    TERTIARY = "T", "Tertiary"


SEQUENCE_BY_ORDER = {
    1: PayerSequence.PRIMARY,
    2: PayerSequence.SECONDARY,
    3: PayerSequence.TERTIARY,
}


class BatchStatus(models.TextChoices):
    BUILT = "built", "Built"
    VALIDATED = "validated", "Validated"
    RELEASED = "released", "Released"
    FAILED = "failed", "Failed validation"


class ClaimBatch(BaseModel):
    """One 837P file for one payer (written by the export service)."""

    payer = models.ForeignKey(Payer, on_delete=models.PROTECT, related_name="batches")
    file_name = models.CharField(max_length=120)
    interchange_control_number = models.PositiveIntegerField("ISA13")
    group_control_number = models.PositiveIntegerField("GS06")
    transaction_set_control_number = models.CharField("ST02", max_length=9)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claim_count = models.PositiveIntegerField(default=0)
    total_charge = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    sha256 = models.CharField(max_length=64, blank=True)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=BatchStatus.choices, default=BatchStatus.BUILT)
    validation_errors = models.JSONField(default=list, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["interchange_control_number"], name="billing_claimbatch_unique_isa13"
            ),
        ]

    def __str__(self) -> str:
        return self.file_name


class ControlNumberCounter(models.Model):
    """Named counters (ISA13, GS06, patient control numbers), locked while incremented so a
    number is never handed out twice."""

    name = models.CharField(max_length=40, unique=True)
    last_value = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}={self.last_value}"


class Claim(BaseModel):
    # patient and payer: no single-column index; billing_claim_patient_idx (patient, date of
    # service) and billing_claim_payer_sub_idx (payer, submitted_at) serve lookups by either,
    # and every claim written or moved to a new status would maintain a second one.
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="claims", db_index=False
    )
    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="claims")
    coverage = models.ForeignKey(
        "patients.Coverage", on_delete=models.PROTECT, related_name="claims"
    )
    payer = models.ForeignKey(
        Payer, on_delete=models.PROTECT, related_name="claims", db_index=False
    )
    billing_provider = models.ForeignKey(
        BillingProvider, on_delete=models.PROTECT, related_name="claims"
    )
    rendering_practitioner = models.ForeignKey(
        "scheduling.Practitioner", on_delete=models.PROTECT, related_name="claims"
    )
    patient_control_number = models.CharField("patient control number (CLM01)", max_length=20)
    payer_claim_number = models.CharField("payer claim number (CLP07)", max_length=50, blank=True)
    frequency_code = models.CharField(
        max_length=1, choices=ClaimFrequency.choices, default=ClaimFrequency.ORIGINAL
    )
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )
    sequence = models.CharField(
        max_length=1, choices=PayerSequence.choices, default=PayerSequence.PRIMARY
    )
    status = models.CharField(max_length=15, choices=ClaimStatus.choices, default=S.DRAFT)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    place_of_service = models.CharField(max_length=2, default="11")
    date_of_service = models.DateField(help_text="First service date on the claim.")
    total_charge = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    paid_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    patient_responsibility = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0")
    )
    adjudicated_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    batch = models.ForeignKey(
        ClaimBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="claims"
    )
    scrubbed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "payer"], name="billing_claim_status_idx"),
            models.Index(fields=["payer", "submitted_at"], name="billing_claim_payer_sub_idx"),
            models.Index(fields=["patient", "date_of_service"], name="billing_claim_patient_idx"),
            models.Index(fields=["payer_claim_number"], name="billing_claim_payer_no_idx"),
            models.Index(fields=["date_of_service"], name="billing_claim_dos_idx"),
            models.Index(fields=["submitted_at"], name="billing_claim_submitted_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["patient_control_number"], name="billing_claim_unique_pcn"
            ),
            models.CheckConstraint(
                condition=Q(frequency_code="1", replaces__isnull=True)
                | Q(frequency_code__in=["7", "8"], replaces__isnull=False),
                name="billing_claim_frequency_matches_replaces",
            ),
        ]

    def __str__(self) -> str:
        return self.patient_control_number


class ClaimLine(ServiceLineFields, BaseModel):
    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="lines")
    charge_line = models.ForeignKey(
        ChargeLine, null=True, blank=True, on_delete=models.PROTECT, related_name="claim_lines"
    )
    charge = models.DecimalField(max_digits=12, decimal_places=2)
    place_of_service = models.CharField(max_length=2, blank=True)

    class Meta:
        ordering = ["claim_id", "line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["claim", "line_number"], name="billing_claimline_unique_number"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line_number}: {self.code} {self.charge}"


class ClaimEvent(BaseModel):
    """The claim's timeline: every status change (and notable action) with who and when."""

    # no single-column index: billing_claimevent_claim_idx (claim, at) leads with the claim
    claim = models.ForeignKey(
        Claim, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_status = models.CharField(max_length=15, choices=ClaimStatus.choices, blank=True)
    to_status = models.CharField(max_length=15, choices=ClaimStatus.choices, blank=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["claim_id", "at", "id"]
        indexes = [
            models.Index(fields=["claim", "at"], name="billing_claimevent_claim_idx"),
            models.Index(fields=["to_status", "at"], name="billing_claimevent_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status or '-'}"


class ProblemSeverity(models.TextChoices):
    ERROR = "error", "Error"
    WARNING = "warning", "Warning"


class ClaimProblem(BaseModel):
    """A scrubber finding from the claim's last scrub."""

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="problems")
    rule_id = models.CharField(max_length=20)
    severity = models.CharField(max_length=10, choices=ProblemSeverity.choices)
    field = models.CharField(max_length=80, help_text="The field to fix.")
    message = models.CharField(max_length=300)
    line_number = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["claim_id", "severity", "line_number", "rule_id", "id"]

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.message}"


class AdjustmentGroup(models.TextChoices):
    """CAS01 claim adjustment group codes."""

    CONTRACTUAL = "CO", "Contractual obligation"
    PATIENT = "PR", "Patient responsibility"
    OTHER = "OA", "Other adjustment"
    PAYER_INITIATED = "PI", "Payer-initiated reduction"
    CORRECTION = "CR", "Correction and reversal"


class ClaimPriorPayment(BaseModel):
    """What an earlier payer paid (837P loop 2320 AMT*D at claim level, 2430 SVD per line).
    Filled by the remittance poster on a secondary/tertiary claim."""

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="prior_payments")
    claim_line = models.ForeignKey(
        ClaimLine, null=True, blank=True, on_delete=models.CASCADE, related_name="prior_payments"
    )
    source_claim = models.ForeignKey(
        Claim, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payer = models.ForeignKey(Payer, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    paid_units = models.DecimalField(max_digits=9, decimal_places=3, null=True, blank=True)
    paid_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["claim_id", "claim_line_id", "id"]

    def __str__(self) -> str:
        return f"prior payment {self.amount}"


class ClaimPriorAdjustment(BaseModel):
    """An earlier payer's CAS adjustment (group, CARC, amount), at claim or line level."""

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="prior_adjustments")
    claim_line = models.ForeignKey(
        ClaimLine, null=True, blank=True, on_delete=models.CASCADE, related_name="prior_adjustments"
    )
    payer = models.ForeignKey(Payer, on_delete=models.PROTECT, related_name="+")
    group_code = models.CharField(max_length=2, choices=AdjustmentGroup.choices)
    reason_code = models.CharField("CARC", max_length=5)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.DecimalField(max_digits=9, decimal_places=3, null=True, blank=True)

    class Meta:
        ordering = ["claim_id", "claim_line_id", "group_code", "id"]

    def __str__(self) -> str:
        return f"{self.group_code}-{self.reason_code} {self.amount}"
