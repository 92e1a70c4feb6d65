"""FHIR R4 read/search of the schedule: Practitioner, Location, Schedule, Slot and Appointment.

Same conventions as fhirapi/views.py (token or session auth, OperationOutcome errors, 404 for
missing and out of scope alike, every refusal audited). Who sees what:

* Practitioner, Location, Schedule and Slot need VIEW_SCHEDULE and are limited to the user's
  locations (practitioners who work there, by listing or by an availability rule). They carry
  no patient data, so only refusals are audited.
* Appointment needs VIEW_SCHEDULE and VIEW_PATIENTS, and the patient must be in the user's scope
  (home location one of theirs, or an open break-glass grant): the resource points at the
  patient. Every read and search is audited (`appointment.view`, `appointment.search`).

Identifiers. A Schedule is one practitioner at one location (no table of its own): its id is a
UUID derived from the two public ids (uuid5), so it is stable and fits `<uuid:public_id>` URLs.
A Slot's id is the schedule id without dashes, the start in UTC (YYYYMMDDHHMM) and the length
in minutes, e.g. `3f2c...9a-202612010900-20`: the same slot always has the same id, and
`Slot/<id>` answers with what that time is now (free for a type of that length, busy, or 404).

Free slots come from scheduling.slots.slot_find for one appointment type (the
`appointment-type` parameter; without it, the shortest type the practitioner takes); busy slots
are the practitioner's blocking appointment rows there (appointment plus buffer).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.utils import timezone

from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability
from core.models import Location
from core.text import fold
from fhirapi.responses import (
    DEFAULT_COUNT,
    MAX_COUNT,
    SearchParameterError,
    _integer,
    _single,
    absolute,
    fhir_response,
    searchset,
)
from fhirapi.views import fhir_endpoint
from patients.models import BreakGlassGrant
from patients.selectors import patient_get_for_user
from scheduling.availability import to_utc, zone
from scheduling.models import (
    Appointment,
    AppointmentPractitioner,
    AppointmentStatus,
    AppointmentType,
    AvailabilityRule,
    CancelledBy,
    Credential,
    OpeningHours,
    Practitioner,
)
from scheduling.slots import slot_find

if TYPE_CHECKING:
    from accounts.models import User

AUDIT_CATEGORY = cast(Category, "scheduling")
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0360 = "http://terminology.hl7.org/CodeSystem/v2-0360|2.7"
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
TIMEZONE_URL = "http://hl7.org/fhir/StructureDefinition/timezone"
TYPE_SYSTEM = "urn:patientdesk:appointment-type"
CANCEL_REASONS = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SCHEDULE_NAMESPACE = uuid.UUID("6c1f7d2e-3a4b-5c6d-8e9f-0a1b2c3d4e5f")
MAX_SLOT_WINDOW = dt.timedelta(days=92)
DEFAULT_SLOT_WINDOW = dt.timedelta(days=7)
APPOINTMENT_MAX_OFFSET = 10_000
S = AppointmentStatus

FHIR_STATUS: dict[str, str] = {
    S.PROPOSED: "proposed",
    S.BOOKED: "booked",
    S.CONFIRMED: "booked",
    S.ARRIVED: "arrived",
    S.IN_ROOM: "checked-in",
    S.COMPLETED: "fulfilled",
    S.CANCELLED: "cancelled",
    S.NO_SHOW: "noshow",
}
FHIR_APPOINTMENT_STATUSES = (
    "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
    "entered-in-error", "checked-in", "waitlist",
)  # fmt: skip
SLOT_STATUSES = ("busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error")
WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# ---- small helpers ---------------------------------------------------------------------------


def _user(request: HttpRequest) -> User:
    return cast("User", request.user)


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value not in ("", None, [], {})}


def _deny(user: User, action: Action, event: str, object_type: str, object_id: str) -> None:
    record(
        actor=user,
        action=action,
        event=event,
        category=AUDIT_CATEGORY,
        object_type=object_type,
        object_id=object_id[:64],
        outcome=Outcome.DENIED,
    )


def _require_search(user: User, event: str, *capabilities: Capability) -> None:
    """403 (audited) for a signed-in user whose roles lack a capability the search needs."""
    if not all(user.can(capability) for capability in capabilities):
        _deny(user, Action.QUERY, event, "", "")
        raise PermissionDenied("Your roles do not allow viewing the schedule.")


def _only(params: QueryDict, allowed: Iterable[str], what: str) -> None:
    names = set(allowed) | {"_format"}
    unknown = sorted(key for key in params if key not in names)
    if unknown:
        listed = ", ".join(sorted(set(allowed)))
        raise SearchParameterError(
            unknown[0], f"{unknown[0]}: not supported. {what} search takes {listed}."
        )
    if _single(params, "_format") not in ("", "json", "application/fhir+json"):
        raise SearchParameterError("_format", "_format: only JSON is served.")


def _reference(params: QueryDict, name: str, *types: str) -> tuple[str, uuid.UUID] | None:
    """(resource type, id) of a reference parameter given as Type/<id> (or <id> when only one
    type is possible)."""
    raw = _single(params, name)
    if not raw:
        return None
    parts = raw.rstrip("/").split("/")
    kind = parts[-2] if len(parts) > 1 else (types[0] if len(types) == 1 else "")
    try:
        if kind not in types:
            raise ValueError(kind)
        return kind, uuid.UUID(parts[-1])
    except ValueError as exc:
        shapes = " or ".join(f"{t}/<id>" for t in types)
        raise SearchParameterError(name, f"{name}: give {shapes}.") from exc


def _paging(params: QueryDict, max_offset: int) -> tuple[int, int]:
    return (
        _integer(params, "_count", DEFAULT_COUNT, 1, MAX_COUNT),
        _integer(params, "_offset", 0, 0, max_offset),
    )


def _next_url(request: HttpRequest, route: str, **changes: str | list[str]) -> str:
    query = request.GET.copy()
    for key, value in changes.items():
        query.setlist(key, [value] if isinstance(value, str) else value)
    return f"{absolute(request, route)}?{query.urlencode()}"


def _bundle(
    request: HttpRequest, resources: list[dict[str, Any]], next_url: str = ""
) -> HttpResponse:
    return fhir_response(
        searchset(request, resources, self_url=request.build_absolute_uri(), next_url=next_url)
    )


# ---- dates in search parameters ----------------------------------------------------------------

_DATE_VALUE = re.compile(
    r"^(?P<prefix>eq|ge|gt|le|lt)?(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(?P<zone>Z|[+-]\d{2}:\d{2}))?$"
)


@dataclass(frozen=True)
class DateBound:
    """One `start=`/`date=` value: a prefix and either a local date (the day at the location)
    or an instant range [low, high) at the value's precision."""

    prefix: str
    day: dt.date | None = None
    low: dt.datetime | None = None
    high: dt.datetime | None = None

    def window(self, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
        if self.day is not None:
            tz = zone(tz_name)
            return (
                to_utc(self.day, dt.time.min, tz),
                to_utc(self.day + dt.timedelta(days=1), dt.time.min, tz),
            )
        if self.low is None or self.high is None:
            raise ValueError("a bound has a day or an instant range")
        return self.low, self.high

    def q(self, tz_name: str, field_name: str = "start") -> Q:
        low, high = self.window(tz_name)
        return {
            "eq": Q(**{f"{field_name}__gte": low, f"{field_name}__lt": high}),
            "ge": Q(**{f"{field_name}__gte": low}),
            "gt": Q(**{f"{field_name}__gte": high}),
            "le": Q(**{f"{field_name}__lt": high}),
            "lt": Q(**{f"{field_name}__lt": low}),
        }[self.prefix]


def parse_date_bounds(params: QueryDict, name: str) -> list[DateBound]:
    bounds: list[DateBound] = []
    for raw in params.getlist(name):
        match = _DATE_VALUE.match(raw.strip())
        try:
            if match is None:
                raise ValueError(raw)
            day = dt.date.fromisoformat(match["date"])
            prefix = match["prefix"] or "eq"
            if match["time"] is None:
                bounds.append(DateBound(prefix, day=day))
                continue
            moment = dt.datetime.fromisoformat(
                f"{match['date']}T{match['time']}{match['zone'].replace('Z', '+00:00')}"
            ).astimezone(dt.UTC)
        except ValueError as exc:
            raise SearchParameterError(
                name,
                f"{name}: give [eq|ge|gt|le|lt]YYYY-MM-DD, or a date and time with its UTC "
                "offset (2026-03-02T09:00:00-05:00).",
            ) from exc
        seconds_given = match["time"].count(":") == 2
        precision = dt.timedelta(seconds=1) if seconds_given else dt.timedelta(minutes=1)
        bounds.append(DateBound(prefix, low=moment, high=moment + precision))
    return bounds


# ---- Practitioner ------------------------------------------------------------------------------


def _credential_display(code: str) -> str:
    label = str(Credential(code).label) if code in Credential.values else code
    return label.split("(", 1)[1].rstrip(")") if "(" in label else label


def practitioner_to_fhir(practitioner: Practitioner) -> dict[str, Any]:
    display = _credential_display(practitioner.credentials)
    return _drop_empty(
        {
            "resourceType": "Practitioner",
            "id": str(practitioner.public_id),
            "meta": {"lastUpdated": _instant(practitioner.updated_at)},
            "identifier": [
                {
                    "use": "official",
                    "type": {
                        "coding": [
                            {
                                "system": V2_0203,
                                "code": "NPI",
                                "display": "National provider identifier",
                            }
                        ]
                    },
                    "system": NPI_SYSTEM,
                    "value": practitioner.npi,
                }
            ],
            "active": practitioner.is_active,
            "name": [
                _drop_empty(
                    {
                        "use": "official",
                        "text": practitioner.display_name,
                        "family": practitioner.family_name,
                        "given": [practitioner.given_name],
                        "suffix": [practitioner.credentials] if practitioner.credentials else [],
                    }
                )
            ],
            "qualification": [
                {
                    "code": {
                        "coding": [
                            {
                                "system": V2_0360,
                                "code": practitioner.credentials,
                                "display": display,
                            }
                        ],
                        "text": display,
                    }
                }
            ]
            if practitioner.credentials
            else [],
        }
    )


def _practitioners_in_scope(user: User) -> QuerySet[Practitioner]:
    """Active practitioners who work at one of the user's locations (listed there, or with an
    active availability rule there)."""
    locations = list(user.location_ids)
    return (
        Practitioner.objects.filter(is_active=True)
        .filter(
            Q(locations__in=locations)
            | Q(availability_rules__location_id__in=locations, availability_rules__is_active=True)
        )
        .distinct()
    )


def practitioner_get_for_user(*, user: User, public_id: uuid.UUID) -> Practitioner:
    found = None
    if user.can(Capability.VIEW_SCHEDULE):
        found = _practitioners_in_scope(user).filter(public_id=public_id).first()
    if found is None:
        _deny(user, Action.READ, "practitioner.view", "scheduling.Practitioner", str(public_id))
        raise Http404("No such practitioner.")
    return found


def _name_parts(practitioner: Practitioner) -> list[str]:
    """Folded given name, family name, and each part of a multi-part family name."""
    words = practitioner.family_name.replace("-", " ").split()
    return [fold(practitioner.given_name), fold(practitioner.family_name), *map(fold, words)]


@fhir_endpoint("GET", "HEAD")
def practitioner_read(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    practitioner = practitioner_get_for_user(user=_user(request), public_id=public_id)
    return fhir_response(practitioner_to_fhir(practitioner))


@fhir_endpoint("GET", "HEAD")
def practitioner_search(request: HttpRequest) -> HttpResponse:
    """GET Practitioner?name=&identifier=: practitioners at the user's locations."""
    user = _user(request)
    _require_search(user, "practitioner.search", Capability.VIEW_SCHEDULE)
    _only(request.GET, ("name", "identifier", "_count", "_offset"), "Practitioner")
    count, offset = _paging(request.GET, 1000)
    rows = _practitioners_in_scope(user)
    identifier = _single(request.GET, "identifier")
    if identifier:
        system, sep, value = identifier.rpartition("|")
        if not value or (sep and system not in ("", NPI_SYSTEM)):
            raise SearchParameterError(
                "identifier", f"identifier: give the NPI as [{NPI_SYSTEM}|]<10 digits>."
            )
        rows = rows.filter(npi=value)
    found = list(rows.order_by("family_name", "given_name", "id"))
    name = fold(_single(request.GET, "name"))
    if name:  # few practitioners: matched here, accents and case ignored
        found = [p for p in found if any(part.startswith(name) for part in _name_parts(p))]
    page = found[offset : offset + count + 1]
    next_url = ""
    if len(page) > count:
        next_url = _next_url(request, "fhir:practitioner-search", _offset=str(offset + count))
    return _bundle(request, [practitioner_to_fhir(p) for p in page[:count]], next_url)


# ---- Location ----------------------------------------------------------------------------------


def _hours_of_operation(hours: Iterable[OpeningHours]) -> list[dict[str, Any]]:
    """Opening hours grouped by identical times: [{daysOfWeek, openingTime, closingTime}]."""
    days_by_times: dict[tuple[dt.time, dt.time], list[int]] = defaultdict(list)
    for row in hours:
        days_by_times[(row.opens, row.closes)].append(row.weekday)
    return [
        {
            "daysOfWeek": [WEEKDAY_CODES[day] for day in sorted(set(days))],
            "openingTime": opens.strftime("%H:%M:%S"),
            "closingTime": closes.strftime("%H:%M:%S"),
        }
        for (opens, closes), days in sorted(days_by_times.items(), key=lambda item: min(item[1]))
    ]


def location_to_fhir(location: Location, hours: Iterable[OpeningHours] = ()) -> dict[str, Any]:
    address = _drop_empty(
        {
            "use": "work",
            "type": "physical",
            "line": [location.address_line1] if location.address_line1 else [],
            "city": location.city,
            "state": location.state,
            "postalCode": location.postal_code,
            "country": "US" if location.address_line1 or location.city else "",
        }
    )
    return _drop_empty(
        {
            "resourceType": "Location",
            "id": str(location.public_id),
            "meta": {"lastUpdated": _instant(location.updated_at)},
            "extension": [{"url": TIMEZONE_URL, "valueCode": location.time_zone}],
            "identifier": [{"system": "urn:patientdesk:location", "value": location.code}],
            "status": "active" if location.is_active else "inactive",
            "name": location.name,
            "mode": "instance",
            "telecom": [{"system": "phone", "value": location.phone, "use": "work"}]
            if location.phone
            else [],
            "address": address if len(address) > 2 else {},
            "hoursOfOperation": _hours_of_operation(hours),
        }
    )


def _locations_with_hours(rows: list[Location]) -> list[dict[str, Any]]:
    hours: dict[int, list[OpeningHours]] = defaultdict(list)
    for row in OpeningHours.objects.filter(location__in=rows).order_by("weekday", "opens"):
        hours[row.location_id].append(row)
    return [location_to_fhir(location, hours[location.pk]) for location in rows]


def location_get_for_user(*, user: User, public_id: uuid.UUID) -> Location:
    found = None
    if user.can(Capability.VIEW_SCHEDULE):
        found = Location.objects.filter(public_id=public_id, pk__in=user.location_ids).first()
    if found is None:
        _deny(user, Action.READ, "location.view", "core.Location", str(public_id))
        raise Http404("No such location.")
    return found


@fhir_endpoint("GET", "HEAD")
def location_read(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    location = location_get_for_user(user=_user(request), public_id=public_id)
    return fhir_response(_locations_with_hours([location])[0])


@fhir_endpoint("GET", "HEAD")
def location_search(request: HttpRequest) -> HttpResponse:
    """GET Location?name=: the user's own locations."""
    user = _user(request)
    _require_search(user, "location.search", Capability.VIEW_SCHEDULE)
    _only(request.GET, ("name",), "Location")
    rows = Location.objects.filter(pk__in=user.location_ids)
    name = _single(request.GET, "name")
    if name:
        rows = rows.filter(name__istartswith=name)
    return _bundle(request, _locations_with_hours(list(rows.order_by("name", "id"))))


# ---- Schedule ----------------------------------------------------------------------------------


@dataclass
class ScheduleRef:
    """One practitioner's schedule at one location, with the availability rules behind it."""

    practitioner: Practitioner
    location: Location
    rules: list[AvailabilityRule] = field(default_factory=list)

    @property
    def id(self) -> uuid.UUID:
        return schedule_id(self.practitioner, self.location)


def schedule_id(practitioner: Practitioner, location: Location) -> uuid.UUID:
    return uuid.uuid5(SCHEDULE_NAMESPACE, f"{practitioner.public_id}/{location.public_id}")


def schedules_for_user(
    *, user: User, practitioner: Practitioner | None = None, location: Location | None = None
) -> list[ScheduleRef]:
    """Schedules at the user's locations (a practitioner listed at a location, or with an active
    rule there), by practitioner and location name. Four queries."""
    location_ids = set(user.location_ids)
    if location is not None:
        location_ids &= {location.pk}
    through = Practitioner.locations.through.objects.filter(location_id__in=location_ids)
    rules_q = AvailabilityRule.objects.filter(location_id__in=location_ids, is_active=True)
    if practitioner is not None:
        through = through.filter(practitioner_id=practitioner.pk)
        rules_q = rules_q.filter(practitioner_id=practitioner.pk)
    rules = list(rules_q.order_by("start_time", "id"))
    pairs = set(through.values_list("practitioner_id", "location_id"))
    pairs |= {(rule.practitioner_id, rule.location_id) for rule in rules}
    practitioners = Practitioner.objects.filter(is_active=True).in_bulk({p for p, _ in pairs})
    locations = Location.objects.in_bulk({loc for _, loc in pairs})
    by_pair: dict[tuple[int, int], list[AvailabilityRule]] = defaultdict(list)
    for rule in rules:
        by_pair[(rule.practitioner_id, rule.location_id)].append(rule)
    found = [
        ScheduleRef(practitioners[p], locations[loc], by_pair[(p, loc)])
        for p, loc in pairs
        if p in practitioners
    ]
    return sorted(
        found,
        key=lambda s: (
            s.practitioner.family_name,
            s.practitioner.given_name,
            s.practitioner.pk,
            s.location.name,
            s.location.pk,
        ),
    )


def schedule_get_for_user(*, user: User, public_id: uuid.UUID) -> ScheduleRef:
    if user.can(Capability.VIEW_SCHEDULE):
        for schedule in schedules_for_user(user=user):
            if schedule.id == public_id:
                return schedule
    _deny(user, Action.READ, "schedule.view", "fhir.Schedule", str(public_id))
    raise Http404("No such schedule.")


def _horizon(schedule: ScheduleRef, today: dt.date) -> dict[str, str]:
    """From today (or the first rule's start) to the end of the booking window (or the last
    rule's end when every rule ends)."""
    ahead = int(getattr(settings, "SCHEDULING_MAX_DAYS_AHEAD", 730))
    end = today + dt.timedelta(days=ahead)
    start = today
    if schedule.rules:
        start = max(today, min(rule.start_date for rule in schedule.rules))
        untils = [rule.until_date for rule in schedule.rules]
        if all(until is not None for until in untils):
            end = min(end, max(u for u in untils if u is not None))
    return {"start": start.isoformat(), "end": max(start, end).isoformat()}


def _rule_text(rule: AvailabilityRule) -> str:
    return f"{rule.rrule} {rule.start_time:%H:%M}-{rule.end_time:%H:%M}"


def schedule_to_fhir(schedule: ScheduleRef, today: dt.date | None = None) -> dict[str, Any]:
    practitioner, location = schedule.practitioner, schedule.location
    today = today or timezone.now().astimezone(zone(location.time_zone)).date()
    comment = "; ".join(_rule_text(rule) for rule in schedule.rules)
    return _drop_empty(
        {
            "resourceType": "Schedule",
            "id": str(schedule.id),
            "active": bool(schedule.rules),
            "specialty": [{"text": practitioner.specialty}] if practitioner.specialty else [],
            "actor": [
                {
                    "reference": f"Practitioner/{practitioner.public_id}",
                    "display": practitioner.display_name,
                },
                {"reference": f"Location/{location.public_id}", "display": location.name},
            ],
            "planningHorizon": _horizon(schedule, today),
            "comment": f"Weekly availability ({location.time_zone}): {comment}" if comment else "",
        }
    )


@fhir_endpoint("GET", "HEAD")
def schedule_read(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    schedule = schedule_get_for_user(user=_user(request), public_id=public_id)
    return fhir_response(schedule_to_fhir(schedule))


@fhir_endpoint("GET", "HEAD")
def schedule_search(request: HttpRequest) -> HttpResponse:
    """GET Schedule?actor=Practitioner/<id> (or Location/<id>): schedules at your locations."""
    user = _user(request)
    _require_search(user, "schedule.search", Capability.VIEW_SCHEDULE)
    _only(request.GET, ("actor",), "Schedule")
    actor = _reference(request.GET, "actor", "Practitioner", "Location")
    practitioner = location = None
    if actor is not None:
        kind, public_id = actor
        if kind == "Practitioner":
            practitioner = Practitioner.objects.filter(public_id=public_id).first()
        else:
            location = Location.objects.filter(public_id=public_id).first()
        if practitioner is None and location is None:
            return _bundle(request, [])
    schedules = schedules_for_user(user=user, practitioner=practitioner, location=location)
    return _bundle(request, [schedule_to_fhir(s) for s in schedules])


# ---- Slot --------------------------------------------------------------------------------------

_SLOT_ID = re.compile(r"^(?P<schedule>[0-9a-f]{32})-(?P<start>\d{12})-(?P<minutes>\d{1,4})$")


def slot_id(schedule: ScheduleRef, start: dt.datetime, end: dt.datetime) -> str:
    minutes = int((end - start).total_seconds() // 60)
    return f"{schedule.id.hex}-{start.astimezone(dt.UTC):%Y%m%d%H%M}-{minutes}"


def _type_concept(appointment_type: AppointmentType) -> dict[str, Any]:
    return {
        "coding": [
            {"system": TYPE_SYSTEM, "code": appointment_type.code, "display": appointment_type.name}
        ],
        "text": appointment_type.name,
    }


def _v2_type(appointment_type: AppointmentType) -> dict[str, Any]:
    """HL7 v2 table 0276 (the appointmentType binding): follow-up, check-up or routine."""
    code = appointment_type.code
    if "follow" in code:
        v2 = ("FOLLOWUP", "A follow up visit from a previous appointment")
    elif "physical" in code or "checkup" in code or "wellness" in code:
        v2 = ("CHECKUP", "A routine check-up, such as an annual physical")
    else:
        v2 = ("ROUTINE", "Routine appointment - default if not valued")
    return {
        "coding": [
            {"system": V2_0276, "code": v2[0], "display": v2[1]},
            {"system": TYPE_SYSTEM, "code": code, "display": appointment_type.name},
        ],
        "text": appointment_type.name,
    }


@dataclass(frozen=True)
class SlotRow:
    start: dt.datetime
    end: dt.datetime
    status: str
    appointment_type: AppointmentType | None = None


def slot_to_fhir(schedule: ScheduleRef, row: SlotRow) -> dict[str, Any]:
    kind = row.appointment_type
    return _drop_empty(
        {
            "resourceType": "Slot",
            "id": slot_id(schedule, row.start, row.end),
            "serviceType": [_type_concept(kind)] if kind is not None else [],
            "appointmentType": _v2_type(kind) if kind is not None and row.status == "free" else {},
            "schedule": {"reference": f"Schedule/{schedule.id}"},
            "status": row.status,
            "start": _instant(row.start),
            "end": _instant(row.end),
        }
    )


def _types_for(practitioner: Practitioner) -> list[AppointmentType]:
    """Active types the practitioner may take, shortest first."""
    return [
        kind
        for kind in AppointmentType.objects.filter(is_active=True)
        .prefetch_related("allowed_practitioners")
        .order_by("duration_minutes", "name", "id")
        if not kind.allowed_practitioners.all()
        or practitioner.pk in {p.pk for p in kind.allowed_practitioners.all()}
    ]


def free_slots(
    schedule: ScheduleRef,
    appointment_type: AppointmentType,
    start: dt.datetime,
    end: dt.datetime,
    limit: int,
) -> list[SlotRow]:
    return [
        SlotRow(slot.start, slot.end, "free", appointment_type)
        for slot in slot_find(
            appointment_type=appointment_type,
            start=start,
            end=end,
            practitioners=[schedule.practitioner],
            location=schedule.location,
            limit=limit,
        )
    ]


def busy_slots(
    schedule: ScheduleRef, start: dt.datetime, end: dt.datetime, limit: int
) -> list[SlotRow]:
    """The practitioner's blocking appointments at the location starting in [start, end), each
    as long as it holds the practitioner (buffer included); the type is shown, not the patient."""
    rows = (
        AppointmentPractitioner.objects.filter(
            practitioner=schedule.practitioner,
            appointment__location=schedule.location,
            blocks=True,
            start__gte=start,
            start__lt=end,
        )
        .select_related("appointment__appointment_type")
        .order_by("start", "end", "id")[: limit * 2]
    )
    seen: set[tuple[dt.datetime, dt.datetime]] = set()
    found: list[SlotRow] = []
    for row in rows:
        if (row.start, row.end) not in seen:  # overbooked appointments share a slot
            seen.add((row.start, row.end))
            found.append(SlotRow(row.start, row.end, "busy", row.appointment.appointment_type))
    return found[:limit]


def _slot_window(params: QueryDict, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    lower: dt.datetime | None = None
    upper: dt.datetime | None = None
    for bound in parse_date_bounds(params, "start"):
        low, high = bound.window(tz_name)
        if bound.prefix in ("eq", "ge", "gt"):
            value = low if bound.prefix in ("eq", "ge") else high
            lower = value if lower is None else max(lower, value)
        if bound.prefix in ("eq", "le", "lt"):
            value = low if bound.prefix == "lt" else high
            upper = value if upper is None else min(upper, value)
    now = timezone.now().replace(microsecond=0)
    lower = lower or now
    upper = upper or lower + DEFAULT_SLOT_WINDOW
    if upper - lower > MAX_SLOT_WINDOW:
        raise SearchParameterError(
            "start", f"start: ask for at most {MAX_SLOT_WINDOW.days} days at a time."
        )
    return lower, upper


def _slot_type(params: QueryDict, schedule: ScheduleRef) -> AppointmentType | None:
    raw = _single(params, "appointment-type")
    if not raw:
        types = _types_for(schedule.practitioner)
        return types[0] if types else None
    system, sep, code = raw.rpartition("|")
    found = None
    if not sep or system == TYPE_SYSTEM:
        found = AppointmentType.objects.filter(code=code, is_active=True).first()
    if found is None:
        raise SearchParameterError(
            "appointment-type",
            f"appointment-type: no such appointment type is offered (give [{TYPE_SYSTEM}|]code).",
        )
    return found


def _slot_statuses(params: QueryDict) -> set[str]:
    raw = _single(params, "status")
    if not raw:
        return {"free", "busy"}
    wanted = {part.strip() for part in raw.split(",")}
    unknown = sorted(wanted - set(SLOT_STATUSES))
    if unknown:
        raise SearchParameterError(
            "status", f"status: '{unknown[0]}' is not a slot status ({', '.join(SLOT_STATUSES)})."
        )
    return wanted


@fhir_endpoint("GET", "HEAD")
def slot_search(request: HttpRequest) -> HttpResponse:
    """GET Slot?schedule=Schedule/<id>&start=ge..&start=lt..&status=free|busy
    &appointment-type=<code>: open and taken times of one schedule (7 days unless told, at
    most 92)."""
    user = _user(request)
    _require_search(user, "slot.search", Capability.VIEW_SCHEDULE)
    _only(
        request.GET,
        ("schedule", "start", "status", "appointment-type", "_count"),
        "Slot",
    )
    reference = _reference(request.GET, "schedule", "Schedule")
    if reference is None:
        raise SearchParameterError("schedule", "schedule: required (Schedule/<id>).")
    schedule = schedule_get_for_user(user=user, public_id=reference[1])
    start, end = _slot_window(request.GET, schedule.location.time_zone)
    statuses = _slot_statuses(request.GET)
    count = _integer(request.GET, "_count", DEFAULT_COUNT, 1, MAX_COUNT)
    rows: list[SlotRow] = []
    if "free" in statuses:
        appointment_type = _slot_type(request.GET, schedule)
        if appointment_type is not None:
            rows += free_slots(schedule, appointment_type, start, end, count + 1)
    if "busy" in statuses:
        rows += busy_slots(schedule, start, end, count + 1)
    rows.sort(key=lambda row: (row.start, row.status))
    next_url = ""
    if len(rows) > count:
        following = rows[count].start
        page = [row for row in rows[:count] if row.start < following]
        resume = f"ge{_instant(following)}"
        if not page:  # the whole page starts at one time: go on after it
            page = rows[:count]
            resume = f"gt{_instant(following)}"
        next_url = _next_url(request, "fhir:slot-search", start=[resume, f"lt{_instant(end)}"])
        rows = page
    return _bundle(request, [slot_to_fhir(schedule, row) for row in rows], next_url)


@fhir_endpoint("GET", "HEAD")
def slot_read(request: HttpRequest, slot: str) -> HttpResponse:
    """Slot/<id>: that time as it is now (busy, free for a type of that length, or 404)."""
    user = _user(request)
    match = _SLOT_ID.match(slot)
    if match is None:
        _deny(user, Action.READ, "slot.view", "fhir.Slot", slot)
        raise Http404("No such slot.")
    schedule = schedule_get_for_user(user=user, public_id=uuid.UUID(hex=match["schedule"]))
    start = dt.datetime.strptime(match["start"], "%Y%m%d%H%M").replace(tzinfo=dt.UTC)
    end = start + dt.timedelta(minutes=int(match["minutes"]))
    for row in busy_slots(schedule, start, start + dt.timedelta(seconds=1), 10):
        if row.end == end:
            return fhir_response(slot_to_fhir(schedule, row))
    for appointment_type in _types_for(schedule.practitioner):
        if dt.timedelta(minutes=appointment_type.duration_minutes) != end - start:
            continue
        for row in free_slots(
            schedule, appointment_type, start, start + dt.timedelta(seconds=1), 1
        ):
            if row.start == start:
                return fhir_response(slot_to_fhir(schedule, row))
    raise Http404("No such slot (it may have been booked).")


# ---- Appointment -------------------------------------------------------------------------------


def _appointment_queryset() -> QuerySet[Appointment]:
    return Appointment.objects.select_related(
        "appointment_type", "location", "patient"
    ).prefetch_related("practitioners", "resources")


def _visible_patients_q(user: User) -> Q:
    """Appointments whose patient the user may see: home location one of theirs, or an open
    break-glass grant."""
    granted = BreakGlassGrant.objects.filter(user=user, expires_at__gt=timezone.now()).values(
        "patient_id"
    )
    return Q(patient__home_location_id__in=list(user.location_ids)) | Q(patient_id__in=granted)


def _may_view_appointments(user: User) -> bool:
    return user.can(Capability.VIEW_SCHEDULE) and user.can(Capability.VIEW_PATIENTS)


def appointment_get_for_user(*, user: User, public_id: uuid.UUID) -> Appointment:
    """The appointment, when the user may see its patient; a read event either way."""
    found = None
    if _may_view_appointments(user):
        found = (
            _appointment_queryset().filter(_visible_patients_q(user), public_id=public_id).first()
        )
    if found is None:
        patient_id = (
            Appointment.objects.filter(public_id=public_id)
            .values_list("patient__public_id", flat=True)
            .first()
        )
        record(
            actor=user,
            action=Action.READ,
            event="appointment.view",
            category=AUDIT_CATEGORY,
            patient_public_id=patient_id,
            object_type="scheduling.Appointment",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such appointment.")
    record(
        actor=user,
        action=Action.READ,
        event="appointment.view",
        category=AUDIT_CATEGORY,
        patient=found.patient,
        obj=found,
    )
    return found


def _patient_status(appointment: Appointment) -> str:
    if appointment.status in (S.PROPOSED, S.BOOKED):
        return "needs-action"
    if appointment.status == S.CANCELLED and appointment.cancelled_by == CancelledBy.PATIENT:
        return "declined"
    return "accepted"


def _cancelation_reason(appointment: Appointment) -> dict[str, Any]:
    if appointment.status != S.CANCELLED:
        return {}
    by_patient = appointment.cancelled_by == CancelledBy.PATIENT
    code, display = ("pat", "Patient") if by_patient else ("prov", "Provider")
    return {
        "coding": [{"system": CANCEL_REASONS, "code": code, "display": display}],
        "text": appointment.cancel_reason,
    }


def appointment_to_fhir(appointment: Appointment) -> dict[str, Any]:
    kind = appointment.appointment_type
    location = appointment.location
    participants: list[dict[str, Any]] = [
        {
            "actor": {"reference": f"Patient/{appointment.patient.public_id}"},
            "required": "required",
            "status": _patient_status(appointment),
        }
    ]
    practitioners = sorted(
        appointment.practitioners.all(), key=lambda p: (p.family_name, p.given_name, p.pk)
    )
    participants += [
        {
            "type": [
                {
                    "coding": [
                        {"system": PARTICIPATION, "code": "PPRF", "display": "primary performer"}
                        if n == 0
                        else {
                            "system": PARTICIPATION,
                            "code": "SPRF",
                            "display": "secondary performer",
                        }
                    ]
                }
            ],
            "actor": {
                "reference": f"Practitioner/{practitioner.public_id}",
                "display": practitioner.display_name,
            },
            "required": "required",
            "status": "accepted",
        }
        for n, practitioner in enumerate(practitioners)
    ]
    participants.append(
        {
            "actor": {"reference": f"Location/{location.public_id}", "display": location.name},
            "required": "required",
            "status": "accepted",
        }
    )
    participants += [
        {"actor": {"display": resource.name}, "required": "required", "status": "accepted"}
        for resource in sorted(appointment.resources.all(), key=lambda r: (r.name, r.pk))
    ]
    minutes = int((appointment.end - appointment.start).total_seconds() // 60)
    return _drop_empty(
        {
            "resourceType": "Appointment",
            "id": str(appointment.public_id),
            "meta": {"lastUpdated": _instant(appointment.updated_at)},
            "status": FHIR_STATUS[appointment.status],
            "cancelationReason": _cancelation_reason(appointment),
            "serviceType": [_type_concept(kind)],
            "appointmentType": _v2_type(kind),
            "reasonCode": [{"text": appointment.reason}] if appointment.reason else [],
            "start": _instant(appointment.start),
            "end": _instant(appointment.end),
            "minutesDuration": minutes if minutes > 0 else None,
            "created": _instant(appointment.created_at),
            "participant": participants,
        }
    )


def _status_filter(params: QueryDict) -> list[str] | None:
    raw = _single(params, "status")
    if not raw:
        return None
    wanted = {part.strip() for part in raw.split(",")}
    unknown = sorted(wanted - set(FHIR_APPOINTMENT_STATUSES))
    if unknown:
        raise SearchParameterError(
            "status", f"status: '{unknown[0]}' is not an appointment status."
        )
    return [ours for ours, theirs in FHIR_STATUS.items() if theirs in wanted]


def _date_filter(bounds: list[DateBound]) -> Q:
    """Each bound applies at the appointment's location: a date means the local day there."""
    combined = Q()
    if not bounds:
        return combined
    zones = sorted(set(Location.objects.values_list("time_zone", flat=True)))
    for bound in bounds:
        if bound.day is None:
            combined &= bound.q("UTC")
            continue
        per_zone = Q()
        for tz_name in zones:
            per_zone |= Q(location__time_zone=tz_name) & bound.q(tz_name)
        combined &= per_zone
    return combined


@fhir_endpoint("GET", "HEAD")
def appointment_read(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    appointment = appointment_get_for_user(user=_user(request), public_id=public_id)
    return fhir_response(appointment_to_fhir(appointment))


@fhir_endpoint("GET", "HEAD")
def appointment_search(request: HttpRequest) -> HttpResponse:
    """GET Appointment?date=&practitioner=&patient=&status=: appointments of patients in your
    scope, by start; one query event on the audit trail."""
    user = _user(request)
    _require_search(user, "appointment.search", Capability.VIEW_SCHEDULE, Capability.VIEW_PATIENTS)
    params = request.GET
    _only(
        params,
        ("date", "practitioner", "patient", "status", "_count", "_offset"),
        "Appointment",
    )
    count, offset = _paging(params, APPOINTMENT_MAX_OFFSET)
    rows = _appointment_queryset().filter(_visible_patients_q(user))
    rows = rows.filter(_date_filter(parse_date_bounds(params, "date")))
    statuses = _status_filter(params)
    if statuses is not None:
        rows = rows.filter(status__in=statuses)
    practitioner = _reference(params, "practitioner", "Practitioner")
    if practitioner is not None:
        rows = rows.filter(
            pk__in=AppointmentPractitioner.objects.filter(
                practitioner__public_id=practitioner[1]
            ).values("appointment_id")
        )
    patient = None
    reference = _reference(params, "patient", "Patient")
    if reference is not None:
        patient = patient_get_for_user(
            user=user,
            public_id=reference[1],
            event="appointment.search",
            category=AUDIT_CATEGORY,
            audit=False,
        )
        rows = rows.filter(patient=patient)
    page = list(rows.order_by("start", "id")[offset : offset + count + 1])
    record(
        actor=user,
        action=Action.QUERY,
        event="appointment.search",
        category=AUDIT_CATEGORY,
        patient=patient,
        object_type="scheduling.Appointment",
        object_id=f"{min(len(page), count)} results",
        fields=sorted(key for key in params if not key.startswith("_")),
    )
    next_url = ""
    if len(page) > count:
        next_url = _next_url(request, "fhir:appointment-search", _offset=str(offset + count))
    return _bundle(request, [appointment_to_fhir(a) for a in page[:count]], next_url)
