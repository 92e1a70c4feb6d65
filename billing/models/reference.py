"""Billing reference data: payers, plans, fee schedules, code tables and providers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models
from django.db.models import Q

from core.models import BaseModel


class ClaimFilingIndicator(models.TextChoices):
    """SBR09 claim filing indicator codes (X12 5010 837P)."""

    OTHER_NON_FEDERAL = "11", "Other non-federal programs"
    PPO = "12", "Preferred provider organization (PPO)"
    POS = "13", "Point of service (POS)"
    EPO = "14", "Exclusive provider organization (EPO)"
    INDEMNITY = "15", "Indemnity insurance"
    HMO_MEDICARE_RISK = "16", "HMO Medicare risk"
    DENTAL_MAINTENANCE = "17", "Dental maintenance organization"
    AUTO = "AM", "Automobile medical"
    BCBS = "BL", "Blue Cross/Blue Shield"
    TRICARE = "CH", "CHAMPUS (TRICARE)"
    COMMERCIAL = "CI", "Commercial insurance"
    DISABILITY = "DS", "Disability"
    FEP = "FI", "Federal employees program"
    HMO = "HM", "Health maintenance organization (HMO)"
    LIABILITY_MEDICAL = "LM", "Liability medical"
    MEDICARE_A = "MA", "Medicare Part A"
    MEDICARE_B = "MB", "Medicare Part B"
    MEDICAID = "MC", "Medicaid"
    OTHER_FEDERAL = "OF", "Other federal program"
    TITLE_V = "TV", "Title V"
    VA = "VA", "Veterans Affairs plan"
    WORKERS_COMP = "WC", "Workers' compensation health claim"
    MUTUALLY_DEFINED = "ZZ", "Mutually defined"


class Payer(BaseModel):
    name = models.CharField(max_length=120)
    payer_id = models.CharField(
        "payer id",
        max_length=80,
        help_text="The payer's electronic id (837P NM109 of loop 2010BB).",
    )
    claim_filing_indicator = models.CharField(
        max_length=2, choices=ClaimFilingIndicator.choices, default=ClaimFilingIndicator.COMMERCIAL
    )
    address_line1 = models.CharField(max_length=55, blank=True)
    address_line2 = models.CharField(max_length=55, blank=True)
    city = models.CharField(max_length=30, blank=True)
    state = models.CharField(max_length=2, blank=True)
    postal_code = models.CharField("ZIP code", max_length=10, blank=True)
    phone = models.CharField(max_length=20, blank=True)
    timely_filing_days = models.PositiveSmallIntegerField(default=365)
    appeal_days = models.PositiveSmallIntegerField(default=180)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["payer_id"], name="billing_payer_unique_payer_id"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.payer_id})"


class PlanType(models.TextChoices):
    HMO = "hmo", "HMO"
    PPO = "ppo", "PPO"
    EPO = "epo", "EPO"
    POS = "pos", "POS"
    INDEMNITY = "indemnity", "Indemnity"
    MEDICARE = "medicare", "Medicare"
    MEDICARE_ADVANTAGE = "medicare_advantage", "Medicare Advantage"
    MEDICAID = "medicaid", "Medicaid"
    WORKERS_COMP = "workers_comp", "Workers' compensation"
    OTHER = "other", "Other"


class InsurancePlan(BaseModel):
    payer = models.ForeignKey(Payer, on_delete=models.CASCADE, related_name="plans")
    name = models.CharField(max_length=120)
    plan_type = models.CharField(max_length=20, choices=PlanType.choices, default=PlanType.PPO)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["payer_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["payer", "name"], name="billing_plan_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class FeeSchedule(BaseModel):
    """Prices per payer (null payer: the default / self-pay schedule) for a date range."""

    payer = models.ForeignKey(
        Payer, null=True, blank=True, on_delete=models.CASCADE, related_name="fee_schedules"
    )
    name = models.CharField(max_length=120)
    effective_start = models.DateField()
    effective_end = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["payer_id", "-effective_start", "id"]
        indexes = [
            models.Index(fields=["payer", "effective_start"], name="billing_feesched_payer_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_end__isnull=True)
                | Q(effective_end__gte=models.F("effective_start")),
                name="billing_feeschedule_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def covers(self, day: dt.date) -> bool:
        return self.effective_start <= day and (
            self.effective_end is None or day <= self.effective_end
        )


class FeeScheduleEntry(BaseModel):
    """One price. CPT descriptors are licensed by the AMA: CPT entries keep `description` blank;
    HCPCS Level II descriptions (public domain) may be filled in."""

    schedule = models.ForeignKey(FeeSchedule, on_delete=models.CASCADE, related_name="entries")
    code = models.CharField("CPT/HCPCS code", max_length=5)
    modifier = models.CharField(max_length=2, blank=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    description = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["schedule_id", "code", "modifier"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "code", "modifier"], name="billing_feeentry_unique_code"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=Decimal("0")), name="billing_feeentry_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code}{'-' + self.modifier if self.modifier else ''} {self.amount}"


class PlaceOfService(BaseModel):
    """CMS place-of-service codes (two digits) with short names."""

    code = models.CharField(max_length=2, unique=True)
    name = models.CharField(max_length=80)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Modifier(BaseModel):
    """CPT/HCPCS modifiers with short descriptions written in our own words."""

    code = models.CharField(max_length=2, unique=True)
    description = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class DenialCause(models.TextChoices):
    ELIGIBILITY = "eligibility", "Eligibility"
    AUTHORIZATION = "authorization", "Authorization"
    CODING = "coding", "Coding"
    TIMELY_FILING = "timely_filing", "Timely filing"
    DUPLICATE = "duplicate", "Duplicate"
    MEDICAL_NECESSITY = "medical_necessity", "Medical necessity"
    OTHER = "other", "Other"


class AdjustmentReason(BaseModel):
    """Claim adjustment reason codes (CARC), short descriptions in our own words."""

    code = models.CharField(max_length=5, unique=True)
    description = models.CharField(max_length=160)
    denial_cause = models.CharField(
        max_length=20, choices=DenialCause.choices, default=DenialCause.OTHER
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"CARC {self.code}"


class RemarkCode(BaseModel):
    """Remittance advice remark codes (RARC), short descriptions in our own words."""

    code = models.CharField(max_length=7, unique=True)
    description = models.CharField(max_length=160)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"RARC {self.code}"


class BillingProvider(BaseModel):
    """The organisation that bills (837P loop 2010AA)."""

    name = models.CharField(max_length=60)
    npi = models.CharField("NPI", max_length=10)
    taxonomy_code = models.CharField(max_length=10)
    tax_id = models.CharField("tax id (EIN)", max_length=9)
    address_line1 = models.CharField(max_length=55)
    address_line2 = models.CharField(max_length=55, blank=True)
    city = models.CharField(max_length=30)
    state = models.CharField(max_length=2)
    postal_code = models.CharField("ZIP code", max_length=10)
    phone = models.CharField(max_length=20, blank=True)
    contact_name = models.CharField(max_length=60, blank=True)
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="billing_billingprovider_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RenderingProviderProfile(BaseModel):
    """Billing details of a practitioner (the NPI itself lives on scheduling.Practitioner)."""

    practitioner = models.OneToOneField(
        "scheduling.Practitioner", on_delete=models.CASCADE, related_name="billing_profile"
    )
    taxonomy_code = models.CharField(max_length=10)

    class Meta:
        ordering = ["practitioner_id"]

    def __str__(self) -> str:
        return f"{self.practitioner_id}: {self.taxonomy_code}"
