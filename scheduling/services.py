"""Writes to the schedule: booking that cannot double-book, status changes, series, waitlist.

Every service is atomic, keyword-only with `actor` first, writes an AppointmentEvent (the
appointment's timeline) and an audit row (category "scheduling", the patient, field names only)
in the same transaction, and queues the announcement of the change in it too (one task row,
sent as scheduling.events.appointment_changed by a background worker after commit). `actor` may
be None only for work that arrives without a signed-in user (`via` "patient-link", "hl7" or
"system"); the audit row then names the channel.

Speed. Availability rules, exceptions and opening hours come from a per-process cache kept
current by a database-maintained token (scheduling.setup_cache); the practitioner, resource and
patient overlaps are read in one plain-SQL query (`_busy`). A booking writes its rows without
ORM queries (`_insert_booking`: INSERT texts made once per process by scheduling.sql_inserts,
the same rows, audit event and announcement task as `save`/`bulk_create`/`enqueue` write,
proven in tests/test_booking_writes.py; the ORM path is kept for when save signals have
listeners). On PostgreSQL with the location known a booking is four round trips: BEGIN; the
patient's lock, the setup token, shared resources' locks, the new appointment's id and the
overlap query (`_plan_batched`); every INSERT with the audit chain's lock and the audit row;
COMMIT. Where the connection allows server-side prepared statements (the database's OPTIONS
`prepare_threshold`; scheduling.prepared), those reads are two statements (three with shared
resources) prepared once per connection, planned once, and sent with psycopg's BEGIN in one
round trip (pipeline mode): three round trips.

Double booking. The booking checks (availability, opening hours, exceptions, practitioner,
resource and patient overlaps) run inside the transaction and name everything that clashes.
On SQLite every transaction starts with BEGIN IMMEDIATE (config.settings), so check-then-insert
is serialised. On PostgreSQL the guarantee is the database's: exclusion constraints over
tstzrange on the practitioner and exclusive-resource rows (migration 0003). A booking that loses
a race gets the constraint's 23P01 error, which is turned into a BookingConflict naming what it
clashes with, looked up after the rollback: of the whole transaction when the service call is
the outermost one (no savepoint needed: the common case, and the cheap one), of a savepoint when
the caller goes on after a conflict (series booking, or a caller's own transaction).
Resources with capacity > 1 and the patient's own overlaps are guarded by row locks (patient,
shared resources) taken in a fixed order before the checks; practitioner and resource rows are
inserted in id order and the audit row (whose chain lock is global) is written last, so
concurrent bookings cannot deadlock.
A deadlock or serialisation failure all the same is retried (outermost transaction only).

An appointment (duration plus buffer) may last at most MAX_APPOINTMENT_SPAN; overlap queries
use that bound to stay on the (practitioner, start) and (resource, start) indexes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from dateutil.rrule import rrulestr
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q, signals
from django.utils import timezone

from audit.models import Action
from audit.services import batches_statements, record, record_after_writes, run_statements
from core.capabilities import Capability
from core.models import Location
from patients.models import Patient
from scheduling import prepared
from scheduling.availability import Availability, covers, validate_rrule, zone
from scheduling.conflicts import BookingConflict, Conflict
from scheduling.events import (
    AppointmentChange,
    announcement_row,
    appointment_changed_on_commit,
    waitlist_offered_on_commit,
)
from scheduling.models import (
    ALLOWED_TRANSITIONS,
    BLOCKING_STATUSES,
    Appointment,
    AppointmentEvent,
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentSeries,
    AppointmentStatus,
    AppointmentType,
    CancelledBy,
    OfferStatus,
    Practitioner,
    Resource,
    ResourceCategory,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)
from scheduling.setup_cache import CURRENT_VERSION_SQL, UNREAD
from scheduling.sql_inserts import insert_statement

if TYPE_CHECKING:
    from accounts.models import User

__all__ = [
    "MAX_APPOINTMENT_SPAN",
    "BookingConflict",
    "Conflict",
    "appointment_book",
    "appointment_cancel",
    "appointment_check_in",
    "appointment_check_out",
    "appointment_confirm",
    "appointment_no_show",
    "appointment_reschedule",
    "appointment_room",
    "appointment_update",
    "series_book",
    "waitlist_add",
    "waitlist_offer_accept",
    "waitlist_offer_decline",
    "waitlist_offer_opening",
]

AUDIT_CATEGORY = "scheduling"
VIAS = ("ui", "api", "patient-link", "hl7", "system")
ANONYMOUS_VIAS = ("patient-link", "hl7", "system")
MAX_APPOINTMENT_SPAN = dt.timedelta(hours=12)
MAX_SERIES_OCCURRENCES = 104
EXCLUSION_VIOLATION = "23P01"
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
MAX_ATTEMPTS = 4
S = AppointmentStatus

P = ParamSpec("P")
R = TypeVar("R")


class _Retry(Exception):  # noqa: N818  (internal control flow)
    """Plan again from the start (a race changed what the first plan saw)."""


class _LostRace(Exception):  # noqa: N818  (internal control flow)
    """The exclusion constraint refused the rows; the transaction is lost (PostgreSQL)."""

    def __init__(self, plan: _Plan, overbook: bool) -> None:
        super().__init__("lost a booking race")
        self.plan, self.overbook = plan, overbook


# True while a booking conflict ends the whole transaction (the outermost service call, when
# nothing goes on after a conflict): then no savepoint is needed around the checks and inserts,
# and a lost race is looked up after the rollback. Series booking, which collects the conflicts
# of every occurrence, runs with savepoints.
_CONFLICT_ENDS_TRANSACTION: ContextVar[bool] = ContextVar("conflict_ends_tx", default=False)


# ---- shared pieces ---------------------------------------------------------------------------


def _retrying(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` in a transaction; as the outermost transaction, retry it after a deadlock, a
    serialisation failure or a lost race that calls for a new plan."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        outermost = not connection.in_atomic_block
        attempts = MAX_ATTEMPTS if outermost else 1
        for attempt in itertools.count(1):
            token = _CONFLICT_ENDS_TRANSACTION.set(outermost)
            try:
                with transaction.atomic():
                    return fn(*args, **kwargs)
            except _LostRace as race:
                # Rolled back: what the booking lost to is committed and visible now.
                conflicts = _lost_race_conflicts(race.plan, exclude=None)
                retry = race.overbook and all(c.kind == "practitioner" for c in conflicts)
                if not retry or attempt >= attempts:
                    raise BookingConflict(conflicts) from None
            except _Retry:
                if attempt >= attempts:
                    raise BookingConflict([]) from None
            except OperationalError as exc:
                if attempt >= attempts or not _retryable(exc):
                    raise
            finally:
                _CONFLICT_ENDS_TRANSACTION.reset(token)
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


def _retryable(exc: BaseException) -> bool:
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    return connection.vendor == "sqlite" and "locked" in str(exc)


def _require(actor: User | None, via: str, *capabilities: Capability) -> None:
    """The actor needs one of `capabilities`; no actor is allowed only for channels that have
    no signed-in user."""
    if via not in VIAS:
        raise ValidationError({"via": f"Unknown channel '{via}'."})
    if actor is None:
        if via not in ANONYMOUS_VIAS:
            raise PermissionDenied("Sign in to change the schedule.")
        return
    if not any(actor.can(capability) for capability in capabilities):
        raise PermissionDenied(f"Your roles do not allow this: {capabilities[0].label.lower()}.")


def _audit(
    *,
    actor: User | None,
    via: str,
    action: Action,
    event: str,
    patient: Patient,
    obj: Any,
    fields: Iterable[str] = (),
    reason: str = "",
) -> None:
    record(
        **_audit_event(
            actor=actor,
            via=via,
            action=action,
            event=event,
            patient=patient,
            obj=obj,
            fields=fields,
            reason=reason,
        )
    )


def _audit_event(
    *,
    actor: User | None,
    via: str,
    action: Action,
    event: str,
    patient: Patient,
    obj: Any,
    fields: Iterable[str] = (),
    reason: str = "",
) -> dict[str, Any]:
    """`audit.services.record`'s arguments for a scheduling event."""
    return {
        "actor": actor,
        "action": action,
        "event": event,
        "category": AUDIT_CATEGORY,
        "patient": patient,
        "obj": obj,
        "fields": fields,
        "reason": reason or (f"via {via}" if via != "ui" else ""),
        "username": "" if actor is not None else via,
    }


def _timeline(appointment: Appointment, actor: User | None, kind: str, detail: str = "") -> None:
    AppointmentEvent.objects.create(
        appointment=appointment, actor=actor, kind=kind, detail=detail[:300]
    )


def _local(moment: dt.datetime, location: Location) -> dt.datetime:
    return moment.astimezone(zone(location.time_zone))


def _when(appointment: Appointment | dt.datetime, location: Location) -> str:
    moment = appointment.start if isinstance(appointment, Appointment) else appointment
    return f"{_local(moment, location):%a %d %b %Y %H:%M}"


# ---- planning a booking ----------------------------------------------------------------------


@dataclass
class _Plan:
    appointment_type: AppointmentType
    start: dt.datetime
    end: dt.datetime
    block_end: dt.datetime  # end plus the type's buffer: what practitioner and resource rows hold
    location: Location
    practitioners: list[Practitioner]
    resources: list[Resource]
    overbooked: set[int] = field(default_factory=set)  # practitioner ids double-booked on purpose
    appointment_id: int | None = None  # drawn from the table's sequence (PostgreSQL fast path)

    @property
    def is_overbooked(self) -> bool:
        return bool(self.overbooked)


def _clean_practitioners(
    practitioners: Iterable[Practitioner] | None, appointment_type: AppointmentType
) -> list[Practitioner]:
    chosen = {p.pk: p for p in (practitioners or [])}
    if not chosen:
        raise ValidationError({"practitioners": "Choose at least one practitioner."})
    errors = [f"{p.display_name} is not active." for p in chosen.values() if not p.is_active]
    allowed = _allowed_practitioner_ids(appointment_type)
    if allowed:
        errors += [
            f"{p.display_name} does not take {appointment_type.name} appointments."
            for p in chosen.values()
            if p.pk not in allowed
        ]
    if errors:
        raise ValidationError({"practitioners": errors})
    return [chosen[pk] for pk in sorted(chosen)]


def _allowed_practitioner_ids(appointment_type: AppointmentType) -> set[int]:
    prefetched = getattr(appointment_type, "_prefetched_objects_cache", {})
    if "allowed_practitioners" in prefetched:
        return {p.pk for p in prefetched["allowed_practitioners"]}
    return set(appointment_type.allowed_practitioners.values_list("id", flat=True))


def _clean_start(start: Any, *, check_past: bool) -> dt.datetime:
    if not isinstance(start, dt.datetime) or timezone.is_naive(start):
        raise ValidationError({"start": "Give the start as a date and time with its UTC offset."})
    start = start.astimezone(dt.UTC)
    now = timezone.now()
    ahead = dt.timedelta(days=getattr(settings, "SCHEDULING_MAX_DAYS_AHEAD", 730))
    if start > now + ahead:
        raise ValidationError(
            {"start": f"Appointments can be booked at most {ahead.days} days ahead."}
        )
    if check_past and start < now - ahead:
        raise ValidationError({"start": "That date is too far in the past."})
    return start


def _type_times(
    appointment_type: AppointmentType, start: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    if not appointment_type.is_active:
        raise ValidationError({"appointment_type": f"{appointment_type.name} is not offered."})
    length = dt.timedelta(minutes=appointment_type.duration_minutes)
    buffer = dt.timedelta(minutes=appointment_type.buffer_minutes)
    if length + buffer > MAX_APPOINTMENT_SPAN:
        raise ValidationError(
            {"appointment_type": "An appointment with its buffer may last at most 12 hours."}
        )
    return start + length, start + length + buffer


def _resolve_location(
    availability: Availability,
    practitioners: Sequence[Practitioner],
    start: dt.datetime,
    end: dt.datetime,
) -> Location | None:
    """The one location where every practitioner's availability covers [start, end)."""
    common: set[int] | None = None
    for practitioner in practitioners:
        here = {
            loc
            for loc in availability.locations_of(practitioner.pk)
            if covers(availability.rule_blocks(practitioner.pk, loc, start, end), start, end)
        }
        common = here if common is None else common & here
    if not common:
        return None
    if len(common) > 1:
        names = ", ".join(sorted(availability.locations[pk].name for pk in common))
        raise ValidationError({"location": f"Choose the location: {names}."})
    return availability.locations[common.pop()]


_PATIENT_LOCK_SQL = f"SELECT id FROM {Patient._meta.db_table} WHERE id = %s FOR NO KEY UPDATE"  # noqa: S608
_RESOURCE_LOCK_SQL = (
    f"SELECT id FROM {Resource._meta.db_table} WHERE id IN ({{marks}}) "  # noqa: S608
    "ORDER BY id FOR NO KEY UPDATE"
)
_NEXT_APPOINTMENT_ID_SQL = "SELECT nextval(pg_get_serial_sequence(%s, 'id'))"


def _resource_lock(ids: Sequence[int]) -> tuple[str, list[Any]]:
    return _RESOURCE_LOCK_SQL.format(marks=", ".join(["%s"] * len(ids))), list(ids)


def _lock_patient(patient: Patient, *, read_token: bool = False) -> object:
    """Lock the patient's row (PostgreSQL: serialises the patient's own bookings). With
    `read_token`, where statements can be batched, the setup token (scheduling.setup_cache)
    is read in the same round trip and returned; else setup_cache.UNREAD."""
    if connection.vendor != "postgresql":
        return UNREAD
    statements: list[tuple[str, list[Any]]] = [(_PATIENT_LOCK_SQL, [patient.pk])]
    if read_token and batches_statements():
        statements.append((CURRENT_VERSION_SQL, []))
    with connection.cursor() as cursor:
        run_statements(cursor, statements)
        if len(statements) == 1:
            return UNREAD
        cursor.nextset()
        row = cursor.fetchone()
    return str(row[0]) if row else None


def _plan(
    *,
    actor: User | None,
    patient: Patient,
    appointment_type: AppointmentType,
    start: dt.datetime,
    practitioners: Iterable[Practitioner] | None,
    resources: Iterable[Resource] | None,
    location: Location | None,
    overbook: bool,
    overbook_reason: str,
    exclude: Appointment | None = None,
    check_past: bool = True,
    within: Sequence[int] | None = None,
    lock_patient: bool = False,
) -> _Plan:
    """Everything a booking needs, checked; raises BookingConflict naming every clash.

    `lock_patient`: take the patient's lock first (booking). On PostgreSQL with a location
    given, the lock, the setup token, the shared resources' locks, the new appointment's id
    and the overlap query (`_busy`) then travel in one round trip, in that order."""
    if patient.merged_into_id or not patient.is_active:
        raise ValidationError({"patient": "This patient record is not active (merged or closed)."})
    start = _clean_start(start, check_past=check_past)
    end, block_end = _type_times(appointment_type, start)
    chosen = _clean_practitioners(practitioners, appointment_type)
    if overbook:
        if actor is None or not actor.can(Capability.OVERBOOK):
            raise PermissionDenied("Your roles do not allow overbooking.")
        if not overbook_reason.strip():
            raise ValidationError({"overbook_reason": "Give a reason for overbooking."})
    conflicts: list[Conflict] = []
    tz_name = location.time_zone if location is not None else "UTC"
    if check_past and start < timezone.now():
        conflicts.append(Conflict(kind="past", label="The start time has already passed"))
    use_prepared = lock_patient and location is not None and prepared.available()
    if lock_patient and location is not None and (use_prepared or batches_statements()):
        return _plan_batched(
            patient=patient,
            appointment_type=appointment_type,
            start=start,
            end=end,
            block_end=block_end,
            chosen=chosen,
            resources=resources,
            location=location,
            overbook=overbook,
            exclude=exclude,
            conflicts=conflicts,
            use_prepared=use_prepared,
        )
    token = _lock_patient(patient, read_token=True) if lock_patient else UNREAD
    availability = Availability(
        practitioner_ids=[p.pk for p in chosen],
        start=start,
        end=end,
        location_ids=[location.pk] if location is not None else within,
        appointment_type=appointment_type,
        token=token,
    )
    if location is None:
        location = _resolve_location(availability, chosen, start, end)
    if location is None:
        raise BookingConflict(
            conflicts
            + [
                Conflict(
                    kind="availability",
                    label=p.display_name,
                    start=start,
                    end=end,
                    object_id=str(p.public_id),
                    time_zone=tz_name,
                )
                for p in chosen
            ]
        )
    if not location.is_active:
        raise ValidationError({"location": f"{location.name} is not active."})
    conflicts += _availability_conflicts(availability, chosen, location, start, end)
    choice = _resource_choice(appointment_type, location, resources)
    busy = _busy(
        practitioner_ids=[p.pk for p in chosen],
        resource_ids=choice.ids,
        patient=patient,
        start=start,
        end=end,
        block_end=block_end,
        exclude=exclude,
    )
    return _checked_plan(
        appointment_type=appointment_type,
        start=start,
        end=end,
        block_end=block_end,
        location=location,
        chosen=chosen,
        choice=choice,
        busy=busy,
        overbook=overbook,
        conflicts=conflicts,
    )


def _plan_batched(
    *,
    patient: Patient,
    appointment_type: AppointmentType,
    start: dt.datetime,
    end: dt.datetime,
    block_end: dt.datetime,
    chosen: list[Practitioner],
    resources: Iterable[Resource] | None,
    location: Location,
    overbook: bool,
    exclude: Appointment | None,
    conflicts: list[Conflict],
    use_prepared: bool,
) -> _Plan:
    """`_plan`'s checks with the location known, on PostgreSQL: the patient's lock, the setup
    token, the shared resources' locks, a new appointment id and `_busy`'s query in one round
    trip (locks first, as in `_plan`; each statement sees what was committed before it ran),
    as statements prepared on the server where the connection allows it (`use_prepared`:
    `_plan_reads_prepared`), else through Django's cursor. Errors and conflicts are `_plan`'s,
    in its order: the checks that need no database first."""
    if not location.is_active:
        raise ValidationError({"location": f"{location.name} is not active."})
    choice = _resource_choice(appointment_type, location, resources, lock=False)
    if use_prepared:
        token, appointment_id, busy = _plan_reads_prepared(
            patient=patient,
            practitioner_ids=[p.pk for p in chosen],
            choice=choice,
            start=start,
            end=end,
            block_end=block_end,
            exclude=exclude,
        )
    else:
        busy_sql = _busy_statement(
            practitioner_ids=[p.pk for p in chosen],
            resource_ids=choice.ids,
            patient=patient,
            start=start,
            end=end,
            block_end=block_end,
            exclude=exclude,
        )
        statements: list[tuple[str, list[Any]]] = [
            (_PATIENT_LOCK_SQL, [patient.pk]),
            (CURRENT_VERSION_SQL, []),
        ]
        if choice.shared:
            statements.append(_resource_lock(choice.shared))
        statements += [(_NEXT_APPOINTMENT_ID_SQL, [_APPOINTMENTS]), busy_sql]
        with connection.cursor() as cursor:
            run_statements(cursor, statements)
            cursor.nextset()
            row = cursor.fetchone()
            token = str(row[0]) if row else None
            if choice.shared:
                cursor.nextset()
            cursor.nextset()
            appointment_id = int(cursor.fetchone()[0])
            cursor.nextset()
            busy = _busy_from_rows(cursor.fetchall())
    availability = Availability(
        practitioner_ids=[p.pk for p in chosen],
        start=start,
        end=end,
        location_ids=[location.pk],
        appointment_type=appointment_type,
        token=token,
    )
    conflicts += _availability_conflicts(availability, chosen, location, start, end)
    plan = _checked_plan(
        appointment_type=appointment_type,
        start=start,
        end=end,
        block_end=block_end,
        location=location,
        chosen=chosen,
        choice=choice,
        busy=busy,
        overbook=overbook,
        conflicts=conflicts,
    )
    plan.appointment_id = appointment_id
    return plan


def _checked_plan(
    *,
    appointment_type: AppointmentType,
    start: dt.datetime,
    end: dt.datetime,
    block_end: dt.datetime,
    location: Location,
    chosen: list[Practitioner],
    choice: _ResourceChoice,
    busy: _Busy,
    overbook: bool,
    conflicts: list[Conflict],
) -> _Plan:
    """The plan, once what could clash (`busy`) is known; BookingConflict naming every clash."""
    tz_name = location.time_zone
    overbooked: set[int] = set()
    clash = dict(busy.practitioners)
    if clash and overbook:
        overbooked = {pid for pid in clash if _by_id(chosen, pid).allows_overbooking}
        clash = {pid: rows for pid, rows in clash.items() if pid not in overbooked}
    for pid, rows in clash.items():
        practitioner = _by_id(chosen, pid)
        conflicts += [
            Conflict(
                kind="practitioner",
                label=practitioner.display_name,
                start=row_start,
                end=row_end,
                object_id=str(practitioner.public_id),
                time_zone=tz_name,
            )
            for row_start, row_end in rows
        ]
    picked, resource_conflicts = _pick_resources(choice, location, busy.resources, start, block_end)
    conflicts += resource_conflicts
    conflicts += _patient_conflicts(busy.patient, location)
    if conflicts:
        raise BookingConflict(conflicts)
    return _Plan(
        appointment_type=appointment_type,
        start=start,
        end=end,
        block_end=block_end,
        location=location,
        practitioners=chosen,
        resources=picked,
        overbooked=overbooked,
    )


def _by_id(practitioners: Sequence[Practitioner], pk: int) -> Practitioner:
    return next(p for p in practitioners if p.pk == pk)


def _availability_conflicts(
    availability: Availability,
    practitioners: Sequence[Practitioner],
    location: Location,
    start: dt.datetime,
    end: dt.datetime,
) -> list[Conflict]:
    conflicts: list[Conflict] = []
    tz_name = location.time_zone
    for practitioner in practitioners:
        blocks = availability.rule_blocks(practitioner.pk, location.pk, start, end)
        if not covers(blocks, start, end):
            conflicts.append(
                Conflict(
                    kind="availability",
                    label=practitioner.display_name,
                    start=start,
                    end=end,
                    object_id=str(practitioner.public_id),
                    time_zone=tz_name,
                )
            )
    opening = availability.opening_intervals(location.pk, start, end)
    if opening is not None and not covers(opening, start, end):
        conflicts.append(
            Conflict(
                kind="opening_hours",
                label=location.name,
                start=start,
                end=end,
                object_id=str(location.public_id),
                time_zone=tz_name,
            )
        )
    seen: set[int] = set()
    for practitioner in practitioners:
        for exc in availability.exceptions_for(practitioner.pk, location.pk, start, end):
            if exc.pk in seen:
                continue
            seen.add(exc.pk)
            conflicts.append(
                Conflict(
                    kind="exception",
                    label=f"{exc.get_kind_display()}: {exc.reason}",
                    start=exc.start,
                    end=exc.end,
                    object_id=str(exc.public_id),
                    time_zone=tz_name,
                )
            )
    return conflicts


def _practitioner_rows(
    practitioner_ids: Iterable[int],
    start: dt.datetime,
    block_end: dt.datetime,
    exclude: Appointment | None,
) -> list[tuple[int, dt.datetime, dt.datetime]]:
    rows = AppointmentPractitioner.objects.filter(
        practitioner_id__in=list(practitioner_ids),
        blocks=True,
        start__gte=start - MAX_APPOINTMENT_SPAN,
        start__lt=block_end,
        end__gt=start,
    )
    if exclude is not None:
        rows = rows.exclude(appointment_id=exclude.pk)
    return list(rows.order_by("start").values_list("practitioner_id", "start", "end"))


def _resource_rows(
    resource_ids: Iterable[int],
    start: dt.datetime,
    block_end: dt.datetime,
    exclude: Appointment | None,
) -> dict[int, list[tuple[dt.datetime, dt.datetime]]]:
    ids = list(resource_ids)
    if not ids:
        return {}
    rows = AppointmentResource.objects.filter(
        resource_id__in=ids,
        blocks=True,
        start__gte=start - MAX_APPOINTMENT_SPAN,
        start__lt=block_end,
        end__gt=start,
    )
    if exclude is not None:
        rows = rows.exclude(appointment_id=exclude.pk)
    busy: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
    for rid, row_start, row_end in rows.order_by("start").values_list(
        "resource_id", "start", "end"
    ):
        busy.setdefault(rid, []).append((row_start, row_end))
    return busy


def peak_concurrency(rows: Sequence[tuple[dt.datetime, dt.datetime]]) -> int:
    """The most rows overlapping at any one moment (half-open intervals)."""
    points = sorted([(s, 1) for s, _ in rows] + [(e, -1) for _, e in rows])
    peak = current = 0
    for _, delta in points:
        current += delta
        peak = max(peak, current)
    return peak


def _has_room(resource: Resource, rows: Sequence[tuple[dt.datetime, dt.datetime]]) -> bool:
    return peak_concurrency(rows) < resource.capacity


@dataclass
class _ResourceChoice:
    given: dict[int, Resource]
    needed: list[str]  # kinds the type requires that no given resource is
    candidates: list[Resource]  # active resources of those kinds at the location
    shared: list[int] = field(default_factory=list)  # ids of those with capacity > 1, sorted

    @property
    def ids(self) -> list[int]:
        return [*self.given, *(r.pk for r in self.candidates)]


def _resource_choice(
    appointment_type: AppointmentType,
    location: Location,
    resources: Iterable[Resource] | None,
    *,
    lock: bool = True,
) -> _ResourceChoice:
    """The resources named (checked) and the candidates for each required kind still missing;
    shared resources (capacity > 1) are locked (PostgreSQL) before their bookings are read
    (`lock` False: the caller locks `shared` itself)."""
    given = {r.pk: r for r in (resources or [])}
    errors = [
        f"{r.name} is not at {location.name}."
        for r in given.values()
        if r.location_id != location.pk
    ] + [f"{r.name} is not in use any more." for r in given.values() if not r.is_active]
    if errors:
        raise ValidationError({"resources": errors})
    needed = [str(kind) for kind in (appointment_type.required_resource_kinds or [])]
    for resource in given.values():
        if resource.kind in needed:
            needed.remove(resource.kind)
    candidates: list[Resource] = []
    if needed:
        candidates = list(
            Resource.objects.filter(location=location, kind__in=set(needed), is_active=True)
            .exclude(pk__in=list(given))
            .order_by("name", "id")
        )
    shared = sorted(r.pk for r in [*given.values(), *candidates] if r.capacity > 1)
    if shared and lock and connection.vendor == "postgresql":
        # Capacity > 1 is counted, not constrained: serialise bookings of the same resource.
        with connection.cursor() as cursor:
            cursor.execute(*_resource_lock(shared))
    return _ResourceChoice(
        given=given,
        needed=needed,
        candidates=candidates,
        shared=shared if connection.vendor == "postgresql" else [],
    )


def _pick_resources(
    choice: _ResourceChoice,
    location: Location,
    busy: dict[int, list[tuple[dt.datetime, dt.datetime]]],
    start: dt.datetime,
    block_end: dt.datetime,
) -> tuple[list[Resource], list[Conflict]]:
    """The resources named (checked against their bookings, `busy`), plus a free one of each
    required kind still missing."""
    given, needed, candidates = choice.given, choice.needed, choice.candidates
    tz_name = location.time_zone
    conflicts: list[Conflict] = []
    for resource in given.values():
        rows = busy.get(resource.pk, [])
        if not _has_room(resource, rows):
            conflicts += [
                Conflict(
                    kind="resource",
                    label=resource.name,
                    start=row_start,
                    end=row_end,
                    object_id=str(resource.public_id),
                    time_zone=tz_name,
                )
                for row_start, row_end in rows
            ]
    picked = list(given.values())
    for kind in needed:
        free = next(
            (
                r
                for r in candidates
                if r.kind == kind and r not in picked and _has_room(r, busy.get(r.pk, []))
            ),
            None,
        )
        if free is None:
            conflicts.append(
                Conflict(
                    kind="resource",
                    label=f"Every {kind.replace('-', ' ')} at {location.name}",
                    start=start,
                    end=block_end,
                    object_id="",
                    time_zone=tz_name,
                )
            )
        else:
            picked.append(free)
    return sorted(picked, key=lambda r: r.pk), conflicts


def _patient_conflicts(
    rows: Sequence[tuple[str, dt.datetime, dt.datetime, str]], location: Location
) -> list[Conflict]:
    return [
        Conflict(
            kind="patient",
            label=f"an appointment ({type_name})",
            start=other_start,
            end=other_end,
            object_id=public_id,
            time_zone=location.time_zone,
        )
        for public_id, other_start, other_end, type_name in rows
    ]


@dataclass
class _Busy:
    """What the booking could clash with, read in one query (`_busy`)."""

    practitioners: dict[int, list[tuple[dt.datetime, dt.datetime]]]
    resources: dict[int, list[tuple[dt.datetime, dt.datetime]]]
    patient: list[tuple[str, dt.datetime, dt.datetime, str]]


def _moment(value: Any) -> dt.datetime:
    """A timestamp from a plain cursor: aware on PostgreSQL, UTC text on SQLite."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)


_PRACTITIONER_ROWS = AppointmentPractitioner._meta.db_table
_RESOURCE_ROWS = AppointmentResource._meta.db_table
_APPOINTMENTS = Appointment._meta.db_table
_TYPES = AppointmentType._meta.db_table
_BLOCKING = sorted(str(status) for status in BLOCKING_STATUSES)


def _busy(
    *,
    practitioner_ids: Sequence[int],
    resource_ids: Sequence[int],
    patient: Patient,
    start: dt.datetime,
    end: dt.datetime,
    block_end: dt.datetime,
    exclude: Appointment | None,
) -> _Busy:
    """What could clash, read by `_busy_statement`'s query."""
    with connection.cursor() as cursor:
        cursor.execute(
            *_busy_statement(
                practitioner_ids=practitioner_ids,
                resource_ids=resource_ids,
                patient=patient,
                start=start,
                end=end,
                block_end=block_end,
                exclude=exclude,
            )
        )
        return _busy_from_rows(cursor.fetchall())


def _busy_statement(
    *,
    practitioner_ids: Sequence[int],
    resource_ids: Sequence[int],
    patient: Patient,
    start: dt.datetime,
    end: dt.datetime,
    block_end: dt.datetime,
    exclude: Appointment | None,
) -> tuple[str, list[Any]]:
    """In one query (the booking's hottest read, so plain SQL rather than three ORM queries
    built and compiled for every booking): the practitioners' and resources' blocking rows
    overlapping [start, block_end) and the patient's own appointments overlapping [start, end),
    each by start. The lower bound on start (MAX_APPOINTMENT_SPAN) keeps every part on its
    (…, start) index."""
    adapt = connection.ops.adapt_datetimefield_value
    lowest = adapt(start - MAX_APPOINTMENT_SPAN)
    begins, ends, block_ends = adapt(start), adapt(end), adapt(block_end)
    not_this = " AND appointment_id <> %s" if exclude is not None else ""
    # The patient's part first: its public id and type name give the columns their types (a
    # NULL in the first part of a UNION would be taken for text on PostgreSQL).
    statuses = ", ".join(["%s"] * len(_BLOCKING))
    parts = [
        f'SELECT 2, 0, a."start", a."end", a.public_id, t.name FROM {_APPOINTMENTS} a '  # noqa: S608
        f"JOIN {_TYPES} t ON t.id = a.appointment_type_id "
        f'WHERE a.patient_id = %s AND a.status IN ({statuses}) AND a."start" >= %s '
        f'AND a."start" < %s AND a."end" > %s' + (" AND a.id <> %s" if exclude is not None else "")
    ]
    params: list[Any] = [patient.pk, *_BLOCKING, lowest, ends, begins]
    params += [exclude.pk] if exclude is not None else []
    for tag, table, column, ids in (
        (0, _PRACTITIONER_ROWS, "practitioner_id", practitioner_ids),
        (1, _RESOURCE_ROWS, "resource_id", resource_ids),
    ):
        if not ids:
            continue
        marks = ", ".join(["%s"] * len(ids))
        parts.append(
            f'SELECT {tag}, {column}, "start", "end", NULL, NULL FROM {table} '  # noqa: S608
            f'WHERE {column} IN ({marks}) AND blocks AND "start" >= %s AND "start" < %s '
            f'AND "end" > %s{not_this}'
        )
        params += [*ids, lowest, block_ends, begins]
        params += [exclude.pk] if exclude is not None else []
    return " UNION ALL ".join(parts) + " ORDER BY 1, 3, 2", params


def _busy_from_rows(rows: Iterable[Sequence[Any]]) -> _Busy:
    busy = _Busy(practitioners={}, resources={}, patient=[])
    for tag, pk, row_start, row_end, public_id, type_name in rows:
        times = (_moment(row_start), _moment(row_end))
        if tag == 0:
            busy.practitioners.setdefault(pk, []).append(times)
        elif tag == 1:
            busy.resources.setdefault(pk, []).append(times)
        else:
            busy.patient.append((str(uuid.UUID(str(public_id))), *times, type_name))
    return busy


# `_plan_batched`'s reads as two statements (three with shared resources) prepared once per
# connection (scheduling.prepared), with texts that do not change between bookings (arrays
# rather than IN lists, the blocking statuses written in) and output columns of fixed types.
#
# The patient's lock also sets plan_cache_mode for the rest of the transaction: PostgreSQL plans
# a prepared statement for its values (a custom plan) until a generic plan looks no more costly,
# which for the overlap query it never does (the selectivity of the time bounds is unknown
# without their values): it would be planned on every booking. Its generic plan uses the same
# (…, start) indexes. The setting lasts until the transaction ends and concerns prepared
# statements only: the booking's own (Django's cursors bind on the client and prepare none).
_PREPARED_PATIENT_LOCK_SQL = (
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true) "  # noqa: S608
    f"FROM {Patient._meta.db_table} WHERE id = %s FOR NO KEY UPDATE"
)
_PREPARED_RESOURCE_LOCK_SQL = (
    f"SELECT 1 FROM {Resource._meta.db_table} WHERE id = ANY(%s) "  # noqa: S608
    "ORDER BY id FOR NO KEY UPDATE"
)
# The last row of the overlap query (tag 3): a new appointment id and the setup token (NULL
# without a token row), as CURRENT_VERSION_SQL reads it.
_PREPARED_ID_AND_TOKEN = (
    f"SELECT 3, nextval(pg_get_serial_sequence('{_APPOINTMENTS}', 'id')), NULL, NULL, NULL, "
    f"({CURRENT_VERSION_SQL})::text"
)
_prepared_busy_texts: dict[tuple[bool, bool], str] = {}


def _prepared_busy_text(*, resources: bool, excluding: bool) -> str:
    """`_busy_statement`'s query as one fixed text per shape (with or without the resources'
    part and the appointment left out), and a last row with a new appointment id and the setup
    token."""
    key = (resources, excluding)
    text = _prepared_busy_texts.get(key)
    if text is None:
        statuses = ", ".join("'" + status.replace("'", "''") + "'" for status in _BLOCKING)
        parts = [
            'SELECT 2::integer, 0::bigint, a."start"::timestamptz, a."end"::timestamptz, '  # noqa: S608
            f"a.public_id::uuid, t.name::text FROM {_APPOINTMENTS} a "
            f"JOIN {_TYPES} t ON t.id = a.appointment_type_id "
            f'WHERE a.patient_id = %s AND a.status IN ({statuses}) AND a."start" >= %s '
            f'AND a."start" < %s AND a."end" > %s' + (" AND a.id <> %s" if excluding else "")
        ]
        for tag, table, column in (
            (0, _PRACTITIONER_ROWS, "practitioner_id"),
            (1, _RESOURCE_ROWS, "resource_id"),
        )[: 2 if resources else 1]:
            parts.append(
                f'SELECT {tag}, {column}::bigint, "start"::timestamptz, "end"::timestamptz, '  # noqa: S608
                f"NULL, NULL FROM {table} WHERE {column} = ANY(%s) AND blocks "
                f'AND "start" >= %s AND "start" < %s AND "end" > %s'
                + (" AND appointment_id <> %s" if excluding else "")
            )
        parts.append(_PREPARED_ID_AND_TOKEN)
        text = _prepared_busy_texts[key] = " UNION ALL ".join(parts) + " ORDER BY 1, 3, 2"
    return text


def _plan_reads_prepared(
    *,
    patient: Patient,
    practitioner_ids: list[int],
    choice: _ResourceChoice,
    start: dt.datetime,
    end: dt.datetime,
    block_end: dt.datetime,
    exclude: Appointment | None,
) -> tuple[str | None, int, _Busy]:
    """`_plan_batched`'s round trip with prepared statements: the patient's lock, the shared
    resources' locks, then (each statement sees what was committed before it ran) what could
    clash (the rows of `_busy_statement`'s query), a new appointment id and the setup token.
    (The token, the id, what could clash.)"""
    lowest = start - MAX_APPOINTMENT_SPAN
    excluded = [exclude.pk] if exclude is not None else []
    busy_params: list[Any] = [patient.pk, lowest, end, start, *excluded]
    busy_params += [practitioner_ids, lowest, block_end, start, *excluded]
    if choice.ids:
        busy_params += [choice.ids, lowest, block_end, start, *excluded]
    statements: list[tuple[str, list[Any]]] = [(_PREPARED_PATIENT_LOCK_SQL, [patient.pk])]
    if choice.shared:
        statements.append((_PREPARED_RESOURCE_LOCK_SQL, [list(choice.shared)]))
    busy_sql = _prepared_busy_text(resources=bool(choice.ids), excluding=exclude is not None)
    statements.append((busy_sql, busy_params))
    rows = prepared.run(statements)[-1] or []
    *busy_rows, (_, appointment_id, _, _, _, token) = rows
    return (
        str(token) if token is not None else None,
        int(appointment_id),
        _busy_from_rows(busy_rows),
    )


def _write_rows(appointment: Appointment, plan: _Plan, *, overbook: bool) -> None:
    """Insert the practitioner and resource rows; on PostgreSQL a lost race surfaces as the
    exclusion constraint's error, turned here into a BookingConflict naming the clash."""
    practitioner_rows, resource_rows = _practitioner_rows_of(appointment, plan)
    if connection.vendor != "postgresql":
        AppointmentPractitioner.objects.bulk_create(practitioner_rows)
        AppointmentResource.objects.bulk_create(resource_rows)
        return
    if _CONFLICT_ENDS_TRANSACTION.get():
        try:
            AppointmentPractitioner.objects.bulk_create(practitioner_rows)
            if resource_rows:
                AppointmentResource.objects.bulk_create(resource_rows)
        except IntegrityError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != EXCLUSION_VIOLATION:
                raise
            raise _LostRace(plan, overbook) from exc
        return
    try:
        with transaction.atomic():
            AppointmentPractitioner.objects.bulk_create(practitioner_rows)
            if resource_rows:
                AppointmentResource.objects.bulk_create(resource_rows)
    except IntegrityError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != EXCLUSION_VIOLATION:
            raise
        conflicts = _lost_race_conflicts(plan, exclude=appointment)
        if overbook and conflicts and all(c.kind == "practitioner" for c in conflicts):
            raise _Retry from exc  # plan again: the practitioner may be overbooked on purpose
        raise BookingConflict(conflicts) from exc


def _lost_race_conflicts(plan: _Plan, *, exclude: Appointment | None) -> list[Conflict]:
    tz_name = plan.location.time_zone
    conflicts = [
        Conflict(
            kind="practitioner",
            label=_by_id(plan.practitioners, pid).display_name,
            start=row_start,
            end=row_end,
            object_id=str(_by_id(plan.practitioners, pid).public_id),
            time_zone=tz_name,
        )
        for pid, row_start, row_end in _practitioner_rows(
            [p.pk for p in plan.practitioners if p.pk not in plan.overbooked],
            plan.start,
            plan.block_end,
            exclude,
        )
    ]
    exclusive = [r for r in plan.resources if r.capacity == 1]
    busy = _resource_rows([r.pk for r in exclusive], plan.start, plan.block_end, exclude)
    for resource in exclusive:
        conflicts += [
            Conflict(
                kind="resource",
                label=resource.name,
                start=row_start,
                end=row_end,
                object_id=str(resource.public_id),
                time_zone=tz_name,
            )
            for row_start, row_end in busy.get(resource.pk, [])
        ]
    return conflicts or [
        Conflict(
            kind="practitioner",
            label=", ".join(p.display_name for p in plan.practitioners),
            start=plan.start,
            end=plan.block_end,
            object_id=str(plan.practitioners[0].public_id),
            time_zone=tz_name,
        )
    ]


# ---- booking ---------------------------------------------------------------------------------


# The booking's write path without the ORM's per-row work (see `_insert_booking`); False sends
# every booking through the ORM path (`save`, `bulk_create`, `enqueue`), as tests compare.
LEAN_WRITES = True

_BOOKING_MODELS = (Appointment, AppointmentPractitioner, AppointmentResource, AppointmentEvent)


def _save_signals_connected() -> bool:
    """Whether anything listens to the saves the lean path does not send (then it is not
    taken)."""
    return any(
        signal.has_listeners(model)
        for signal in (signals.pre_save, signals.post_save)
        for model in _BOOKING_MODELS
    )


def _practitioner_rows_of(
    appointment: Appointment, plan: _Plan
) -> tuple[list[AppointmentPractitioner], list[AppointmentResource]]:
    """The appointment's practitioner and resource rows (unsaved), in id order."""
    practitioner_rows = [
        AppointmentPractitioner(
            appointment=appointment,
            practitioner=p,
            start=plan.start,
            end=plan.block_end,
            is_overbooked=p.pk in plan.overbooked,
        )
        for p in plan.practitioners
    ]
    resource_rows = [
        AppointmentResource(
            appointment=appointment,
            resource=r,
            start=plan.start,
            end=plan.block_end,
            exclusive=r.capacity == 1,
        )
        for r in plan.resources
    ]
    return practitioner_rows, resource_rows


def _insert_booking(
    appointment: Appointment,
    plan: _Plan,
    *,
    actor: User | None,
    via: str,
    overbook: bool,
    detail: str,
    audit_event: dict[str, Any],
    conflict_ends_transaction: bool,
) -> None:
    """Write a booking's rows as the ORM path does (same rows, same audit event, same
    announcement task), with each INSERT's text made once per process
    (scheduling.sql_inserts): the appointment, its practitioner and resource rows, the timeline
    row, the announcement's task row (django-tasks-db) and the audit row. On PostgreSQL, with
    the appointment's id drawn by `_plan_batched`, all of it is one round trip with the audit
    chain's lock (audit.services.record_after_writes). A lost race there is the exclusion
    constraint's error, handled as `_write_rows` does: for the outermost booking it ends the
    transaction (`_LostRace`, looked up after the rollback); else the writes run in a savepoint
    and the conflict is looked up after rolling it back."""
    statements = []
    if plan.appointment_id is not None:
        appointment.pk = plan.appointment_id
        statements.append(insert_statement([appointment]))
    else:
        sql, params = insert_statement([appointment], with_pk=False)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(sql + " RETURNING id", params)
                appointment.pk = int(cursor.fetchone()[0])
            else:
                cursor.execute(sql, params)
                appointment.pk = int(cursor.lastrowid)
    practitioner_rows, resource_rows = _practitioner_rows_of(appointment, plan)
    statements.append(insert_statement(practitioner_rows, with_pk=False))
    if resource_rows:
        statements.append(insert_statement(resource_rows, with_pk=False))
    timeline = AppointmentEvent(
        appointment=appointment, actor=actor, kind="booked", detail=detail[:300]
    )
    statements.append(insert_statement([timeline], with_pk=False))
    task_row = announcement_row(
        appointment_id=appointment.pk,
        change=AppointmentChange.BOOKED,
        actor_id=actor.pk if actor is not None else None,
        via=via,
    )
    if task_row is not None:
        statements.append(task_row.insert_statement())
    if conflict_ends_transaction or connection.vendor != "postgresql":
        try:
            record_after_writes(statements, **audit_event)
        except IntegrityError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != EXCLUSION_VIOLATION:
                raise
            raise _LostRace(plan, overbook) from exc
    else:
        try:
            with transaction.atomic():
                record_after_writes(statements, **audit_event)
        except IntegrityError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != EXCLUSION_VIOLATION:
                raise
            conflicts = _lost_race_conflicts(plan, exclude=appointment)
            if overbook and conflicts and all(c.kind == "practitioner" for c in conflicts):
                raise _Retry from exc  # plan again: the practitioner may be overbooked
            raise BookingConflict(conflicts) from exc
    if task_row is None:
        appointment_changed_on_commit(
            appointment_id=appointment.pk,
            change=AppointmentChange.BOOKED,
            actor_id=actor.pk if actor is not None else None,
            via=via,
        )
    else:
        task_row.announce_enqueued()


def _book(
    *,
    actor: User | None,
    patient: Patient,
    appointment_type: AppointmentType,
    start: dt.datetime,
    practitioners: Iterable[Practitioner],
    resources: Iterable[Resource] | None,
    location: Location | None,
    reason: str,
    overbook: bool,
    overbook_reason: str,
    via: str,
    series: AppointmentSeries | None = None,
    within: Sequence[int] | None = None,
) -> Appointment:
    _require(actor, via, Capability.SCHEDULE_APPOINTMENTS)
    reason = " ".join((reason or "").split())
    if len(reason) > 200:
        raise ValidationError({"reason": "Keep the reason for visit to 200 characters or fewer."})
    overbook_reason = " ".join((overbook_reason or "").split())[:200]
    # A savepoint only where the caller goes on after a conflict (series booking).
    conflict_ends_transaction = _CONFLICT_ENDS_TRANSACTION.get()
    with transaction.atomic(savepoint=not conflict_ends_transaction):
        plan = _plan(
            actor=actor,
            patient=patient,
            appointment_type=appointment_type,
            start=start,
            practitioners=practitioners,
            resources=resources,
            location=location,
            overbook=overbook,
            overbook_reason=overbook_reason,
            within=within,
            lock_patient=True,
        )
        appointment = Appointment(
            patient=patient,
            appointment_type=appointment_type,
            location=plan.location,
            start=plan.start,
            end=plan.end,
            status=S.BOOKED,
            reason=reason,
            series=series,
            is_overbooked=plan.is_overbooked,
            overbook_reason=overbook_reason if plan.is_overbooked else "",
            booked_by=actor,
        )
        names = ", ".join(p.display_name for p in plan.practitioners)
        detail = (
            f"Booked {_when(plan.start, plan.location)} with {names}"
            + (" (overbooked)" if plan.is_overbooked else "")
            + (f" via {via}" if via != "ui" else "")
        )
        fields = ["appointment_type", "start", "end", "location", "practitioners"]
        fields += ["resources"] if plan.resources else []
        fields += ["reason"] if reason else []
        fields += ["is_overbooked", "overbook_reason"] if plan.is_overbooked else []
        audit_event = _audit_event(
            actor=actor,
            via=via,
            action=Action.CREATE,
            event="appointment.book",
            patient=patient,
            obj=appointment,
            fields=fields,
            reason="overbooked" if plan.is_overbooked else "",
        )
        if LEAN_WRITES and not _save_signals_connected():
            _insert_booking(
                appointment,
                plan,
                actor=actor,
                via=via,
                overbook=overbook,
                detail=detail,
                audit_event=audit_event,
                conflict_ends_transaction=conflict_ends_transaction,
            )
            return appointment
        if plan.appointment_id is not None:
            appointment.pk = plan.appointment_id
        appointment.save(force_insert=True)
        _write_rows(appointment, plan, overbook=overbook)
        _timeline(appointment, actor, "booked", detail)
        record(**audit_event)
        appointment_changed_on_commit(
            appointment_id=appointment.pk,
            change=AppointmentChange.BOOKED,
            actor_id=actor.pk if actor is not None else None,
            via=via,
        )
    return appointment


@_retrying
def appointment_book(
    *,
    actor: User | None,
    patient: Patient,
    appointment_type: AppointmentType,
    start: dt.datetime,
    practitioners: Iterable[Practitioner],
    resources: Iterable[Resource] | None = None,
    location: Location | None = None,
    reason: str = "",
    overbook: bool = False,
    overbook_reason: str = "",
    via: str = "ui",
    within: Iterable[Location] | None = None,
) -> Appointment:
    """Book an appointment, or raise BookingConflict naming everything it clashes with.

    `resources` None picks a free resource of each kind the type requires at the location;
    `location` None is the location where every practitioner is available then (among
    `within`, when given: the caller's locations). With
    `overbook`, a user who may overbook can double-book practitioners who allow it (a reason is
    required and recorded); nothing else is waived.
    """
    return _book(
        actor=actor,
        patient=patient,
        appointment_type=appointment_type,
        start=start,
        practitioners=list(practitioners),
        resources=list(resources) if resources is not None else None,
        location=location,
        reason=reason,
        overbook=overbook,
        overbook_reason=overbook_reason,
        via=via,
        within=[loc.pk for loc in within] if within is not None else None,
    )


def _locked(appointment: Appointment) -> Appointment:
    return (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("location", "appointment_type", "patient")
        .get(pk=appointment.pk)
    )


def _refresh(target: Appointment, source: Appointment) -> Appointment:
    """Copy the saved state onto the caller's instance (and return it)."""
    for model_field in Appointment._meta.concrete_fields:
        setattr(target, model_field.attname, getattr(source, model_field.attname))
    return target


def _current_practitioners(appointment: Appointment) -> list[Practitioner]:
    ids = AppointmentPractitioner.objects.filter(appointment=appointment).values("practitioner_id")
    return list(Practitioner.objects.filter(pk__in=ids))


def _current_resources(appointment: Appointment) -> list[Resource]:
    ids = AppointmentResource.objects.filter(appointment=appointment).values("resource_id")
    return list(Resource.objects.filter(pk__in=ids))


def _require_movable(appointment: Appointment) -> None:
    if appointment.status not in (S.PROPOSED, S.BOOKED, S.CONFIRMED):
        raise ValidationError(
            {
                "status": f"A {appointment.get_status_display().lower()} appointment cannot be "
                "moved or changed."
            }
        )


@_retrying
def appointment_reschedule(
    *,
    actor: User | None,
    appointment: Appointment,
    start: dt.datetime,
    practitioners: Iterable[Practitioner] | None = None,
    resources: Iterable[Resource] | None = None,
    via: str = "ui",
) -> Appointment:
    """Move the appointment (same row) to `start`, optionally to other practitioners or
    resources; its own old time does not count as a clash."""
    _require(actor, via, Capability.SCHEDULE_APPOINTMENTS)
    locked = _locked(appointment)
    _require_movable(locked)
    _lock_patient(locked.patient)
    chosen = list(practitioners) if practitioners is not None else _current_practitioners(locked)
    if resources is not None:
        wanted: list[Resource] | None = list(resources)
    else:
        # Keep the current rooms and equipment if they are free at the new time.
        wanted = _current_resources(locked)
    old_start = locked.start
    try:
        plan = _plan(
            actor=actor,
            patient=locked.patient,
            appointment_type=locked.appointment_type,
            start=start,
            practitioners=chosen,
            resources=wanted,
            location=locked.location if practitioners is None else None,
            overbook=False,
            overbook_reason="",
            exclude=locked,
        )
    except BookingConflict:
        if resources is not None or not wanted:
            raise
        plan = _plan(  # the old resources are taken then: pick free ones instead
            actor=actor,
            patient=locked.patient,
            appointment_type=locked.appointment_type,
            start=start,
            practitioners=chosen,
            resources=None,
            location=locked.location if practitioners is None else None,
            overbook=False,
            overbook_reason="",
            exclude=locked,
        )
    _replace_rows(locked, plan)
    locked.start, locked.end, locked.location = plan.start, plan.end, plan.location
    locked.save(update_fields=["start", "end", "location", "updated_at"])
    _timeline(
        locked,
        actor,
        "rescheduled",
        f"Moved from {_when(old_start, plan.location)} to {_when(plan.start, plan.location)}",
    )
    _audit(
        actor=actor,
        via=via,
        action=Action.UPDATE,
        event="appointment.reschedule",
        patient=locked.patient,
        obj=locked,
        fields=["start", "end", "location", "practitioners", "resources"],
    )
    appointment_changed_on_commit(
        appointment_id=locked.pk,
        change=AppointmentChange.RESCHEDULED,
        actor_id=actor.pk if actor is not None else None,
        via=via,
    )
    return _refresh(appointment, locked)


def _replace_rows(appointment: Appointment, plan: _Plan) -> None:
    AppointmentPractitioner.objects.filter(appointment=appointment).delete()
    AppointmentResource.objects.filter(appointment=appointment).delete()
    _write_rows(appointment, plan, overbook=False)


@_retrying
def appointment_update(
    *,
    actor: User | None,
    appointment: Appointment,
    reason: str | None = None,
    appointment_type: AppointmentType | None = None,
    via: str = "ui",
) -> Appointment:
    """Change the reason for visit or the type (a new type's length is checked for clashes)."""
    _require(actor, via, Capability.SCHEDULE_APPOINTMENTS)
    locked = _locked(appointment)
    changed: list[str] = []
    if reason is not None:
        cleaned = " ".join(reason.split())
        if len(cleaned) > 200:
            raise ValidationError(
                {"reason": "Keep the reason for visit to 200 characters or fewer."}
            )
        if cleaned != locked.reason:
            locked.reason = cleaned
            changed.append("reason")
    if appointment_type is not None and appointment_type.pk != locked.appointment_type_id:
        _require_movable(locked)
        plan = _plan(
            actor=actor,
            patient=locked.patient,
            appointment_type=appointment_type,
            start=locked.start,
            practitioners=_current_practitioners(locked),
            resources=None,
            location=locked.location,
            overbook=False,
            overbook_reason="",
            exclude=locked,
            check_past=False,
        )
        _replace_rows(locked, plan)
        locked.appointment_type, locked.end = appointment_type, plan.end
        changed += ["appointment_type", "end", "resources"]
    if not changed:
        return _refresh(appointment, locked)
    locked.save(update_fields=[*(f for f in changed if f != "resources"), "updated_at"])
    _timeline(locked, actor, "modified", "Changed: " + ", ".join(changed).replace("_", " "))
    _audit(
        actor=actor,
        via=via,
        action=Action.UPDATE,
        event="appointment.update",
        patient=locked.patient,
        obj=locked,
        fields=changed,
    )
    appointment_changed_on_commit(
        appointment_id=locked.pk,
        change=AppointmentChange.MODIFIED,
        actor_id=actor.pk if actor is not None else None,
        via=via,
    )
    return _refresh(appointment, locked)


# ---- status transitions ----------------------------------------------------------------------


def _transition(
    *,
    actor: User | None,
    appointment: Appointment,
    to: str,
    via: str,
    change: AppointmentChange,
    event: str,
    values: dict[str, Any] | None = None,
    detail: str = "",
) -> Appointment:
    locked = _locked(appointment)
    if to not in ALLOWED_TRANSITIONS[locked.status]:
        current = S(locked.status).label.lower()
        requested = S(to).label.lower()
        raise ValidationError(
            {"status": f"The appointment is {current}; it cannot become {requested}."}
        )
    values = dict(values or {})
    for name, value in values.items():
        setattr(locked, name, value)
    locked.status = to
    locked.save(update_fields=["status", *values, "updated_at"])
    if to not in BLOCKING_STATUSES:
        # Cancelled and no-show appointments hold no time: free the practitioners and resources.
        AppointmentPractitioner.objects.filter(appointment=locked).update(blocks=False)
        AppointmentResource.objects.filter(appointment=locked).update(blocks=False)
    _timeline(locked, actor, str(to), detail or S(to).label)
    _audit(
        actor=actor,
        via=via,
        action=Action.UPDATE,
        event=event,
        patient=locked.patient,
        obj=locked,
        fields=["status", *values],
    )
    appointment_changed_on_commit(
        appointment_id=locked.pk,
        change=change,
        actor_id=actor.pk if actor is not None else None,
        via=via,
    )
    return _refresh(appointment, locked)


@transaction.atomic
def appointment_cancel(
    *,
    actor: User | None,
    appointment: Appointment,
    cancelled_by: str,
    reason: str,
    via: str = "ui",
) -> Appointment:
    """Cancel (by the patient or the clinic, with a reason), free the time, and offer it to
    the best-matching waitlisted patients."""
    _require(actor, via, Capability.SCHEDULE_APPOINTMENTS)
    reason = " ".join((reason or "").split())
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Give a reason for the cancellation."
    elif len(reason) > 200:
        errors["reason"] = "Keep the reason to 200 characters or fewer."
    if cancelled_by not in CancelledBy.values:
        errors["cancelled_by"] = "Say who cancelled: the patient or the clinic."
    if errors:
        raise ValidationError(errors)
    cancelled = _transition(
        actor=actor,
        appointment=appointment,
        to=S.CANCELLED,
        via=via,
        change=AppointmentChange.CANCELLED,
        event="appointment.cancel",
        values={
            "cancelled_by": cancelled_by,
            "cancel_reason": reason,
            "cancelled_at": timezone.now(),
        },
        detail=f"Cancelled by the {CancelledBy(cancelled_by).label.lower()}",
    )
    waitlist_offer_opening(appointment=cancelled)
    return cancelled


@transaction.atomic
def appointment_confirm(
    *, actor: User | None, appointment: Appointment, via: str = "ui"
) -> Appointment:
    """The patient confirmed they will come."""
    _require(actor, via, Capability.SCHEDULE_APPOINTMENTS, Capability.CHECK_IN)
    return _transition(
        actor=actor,
        appointment=appointment,
        to=S.CONFIRMED,
        via=via,
        change=AppointmentChange.STATUS,
        event="appointment.confirm",
        values={"confirmed_at": timezone.now()},
    )


def _clean_copay(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError({"copay_collected": "Give the amount as a number."}) from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("10000000"):
        raise ValidationError({"copay_collected": "Give an amount from 0 to 9,999,999.99."})
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError({"copay_collected": "Give the amount in dollars and cents."})
    return amount.quantize(Decimal("0.01"))


@transaction.atomic
def appointment_check_in(
    *,
    actor: User | None,
    appointment: Appointment,
    insurance_verified: bool = False,
    copay_collected: Decimal | None = None,
    via: str = "ui",
) -> Appointment:
    """The patient arrived: record whether insurance was verified and any copay collected."""
    _require(actor, via, Capability.CHECK_IN)
    copay = _clean_copay(copay_collected)
    return _transition(
        actor=actor,
        appointment=appointment,
        to=S.ARRIVED,
        via=via,
        change=AppointmentChange.STATUS,
        event="appointment.check_in",
        values={
            "arrived_at": timezone.now(),
            "insurance_verified": bool(insurance_verified),
            "copay_collected": copay,
        },
        detail="Arrived"
        + (", insurance verified" if insurance_verified else "")
        + (", copay collected" if copay is not None else ""),
    )


@transaction.atomic
def appointment_room(
    *,
    actor: User | None,
    appointment: Appointment,
    room: Resource | None = None,
    via: str = "ui",
) -> Appointment:
    """The patient was taken to a room."""
    _require(actor, via, Capability.CHECK_IN)
    if room is not None and (
        room.location_id != appointment.location_id or room.category != ResourceCategory.ROOM
    ):
        raise ValidationError({"room": "Choose a room at the appointment's location."})
    return _transition(
        actor=actor,
        appointment=appointment,
        to=S.IN_ROOM,
        via=via,
        change=AppointmentChange.STATUS,
        event="appointment.room",
        values={"roomed_at": timezone.now(), "room": room},
        detail=f"Roomed in {room.name}" if room is not None else "Roomed",
    )


@transaction.atomic
def appointment_check_out(
    *, actor: User | None, appointment: Appointment, via: str = "ui"
) -> Appointment:
    """The visit is over."""
    _require(actor, via, Capability.CHECK_IN)
    return _transition(
        actor=actor,
        appointment=appointment,
        to=S.COMPLETED,
        via=via,
        change=AppointmentChange.STATUS,
        event="appointment.check_out",
        values={"completed_at": timezone.now()},
    )


@transaction.atomic
def appointment_no_show(
    *, actor: User | None, appointment: Appointment, via: str = "ui"
) -> Appointment:
    """The patient did not come (possible once the start time has passed); frees the time."""
    _require(actor, via, Capability.CHECK_IN, Capability.SCHEDULE_APPOINTMENTS)
    if appointment.start > timezone.now():
        raise ValidationError({"status": "A no-show can be marked once the start time has passed."})
    return _transition(
        actor=actor,
        appointment=appointment,
        to=S.NO_SHOW,
        via=via,
        change=AppointmentChange.NO_SHOW,
        event="appointment.no_show",
        values={"no_show_at": timezone.now()},
    )


# ---- series ----------------------------------------------------------------------------------


def _series_starts(rule: str, first_start: dt.datetime, tz_name: str) -> list[dt.datetime]:
    """Occurrence starts (UTC) of `rule` from `first_start`, repeating the local wall-clock time
    (so a weekly 09:00 stays 09:00 across a daylight-saving change)."""
    try:
        validate_rrule(rule)
    except ValidationError as exc:
        raise ValidationError({"rrule": exc.messages}) from None
    tz = zone(tz_name)
    local = first_start.astimezone(tz).replace(tzinfo=None)
    occurrences = list(
        itertools.islice(
            rrulestr(rule.strip().removeprefix("RRULE:"), dtstart=local, cache=False),
            MAX_SERIES_OCCURRENCES + 1,
        )
    )
    if len(occurrences) > MAX_SERIES_OCCURRENCES:
        raise ValidationError(
            {
                "rrule": f"A series may have at most {MAX_SERIES_OCCURRENCES} occurrences: "
                "add COUNT or UNTIL."
            }
        )
    return [moment.replace(tzinfo=tz).astimezone(dt.UTC) for moment in occurrences]


@_retrying
def series_book(
    *,
    actor: User | None,
    patient: Patient,
    appointment_type: AppointmentType,
    first_start: dt.datetime,
    rrule: str,
    practitioners: Iterable[Practitioner],
    resources: Iterable[Resource] | None = None,
    location: Location | None = None,
    reason: str = "",
    via: str = "ui",
) -> AppointmentSeries:
    """Book every occurrence of a recurring appointment, or none: BookingConflict lists the
    clashes of all occurrences, each label starting with the occurrence's local date.
    Each occurrence is its own Appointment, so changing or cancelling one leaves the others."""
    _require(actor, via, Capability.SCHEDULE_APPOINTMENTS)
    chosen = list(practitioners)
    wanted = list(resources) if resources is not None else None
    start = _clean_start(first_start, check_past=True)
    if location is None:
        end, _ = _type_times(appointment_type, start)
        availability = Availability(
            practitioner_ids=[p.pk for p in chosen],
            start=start,
            end=end,
            appointment_type=appointment_type,
        )
        location = _resolve_location(availability, chosen, start, end)
    tz_name = location.time_zone if location is not None else "UTC"
    starts = _series_starts(rrule, start, tz_name)
    series = AppointmentSeries.objects.create(
        patient=patient,
        appointment_type=appointment_type,
        rrule=rrule.strip(),
        first_start=start,
        created_by=actor,
    )
    token = _CONFLICT_ENDS_TRANSACTION.set(False)  # go on after a conflict, to name them all
    try:
        conflicts = _book_occurrences(
            actor=actor,
            patient=patient,
            appointment_type=appointment_type,
            starts=starts,
            practitioners=chosen,
            resources=wanted,
            location=location,
            reason=reason,
            via=via,
            series=series,
            tz_name=tz_name,
        )
    finally:
        _CONFLICT_ENDS_TRANSACTION.reset(token)
    if conflicts:
        raise BookingConflict(conflicts)
    _audit(
        actor=actor,
        via=via,
        action=Action.CREATE,
        event="appointment.series_book",
        patient=patient,
        obj=series,
        fields=["rrule", "first_start", "appointment_type", "practitioners"],
    )
    return series


def _book_occurrences(
    *,
    actor: User | None,
    patient: Patient,
    appointment_type: AppointmentType,
    starts: list[dt.datetime],
    practitioners: list[Practitioner],
    resources: list[Resource] | None,
    location: Location | None,
    reason: str,
    via: str,
    series: AppointmentSeries,
    tz_name: str,
) -> list[Conflict]:
    conflicts: list[Conflict] = []
    for occurrence in starts:
        try:
            _book(
                actor=actor,
                patient=patient,
                appointment_type=appointment_type,
                start=occurrence,
                practitioners=practitioners,
                resources=resources,
                location=location,
                reason=reason,
                overbook=False,
                overbook_reason="",
                via=via,
                series=series,
            )
        except BookingConflict as exc:
            local_day = occurrence.astimezone(zone(tz_name)).date().isoformat()
            conflicts += exc.prefixed(local_day)
    return conflicts


# ---- waitlist --------------------------------------------------------------------------------


@transaction.atomic
def waitlist_add(
    *,
    actor: User | None,
    patient: Patient,
    appointment_type: AppointmentType,
    location: Location,
    earliest: dt.datetime,
    latest: dt.datetime,
    practitioner: Practitioner | None = None,
    preferred_weekdays: Iterable[int] = (),
    priority: int = 5,
    note: str = "",
    via: str = "ui",
) -> WaitlistEntry:
    """Put a patient on the waitlist for a type (and practitioner, or any) within a window."""
    _require(actor, via, Capability.SCHEDULE_APPOINTMENTS)
    errors: dict[str, str] = {}
    for name, value in (("earliest", earliest), ("latest", latest)):
        if not isinstance(value, dt.datetime) or timezone.is_naive(value):
            errors[name] = "Give a date and time with its UTC offset."
    if not errors and latest <= earliest:
        errors["latest"] = "The end of the window must be after its start."
    elif not errors and latest <= timezone.now():
        errors["latest"] = "The window has already passed."
    weekdays = sorted(set(preferred_weekdays))
    if any(not isinstance(day, int) or not 0 <= day <= 6 for day in weekdays):
        errors["preferred_weekdays"] = "Weekdays are 0 (Monday) to 6 (Sunday)."
    if not 1 <= priority <= 9:
        errors["priority"] = "Priority runs from 1 (most urgent) to 9."
    if len(note) > 200:
        errors["note"] = "Keep the note to 200 characters or fewer."
    allowed = _allowed_practitioner_ids(appointment_type)
    if practitioner is not None and allowed and practitioner.pk not in allowed:
        errors["practitioner"] = (
            f"{practitioner.display_name} does not take {appointment_type.name} appointments."
        )
    if errors:
        raise ValidationError(errors)
    entry = WaitlistEntry.objects.create(
        patient=patient,
        appointment_type=appointment_type,
        location=location,
        practitioner=practitioner,
        earliest=earliest,
        latest=latest,
        preferred_weekdays=weekdays,
        priority=priority,
        note=note.strip(),
        created_by=actor,
    )
    _audit(
        actor=actor,
        via=via,
        action=Action.CREATE,
        event="waitlist.add",
        patient=patient,
        obj=entry,
        fields=[
            "appointment_type",
            "location",
            "earliest",
            "latest",
            *(["practitioner"] if practitioner else []),
            *(["preferred_weekdays"] if weekdays else []),
            "priority",
            *(["note"] if note.strip() else []),
        ],
    )
    return entry


def _matching_entries(
    *,
    appointment_type_id: int,
    location: Location,
    practitioner_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    exclude_patient_id: int | None,
    exclude_entry_ids: Iterable[int] = (),
) -> list[WaitlistEntry]:
    """Waiting entries the slot fits, best first: priority, then who has waited longest."""
    weekday = start.astimezone(zone(location.time_zone)).weekday()
    entries = (
        WaitlistEntry.objects.filter(
            status=WaitlistStatus.WAITING,
            appointment_type_id=appointment_type_id,
            location=location,
            earliest__lte=start,
            latest__gte=end,
        )
        .filter(Q(practitioner__isnull=True) | Q(practitioner_id__in=list(practitioner_ids)))
        .exclude(pk__in=list(exclude_entry_ids))
        .select_related("patient")
        .order_by("priority", "created_at", "id")
    )
    if exclude_patient_id is not None:
        entries = entries.exclude(patient_id=exclude_patient_id)
    return [
        entry
        for entry in entries[:200]
        if not entry.preferred_weekdays or weekday in entry.preferred_weekdays
    ]


def _offer(
    *,
    entries: Sequence[WaitlistEntry],
    practitioner_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    source: Appointment | None,
) -> list[WaitlistOffer]:
    now = timezone.now()
    hours = float(getattr(settings, "WAITLIST_OFFER_HOURS", 2))
    expires = min(now + dt.timedelta(hours=hours), start)
    offers: list[WaitlistOffer] = []
    for entry in entries:
        offer = WaitlistOffer.objects.create(
            entry=entry,
            practitioner_id=entry.practitioner_id or practitioner_ids[0],
            start=start,
            end=end,
            expires_at=expires,
            source_appointment=source,
        )
        entry.status = WaitlistStatus.OFFERED
        entry.save(update_fields=["status", "updated_at"])
        record(
            actor=None,
            action=Action.CREATE,
            event="waitlist.offer",
            category=AUDIT_CATEGORY,
            patient=entry.patient,
            obj=offer,
            fields=["start", "end", "practitioner", "expires_at"],
            username="system",
        )
        waitlist_offered_on_commit(offer_id=offer.pk)
        offers.append(offer)
    return offers


@transaction.atomic
def waitlist_offer_opening(*, appointment: Appointment) -> list[WaitlistOffer]:
    """Offer the time a cancelled appointment freed to the best-matching waitlisted patients
    (settings.WAITLIST_OFFERS_PER_OPENING, default 3; each offer expires after
    settings.WAITLIST_OFFER_HOURS, default 2, or at the slot's start)."""
    if appointment.start <= timezone.now():
        return []
    practitioner_ids = sorted(
        AppointmentPractitioner.objects.filter(appointment=appointment).values_list(
            "practitioner_id", flat=True
        )
    )
    if not practitioner_ids:
        return []
    count = int(getattr(settings, "WAITLIST_OFFERS_PER_OPENING", 3))
    entries = _matching_entries(
        appointment_type_id=appointment.appointment_type_id,
        location=appointment.location,
        practitioner_ids=practitioner_ids,
        start=appointment.start,
        end=appointment.end,
        exclude_patient_id=appointment.patient_id,
    )[:count]
    return _offer(
        entries=entries,
        practitioner_ids=practitioner_ids,
        start=appointment.start,
        end=appointment.end,
        source=appointment,
    )


def _siblings(offer: WaitlistOffer) -> Any:
    """Open offers of the same opening (same source appointment, or same time and
    practitioner when there is no source)."""
    others = WaitlistOffer.objects.filter(status=OfferStatus.OPEN).exclude(pk=offer.pk)
    if offer.source_appointment_id is not None:
        return others.filter(source_appointment_id=offer.source_appointment_id)
    return others.filter(practitioner_id=offer.practitioner_id, start=offer.start)


@_retrying
def waitlist_offer_accept(*, offer: WaitlistOffer, via: str = "patient-link") -> Appointment:
    """The first patient to accept gets the slot (booked through appointment_book); the other
    open offers for it become TAKEN. A late acceptance raises BookingConflict."""
    locked = (
        WaitlistOffer.objects.select_for_update(of=("self",))
        .select_related("entry", "entry__patient", "entry__location", "practitioner")
        .get(pk=offer.pk)
    )
    entry = locked.entry
    tz_name = entry.location.time_zone
    if locked.status != OfferStatus.OPEN:
        raise BookingConflict(
            [
                Conflict(
                    kind="practitioner",
                    label=f"{locked.practitioner.display_name} (this offer is "
                    f"{OfferStatus(locked.status).label.lower()})",
                    start=locked.start,
                    end=locked.end,
                    object_id=str(locked.practitioner.public_id),
                    time_zone=tz_name,
                )
            ]
        )
    if locked.expires_at <= timezone.now():
        raise BookingConflict(
            [
                Conflict(
                    kind="past",
                    label="This offer has expired",
                    start=locked.start,
                    end=locked.end,
                    object_id=str(locked.public_id),
                    time_zone=tz_name,
                )
            ]
        )
    appointment = _book(
        actor=None,
        patient=entry.patient,
        appointment_type=entry.appointment_type,
        start=locked.start,
        practitioners=[locked.practitioner],
        resources=None,
        location=entry.location,
        reason=entry.note,
        overbook=False,
        overbook_reason="",
        via=via,
    )
    locked.status = OfferStatus.ACCEPTED
    locked.save(update_fields=["status", "updated_at"])
    entry.status, entry.booked_appointment = WaitlistStatus.BOOKED, appointment
    entry.save(update_fields=["status", "booked_appointment", "updated_at"])
    others = list(_siblings(locked).select_for_update().values_list("pk", "entry_id"))
    if others:
        WaitlistOffer.objects.filter(pk__in=[pk for pk, _ in others]).update(
            status=OfferStatus.TAKEN, updated_at=timezone.now()
        )
        WaitlistEntry.objects.filter(
            pk__in=[entry_id for _, entry_id in others], status=WaitlistStatus.OFFERED
        ).update(status=WaitlistStatus.WAITING, updated_at=timezone.now())
    _timeline(appointment, None, "waitlist", "Booked from the waitlist")
    record(
        actor=None,
        action=Action.UPDATE,
        event="waitlist.accept",
        category=AUDIT_CATEGORY,
        patient=entry.patient,
        obj=locked,
        fields=["status"],
        username=via,
    )
    return appointment


@transaction.atomic
def waitlist_offer_decline(*, offer: WaitlistOffer, via: str = "patient-link") -> WaitlistOffer:
    """The patient declined: they wait on, and the next best-matching patient is offered the
    slot if it is still open."""
    locked = (
        WaitlistOffer.objects.select_for_update(of=("self",))
        .select_related("entry", "entry__patient", "entry__location")
        .get(pk=offer.pk)
    )
    if locked.status != OfferStatus.OPEN:
        raise ValidationError(
            {"offer": f"This offer is {OfferStatus(locked.status).label.lower()} already."}
        )
    locked.status = OfferStatus.DECLINED
    locked.save(update_fields=["status", "updated_at"])
    entry = locked.entry
    entry.status = WaitlistStatus.WAITING
    entry.save(update_fields=["status", "updated_at"])
    record(
        actor=None,
        action=Action.UPDATE,
        event="waitlist.decline",
        category=AUDIT_CATEGORY,
        patient=entry.patient,
        obj=locked,
        fields=["status"],
        username=via,
    )
    still_free = locked.start > timezone.now() and not _practitioner_rows(
        [locked.practitioner_id], locked.start, locked.end, None
    )
    if still_free:
        offered_before = WaitlistOffer.objects.filter(
            source_appointment_id=locked.source_appointment_id,
            start=locked.start,
            practitioner_id=locked.practitioner_id,
        ).values_list("entry_id", flat=True)
        following = _matching_entries(
            appointment_type_id=entry.appointment_type_id,
            location=entry.location,
            practitioner_ids=[locked.practitioner_id],
            start=locked.start,
            end=locked.end,
            exclude_patient_id=None,
            exclude_entry_ids=list(offered_before),
        )[:1]
        _offer(
            entries=following,
            practitioner_ids=[locked.practitioner_id],
            start=locked.start,
            end=locked.end,
            source=locked.source_appointment,
        )
    offer.status = locked.status
    return locked
