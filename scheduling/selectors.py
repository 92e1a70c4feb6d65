"""Reads of the schedule, with the access check and the audit event in one place.

Scope: a user with VIEW_SCHEDULE sees the appointments at their own locations; an appointment
elsewhere is visible when its patient is (the patient's home location is one of the user's, or
a break-glass grant is open). Missing and forbidden both raise Http404, and both are audited.
Lists that show patients are audited as one query event (no PHI in it).

The calendar and check-in board read in a fixed number of queries whatever the number of
appointments (`load_appointments`): the appointments with their patient and room (one join),
their types and locations, which practitioners and resources each has, those practitioners and
resources, and the patients' active alerts.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db.models import (
    Aggregate,
    FilteredRelation,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextField,
)
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone

from audit.models import Action, Outcome
from audit.services import record
from core.capabilities import Capability
from core.models import Location
from patients.models import Patient, PatientFlag
from patients.selectors import has_break_glass, in_scope
from scheduling.availability import to_utc, zone
from scheduling.models import (
    Appointment,
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentStatus,
    AppointmentType,
    CancelledBy,
    Practitioner,
    Resource,
    SetupVersion,
    WaitlistEntry,
    WaitlistStatus,
)

if TYPE_CHECKING:
    from accounts.models import User

AUDIT_CATEGORY = "scheduling"
S = AppointmentStatus


def appointment_base_queryset() -> QuerySet[Appointment]:
    """Appointments with everything a calendar cell shows, in a fixed number of queries."""
    return Appointment.objects.select_related(
        "appointment_type", "location", "patient", "room", "series"
    ).prefetch_related(
        "practitioners",
        "resources",
        Prefetch(
            "patient__flags",
            queryset=PatientFlag.objects.filter(is_active=True),
            to_attr="active_flags",
        ),
    )


_EMPTY_QUERYSETS: dict[type[Any], QuerySet[Any]] = {}


def _cached(model: type[Any], rows: list[Any]) -> QuerySet[Any]:
    """A queryset holding `rows` already, as Django's prefetch_related leaves one (copied from
    a template: building a new SQL query object per row would cost more than the read)."""
    template = _EMPTY_QUERYSETS.get(model)
    if template is None:
        template = _EMPTY_QUERYSETS.setdefault(model, QuerySet(model=model))
    queryset: QuerySet[Any] = QuerySet.__new__(QuerySet)
    queryset.__dict__.update(template.__dict__)
    queryset._hints = {}  # type: ignore[attr-defined]
    queryset._known_related_objects = {}  # type: ignore[attr-defined]
    queryset._result_cache = rows
    queryset._prefetch_done = True  # type: ignore[attr-defined]
    return queryset


def load_appointments(queryset: QuerySet[Appointment]) -> list[Appointment]:
    """Run `queryset` with everything a calendar shows attached, in six more queries whatever
    the number of rows (types, locations, practitioner and resource links, practitioners,
    resources, alerts; fewer when there is nothing to read): `appointment.practitioners.all()`,
    `.resources.all()` and `appointment.patient.active_flags` then read no more.

    Cheaper than prefetch_related for long lists (it builds no queryset per row and no
    duplicate practitioner objects): a 600-appointment day stays well within the calendar's
    time budget."""
    rows = list(queryset.select_related("patient", "room"))
    if not rows:
        return rows
    ids = [row.pk for row in rows]
    # Types and locations are few: one object each, shared by the rows.
    types = AppointmentType.objects.in_bulk({row.appointment_type_id for row in rows})
    locations = Location.objects.in_bulk({row.location_id for row in rows})
    practitioner_links = list(
        AppointmentPractitioner.objects.filter(appointment_id__in=ids)
        .order_by("appointment_id", "practitioner_id")
        .values_list("appointment_id", "practitioner_id")
    )
    practitioners = Practitioner.objects.in_bulk({pid for _, pid in practitioner_links})
    resource_links = list(
        AppointmentResource.objects.filter(appointment_id__in=ids)
        .order_by("appointment_id", "resource_id")
        .values_list("appointment_id", "resource_id")
    )
    resources = Resource.objects.in_bulk({rid for _, rid in resource_links})
    flags: dict[int, list[PatientFlag]] = {}
    for flag in PatientFlag.objects.filter(
        patient_id__in={row.patient_id for row in rows}, is_active=True
    ):
        flags.setdefault(flag.patient_id, []).append(flag)
    by_appointment: dict[int, list[Practitioner]] = {}
    for appointment_id, pid in practitioner_links:
        by_appointment.setdefault(appointment_id, []).append(practitioners[pid])
    rooms: dict[int, list[Resource]] = {}
    for appointment_id, rid in resource_links:
        rooms.setdefault(appointment_id, []).append(resources[rid])
    type_field = Appointment._meta.get_field("appointment_type")
    location_field = Appointment._meta.get_field("location")
    for row in rows:
        # Cache the shared objects as select_related would (no per-row descriptor checks).
        type_field.set_cached_value(row, types[row.appointment_type_id])
        location_field.set_cached_value(row, locations[row.location_id])
        row._prefetched_objects_cache = {  # type: ignore[attr-defined]
            "practitioners": _cached(
                Practitioner, sorted(by_appointment.get(row.pk, []), key=_practitioner_order)
            ),
            "resources": _cached(Resource, rooms.get(row.pk, [])),
        }
        row.patient.active_flags = flags.get(row.patient_id, [])  # type: ignore[attr-defined]
    return rows


class CalendarType(NamedTuple):
    """What a calendar shows of an appointment's type (its colour class and name)."""

    code: str
    name: str


class CalendarPatient:
    """What a calendar cell shows of the patient: the name and the active alerts."""

    __slots__ = ("banner_flags", "family_name", "given_name")

    def __init__(self, family_name: str, given_name: str, flags: list[PatientFlag]) -> None:
        self.family_name, self.given_name = family_name, given_name
        self.set_flags(flags)

    def set_flags(self, flags: list[PatientFlag]) -> None:
        """The active alerts, most severe first."""
        self.banner_flags = (
            sorted(flags, key=lambda flag: (flag.severity_rank, flag.kind))
            if len(flags) > 1
            else flags
        )


_STATUS_LABELS = dict(AppointmentStatus.choices)
_CANCELLED_BY_LABELS = dict(CancelledBy.choices)


class CalendarEntry:
    """One appointment as the calendar draws it: plain values read with `values_list` (no
    model instances), the type and patient it shows, its practitioners' and resources' ids."""

    __slots__ = (
        "appointment_type",
        "cancelled_by",
        "end",
        "is_overbooked",
        "patient",
        "pk",
        "practitioner_ids",
        "public_id",
        "resource_ids",
        "start",
        "status",
    )

    def __init__(
        self, row: tuple[Any, ...], patient: CalendarPatient, appointment_type: CalendarType
    ) -> None:
        self.pk, self.status, self.is_overbooked = row[0], row[4], row[5]
        self.public_id = _uuid_text(row[1])
        self.start, self.end = _instant(row[2]), _instant(row[3])
        self.cancelled_by: str = row[6]
        self.appointment_type = appointment_type
        self.patient = patient
        self.practitioner_ids: list[int] = []
        self.resource_ids: list[int] = []

    def get_status_display(self) -> str:
        return str(_STATUS_LABELS.get(self.status, self.status))

    def get_cancelled_by_display(self) -> str:
        return str(_CANCELLED_BY_LABELS.get(self.cancelled_by, self.cancelled_by))


def _uuid_text(text: str) -> str:
    """A UUID read as text in its usual form (SQLite stores 32 hex digits, PostgreSQL prints
    the dashed form)."""
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def _instant(text: str) -> dt.datetime:
    """A timestamp read as text (see _ENTRY_COLUMNS) as an aware UTC datetime."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# The public id, start and end are read as text (the times parsed with datetime.fromisoformat):
# several times faster than the drivers' own conversions (psycopg's timestamptz loader, Django's
# SQLite converters), which were most of the cost of reading a long day. Both databases'
# connections run in UTC.
_AS_TEXT = {
    "public_id_text": Cast("public_id", output_field=TextField()),
    "start_text": Cast("start", output_field=TextField()),
    "end_text": Cast("end", output_field=TextField()),
}
_ENTRY_COLUMNS = (
    "id",
    "public_id_text",
    "start_text",
    "end_text",
    "status",
    "is_overbooked",
    "cancelled_by",
    "patient_id",
    "appointment_type__code",
    "appointment_type__name",
    "patient__family_name",
    "patient__given_name",
)


class _IdList(Aggregate):
    """The ids aggregated as comma-separated text, in no particular order (PostgreSQL
    STRING_AGG, SQLite GROUP_CONCAT)."""

    function = "STRING_AGG"
    template = "%(function)s(CAST(%(expressions)s AS TEXT), ',')"
    output_field = TextField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return super().as_sql(
            compiler,
            connection,
            function="GROUP_CONCAT",
            template="%(function)s(%(expressions)s)",
            **extra_context,
        )


def _linked_ids(model: type[Any], column: str) -> Subquery:
    """The ids `column` of the appointment's `model` links (through rows), as _IdList text."""
    return Subquery(
        model.objects.filter(appointment_id=OuterRef("pk"))
        .order_by()
        .values("appointment_id")
        .annotate(ids=_IdList(column))
        .values("ids")
    )


def _ids(text: str | None) -> list[int]:
    if not text:
        return []
    if "," not in text:
        return [int(text)]
    return sorted(int(part) for part in text.split(","))


def calendar_entries(queryset: QuerySet[Appointment]) -> list[CalendarEntry]:
    """The calendar's view of the appointments `queryset` selects, in order, in one query
    whatever their number: the appointments with their type and patient name, their
    practitioners' and resources' ids (each a correlated subquery, so that a filter of
    `queryset` on those links does not narrow them) and their patients' active alerts (a join:
    an appointment comes once per alert). Plain rows, no model instances, so a 600-appointment
    day loads in a few milliseconds."""
    rows = list(
        queryset.annotate(
            **_AS_TEXT,
            practitioner_ids=_linked_ids(AppointmentPractitioner, "practitioner_id"),
            resource_ids=_linked_ids(AppointmentResource, "resource_id"),
            alert=FilteredRelation("patient__flags", condition=Q(patient__flags__is_active=True)),
        ).values_list(
            *_ENTRY_COLUMNS,
            "practitioner_ids",
            "resource_ids",
            "alert__id",
            "alert__kind",
            "alert__severity",
        )
    )
    patients: dict[int, CalendarPatient] = {}
    flags: dict[int, dict[int, PatientFlag]] = {}
    types: dict[tuple[str, str], CalendarType] = {}
    entries: dict[int, CalendarEntry] = {}
    # row: the _ENTRY_COLUMNS (0-11), the practitioner ids (12) and resource ids (13) as text,
    # one active alert's id, kind and severity (14-16; None when the patient has none)
    for row in rows:
        if row[14] is not None:  # one of the patient's active alerts
            flags.setdefault(row[7], {})[row[14]] = PatientFlag(
                id=row[14], patient_id=row[7], kind=row[15], severity=row[16]
            )
        if row[0] in entries:  # the same appointment again, for another alert
            continue
        patient = patients.get(row[7])
        if patient is None:
            patient = patients[row[7]] = CalendarPatient(row[10], row[11], [])
        kind = types.get((row[8], row[9]))
        if kind is None:
            kind = types[(row[8], row[9])] = CalendarType(row[8], row[9])
        entry = entries[row[0]] = CalendarEntry(row, patient, kind)
        entry.practitioner_ids = _ids(row[12])
        entry.resource_ids = _ids(row[13])
    for patient_id, alerts in flags.items():
        patients[patient_id].set_flags(list(alerts.values()))
    return list(entries.values())


def _practitioner_order(practitioner: Practitioner) -> tuple[str, str, int]:
    return (practitioner.family_name, practitioner.given_name, practitioner.pk)


def _deny(user: User, event: str, object_type: str, object_id: str) -> None:
    record(
        actor=user,
        action=Action.READ,
        event=event,
        category=AUDIT_CATEGORY,
        object_type=object_type,
        object_id=object_id,
        outcome=Outcome.DENIED,
    )


def _patient_visible(user: User, patient: Patient) -> bool:
    return user.can(Capability.VIEW_PATIENTS) and (
        in_scope(user=user, patient=patient) or has_break_glass(user=user, patient=patient)
    )


def can_see_appointment(*, user: User, appointment: Appointment) -> bool:
    if not user.can(Capability.VIEW_SCHEDULE):
        return False
    return appointment.location_id in user.location_ids or _patient_visible(
        user, appointment.patient
    )


def appointment_get_for_user(
    *, user: User, public_id: uuid.UUID | str, event: str = "appointment.view"
) -> Appointment:
    """One appointment the user may see (Http404 otherwise), with a read event on the trail."""
    appointment = appointment_base_queryset().filter(public_id=public_id).first()
    if appointment is None or not can_see_appointment(user=user, appointment=appointment):
        record(
            actor=user,
            action=Action.READ,
            event=event,
            category=AUDIT_CATEGORY,
            patient_public_id=appointment.patient.public_id if appointment else None,
            object_type="scheduling.Appointment",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such appointment.")
    record(
        actor=user,
        action=Action.READ,
        event=event,
        category=AUDIT_CATEGORY,
        patient=appointment.patient,
        obj=appointment,
    )
    return appointment


def day_bounds(location: Location, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants of local midnight at the start and end of `day` at the location."""
    tz = zone(location.time_zone)
    return to_utc(day, dt.time.min, tz), to_utc(day + dt.timedelta(days=1), dt.time.min, tz)


def _require_location(user: User, location: Location, event: str) -> None:
    if not user.can(Capability.VIEW_SCHEDULE) or location.pk not in user.location_ids:
        _deny(user, event, "core.Location", str(location.public_id))
        raise Http404("No such location.")


def _list_event(user: User, event: str, object_id: str, patient: Patient | None = None) -> None:
    record(
        actor=user,
        action=Action.QUERY,
        event=event,
        category=AUDIT_CATEGORY,
        patient=patient,
        object_type="scheduling.Appointment",
        object_id=object_id[:64],
    )


def appointments_for_location_day(
    *, user: User, location: Location, day: dt.date
) -> list[Appointment]:
    """Every appointment starting on `day` (local) at the location, all statuses, by start."""
    _require_location(user, location, "appointment.day_list")
    start, end = day_bounds(location, day)
    rows = load_appointments(
        Appointment.objects.filter(location=location, start__gte=start, start__lt=end).order_by(
            "start", "id"
        )
    )
    _list_event(user, "appointment.day_list", f"{location.code} {day.isoformat()}: {len(rows)}")
    return rows


def calendar_entries_for_location_day(
    *, user: User, location: Location, day: dt.date
) -> list[CalendarEntry]:
    """The day view's read of `appointments_for_location_day`: the same appointments, access
    check and audit event, as light CalendarEntry rows."""
    _require_location(user, location, "appointment.day_list")
    start, end = day_bounds(location, day)
    rows = calendar_entries(
        Appointment.objects.filter(location=location, start__gte=start, start__lt=end).order_by(
            "start", "id"
        )
    )
    _list_event(user, "appointment.day_list", f"{location.code} {day.isoformat()}: {len(rows)}")
    return rows


def appointments_for_practitioner_day(
    *, user: User, practitioner: Practitioner, day: dt.date
) -> list[Appointment]:
    """The practitioner's appointments starting on `day` (local to each appointment's location)
    at the user's locations."""
    if not user.can(Capability.VIEW_SCHEDULE):
        _deny(
            user,
            "appointment.practitioner_day",
            "scheduling.Practitioner",
            str(practitioner.public_id),
        )
        raise Http404("No such practitioner.")
    widest = dt.timedelta(hours=15)  # UTC offsets run from -12:00 to +14:00
    lower = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC) - widest
    upper = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC) + widest
    candidates = load_appointments(
        Appointment.objects.filter(
            practitioners=practitioner,
            location_id__in=user.location_ids,
            start__gte=lower,
            start__lt=upper,
        ).order_by("start", "id")
    )
    rows = [a for a in candidates if a.start.astimezone(zone(a.location.time_zone)).date() == day]
    _list_event(
        user,
        "appointment.practitioner_day",
        f"{practitioner.public_id} {day.isoformat()}: {len(rows)}",
    )
    return rows


def appointments_for_patient(*, user: User, patient: Patient) -> list[Appointment]:
    """All of a patient's appointments the user may see, newest first (Http404 when the patient
    is outside the user's scope)."""
    if not (user.can(Capability.VIEW_SCHEDULE) or user.can(Capability.VIEW_PATIENTS)) or not (
        in_scope(user=user, patient=patient) or has_break_glass(user=user, patient=patient)
    ):
        record(
            actor=user,
            action=Action.QUERY,
            event="appointment.patient_list",
            category=AUDIT_CATEGORY,
            patient=patient,
            object_type="patients.Patient",
            object_id=str(patient.public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such patient.")
    rows = load_appointments(Appointment.objects.filter(patient=patient).order_by("-start", "-id"))
    _list_event(user, "appointment.patient_list", f"{len(rows)} results", patient=patient)
    return rows


def split_upcoming(
    appointments: Iterable[Appointment], now: dt.datetime | None = None
) -> tuple[list[Appointment], list[Appointment]]:
    """(upcoming soonest first, past newest first) of a patient's appointments."""
    now = now or timezone.now()
    rows = list(appointments)
    upcoming = sorted((a for a in rows if a.end > now), key=lambda a: (a.start, a.pk))
    past = sorted((a for a in rows if a.end <= now), key=lambda a: (a.start, a.pk), reverse=True)
    return upcoming, past


def practitioners_for_location(
    *,
    location: Location,
    user: User | None = None,
    appointment_type: AppointmentType | None = None,
    with_setup_token: bool = False,
) -> list[Practitioner]:
    """Active practitioners who work at the location (listed there or with an availability
    rule there), by name; with `appointment_type`, only those who take it. With `user`, the
    location must be one of theirs (Http404 otherwise). `with_setup_token`: each row also
    carries `setup_token`, the availability setup's current token (scheduling.setup_cache) read
    by the same query, for a caller that goes on to read availability (saves that query)."""
    if user is not None:
        _require_location(user, location, "practitioner.list")
    rows = (
        Practitioner.objects.filter(is_active=True)
        .filter(
            Q(locations=location)
            | Q(availability_rules__location=location, availability_rules__is_active=True)
        )
        .distinct()
        .order_by("family_name", "given_name", "id")
    )
    if with_setup_token:
        rows = rows.annotate(
            setup_token=Subquery(SetupVersion.objects.order_by("id").values("token")[:1])
        )
    if appointment_type is not None:
        allowed = list(appointment_type.allowed_practitioners.values_list("id", flat=True))
        if allowed:
            rows = rows.filter(pk__in=allowed)
    return list(rows)


def practitioners_for_user(*, user: User) -> list[Practitioner]:
    """Active practitioners at any of the user's locations, with their locations."""
    if not user.can(Capability.VIEW_SCHEDULE):
        return []
    return list(
        Practitioner.objects.filter(is_active=True)
        .filter(
            Q(locations__in=user.location_ids)
            | Q(availability_rules__location_id__in=user.location_ids)
        )
        .distinct()
        .prefetch_related("locations")
        .order_by("family_name", "given_name", "id")
    )


def appointment_types_active() -> list[AppointmentType]:
    return list(
        AppointmentType.objects.filter(is_active=True)
        .prefetch_related("allowed_practitioners")
        .order_by("name")
    )


@dataclass
class BoardRow:
    appointment: Appointment
    waiting_minutes: int | None = None  # since arrival, for arrived patients not yet roomed
    minutes_late: int | None = None  # for expected patients whose start has passed


@dataclass
class CheckinBoard:
    """Today's front desk: who is expected, waiting, in a room, done, missed or cancelled."""

    location: Location
    day: dt.date
    expected: list[BoardRow] = field(default_factory=list)
    arrived: list[BoardRow] = field(default_factory=list)
    in_room: list[BoardRow] = field(default_factory=list)
    completed: list[BoardRow] = field(default_factory=list)
    no_show: list[BoardRow] = field(default_factory=list)
    cancelled: list[BoardRow] = field(default_factory=list)

    @property
    def late(self) -> list[BoardRow]:
        return [row for row in self.expected if row.minutes_late]


def checkin_board(
    *, user: User, location: Location, day: dt.date | None = None, now: dt.datetime | None = None
) -> CheckinBoard:
    """The check-in board of a location for `day` (today at the location by default)."""
    now = now or timezone.now()
    day = day or now.astimezone(zone(location.time_zone)).date()
    _require_location(user, location, "appointment.checkin_board")
    start, end = day_bounds(location, day)
    rows = load_appointments(
        Appointment.objects.filter(location=location, start__gte=start, start__lt=end).order_by(
            "start", "id"
        )
    )
    board = CheckinBoard(location=location, day=day)
    for appointment in rows:
        status = appointment.status
        if status in (S.PROPOSED, S.BOOKED, S.CONFIRMED):
            late = int((now - appointment.start).total_seconds() // 60)
            board.expected.append(BoardRow(appointment, minutes_late=late if late > 0 else None))
        elif status == S.ARRIVED:
            since = appointment.arrived_at or now
            waited = max(0, int((now - since).total_seconds() // 60))
            board.arrived.append(BoardRow(appointment, waiting_minutes=waited))
        elif status == S.IN_ROOM:
            board.in_room.append(BoardRow(appointment))
        elif status == S.COMPLETED:
            board.completed.append(BoardRow(appointment))
        elif status == S.NO_SHOW:
            board.no_show.append(BoardRow(appointment))
        else:
            board.cancelled.append(BoardRow(appointment))
    _list_event(
        user, "appointment.checkin_board", f"{location.code} {day.isoformat()}: {len(rows)}"
    )
    return board


def waitlist_for_location(*, user: User, location: Location) -> list[WaitlistEntry]:
    """Waiting and offered entries at the location, best first (priority, then age)."""
    _require_location(user, location, "waitlist.list")
    rows = list(
        WaitlistEntry.objects.filter(
            location=location, status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED]
        )
        .select_related("patient", "appointment_type", "practitioner")
        .order_by("priority", "created_at", "id")
    )
    record(
        actor=user,
        action=Action.QUERY,
        event="waitlist.list",
        category=AUDIT_CATEGORY,
        object_type="scheduling.WaitlistEntry",
        object_id=f"{location.code}: {len(rows)}",
    )
    return rows


def appointment_refetch(*, appointment: Appointment) -> Appointment:
    """The appointment read again after a change, with what a calendar cell shows (the caller
    has already read it through appointment_get_for_user, which audited the read)."""
    return appointment_base_queryset().get(pk=appointment.pk)


# ---- references by public id (API and forms); not found is a field error ---------------------


def lookup_appointment_type(
    public_id: uuid.UUID | str, field_name: str = "appointment_type"
) -> AppointmentType:
    found = AppointmentType.objects.filter(public_id=public_id, is_active=True).first()
    if found is None:
        raise ValidationError({field_name: "No such appointment type is offered."})
    return found


def lookup_practitioner(
    public_id: uuid.UUID | str, field_name: str = "practitioner"
) -> Practitioner:
    return lookup_practitioners([public_id], field_name=field_name)[0]


def lookup_practitioners(
    public_ids: Iterable[uuid.UUID | str | None], field_name: str = "practitioners"
) -> list[Practitioner]:
    wanted = [str(pk) for pk in public_ids if pk is not None]
    found = {str(p.public_id): p for p in Practitioner.objects.filter(public_id__in=wanted)}
    missing = [pk for pk in wanted if pk not in found]
    if missing or not wanted:
        raise ValidationError({field_name: "No such practitioner: " + ", ".join(missing)})
    return [found[pk] for pk in dict.fromkeys(wanted)]


def lookup_resources(
    public_ids: Iterable[uuid.UUID | str] | None, field_name: str = "resources"
) -> list[Resource] | None:
    if public_ids is None:
        return None
    wanted = [str(pk) for pk in public_ids]
    found = {str(r.public_id): r for r in Resource.objects.filter(public_id__in=wanted)}
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise ValidationError({field_name: "No such resource: " + ", ".join(missing)})
    return [found[pk] for pk in dict.fromkeys(wanted)]


def user_locations(user: User) -> list[Location]:
    return list(Location.objects.filter(pk__in=user.location_ids, is_active=True))


def lookup_location(
    *, user: User, public_id: uuid.UUID | str | None, field_name: str = "location"
) -> Location | None:
    """One of the user's active locations, or None when none is named."""
    if public_id is None:
        return None
    location = Location.objects.filter(public_id=public_id, is_active=True).first()
    if location is None or location.pk not in user.location_ids:
        raise ValidationError({field_name: "Give one of your own locations."})
    return location
