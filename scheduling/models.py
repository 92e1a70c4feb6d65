"""Scheduling: the practitioners patients see. The scheduling issue builds on this."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.models import BaseModel, Location
from patients.models import Patient
from scheduling.validators import validate_npi

WEEKDAYS = [
    (0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"),
    (5, "Saturday"), (6, "Sunday"),
]  # fmt: skip


class Credential(models.TextChoices):
    MD = "MD", "MD (Doctor of Medicine)"
    DO = "DO", "DO (Doctor of Osteopathic Medicine)"
    NP = "NP", "NP (Nurse practitioner)"
    PA = "PA", "PA (Physician assistant)"
    CNM = "CNM", "CNM (Certified nurse-midwife)"
    DPM = "DPM", "DPM (Doctor of Podiatric Medicine)"
    OD = "OD", "OD (Doctor of Optometry)"


class Practitioner(BaseModel):
    """A clinician who sees patients at one or more locations, identified by an NPI."""

    given_name = models.CharField(max_length=80)
    family_name = models.CharField(max_length=80)
    credentials = models.CharField(
        max_length=10, choices=Credential.choices, help_text="Suffix shown after the name."
    )
    npi = models.CharField(
        "NPI",
        max_length=10,
        validators=[validate_npi],
        help_text="National Provider Identifier: 10 digits with a check digit.",
    )
    specialty = models.CharField(max_length=80)
    locations = models.ManyToManyField(Location, blank=True, related_name="practitioners")
    is_active = models.BooleanField(default=True)
    accepts_new_patients = models.BooleanField(default=True)
    allows_overbooking = models.BooleanField(
        default=False,
        help_text="Users with the overbook capability may double-book this practitioner.",
    )

    class Meta:
        ordering = ["family_name", "given_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["npi"], name="scheduling_practitioner_unique_npi"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}, {self.credentials}"


class OpeningHours(BaseModel):
    """When a location is open on a weekday (location local time); several rows a day allowed."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=WEEKDAYS)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ["location_id", "weekday", "opens"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes__gt=F("opens")),
                name="scheduling_openinghours_closes_after_opens",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.location} {self.get_weekday_display()} {self.opens}-{self.closes}"


class ResourceCategory(models.TextChoices):
    ROOM = "room", "Room"
    EQUIPMENT = "equipment", "Equipment"


class Resource(BaseModel):
    """A room or a piece of equipment that appointments may need. Capacity 1 is exclusive."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="resources")
    name = models.CharField(max_length=80)
    category = models.CharField(max_length=10, choices=ResourceCategory.choices)
    kind = models.SlugField(
        max_length=40, help_text="What it is, e.g. exam-room, procedure-room, ultrasound, ecg."
    )
    capacity = models.PositiveSmallIntegerField(default=1)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["location_id", "category", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["location", "name"], name="scheduling_resource_unique_name_per_location"
            ),
            models.CheckConstraint(
                condition=Q(capacity__gte=1), name="scheduling_resource_capacity_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AppointmentType(BaseModel):
    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=80)
    duration_minutes = models.PositiveSmallIntegerField(default=20)
    buffer_minutes = models.PositiveSmallIntegerField(
        default=0, help_text="Time kept free after the appointment (cleaning, notes)."
    )
    color = models.CharField(max_length=7, default="#0d6efd", help_text="#RRGGBB")
    is_new_patient = models.BooleanField("new-patient visit", default=False)
    is_telehealth = models.BooleanField(default=False)
    required_resource_kinds = models.JSONField(
        default=list, blank=True, help_text="Resource kinds each booking needs, e.g. ['exam-room']."
    )
    allowed_practitioners = models.ManyToManyField(
        Practitioner,
        blank=True,
        related_name="appointment_types",
        help_text="Empty means every practitioner may take this type.",
    )
    reminder_offsets_hours = models.JSONField(
        default=list, blank=True, help_text="Send reminders this many hours before, e.g. [72, 24]."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=5), name="scheduling_appointmenttype_min_duration"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AvailabilityRule(BaseModel):
    """When a practitioner works at a location: a recurring block (RFC 5545 RRULE, e.g.
    FREQ=WEEKLY;BYDAY=MO,WE,FR) starting at `dtstart` local time, lasting until `end_time`.
    Per-occurrence changes live in AvailabilityOccurrence, so one never changes the others."""

    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="availability_rules"
    )
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    start_date = models.DateField()
    until_date = models.DateField(null=True, blank=True)
    start_time = models.TimeField()
    end_time = models.TimeField()
    rrule = models.CharField(
        max_length=200,
        default="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        help_text="RFC 5545 recurrence rule (without DTSTART).",
    )
    appointment_types = models.ManyToManyField(
        AppointmentType,
        blank=True,
        related_name="+",
        help_text="Empty means any type the practitioner may take.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["practitioner_id", "location_id", "start_date", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=F("start_time")),
                name="scheduling_availabilityrule_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.practitioner} @ {self.location}: {self.rrule}"


class AvailabilityOccurrence(BaseModel):
    """One occurrence of an AvailabilityRule changed or cancelled (RECURRENCE-ID semantics)."""

    rule = models.ForeignKey(AvailabilityRule, on_delete=models.CASCADE, related_name="overrides")
    original_date = models.DateField()
    is_cancelled = models.BooleanField(default=False)
    start_time = models.TimeField(null=True, blank=True)
    end_time = models.TimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["rule_id", "original_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "original_date"], name="scheduling_occurrence_unique_date"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.original_date}"


class ExceptionKind(models.TextChoices):
    HOLIDAY = "holiday", "Holiday (location closed)"
    LEAVE = "leave", "Leave"
    BLOCKED = "blocked", "Blocked time"


class AvailabilityException(BaseModel):
    """Time nobody can be booked: a holiday for a whole location (practitioner empty), or a
    practitioner's leave or blocked time."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")
    practitioner = models.ForeignKey(
        Practitioner, null=True, blank=True, on_delete=models.CASCADE, related_name="exceptions"
    )
    kind = models.CharField(max_length=10, choices=ExceptionKind.choices)
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=F("start")), name="scheduling_exception_end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.reason}"


class AppointmentStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    BOOKED = "booked", "Booked"
    CONFIRMED = "confirmed", "Confirmed"
    ARRIVED = "arrived", "Arrived"
    IN_ROOM = "in_room", "In room"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No-show"


S = AppointmentStatus
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PROPOSED: frozenset({S.BOOKED, S.CANCELLED}),
    S.BOOKED: frozenset({S.CONFIRMED, S.ARRIVED, S.CANCELLED, S.NO_SHOW}),
    S.CONFIRMED: frozenset({S.ARRIVED, S.CANCELLED, S.NO_SHOW}),
    S.ARRIVED: frozenset({S.IN_ROOM, S.COMPLETED, S.CANCELLED}),
    S.IN_ROOM: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
    S.NO_SHOW: frozenset(),
}
# Statuses that hold time on calendars (everything but cancelled and no-show).
BLOCKING_STATUSES = frozenset(set(S.values) - {S.CANCELLED, S.NO_SHOW})


class CancelledBy(models.TextChoices):
    PATIENT = "patient", "Patient"
    CLINIC = "clinic", "Clinic"


class AppointmentSeries(BaseModel):
    """A recurring appointment: its occurrences are real Appointment rows (one edit = one row)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="+"
    )
    rrule = models.CharField(max_length=200)
    first_start = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"series {self.public_id}"


class Appointment(BaseModel):
    # patient, location (and the link tables' keys below): no single-column index; the
    # composite indexes and unique constraints lead with them, and each booking would write
    # a second entry for nothing.
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="appointments", db_index=False
    )
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="appointments"
    )
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, related_name="appointments", db_index=False
    )
    practitioners = models.ManyToManyField(
        Practitioner, through="AppointmentPractitioner", related_name="appointments"
    )
    resources = models.ManyToManyField(
        Resource, through="AppointmentResource", related_name="appointments", blank=True
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=12, choices=AppointmentStatus.choices, default=S.BOOKED)
    reason = models.CharField("reason for visit", max_length=200, blank=True)
    series = models.ForeignKey(
        AppointmentSeries,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="appointments",
    )
    is_overbooked = models.BooleanField(default=False)
    overbook_reason = models.CharField(max_length=200, blank=True)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_by = models.CharField(max_length=10, choices=CancelledBy.choices, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    roomed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    no_show_at = models.DateTimeField(null=True, blank=True)
    room = models.ForeignKey(
        Resource,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Room the patient was taken to at rooming.",
    )
    insurance_verified = models.BooleanField(default=False)
    copay_collected = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    rescheduled_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["start", "id"]
        indexes = [
            models.Index(fields=["location", "start"], name="scheduling_appt_loc_start_idx"),
            models.Index(fields=["patient", "start"], name="scheduling_appt_patient_idx"),
            models.Index(fields=["status", "start"], name="scheduling_appt_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=F("start")), name="scheduling_appointment_end_after_start"
            ),
            models.CheckConstraint(
                condition=~Q(status=S.CANCELLED) | ~Q(cancel_reason=""),
                name="scheduling_appointment_cancel_needs_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.appointment_type} {self.start:%Y-%m-%d %H:%M}"

    @property
    def is_blocking(self) -> bool:
        return self.status in BLOCKING_STATUSES


class AppointmentPractitioner(models.Model):
    """Who an appointment books, with the booked time copied here so the database itself can
    refuse overlaps (PostgreSQL exclusion constraint over tstzrange, see migration)."""

    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    start = models.DateTimeField()
    end = models.DateTimeField(help_text="Appointment end plus the type's buffer.")
    blocks = models.BooleanField(default=True, help_text="False once cancelled or no-show.")
    is_overbooked = models.BooleanField(default=False)

    class Meta:
        ordering = ["start"]
        indexes = [
            models.Index(fields=["practitioner", "start"], name="scheduling_ap_prac_start_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["appointment", "practitioner"], name="scheduling_ap_unique_practitioner"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.practitioner_id} {self.start}"


class AppointmentResource(models.Model):
    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    resource = models.ForeignKey(
        Resource, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    blocks = models.BooleanField(default=True)
    exclusive = models.BooleanField(default=True, help_text="Resource capacity is 1.")

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["resource", "start"], name="scheduling_ar_res_start_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["appointment", "resource"], name="scheduling_ar_unique_resource"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_id} {self.start}"


class AppointmentEvent(models.Model):
    """The appointment's timeline (status changes, reschedules, messages), newest last."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=30)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.at}"


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    OFFERED = "offered", "Offered a slot"
    BOOKED = "booked", "Booked"
    REMOVED = "removed", "Removed"


class WaitlistEntry(BaseModel):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="waitlist_entries")
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="+"
    )
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    practitioner = models.ForeignKey(
        Practitioner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty means any practitioner.",
    )
    earliest = models.DateTimeField()
    latest = models.DateTimeField()
    preferred_weekdays = models.JSONField(default=list, blank=True)
    priority = models.PositiveSmallIntegerField(default=5, help_text="1 = most urgent.")
    status = models.CharField(
        max_length=10, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING
    )
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    booked_appointment = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["priority", "created_at"]
        indexes = [
            models.Index(fields=["status", "appointment_type"], name="scheduling_waitlist_idx")
        ]

    def __str__(self) -> str:
        return f"waitlist {self.public_id}"


class OfferStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    TAKEN = "taken", "Taken by someone else"
    EXPIRED = "expired", "Expired"


class WaitlistOffer(BaseModel):
    """An opened slot offered to a waitlisted patient; the first to accept gets it."""

    entry = models.ForeignKey(WaitlistEntry, on_delete=models.CASCADE, related_name="offers")
    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=OfferStatus.choices, default=OfferStatus.OPEN)
    expires_at = models.DateTimeField()
    source_appointment = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"offer {self.public_id}"


class SetupVersion(BaseModel):
    """One row whose `token` changes whenever availability is set up differently: database
    triggers (migration 0004) give it a new random value on any write to availability rules,
    their types, changed occurrences, exceptions, opening hours or locations, whatever writes
    them (services, the admin, bulk updates, SQL). Each process caches that reference data
    (scheduling.setup_cache) and reads it again when the token it saw has changed."""

    token = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"setup version {self.token}"
