"""The demo clinic's schedule: opening hours, rooms and equipment, appointment types, weekly
availability, a holiday and a leave, a month of appointments and a waitlist.

`manage.py seed_demo` calls `seed_schedule()` after the patients (core/demo.py). Every part is
idempotent: opening hours are added to a location that has none, resources and types are looked
up by their natural keys (location + name, code), rules are added for practitioners without any,
the holiday and the leave only when missing, the month of appointments only when the demo
locations have no appointment yet, and the waitlist only when it is empty. A second run adds
nothing.

Two ways to fill the calendar:

* The demo month (the default): two weeks back and two weeks ahead at about 70% of each
  practitioner's bookable time. Appointments that start from now on are booked one by one
  through `scheduling.services.appointment_book` (availability, overlap and resource checks, the
  audit row, the timeline, and the reminders and HL7 messages the other apps plan on commit),
  then some are confirmed, some patients arriving within the next quarter of an hour are checked
  in, a few are cancelled with a reason (which offers the freed time to the waitlist), and
  fifteen patients are put on the waitlist, all through the services. Appointments that have
  already started cannot be booked through the services (they refuse the past), so they are
  written with bulk inserts in batches, each batch with one `appointment.bulk_seed` audit event
  naming the fields written (as the patient bulk path does): past days end completed, with
  about 7% no-shows and 10% cancellations with reasons; today's are arrived, in a room or
  completed according to the time, so the check-in board has something to show.
* `--appointments N` (benchmarks): the bulk path only. The practitioners are topped up to 50
  (synthetic ones with weekday availability at the demo locations), and the appointment count is
  topped up to N: about 70% of the next 100 days, then as many days back as N needs. Slots are
  laid end to end per practitioner (buffer included) after the time that existing appointment
  rows already hold, so no two blocking practitioner rows overlap and the PostgreSQL exclusion
  constraints accept every row; exclusive resources are tracked the same way.

Everything runs as the loader account of core/demo.py (a medical office administrator at both
locations), so the records are attributed to the loading process in the audit trail.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.models import User
from audit.models import Action
from audit.services import record
from core.demo import _FAMILY, _FEMALE, _MALE, _pick
from core.models import Location
from patients.models import Patient
from scheduling.availability import Availability, Interval, merge, subtract, to_utc, zone
from scheduling.availability_services import availability_exception_add, availability_rule_save
from scheduling.conflicts import BookingConflict
from scheduling.models import (
    BLOCKING_STATUSES,
    Appointment,
    AppointmentEvent,
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentStatus,
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    CancelledBy,
    ExceptionKind,
    OpeningHours,
    Practitioner,
    Resource,
    ResourceCategory,
    WaitlistEntry,
)
from scheduling.services import (
    appointment_book,
    appointment_cancel,
    appointment_check_in,
    appointment_confirm,
    waitlist_add,
)
from scheduling.slots import slot_step_minutes
from scheduling.validators import make_npi

S = AppointmentStatus
AUDIT_CATEGORY = "scheduling"
MONTH_BACK_DAYS = 14
MONTH_AHEAD_DAYS = 14
FILL = 0.7  # share of bookable time the generator books
BENCH_PRACTITIONERS = 50
BENCH_FUTURE_DAYS = 100
BENCH_CHUNK_DAYS = 30
BULK_BATCH_SIZE = 5000
SERVICE_CHUNK = 50  # bookings per transaction on the service path
START_MARGIN = dt.timedelta(minutes=5)  # closer to now than this counts as started
WAITLIST_SIZE = 15
MONTH_VISITS_PER_PATIENT = 2  # at most this many appointments per patient in the demo month
RULES_SINCE_YEARS = 2

# --- the clinic's set-up ---------------------------------------------------------------------

WEEKDAYS = "MO,TU,WE,TH,FR"
# location code -> (weekday 0=Monday, opens, closes)
DEMO_OPENING_HOURS: dict[str, tuple[tuple[int, str, str], ...]] = {
    "main": (*((day, "08:00", "17:00") for day in range(5)), (5, "09:00", "12:00")),
    "riverside": tuple((day, "08:00", "17:00") for day in range(5)),
}

# location code -> (name, category, kind)
DEMO_RESOURCES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "main": (
        *((f"Exam room {n}", ResourceCategory.ROOM, "exam-room") for n in range(1, 6)),
        ("Procedure room", ResourceCategory.ROOM, "procedure-room"),
        ("ECG machine", ResourceCategory.EQUIPMENT, "ecg"),
    ),
    "riverside": (
        *((f"Exam room {n}", ResourceCategory.ROOM, "exam-room") for n in range(1, 5)),
        ("Procedure room", ResourceCategory.ROOM, "procedure-room"),
        ("ECG machine", ResourceCategory.EQUIPMENT, "ecg"),
    ),
}

PRIMARY_CARE = ("150000001", "150000002", "150000003", "150000004", "150000005", "150000010")
PROCEDURALISTS = ("150000006", "150000008", "150000009", "150000011")


@dataclass(frozen=True)
class DemoType:
    code: str
    name: str
    minutes: int
    buffer: int
    color: str
    weight: int  # how often the generator books it
    is_new_patient: bool = False
    is_telehealth: bool = False
    resource_kinds: tuple[str, ...] = ()
    practitioners: tuple[str, ...] = ()  # NPI bodies; empty: every practitioner


DEMO_TYPES: tuple[DemoType, ...] = (
    DemoType("new-patient", "New patient visit", 40, 5, "#6f42c1", 15, is_new_patient=True),
    DemoType("follow-up", "Follow-up visit", 20, 0, "#0d6efd", 45),
    DemoType(
        "annual-physical", "Annual physical", 30, 5, "#198754", 15, practitioners=PRIMARY_CARE
    ),
    DemoType(
        "procedure",
        "Procedure",
        60,
        15,
        "#b02a37",
        12,
        resource_kinds=("procedure-room",),
        practitioners=PROCEDURALISTS,
    ),
    DemoType("telehealth", "Telehealth visit", 15, 0, "#087990", 13, is_telehealth=True),
)
REMINDER_OFFSETS = [72, 24]


@dataclass(frozen=True)
class DemoRule:
    npi: str  # NPI body
    location: str
    rrule: str
    start: str
    end: str
    types: tuple[str, ...] = ()  # type codes; empty: any type the practitioner takes


def _week(days: str, interval: int = 1) -> str:
    every = f";INTERVAL={interval}" if interval > 1 else ""
    return f"FREQ=WEEKLY{every};BYDAY={days}"


def _full_days(npi: str, location: str, days: str, end: str = "17:00") -> tuple[DemoRule, ...]:
    """Mornings 08:00-12:00 and afternoons 13:00-`end` (lunch kept free)."""
    return (
        DemoRule(npi, location, _week(days), "08:00", "12:00"),
        DemoRule(npi, location, _week(days), "13:00", end),
    )


DEMO_AVAILABILITY: tuple[DemoRule, ...] = (
    # Main Street Clinic: primary care and paediatrics
    *_full_days("150000001", "main", WEEKDAYS),  # Marquez
    *_full_days("150000002", "main", "MO,TU,WE,TH"),  # Whitaker: Fridays off
    *_full_days("150000003", "main", "MO,WE,FR"),  # Raman
    DemoRule("150000003", "main", _week("TU,TH"), "08:00", "12:00"),
    DemoRule("150000003", "main", _week("SA", 2), "09:00", "12:00"),  # every other Saturday
    DemoRule("150000004", "main", _week(WEEKDAYS), "09:00", "13:00"),  # Osei
    DemoRule("150000004", "main", _week(WEEKDAYS), "14:00", "17:00"),
    DemoRule("150000004", "main", _week("SA"), "09:00", "12:00"),
    *_full_days("150000005", "main", "MO,TU,WE,TH", end="16:00"),  # Fournier
    DemoRule("150000005", "main", _week("FR"), "08:00", "12:00"),
    # Riverside: specialists
    *_full_days("150000006", "riverside", "TU,TH"),  # Brennan
    DemoRule("150000006", "riverside", _week("MO,WE,FR"), "08:00", "12:00"),
    *_full_days("150000007", "riverside", "MO,TU,WE,TH"),  # Wei
    *_full_days("150000008", "riverside", "MO,TU,TH,FR"),  # Goldberg
    *_full_days("150000009", "riverside", WEEKDAYS),  # Johnson
    # Shared between the two sites
    *_full_days("150000010", "main", "MO,WE"),  # Núñez-Rivera
    *_full_days("150000010", "riverside", "TU,TH"),
    *_full_days("150000011", "main", "TU,TH"),  # Kowalski
    *_full_days("150000011", "riverside", "MO,WE"),
    DemoRule("150000011", "main", _week("FR"), "08:00", "12:00"),
    DemoRule("150000012", "main", _week("MO,WE"), "09:00", "12:00"),  # Haddad
    DemoRule("150000012", "main", _week("MO,WE"), "13:00", "17:00"),
    DemoRule("150000012", "riverside", _week("TU,TH"), "13:00", "17:00"),
    DemoRule("150000012", "main", _week("FR"), "09:00", "12:00", types=("telehealth",)),
)

HOLIDAY_REASON = "Clinic closed for staff training"
LEAVE_NPI = "150000002"  # Whitaker
LEAVE_REASON = "Annual leave"

REASONS: dict[str, tuple[str, ...]] = {
    "new-patient": (
        "Establish care",
        "New patient intake",
        "Transfer of care from another practice",
        "Second opinion",
    ),
    "follow-up": (
        "Blood pressure check",
        "Medication review",
        "Lab results review",
        "Diabetes follow-up",
        "Recheck after antibiotics",
        "Thyroid follow-up",
        "Post-visit check",
        "Prenatal visit",
    ),
    "annual-physical": ("Annual physical", "Well-child visit", "Medicare wellness visit"),
    "procedure": (
        "Skin biopsy",
        "Mole removal",
        "Joint injection",
        "IUD insertion",
        "Cardiac stress test",
        "Wart treatment",
    ),
    "telehealth": (
        "Medication refill",
        "Results discussion",
        "Therapy session",
        "Follow-up by video",
    ),
}
PATIENT_CANCEL_REASONS = (
    "Patient feeling better",
    "Work conflict",
    "Transportation problem",
    "Family emergency",
    "Patient asked to reschedule",
)
CLINIC_CANCEL_REASONS = (
    "Practitioner called to the hospital",
    "Scheduling error",
    "Equipment unavailable",
)
WAITLIST_NOTES = (
    "Prefers mornings",
    "Can come at short notice",
    "Afternoons only (school pick-up)",
    "Wants the earliest opening",
    "",
)


# --- the report ------------------------------------------------------------------------------


@dataclass
class ScheduleReport:
    opening_hours_created: int = 0
    resources_created: int = 0
    types_created: int = 0
    practitioners_created: int = 0
    rules_created: int = 0
    exceptions_created: int = 0
    booked_through_services: int = 0
    written_in_bulk: int = 0
    cancelled: int = 0
    confirmed: int = 0
    checked_in: int = 0
    waitlist_created: int = 0
    appointments_total: int = 0

    @property
    def appointments_created(self) -> int:
        return self.booked_through_services + self.written_in_bulk


# --- entry point -----------------------------------------------------------------------------


def seed_schedule(
    *,
    actor: User,
    locations: dict[str, Location],
    appointments: int | None = None,
    practitioners: int = BENCH_PRACTITIONERS,
    seed: int = 1,
    progress: bool = False,
    now: dt.datetime | None = None,
    days_back: int = MONTH_BACK_DAYS,
    days_ahead: int = MONTH_AHEAD_DAYS,
) -> ScheduleReport:
    """Create what is missing of the demo schedule. `appointments` None: the demo month
    (`days_back` and `days_ahead` of today; services for what is ahead, bulk for what has
    started); a number: top the appointment count up to it with the bulk path, over at least
    `practitioners` practitioners."""
    now = now or timezone.now()
    # Not for security: reproducible demo data.
    rng = random.Random(f"schedule:{seed}")  # noqa: S311
    report = ScheduleReport()
    today = now.astimezone(zone(locations["main"].time_zone)).date()
    with transaction.atomic():
        report.opening_hours_created = seed_opening_hours(locations)
        report.resources_created = seed_resources(locations)
        types, report.types_created = seed_appointment_types()
        report.rules_created = seed_availability(actor=actor, locations=locations, today=today)
        if appointments is not None:
            report.practitioners_created, created = seed_bench_practitioners(
                actor=actor, locations=locations, count=practitioners, today=today, seed=seed
            )
            report.rules_created += created
        report.exceptions_created = seed_exceptions(actor=actor, locations=locations, today=today)
    if appointments is None:
        seed_month(
            actor=actor,
            locations=locations,
            types=types,
            rng=rng,
            now=now,
            today=today,
            report=report,
            progress=progress,
            days=(days_back, days_ahead),
        )
    else:
        report.written_in_bulk = seed_appointments_bulk(
            actor=actor,
            locations=locations,
            types=types,
            total=appointments,
            rng=rng,
            now=now,
            today=today,
            progress=progress,
        )
    report.appointments_total = Appointment.objects.count()
    return report


def schedule_exists() -> bool:
    """Whether the demo schedule has been loaded (its appointment types exist)."""
    return AppointmentType.objects.filter(code__in=[t.code for t in DEMO_TYPES]).exists()


# --- set-up ----------------------------------------------------------------------------------


def _time(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


def seed_opening_hours(locations: dict[str, Location]) -> int:
    created = 0
    for code, rows in DEMO_OPENING_HOURS.items():
        location = locations[code]
        if OpeningHours.objects.filter(location=location).exists():
            continue
        OpeningHours.objects.bulk_create(
            OpeningHours(location=location, weekday=day, opens=_time(opens), closes=_time(closes))
            for day, opens, closes in rows
        )
        created += len(rows)
    return created


def seed_resources(locations: dict[str, Location]) -> int:
    created = 0
    for code, rows in DEMO_RESOURCES.items():
        for name, category, kind in rows:
            _, was_created = Resource.objects.get_or_create(
                location=locations[code],
                name=name,
                defaults={"category": category, "kind": kind, "capacity": 1},
            )
            created += was_created
    return created


def seed_appointment_types() -> tuple[dict[str, AppointmentType], int]:
    by_npi = {p.npi: p for p in Practitioner.objects.all()}
    types: dict[str, AppointmentType] = {}
    created = 0
    for spec in DEMO_TYPES:
        row, was_created = AppointmentType.objects.get_or_create(
            code=spec.code,
            defaults={
                "name": spec.name,
                "duration_minutes": spec.minutes,
                "buffer_minutes": spec.buffer,
                "color": spec.color,
                "is_new_patient": spec.is_new_patient,
                "is_telehealth": spec.is_telehealth,
                "required_resource_kinds": list(spec.resource_kinds),
                "reminder_offsets_hours": list(REMINDER_OFFSETS),
            },
        )
        if was_created:
            created += 1
            allowed = [by_npi[make_npi(body)] for body in spec.practitioners]
            row.allowed_practitioners.set(allowed)
        types[spec.code] = row
    return types, created


def _rules_since(today: dt.date) -> dt.date:
    return dt.date(today.year - RULES_SINCE_YEARS, 1, 1)


def seed_availability(*, actor: User, locations: dict[str, Location], today: dt.date) -> int:
    """The weekly templates of the twelve demo practitioners (for those who have none yet)."""
    by_npi = {p.npi: p for p in Practitioner.objects.all()}
    with_rules = set(AvailabilityRule.objects.values_list("practitioner_id", flat=True).distinct())
    types = {t.code: t for t in AppointmentType.objects.all()}
    created = 0
    for rule in DEMO_AVAILABILITY:
        practitioner = by_npi.get(make_npi(rule.npi))
        if practitioner is None or practitioner.pk in with_rules:
            continue
        availability_rule_save(
            actor=actor,
            practitioner=practitioner,
            location=locations[rule.location],
            values={
                "start_date": _rules_since(today),
                "until_date": None,
                "start_time": _time(rule.start),
                "end_time": _time(rule.end),
                "rrule": rule.rrule,
                "is_active": True,
            },
            appointment_types=[types[code] for code in rule.types],
        )
        created += 1
    return created


def seed_bench_practitioners(
    *, actor: User, locations: dict[str, Location], count: int, today: dt.date, seed: int
) -> tuple[int, int]:
    """Synthetic practitioners (weekdays 08:00-12:00 and 13:00-17:00, alternating between the
    demo locations) until `count` are active. Returns (practitioners, rules) created."""
    active = Practitioner.objects.filter(is_active=True).count()
    # Not for security: reproducible demo data.
    rng = random.Random(f"bench-practitioners:{seed}")  # noqa: S311
    codes = sorted(locations)
    made = rules = 0
    number = 0
    while active + made < count:
        number += 1
        npi = make_npi(f"{160_000_000 + number:09d}")
        if Practitioner.objects.filter(npi=npi).exists():
            continue
        female = rng.random() < 0.5
        practitioner = Practitioner(
            given_name=_pick(rng, _FEMALE if female else _MALE),
            family_name=_pick(rng, _FAMILY),
            credentials=rng.choice(("MD", "MD", "DO", "NP", "PA")),
            specialty=rng.choice(("Family Medicine", "Internal Medicine")),
            npi=npi,
        )
        practitioner.full_clean()
        practitioner.save()
        location = locations[codes[number % len(codes)]]
        practitioner.locations.set([location])
        for start, end in (("08:00", "12:00"), ("13:00", "17:00")):
            availability_rule_save(
                actor=actor,
                practitioner=practitioner,
                location=location,
                values={
                    "start_date": _rules_since(today),
                    "until_date": None,
                    "start_time": _time(start),
                    "end_time": _time(end),
                    "rrule": _week(WEEKDAYS),
                    "is_active": True,
                },
            )
            rules += 1
        made += 1
    return made, rules


def _first_weekday_on_or_after(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def seed_exceptions(*, actor: User, locations: dict[str, Location], today: dt.date) -> int:
    """A staff-training day closing both sites in a week and a half, and a practitioner's leave
    for three days next week."""
    created = 0
    holiday = _first_weekday_on_or_after(today + dt.timedelta(days=9))
    for location in locations.values():
        if AvailabilityException.objects.filter(location=location, reason=HOLIDAY_REASON).exists():
            continue
        tz = zone(location.time_zone)
        availability_exception_add(
            actor=actor,
            location=location,
            kind=ExceptionKind.HOLIDAY,
            start=to_utc(holiday, dt.time.min, tz),
            end=to_utc(holiday + dt.timedelta(days=1), dt.time.min, tz),
            reason=HOLIDAY_REASON,
        )
        created += 1
    practitioner = Practitioner.objects.filter(npi=make_npi(LEAVE_NPI)).first()
    if (
        practitioner is not None
        and not AvailabilityException.objects.filter(
            practitioner=practitioner, reason=LEAVE_REASON
        ).exists()
    ):
        location = locations["main"]
        tz = zone(location.time_zone)
        monday = today + dt.timedelta(days=7 - today.weekday())
        first = monday + dt.timedelta(days=1)
        availability_exception_add(
            actor=actor,
            location=location,
            practitioner=practitioner,
            kind=ExceptionKind.LEAVE,
            start=to_utc(first, dt.time.min, tz),
            end=to_utc(first + dt.timedelta(days=3), dt.time.min, tz),
            reason=LEAVE_REASON,
        )
        created += 1
    return created


# --- planning appointments -------------------------------------------------------------------


@dataclass
class Planned:
    """One appointment the generator intends to create."""

    practitioner_id: int
    location_id: int
    type_code: str
    start: dt.datetime
    end: dt.datetime
    held: dt.datetime  # end + buffer
    resource_id: int | None
    patient_id: int
    reason: str = ""


def _align(moment: dt.datetime, step_minutes: int, tz: dt.tzinfo) -> dt.datetime:
    """The first local wall-clock multiple of `step_minutes` at or after `moment` (the slot
    finder's grid)."""
    seconds = int(moment.timestamp())
    offset = int(moment.astimezone(tz).utcoffset().total_seconds())  # type: ignore[union-attr]
    step = step_minutes * 60
    return dt.datetime.fromtimestamp(seconds + (-(seconds + offset)) % step, tz=dt.UTC)


def _covers(intervals: Sequence[Interval], start: dt.datetime, end: dt.datetime) -> bool:
    at = bisect.bisect_right(intervals, (start, dt.datetime.max.replace(tzinfo=dt.UTC))) - 1
    return at >= 0 and intervals[at][0] <= start and end <= intervals[at][1]


def _clashes(intervals: Sequence[Interval], start: dt.datetime, end: dt.datetime) -> bool:
    """Whether [start, end) overlaps one of the sorted, merged `intervals`."""
    at = bisect.bisect_right(intervals, (start, dt.datetime.max.replace(tzinfo=dt.UTC)))
    return any(s < end and start < e for s, e in intervals[max(0, at - 1) : at + 1])


Busy = dict[tuple[int, dt.date], list[tuple[dt.datetime, dt.datetime]]]


def _overlaps(busy: Busy, key: int, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether [start, end) overlaps a row of `key` (rows are kept by their start's UTC date;
    nothing lasts longer than a day)."""
    day = start.date()
    return any(
        s < end and start < e
        for when in (day - dt.timedelta(days=1), day)
        for s, e in busy.get((key, when), ())
    )


def _hold(busy: Busy, key: int, start: dt.datetime, end: dt.datetime) -> None:
    busy.setdefault((key, start.date()), []).append((start, end))


class _Planner:
    """Lays appointments end to end over each practitioner's free time, booking about FILL of
    it, around the time existing appointment rows already hold."""

    def __init__(
        self,
        *,
        practitioners: Sequence[Practitioner],
        types: dict[str, AppointmentType],
        rng: random.Random,
        patients_by_location: dict[int, list[int]],
        per_patient: int | None = None,
    ) -> None:
        self.practitioners = list(practitioners)
        self.types = types
        self.rng = rng
        # Patients who may still be booked (each at most `per_patient` times; None: no limit).
        self.patients_by_location = {loc: list(ids) for loc, ids in patients_by_location.items()}
        self.all_patients = sorted({p for ids in patients_by_location.values() for p in ids})
        self.per_patient = per_patient
        self.visits: dict[int, int] = defaultdict(int)
        allowed: dict[str, set[int]] = {
            code: set(t.allowed_practitioners.values_list("id", flat=True))
            for code, t in types.items()
        }
        weights = {spec.code: spec.weight for spec in DEMO_TYPES}
        self.choices: dict[int, tuple[list[str], list[int]]] = {}
        for practitioner in self.practitioners:
            codes = [
                code for code in types if not allowed[code] or practitioner.pk in allowed[code]
            ]
            self.choices[practitioner.pk] = (codes, [weights.get(code, 10) for code in codes])
        self.resources: dict[tuple[int, str], list[Resource]] = defaultdict(list)
        for resource in Resource.objects.filter(is_active=True).order_by("name", "id"):
            self.resources[(resource.location_id, resource.kind)].append(resource)
        self.resource_busy: Busy = {}
        self.patient_busy: Busy = {}

    def plan(self, start: dt.datetime, end: dt.datetime) -> list[Planned]:
        ids = [p.pk for p in self.practitioners]
        any_type = Availability(practitioner_ids=ids, start=start, end=end)
        by_type = {
            code: Availability(practitioner_ids=ids, start=start, end=end, appointment_type=t)
            for code, t in self.types.items()
        }
        held = self._held(ids, start, end)
        for rid, rows in self._resource_rows(start, end).items():
            for row_start, row_end in rows:
                _hold(self.resource_busy, rid, row_start, row_end)
        for patient_id, row_start, row_end in Appointment.objects.filter(
            status__in=BLOCKING_STATUSES, start__lt=end, end__gt=start
        ).values_list("patient_id", "start", "end"):
            _hold(self.patient_busy, patient_id, row_start, row_end)
        planned: list[Planned] = []
        for practitioner in self.practitioners:
            pid = practitioner.pk
            busy = merge(held.get(pid, []))
            blocks: list[tuple[dt.datetime, dt.datetime, int]] = []
            free_by_type: dict[tuple[str, int], list[Interval]] = {}
            for loc in any_type.locations_of(pid):
                for lo, hi in subtract(any_type.free(pid, loc, start, end), busy):
                    blocks.append((lo, hi, loc))
                for code, availability in by_type.items():
                    free_by_type[(code, loc)] = subtract(
                        availability.free(pid, loc, start, end), busy
                    )
            blocks.sort()
            planned += self._fill(pid, blocks, free_by_type, any_type, busy)
        return planned

    @staticmethod
    def _held(
        ids: list[int], start: dt.datetime, end: dt.datetime
    ) -> dict[int, list[tuple[dt.datetime, dt.datetime]]]:
        rows: dict[int, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
        for pid, row_start, row_end in AppointmentPractitioner.objects.filter(
            practitioner_id__in=ids,
            blocks=True,
            start__lt=end,
            end__gt=start - dt.timedelta(hours=12),
        ).values_list("practitioner_id", "start", "end"):
            rows[pid].append((row_start, row_end))
        return rows

    @staticmethod
    def _resource_rows(
        start: dt.datetime, end: dt.datetime
    ) -> dict[int, list[tuple[dt.datetime, dt.datetime]]]:
        rows: dict[int, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
        for rid, row_start, row_end in AppointmentResource.objects.filter(
            blocks=True, start__lt=end, end__gt=start - dt.timedelta(hours=12)
        ).values_list("resource_id", "start", "end"):
            rows[rid].append((row_start, row_end))
        return rows

    def _fill(
        self,
        pid: int,
        blocks: list[tuple[dt.datetime, dt.datetime, int]],
        free_by_type: dict[tuple[str, int], list[Interval]],
        availability: Availability,
        busy: list[Interval],
    ) -> list[Planned]:
        codes, weights = self.choices[pid]
        if not codes:
            return []
        planned: list[Planned] = []
        last_held: dt.datetime | None = None
        for lo, hi, loc in blocks:
            tz = availability.tz(loc)
            cursor = max(lo, last_held) if last_held else lo
            while cursor < hi:
                code = self.rng.choices(codes, weights)[0]
                appointment_type = self.types[code]
                s = _align(cursor, slot_step_minutes(appointment_type), tz)
                e = s + dt.timedelta(minutes=appointment_type.duration_minutes)
                held = e + dt.timedelta(minutes=appointment_type.buffer_minutes)
                if (
                    e > hi
                    or not _covers(free_by_type[(code, loc)], s, e)
                    or _clashes(busy, s, held)  # the buffer reaching into an existing row
                ):
                    cursor = s + dt.timedelta(minutes=5)
                    continue
                if self.rng.random() < FILL:
                    resource_id = self._resource(appointment_type, loc, s, held)
                    if resource_id == -1:
                        cursor = s + dt.timedelta(minutes=5)
                        continue
                    patient_id = self._patient(loc, s, e)
                    if patient_id is None:  # nobody free then, or everyone had their visits
                        self._release(resource_id, s, held)
                        cursor = held
                        continue
                    item = Planned(pid, loc, code, s, e, held, resource_id, patient_id)
                    item.reason = self.rng.choice(REASONS.get(code, ("",)))
                    planned.append(item)
                    last_held = held
                cursor = held
        return planned

    def _resource(
        self, appointment_type: AppointmentType, loc: int, start: dt.datetime, held: dt.datetime
    ) -> int | None:
        """The free resource the type needs (None: it needs none; -1: none is free)."""
        kinds = list(appointment_type.required_resource_kinds or [])
        if not kinds:
            return None
        for resource in self.resources.get((loc, kinds[0]), []):
            if not _overlaps(self.resource_busy, resource.pk, start, held):
                _hold(self.resource_busy, resource.pk, start, held)
                return resource.pk
        return -1

    def _release(self, resource_id: int | None, start: dt.datetime, held: dt.datetime) -> None:
        if resource_id is not None:
            self.resource_busy[(resource_id, start.date())].remove((start, held))

    def _patient(self, loc: int, start: dt.datetime, end: dt.datetime) -> int | None:
        """A patient (usually of this location) with nothing else booked at that time and
        visits left; None when nobody has visits left."""
        local = self.patients_by_location.get(loc) or self.all_patients
        if not local:
            return None
        for _ in range(8):
            pool = local if self.rng.random() < 0.85 or not self.all_patients else self.all_patients
            chosen = self.rng.choice(pool)
            if not _overlaps(self.patient_busy, chosen, start, end):
                break
        else:
            return None  # everyone drawn is busy then: leave the time free
        _hold(self.patient_busy, chosen, start, end)
        self.visits[chosen] += 1
        if self.per_patient is not None and self.visits[chosen] >= self.per_patient:
            for pool in (*self.patients_by_location.values(), self.all_patients):
                if chosen in pool:
                    pool.remove(chosen)
        return chosen


def _patients_by_location(locations: Iterable[Location]) -> dict[int, list[int]]:
    rows: dict[int, list[int]] = defaultdict(list)
    for pk, loc in (
        Patient.objects.filter(
            home_location__in=list(locations), is_active=True, merged_into__isnull=True
        )
        .order_by("pk")
        .values_list("pk", "home_location_id")
    ):
        rows[loc].append(pk)
    return rows


# --- what happened to each appointment -------------------------------------------------------


def _cancel_values(rng: random.Random, start: dt.datetime) -> dict[str, Any]:
    by_patient = rng.random() < 0.8
    reasons = PATIENT_CANCEL_REASONS if by_patient else CLINIC_CANCEL_REASONS
    return {
        "status": S.CANCELLED,
        "cancelled_by": CancelledBy.PATIENT if by_patient else CancelledBy.CLINIC,
        "cancel_reason": rng.choice(reasons),
        "cancelled_at": start - dt.timedelta(hours=rng.randint(2, 96)),
    }


def _started_values(
    rng: random.Random, item: Planned, now: dt.datetime, rooms: list[int]
) -> dict[str, Any]:
    """Status and step times of an appointment that has started (or is past): cancelled ~10%,
    no-show ~7%, else along arrived → in room → completed as far as the clock has gone."""
    roll = rng.random()
    if roll < 0.10:
        return _cancel_values(rng, item.start)
    values: dict[str, Any] = {}
    if rng.random() < 0.6:
        values["confirmed_at"] = item.start - dt.timedelta(hours=rng.randint(20, 70))
    if roll < 0.17 and now - item.start >= dt.timedelta(minutes=20):
        return values | {"status": S.NO_SHOW, "no_show_at": item.start + dt.timedelta(minutes=20)}
    arrived = item.start - dt.timedelta(minutes=rng.randint(0, 15))
    if arrived > now or (now - item.start < dt.timedelta(minutes=15) and rng.random() < 0.25):
        # Not here yet: late (the board shows how late).
        return values | {"status": S.CONFIRMED if "confirmed_at" in values else S.BOOKED}
    values |= {
        "arrived_at": arrived,
        "insurance_verified": rng.random() < 0.9,
        "copay_collected": Decimal(rng.choice(("20.00", "25.00", "40.00")))
        if rng.random() < 0.6
        else None,
    }
    roomed = item.start + dt.timedelta(minutes=rng.randint(0, 12))
    if roomed > now:
        return values | {"status": S.ARRIVED}
    values |= {"roomed_at": roomed, "room_id": rng.choice(rooms) if rooms else None}
    completed = item.held + dt.timedelta(minutes=rng.randint(0, 10))
    if completed > now:
        return values | {"status": S.IN_ROOM}
    return values | {"status": S.COMPLETED, "completed_at": completed}


def _future_values(rng: random.Random, item: Planned, now: dt.datetime) -> dict[str, Any]:
    """A bulk-written appointment still ahead: booked, some confirmed, ~5% cancelled."""
    roll = rng.random()
    if roll < 0.05:
        values = _cancel_values(rng, item.start)
        return values | {"cancelled_at": min(now, values["cancelled_at"])}
    if roll < 0.35:
        return {"status": S.CONFIRMED, "confirmed_at": now}
    return {"status": S.BOOKED}


# --- bulk writes -----------------------------------------------------------------------------


def _progress(total: int, enabled: bool, desc: str) -> tqdm[Any]:
    return tqdm(
        total=total,
        unit="appointment",
        desc=desc,
        file=sys.stderr,
        disable=not enabled,
        mininterval=0.5,
        dynamic_ncols=True,
    )


def write_bulk(
    *,
    actor: User,
    items: Sequence[Planned],
    types: dict[str, AppointmentType],
    rng: random.Random,
    now: dt.datetime,
    batch_size: int = BULK_BATCH_SIZE,
    progress: bool = False,
) -> int:
    """Write appointments with their practitioner, resource and timeline rows in batches: one
    transaction and one `appointment.bulk_seed` audit event per batch. The caller guarantees
    that the blocking practitioner rows do not overlap (the exclusion constraint checks)."""
    rooms: dict[int, list[int]] = defaultdict(list)
    for pk, loc in Resource.objects.filter(
        category=ResourceCategory.ROOM, kind="exam-room", is_active=True
    ).values_list("pk", "location_id"):
        rooms[loc].append(pk)
    written = 0
    with _progress(len(items), progress, "Seeding appointments") as bar:
        for first in range(0, len(items), batch_size):
            batch = items[first : first + batch_size]
            written += _write_batch(
                actor=actor, batch=batch, types=types, rng=rng, now=now, rooms=rooms
            )
            bar.update(len(batch))
    return written


@transaction.atomic
def _write_batch(
    *,
    actor: User,
    batch: Sequence[Planned],
    types: dict[str, AppointmentType],
    rng: random.Random,
    now: dt.datetime,
    rooms: dict[int, list[int]],
) -> int:
    rows: list[Appointment] = []
    for item in batch:
        started = item.start < now + START_MARGIN
        values = (
            _started_values(rng, item, now, rooms.get(item.location_id, []))
            if started
            else _future_values(rng, item, now)
        )
        rows.append(
            Appointment(
                patient_id=item.patient_id,
                appointment_type=types[item.type_code],
                location_id=item.location_id,
                start=item.start,
                end=item.end,
                reason=item.reason,
                booked_by=actor,
                **values,
            )
        )
    Appointment.objects.bulk_create(rows, batch_size=1000)
    if any(row.pk is None for row in rows):  # databases that cannot return ids from a bulk insert
        ids = dict(
            Appointment.objects.filter(public_id__in=[r.public_id for r in rows]).values_list(
                "public_id", "id"
            )
        )
        for row in rows:
            row.pk = ids[row.public_id]
    practitioner_rows, resource_rows, events = [], [], []
    counts: dict[str, int] = defaultdict(int)
    for item, row in zip(batch, rows, strict=True):
        blocks = row.status in BLOCKING_STATUSES
        counts[row.status] += 1
        practitioner_rows.append(
            AppointmentPractitioner(
                appointment_id=row.pk,
                practitioner_id=item.practitioner_id,
                start=item.start,
                end=item.held,
                blocks=blocks,
            )
        )
        if item.resource_id is not None:
            resource_rows.append(
                AppointmentResource(
                    appointment_id=row.pk,
                    resource_id=item.resource_id,
                    start=item.start,
                    end=item.held,
                    blocks=blocks,
                    exclusive=True,
                )
            )
        events.append(
            AppointmentEvent(
                appointment_id=row.pk,
                actor=actor,
                kind="seeded",
                detail=f"Loaded as demo data ({S(row.status).label.lower()})",
            )
        )
    AppointmentPractitioner.objects.bulk_create(practitioner_rows, batch_size=2000)
    AppointmentResource.objects.bulk_create(resource_rows, batch_size=2000)
    AppointmentEvent.objects.bulk_create(events, batch_size=2000)
    summary = ", ".join(f"{S(status).label.lower()} {n}" for status, n in sorted(counts.items()))
    record(
        actor=actor,
        action=Action.CREATE,
        event="appointment.bulk_seed",
        category=AUDIT_CATEGORY,
        object_type="scheduling.Appointment",
        object_id=f"{batch[0].start:%Y-%m-%d}..{batch[-1].start:%Y-%m-%d}: {len(rows)}",
        reason=f"demo data: {len(rows)} appointments ({summary})"[:200],
        fields=[
            "patient",
            "appointment_type",
            "location",
            "practitioners",
            "resources",
            "start",
            "end",
            "status",
            "reason",
            "cancel_reason",
            "arrived_at",
            "roomed_at",
            "completed_at",
        ],
    )
    return len(rows)


# --- the demo month --------------------------------------------------------------------------


def seed_month(
    *,
    actor: User,
    locations: dict[str, Location],
    types: dict[str, AppointmentType],
    rng: random.Random,
    now: dt.datetime,
    today: dt.date,
    report: ScheduleReport,
    progress: bool = False,
    days: tuple[int, int] = (MONTH_BACK_DAYS, MONTH_AHEAD_DAYS),
) -> None:
    """Two weeks back and two weeks ahead (`days`), once (nothing when the demo locations have
    appointments already); the waitlist when it is empty."""
    demo_locations = list(locations.values())
    if not Appointment.objects.filter(location__in=demo_locations).exists():
        tz = zone(locations["main"].time_zone)
        start = to_utc(today - dt.timedelta(days=days[0]), dt.time.min, tz)
        end = to_utc(today + dt.timedelta(days=days[1]), dt.time.min, tz)
        practitioners = list(
            Practitioner.objects.filter(is_active=True, locations__in=demo_locations)
            .distinct()
            .order_by("pk")
        )
        planner = _Planner(
            practitioners=practitioners,
            types=types,
            rng=rng,
            patients_by_location=_patients_by_location(demo_locations),
            per_patient=MONTH_VISITS_PER_PATIENT,
        )
        if planner.all_patients:
            planned = sorted(planner.plan(start, end), key=lambda p: (p.start, p.practitioner_id))
            cutoff = now + START_MARGIN
            started = [p for p in planned if p.start < cutoff]
            ahead = [p for p in planned if p.start >= cutoff]
            report.written_in_bulk = write_bulk(
                actor=actor, items=started, types=types, rng=rng, now=now, progress=progress
            )
            booked = _book_through_services(
                actor=actor, items=ahead, types=types, report=report, progress=progress
            )
            _after_booking(actor=actor, booked=booked, rng=rng, now=now, report=report)
            _waitlist(
                actor=actor, locations=locations, types=types, rng=rng, now=now, report=report
            )
            _cancel_some(actor=actor, booked=booked, rng=rng, report=report)
            return
    _waitlist(actor=actor, locations=locations, types=types, rng=rng, now=now, report=report)


def _book_through_services(
    *,
    actor: User,
    items: Sequence[Planned],
    types: dict[str, AppointmentType],
    report: ScheduleReport,
    progress: bool,
) -> list[Appointment]:
    patients = Patient.objects.in_bulk([p.patient_id for p in items])
    practitioners = Practitioner.objects.in_bulk([p.practitioner_id for p in items])
    locations = Location.objects.in_bulk([p.location_id for p in items])
    resources = Resource.objects.in_bulk([p.resource_id for p in items if p.resource_id])
    booked: list[Appointment] = []
    with _progress(len(items), progress, "Booking appointments") as bar:
        for first in range(0, len(items), SERVICE_CHUNK):
            with transaction.atomic():
                for item in items[first : first + SERVICE_CHUNK]:
                    try:
                        appointment = appointment_book(
                            actor=actor,
                            patient=patients[item.patient_id],
                            appointment_type=types[item.type_code],
                            start=item.start,
                            practitioners=[practitioners[item.practitioner_id]],
                            resources=[resources[item.resource_id]] if item.resource_id else None,
                            location=locations[item.location_id],
                            reason=item.reason,
                            via="system",
                        )
                    except BookingConflict:
                        continue  # the patient has something else then: leave the time free
                    booked.append(appointment)
                    bar.update(1)
    report.booked_through_services = len(booked)
    return booked


def _after_booking(
    *,
    actor: User,
    booked: list[Appointment],
    rng: random.Random,
    now: dt.datetime,
    report: ScheduleReport,
) -> None:
    """Patients confirm (most of the next three days, some later ones); a few of those due in
    the next quarter of an hour have already arrived."""
    soon = now + dt.timedelta(days=3)
    with transaction.atomic():
        for appointment in booked:
            if appointment.start <= now + dt.timedelta(minutes=15) and rng.random() < 0.6:
                appointment_check_in(
                    actor=actor,
                    appointment=appointment,
                    insurance_verified=True,
                    copay_collected=Decimal("25.00") if rng.random() < 0.5 else None,
                    via="system",
                )
                report.checked_in += 1
            elif rng.random() < (0.6 if appointment.start < soon else 0.15):
                appointment_confirm(actor=actor, appointment=appointment, via="system")
                report.confirmed += 1


def _cancel_some(
    *, actor: User, booked: list[Appointment], rng: random.Random, report: ScheduleReport
) -> None:
    """About 5% of what is ahead is cancelled (with a reason); the freed time is offered to the
    waitlist."""
    with transaction.atomic():
        for appointment in booked:
            if appointment.status not in (S.BOOKED, S.CONFIRMED) or rng.random() >= 0.05:
                continue
            values = _cancel_values(rng, appointment.start)
            appointment_cancel(
                actor=actor,
                appointment=appointment,
                cancelled_by=values["cancelled_by"],
                reason=values["cancel_reason"],
                via="system",
            )
            report.cancelled += 1


def _waitlist(
    *,
    actor: User,
    locations: dict[str, Location],
    types: dict[str, AppointmentType],
    rng: random.Random,
    now: dt.datetime,
    report: ScheduleReport,
) -> None:
    """Fifteen patients waiting for an earlier opening (when the waitlist is empty)."""
    demo_locations = list(locations.values())
    if WaitlistEntry.objects.filter(location__in=demo_locations).exists():
        return
    patients_by_location = _patients_by_location(demo_locations)
    by_location = {
        loc.pk: list(Practitioner.objects.filter(is_active=True, locations=loc).order_by("pk"))
        for loc in demo_locations
    }
    patients = Patient.objects.in_bulk(
        [pk for ids in patients_by_location.values() for pk in ids[:200]]
    )
    codes = ["follow-up", "new-patient", "annual-physical", "telehealth"]
    with transaction.atomic():
        for number in range(WAITLIST_SIZE):
            location = demo_locations[number % len(demo_locations)]
            candidates = patients_by_location.get(location.pk, [])[:200]
            if not candidates:
                continue
            appointment_type = types[rng.choice(codes)]
            allowed = set(appointment_type.allowed_practitioners.values_list("pk", flat=True))
            team = [p for p in by_location[location.pk] if not allowed or p.pk in allowed]
            earliest = now + dt.timedelta(hours=rng.randint(2, 48))
            waitlist_add(
                actor=actor,
                patient=patients[rng.choice(candidates)],
                appointment_type=appointment_type,
                location=location,
                earliest=earliest,
                latest=earliest + dt.timedelta(days=rng.randint(5, 13)),
                practitioner=rng.choice(team) if team and rng.random() < 0.5 else None,
                preferred_weekdays=sorted(rng.sample(range(5), 3)) if rng.random() < 0.3 else (),
                priority=rng.choice((2, 3, 5, 5, 5, 7)),
                note=rng.choice(WAITLIST_NOTES),
                via="system",
            )
            report.waitlist_created += 1


# --- the benchmark path ----------------------------------------------------------------------


def seed_appointments_bulk(
    *,
    actor: User,
    locations: dict[str, Location],
    types: dict[str, AppointmentType],
    total: int,
    rng: random.Random,
    now: dt.datetime,
    today: dt.date,
    progress: bool = False,
) -> int:
    """Top the appointment count up to `total`: about FILL of the next BENCH_FUTURE_DAYS days
    for every active practitioner, then whole chunks of days going back, all in bulk."""
    missing = total - Appointment.objects.count()
    if missing <= 0:
        return 0
    practitioners = list(Practitioner.objects.filter(is_active=True).order_by("pk"))
    planner = _Planner(
        practitioners=practitioners,
        types=types,
        rng=rng,
        patients_by_location=_patients_by_location(locations.values()),
    )
    if not planner.all_patients:
        return 0
    tz = zone(locations["main"].time_zone)
    ahead_end = to_utc(today + dt.timedelta(days=BENCH_FUTURE_DAYS), dt.time.min, tz)
    chunks = [planner.plan(to_utc(today, dt.time.min, tz), ahead_end)]
    planned = len(chunks[0])
    upper = today
    floor = _rules_since(today)
    while planned < missing and upper > floor:
        lower = max(floor, upper - dt.timedelta(days=BENCH_CHUNK_DAYS))
        chunk = planner.plan(to_utc(lower, dt.time.min, tz), to_utc(upper, dt.time.min, tz))
        chunks.append(chunk)
        planned += len(chunk)
        upper = lower
    items = [item for chunk in chunks for item in chunk]
    if len(items) > missing:
        items = rng.sample(items, missing)
    items.sort(key=lambda p: (p.start, p.practitioner_id))
    return write_bulk(actor=actor, items=items, types=types, rng=rng, now=now, progress=progress)
