"""Patients, their insurance coverages, alerts, identifiers and break-glass grants."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import BaseModel, Location
from core.text import fold
from patients.validators import (
    format_phone,
    validate_birth_date,
    validate_phone,
    validate_postal_code,
)

US_STATES = [
    ("AL", "Alabama"), ("AK", "Alaska"), ("AZ", "Arizona"), ("AR", "Arkansas"),
    ("CA", "California"), ("CO", "Colorado"), ("CT", "Connecticut"), ("DE", "Delaware"),
    ("DC", "District of Columbia"), ("FL", "Florida"), ("GA", "Georgia"), ("HI", "Hawaii"),
    ("ID", "Idaho"), ("IL", "Illinois"), ("IN", "Indiana"), ("IA", "Iowa"), ("KS", "Kansas"),
    ("KY", "Kentucky"), ("LA", "Louisiana"), ("ME", "Maine"), ("MD", "Maryland"),
    ("MA", "Massachusetts"), ("MI", "Michigan"), ("MN", "Minnesota"), ("MS", "Mississippi"),
    ("MO", "Missouri"), ("MT", "Montana"), ("NE", "Nebraska"), ("NV", "Nevada"),
    ("NH", "New Hampshire"), ("NJ", "New Jersey"), ("NM", "New Mexico"), ("NY", "New York"),
    ("NC", "North Carolina"), ("ND", "North Dakota"), ("OH", "Ohio"), ("OK", "Oklahoma"),
    ("OR", "Oregon"), ("PA", "Pennsylvania"), ("RI", "Rhode Island"), ("SC", "South Carolina"),
    ("SD", "South Dakota"), ("TN", "Tennessee"), ("TX", "Texas"), ("UT", "Utah"),
    ("VT", "Vermont"), ("VA", "Virginia"), ("WA", "Washington"), ("WV", "West Virginia"),
    ("WI", "Wisconsin"), ("WY", "Wyoming"), ("AS", "American Samoa"), ("GU", "Guam"),
    ("MP", "Northern Mariana Islands"), ("PR", "Puerto Rico"), ("VI", "U.S. Virgin Islands"),
]  # fmt: skip


class SexAtBirth(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    UNKNOWN = "U", "Unknown"


class GenderIdentity(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    NON_BINARY = "non-binary", "Non-binary"
    TRANSGENDER_FEMALE = "transgender-female", "Transgender female"
    TRANSGENDER_MALE = "transgender-male", "Transgender male"
    OTHER = "other", "Other"
    NOT_DISCLOSED = "not-disclosed", "Chose not to disclose"


class ContactMethod(models.TextChoices):
    PHONE = "phone", "Phone call"
    SMS = "sms", "Text message (SMS)"
    EMAIL = "email", "Email"
    MAIL = "mail", "Letter"


class Relationship(models.TextChoices):
    SELF = "self", "Self"
    SPOUSE = "spouse", "Spouse"
    CHILD = "child", "Child"
    PARENT = "parent", "Parent"
    OTHER = "other", "Other"


def _phone_for_reading(field_name: str) -> property:
    """A property showing an E.164 field in the national format: +15552013344 -> (555) 201-3344."""
    return property(lambda self: format_phone(getattr(self, field_name)))


class Patient(BaseModel):
    mrn = models.CharField("MRN", max_length=12, unique=True)
    home_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="patients")

    family_name = models.CharField("legal family name", max_length=80)
    given_name = models.CharField("legal given name", max_length=80)
    middle_name = models.CharField(max_length=80, blank=True)
    suffix = models.CharField(max_length=10, blank=True)
    preferred_name = models.CharField(max_length=80, blank=True)
    birth_date = models.DateField("date of birth", validators=[validate_birth_date])
    sex_at_birth = models.CharField(max_length=1, choices=SexAtBirth.choices)
    gender_identity = models.CharField(max_length=20, choices=GenderIdentity.choices, blank=True)

    address_line1 = models.CharField(max_length=120, blank=True)
    address_line2 = models.CharField(max_length=120, blank=True)
    city = models.CharField(max_length=80, blank=True)
    state = models.CharField(max_length=2, choices=US_STATES, blank=True)
    postal_code = models.CharField(
        "ZIP code", max_length=10, blank=True, validators=[validate_postal_code]
    )

    phone_mobile = models.CharField(
        "mobile phone", max_length=20, blank=True, validators=[validate_phone]
    )
    phone_home = models.CharField(
        "home phone", max_length=20, blank=True, validators=[validate_phone]
    )
    email = models.EmailField(blank=True)
    preferred_language = models.CharField(max_length=40, default="English")
    interpreter_needed = models.BooleanField(default=False)
    preferred_contact = models.CharField(
        "preferred contact method",
        max_length=10,
        choices=ContactMethod.choices,
        default=ContactMethod.PHONE,
    )
    consent_sms = models.BooleanField("consents to SMS", default=False)
    consent_email = models.BooleanField("consents to email", default=False)

    emergency_contact_name = models.CharField(max_length=160, blank=True)
    emergency_contact_relationship = models.CharField(max_length=40, blank=True)
    emergency_contact_phone = models.CharField(
        max_length=20, blank=True, validators=[validate_phone]
    )

    guarantor_relationship = models.CharField(
        max_length=10, choices=Relationship.choices, default=Relationship.SELF
    )
    guarantor_name = models.CharField(max_length=160, blank=True)
    guarantor_phone = models.CharField(max_length=20, blank=True, validators=[validate_phone])
    guarantor_address = models.CharField(max_length=240, blank=True)

    # Search keys (see core.text.fold): maintained by save(), indexed for prefix range scans.
    family_fold = models.CharField(max_length=80, editable=False)
    given_fold = models.CharField(max_length=80, editable=False)
    phone_mobile_digits = models.CharField(max_length=15, blank=True, editable=False)
    phone_home_digits = models.CharField(max_length=15, blank=True, editable=False)

    is_active = models.BooleanField(default=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_from"
    )

    class Meta:
        ordering = ["family_fold", "given_fold", "id"]
        indexes = [
            # Index-ordered prefix scans for name search (see patients.selectors._name_q).
            models.Index(
                fields=["family_fold", "given_fold", "id"], name="patients_patient_name_idx"
            ),
            models.Index(
                fields=["given_fold", "family_fold", "id"], name="patients_patient_given_idx"
            ),
            models.Index(fields=["birth_date"], name="patients_patient_dob_idx"),
            models.Index(fields=["phone_mobile_digits"], name="patients_patient_mobile_idx"),
            models.Index(fields=["phone_home_digits"], name="patients_patient_home_ph_idx"),
            models.Index(fields=["email"], name="patients_patient_email_idx"),
            models.Index(fields=["home_location", "updated_at"], name="patients_patient_loc_idx"),
            models.Index(fields=["created_at"], name="patients_patient_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(merged_into=models.F("id")), name="patients_patient_not_self_merged"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    def save(self, *args: object, **kwargs: object) -> None:
        from core.text import digits

        self.family_fold = fold(self.family_name)
        self.given_fold = fold(self.given_name)
        self.phone_mobile_digits = digits(self.phone_mobile)
        self.phone_home_digits = digits(self.phone_home)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = set(update_fields) | {  # type: ignore[call-overload]
                "family_fold",
                "given_fold",
                "phone_mobile_digits",
                "phone_home_digits",
                "updated_at",
            }
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def display_name(self) -> str:
        name = f"{self.family_name}, {self.given_name}"
        if self.preferred_name and self.preferred_name != self.given_name:
            name += f' "{self.preferred_name}"'
        return name

    @property
    def age(self) -> int:
        """Age in whole years today (the clinic's time zone)."""
        today = timezone.localdate()
        born = self.birth_date
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))

    phone_mobile_display = _phone_for_reading("phone_mobile")
    phone_home_display = _phone_for_reading("phone_home")
    emergency_contact_phone_display = _phone_for_reading("emergency_contact_phone")
    guarantor_phone_display = _phone_for_reading("guarantor_phone")

    @property
    def phone_display(self) -> str:
        """The best number to call, formatted for reading: mobile first, then home."""
        return format_phone(self.phone_mobile or self.phone_home)

    @property
    def banner_flags(self) -> list[PatientFlag]:
        """Active alerts, most severe first (uses the prefetched `active_flags` when present)."""
        flags = getattr(self, "active_flags", None)
        if flags is None:
            flags = list(self.flags.filter(is_active=True))
        return sorted(flags, key=lambda flag: (flag.severity_rank, flag.kind))

    @property
    def has_interpreter_flag(self) -> bool:
        return any(flag.kind == FlagKind.INTERPRETER for flag in self.banner_flags)


class MedicareSecondaryType(models.TextChoices):
    """Medicare secondary payer type (X12 837P SBR05): why Medicare is not the primary payer.
    Needed on a Medicare coverage that is secondary or tertiary; the codes and wording are the
    005010X222A1 TR3's."""

    WORKING_AGED = (
        "12",
        (
            "12 — Medicare Secondary Working Aged Beneficiary or Spouse with Employer "
            "Group Health Plan"
        ),
    )
    END_STAGE_RENAL = (
        "13",
        (
            "13 — Medicare Secondary End-Stage Renal Disease Beneficiary in the Mandated "
            "Coordination Period with an Employer's Group Health Plan"
        ),
    )
    NO_FAULT = "14", "14 — Medicare Secondary, No-fault Insurance including Auto is Primary"
    WORKERS_COMPENSATION = "15", "15 — Medicare Secondary Worker's Compensation"
    PUBLIC_HEALTH_SERVICE = (
        "16",
        "16 — Medicare Secondary Public Health Service (PHS) or Other Federal Agency",
    )
    BLACK_LUNG = "41", "41 — Medicare Secondary Black Lung"
    VETERANS = "42", "42 — Medicare Secondary Veteran's Administration"
    DISABLED = (
        "43",
        (
            "43 — Medicare Secondary Disabled Beneficiary Under Age 65 with Large Group "
            "Health Plan (LGHP)"
        ),
    )
    LIABILITY = "47", "47 — Medicare Secondary, Other Liability Insurance is Primary"


class Coverage(BaseModel):
    class Order(models.IntegerChoices):
        PRIMARY = 1, "Primary"
        SECONDARY = 2, "Secondary"
        TERTIARY = 3, "Tertiary"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="coverages")
    payer_name = models.CharField(max_length=120)
    payer_identifier = models.CharField("payer id", max_length=20, blank=True)
    plan_name = models.CharField(max_length=120, blank=True)
    member_id = models.CharField("member id", max_length=40)
    member_id_fold = models.CharField(max_length=40, editable=False, db_index=True)
    group_number = models.CharField(max_length=40, blank=True)
    subscriber_name = models.CharField(max_length=160, blank=True)
    subscriber_birth_date = models.DateField(null=True, blank=True)
    relationship = models.CharField(
        "patient's relationship to subscriber",
        max_length=10,
        choices=Relationship.choices,
        default=Relationship.SELF,
    )
    effective_start = models.DateField(null=True, blank=True)
    effective_end = models.DateField(null=True, blank=True)
    order = models.PositiveSmallIntegerField(
        "order of benefits", choices=Order.choices, default=Order.PRIMARY
    )
    is_active = models.BooleanField(default=True)
    medicare_secondary_type = models.CharField(
        "Medicare secondary payer type",
        max_length=2,
        choices=MedicareSecondaryType.choices,
        blank=True,
        default="",
        help_text="Only for Medicare as the secondary or tertiary payer: why another payer pays "
        "first (sent as SBR05 on the 837P claim).",
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_identifier = models.CharField(
        max_length=200, blank=True, help_text="Identifier in the system it was imported from."
    )

    class Meta:
        ordering = ["patient_id", "order", "-effective_start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_end__isnull=True)
                | Q(effective_start__isnull=True)
                | Q(effective_end__gte=models.F("effective_start")),
                name="patients_coverage_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_order_display()}: {self.payer_name}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.member_id_fold = fold(self.member_id)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class FlagKind(models.TextChoices):
    INTERPRETER = "interpreter", "Interpreter needed"
    FALL_RISK = "fall_risk", "Fall risk"
    BEHAVIOURAL = "behavioural", "Behavioural alert: notify provider"
    ALLERGY = "allergy", "Allergy alert"
    MOBILITY = "mobility", "Mobility assistance"
    FINANCIAL = "financial", "Financial / account hold"
    OTHER = "other", "Other"


class FlagSeverity(models.TextChoices):
    INFO = "info", "Information"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK: dict[str, int] = {
    FlagSeverity.CRITICAL: 0,
    FlagSeverity.WARNING: 1,
    FlagSeverity.INFO: 2,
}
SEVERITY_BADGE: dict[str, str] = {
    FlagSeverity.CRITICAL: "text-bg-danger",
    FlagSeverity.WARNING: "text-bg-warning",
    FlagSeverity.INFO: "text-bg-info",
}


class PatientFlag(BaseModel):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="flags")
    kind = models.CharField(max_length=20, choices=FlagKind.choices)
    severity = models.CharField(
        max_length=10, choices=FlagSeverity.choices, default=FlagSeverity.WARNING
    )
    note = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["patient_id", "-severity", "kind"]

    def __str__(self) -> str:
        return self.get_kind_display()

    @property
    def severity_rank(self) -> int:
        """0 for critical, 1 for warning, 2 for information: sorts the most severe first."""
        return SEVERITY_RANK.get(self.severity, len(SEVERITY_RANK))

    @property
    def badge_class(self) -> str:
        """Bootstrap badge colours: critical red, warning amber, information blue."""
        return SEVERITY_BADGE.get(self.severity, "text-bg-secondary")


class PatientIdentifier(BaseModel):
    """External and former identifiers: FHIR identifiers, old MRNs kept as aliases after a merge."""

    MRN_SYSTEM = "urn:patientdesk:mrn"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="identifiers")
    system = models.CharField(max_length=200)
    value = models.CharField(max_length=120)
    is_alias = models.BooleanField(default=False, help_text="Kept from a merged record.")

    class Meta:
        ordering = ["patient_id", "system"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "value"], name="patients_identifier_unique_system_value"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.system}|{self.value}"


class BreakGlassGrant(BaseModel):
    """Emergency access to one patient outside the user's locations, for a limited time."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="break_glass_grants"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="break_glass")
    reason = models.TextField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "patient", "expires_at"], name="patients_breakglass_idx")
        ]

    def __str__(self) -> str:
        return f"break-glass {self.user_id} -> {self.patient_id}"


class MrnCounter(models.Model):
    """Single-row counter for MRN assignment (locked while incrementing)."""

    name = models.CharField(max_length=20, primary_key=True)
    value = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
