"""The scheduling routes of the JSON API (mounted at /api/v1/ by api/api.py).

Same selectors and services as the UI. A booking that clashes answers 409 problem+json with
`conflicts: [{kind, label, start, end, object_id}]`; other errors follow api/errors.py (422 with
the fields named, 403 for a missing capability, 404 for missing or out-of-scope records).
Identifiers are public UUIDs; query strings carry no patient data.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import AfterValidator, AwareDatetime, Field

from api.auth import API_AUTH, require
from api.errors import problem
from api.schemas import Alert, InputSchema, LocationRef, Problem, text
from audit.models import Action, Category
from core.capabilities import Capability
from patients.selectors import patient_get_for_user
from scheduling.conflicts import BookingConflict
from scheduling.models import Appointment, AppointmentType, Practitioner
from scheduling.selectors import (
    appointment_get_for_user,
    appointment_refetch,
    appointment_types_active,
    appointments_for_practitioner_day,
    lookup_appointment_type,
    lookup_location,
    lookup_practitioner,
    lookup_practitioners,
    lookup_resources,
    practitioners_for_user,
    user_locations,
)
from scheduling.services import (
    appointment_book,
    appointment_cancel,
    appointment_check_in,
    appointment_no_show,
    appointment_reschedule,
)
from scheduling.slots import Slot, slot_find

if TYPE_CHECKING:
    from accounts.models import User

CONFLICT_TYPE = "urn:patientdesk:problem:booking-conflict"
CATEGORY = Category.SCHEDULING
MAX_SLOT_WINDOW = dt.timedelta(days=92)

router = Router(auth=API_AUTH, tags=["scheduling"])


def _reasonable(value: dt.datetime) -> dt.datetime:
    if not 2000 <= value.year <= 2100:
        raise ValueError("Give a date between the years 2000 and 2100.")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_reasonable)]


# ---- schemas ---------------------------------------------------------------------------------


class PractitionerOut(Schema):
    public_id: uuid.UUID
    display_name: str
    given_name: str
    family_name: str
    credentials: str
    npi: str
    specialty: str
    accepts_new_patients: bool
    allows_overbooking: bool
    locations: list[uuid.UUID]


class AppointmentTypeOut(Schema):
    public_id: uuid.UUID
    code: str
    name: str
    duration_minutes: int
    buffer_minutes: int
    color: str
    is_new_patient: bool
    is_telehealth: bool
    required_resource_kinds: list[str]
    allowed_practitioners: list[uuid.UUID] = Field(description="Empty: every practitioner.")


class SlotParams(Schema):
    appointment_type: uuid.UUID
    practitioner: uuid.UUID | None = None
    location: uuid.UUID | None = None
    start: Moment
    end: Moment
    limit: int = Field(10, ge=1, le=100)


class ResourceRef(Schema):
    public_id: uuid.UUID
    name: str
    kind: str


class PractitionerRef(Schema):
    public_id: uuid.UUID
    display_name: str


class SlotOut(Schema):
    start: dt.datetime
    end: dt.datetime
    practitioner: PractitionerRef
    location: LocationRef
    resources: list[ResourceRef]


class TypeRef(Schema):
    public_id: uuid.UUID
    code: str
    name: str
    color: str


class PatientRef(Schema):
    public_id: uuid.UUID
    mrn: str
    family_name: str
    given_name: str
    alerts: list[Alert]


class AppointmentOut(Schema):
    public_id: uuid.UUID
    status: str
    start: dt.datetime
    end: dt.datetime
    appointment_type: TypeRef
    location: LocationRef
    patient: PatientRef
    practitioners: list[PractitionerRef]
    resources: list[ResourceRef]
    reason: str
    is_overbooked: bool
    series: uuid.UUID | None
    cancelled_by: str
    cancel_reason: str
    cancelled_at: dt.datetime | None
    confirmed_at: dt.datetime | None
    arrived_at: dt.datetime | None
    roomed_at: dt.datetime | None
    completed_at: dt.datetime | None
    no_show_at: dt.datetime | None
    insurance_verified: bool
    copay_collected: Decimal | None


class AppointmentCreate(InputSchema):
    patient: uuid.UUID
    appointment_type: uuid.UUID
    start: Moment
    practitioners: list[uuid.UUID] | None = Field(None, min_length=1, max_length=10)
    practitioner: uuid.UUID | None = None
    resources: list[uuid.UUID] | None = Field(None, max_length=10)
    location: uuid.UUID | None = None
    reason: text(200) = ""  # type: ignore[valid-type]
    overbook: bool = False
    overbook_reason: text(200) = ""  # type: ignore[valid-type]


class CancelIn(InputSchema):
    cancelled_by: Literal["patient", "clinic"]
    reason: text(200, 1)  # type: ignore[valid-type]


class RescheduleIn(InputSchema):
    start: Moment
    practitioners: list[uuid.UUID] | None = Field(None, min_length=1, max_length=10)
    resources: list[uuid.UUID] | None = Field(None, max_length=10)


class CheckInIn(InputSchema):
    insurance_verified: bool = False
    copay_collected: Decimal | None = Field(None, ge=0, max_digits=9, decimal_places=2)


class AppointmentListParams(Schema):
    practitioner: uuid.UUID
    date: dt.date


class ConflictOut(Schema):
    kind: str
    label: str
    start: dt.datetime | None
    end: dt.datetime | None
    object_id: str


class ConflictProblem(Problem):
    conflicts: list[ConflictOut]


ERRORS: dict[int, Any] = {401: Problem, 403: Problem, 404: Problem, 422: Problem}


# ---- presenting ------------------------------------------------------------------------------

PRACTITIONER_FIELDS = (
    "public_id", "display_name", "given_name", "family_name", "credentials", "npi", "specialty",
    "accepts_new_patients", "allows_overbooking",
)  # fmt: skip
TYPE_FIELDS = (
    "public_id", "code", "name", "duration_minutes", "buffer_minutes", "color", "is_new_patient",
    "is_telehealth", "required_resource_kinds",
)  # fmt: skip
APPOINTMENT_FIELDS = (
    "public_id", "status", "start", "end", "reason", "is_overbooked", "cancelled_by",
    "cancel_reason", "cancelled_at", "confirmed_at", "arrived_at", "roomed_at", "completed_at",
    "no_show_at", "insurance_verified", "copay_collected",
)  # fmt: skip


def _location(location: Any) -> dict[str, Any]:
    return {"public_id": location.public_id, "code": location.code, "name": location.name}


def _resource(resource: Any) -> dict[str, Any]:
    return {"public_id": resource.public_id, "name": resource.name, "kind": resource.kind}


def _practitioner_ref(practitioner: Practitioner) -> dict[str, Any]:
    return {"public_id": practitioner.public_id, "display_name": practitioner.display_name}


def practitioner_out(practitioner: Practitioner) -> dict[str, Any]:
    data = {name: getattr(practitioner, name) for name in PRACTITIONER_FIELDS}
    data["locations"] = [location.public_id for location in practitioner.locations.all()]
    return data


def appointment_type_out(appointment_type: AppointmentType) -> dict[str, Any]:
    data = {name: getattr(appointment_type, name) for name in TYPE_FIELDS}
    data["allowed_practitioners"] = [
        p.public_id for p in appointment_type.allowed_practitioners.all()
    ]
    return data


def slot_out(slot: Slot) -> dict[str, Any]:
    return {
        "start": slot.start,
        "end": slot.end,
        "practitioner": _practitioner_ref(slot.practitioner),
        "location": _location(slot.location),
        "resources": [_resource(r) for r in slot.resources],
    }


def appointment_out(appointment: Appointment) -> dict[str, Any]:
    patient = appointment.patient
    alerts = getattr(patient, "active_flags", None)
    if alerts is None:
        alerts = list(patient.flags.filter(is_active=True))
    kind = appointment.appointment_type
    data = {name: getattr(appointment, name) for name in APPOINTMENT_FIELDS}
    data.update(
        {
            "appointment_type": {
                "public_id": kind.public_id,
                "code": kind.code,
                "name": kind.name,
                "color": kind.color,
            },
            "location": _location(appointment.location),
            "patient": {
                "public_id": patient.public_id,
                "mrn": patient.mrn,
                "family_name": patient.family_name,
                "given_name": patient.given_name,
                "alerts": [
                    {"kind": f.kind, "severity": f.severity, "label": f.get_kind_display()}
                    for f in alerts
                ],
            },
            "practitioners": [_practitioner_ref(p) for p in appointment.practitioners.all()],
            "resources": [_resource(r) for r in appointment.resources.all()],
            "series": appointment.series.public_id if appointment.series is not None else None,
        }
    )
    return data


def conflict_problem(exc: BookingConflict) -> HttpResponse:
    """409 problem+json naming every clash."""
    return problem(
        409,
        exc.message,
        title="The booking clashes with the schedule",
        type_=CONFLICT_TYPE,
        conflicts=[
            {
                "kind": c.kind,
                "label": c.label,
                "start": c.start.isoformat() if c.start else None,
                "end": c.end.isoformat() if c.end else None,
                "object_id": c.object_id,
            }
            for c in exc.conflicts
        ],
    )


def _user(request: HttpRequest) -> User:
    return request.auth  # type: ignore[attr-defined]


def _need(user: User, capability: Capability, event: str, action: Action, **audit: Any) -> None:
    require(user, capability, action=action, event=event, category=CATEGORY, **audit)


# ---- routes ----------------------------------------------------------------------------------


@router.get(
    "/practitioners",
    response={200: list[PractitionerOut], **ERRORS},
    summary="List practitioners",
    url_name="practitioner-list",
)
def practitioner_list(request: HttpRequest) -> Any:
    """Active practitioners who work at your locations."""
    user = _user(request)
    _need(user, Capability.VIEW_SCHEDULE, "practitioner.list", Action.QUERY)
    return [practitioner_out(p) for p in practitioners_for_user(user=user)]


@router.get(
    "/appointment-types",
    response={200: list[AppointmentTypeOut], **ERRORS},
    summary="List appointment types",
    url_name="appointment-type-list",
)
def appointment_type_list(request: HttpRequest) -> Any:
    """The appointment types offered, with their length, buffer and required resources."""
    _need(_user(request), Capability.VIEW_SCHEDULE, "appointment_type.list", Action.QUERY)
    return [appointment_type_out(t) for t in appointment_types_active()]


@router.get(
    "/slots", response={200: list[SlotOut], **ERRORS}, summary="Find open slots", url_name="slots"
)
def slot_list(request: HttpRequest, params: Query[SlotParams]) -> Any:
    """The first open slots for an appointment type between start and end (at most 92 days),
    at your locations, for one practitioner or everyone who takes the type."""
    user = _user(request)
    _need(user, Capability.VIEW_SCHEDULE, "slot.search", Action.QUERY)
    if params.end <= params.start or params.end - params.start > MAX_SLOT_WINDOW:
        raise ValidationError({"end": "Give an end after the start and at most 92 days later."})
    practitioner = lookup_practitioner(params.practitioner) if params.practitioner else None
    slots = slot_find(
        appointment_type=lookup_appointment_type(params.appointment_type),
        start=params.start,
        end=params.end,
        practitioners=[practitioner] if practitioner else None,
        location=lookup_location(user=user, public_id=params.location),
        locations=user_locations(user),
        limit=params.limit,
    )
    return [slot_out(slot) for slot in slots]


@router.post(
    "/appointments",
    response={201: AppointmentOut, 409: ConflictProblem, **ERRORS},
    summary="Book an appointment",
    url_name="appointment-list",
)
def appointment_create(request: HttpRequest, payload: AppointmentCreate) -> Any:
    """Book a patient with one practitioner (`practitioner`) or several (`practitioners`).
    Resources are picked when not given. A clash answers 409 naming what clashes."""
    user = _user(request)
    _need(user, Capability.SCHEDULE_APPOINTMENTS, "appointment.book", Action.CREATE)
    if (payload.practitioner is None) == (payload.practitioners is None):
        raise ValidationError({"practitioners": "Give either practitioner or practitioners."})
    patient = patient_get_for_user(user=user, public_id=payload.patient)
    practitioners = lookup_practitioners(payload.practitioners or [payload.practitioner])
    try:
        appointment = appointment_book(
            actor=user,
            patient=patient,
            appointment_type=lookup_appointment_type(payload.appointment_type),
            start=payload.start,
            practitioners=practitioners,
            resources=lookup_resources(payload.resources),
            location=lookup_location(user=user, public_id=payload.location),
            reason=payload.reason,
            overbook=payload.overbook,
            overbook_reason=payload.overbook_reason,
            via="api",
            within=user_locations(user),
        )
    except BookingConflict as exc:
        return conflict_problem(exc)
    return Status(201, appointment_out(appointment_refetch(appointment=appointment)))


@router.get(
    "/appointments",
    response={200: list[AppointmentOut], **ERRORS},
    summary="A practitioner's appointments on a day",
    url_name="appointment-day",
)
def appointment_list(request: HttpRequest, params: Query[AppointmentListParams]) -> Any:
    """Every appointment of the practitioner starting on the date (local to the location), at
    your locations, all statuses."""
    user = _user(request)
    _need(user, Capability.VIEW_SCHEDULE, "appointment.practitioner_day", Action.QUERY)
    rows = appointments_for_practitioner_day(
        user=user, practitioner=lookup_practitioner(params.practitioner), day=params.date
    )
    return [appointment_out(a) for a in rows]


@router.get(
    "/appointments/{uuid:public_id}",
    response={200: AppointmentOut, **ERRORS},
    summary="Read an appointment",
    url_name="appointment-detail",
)
def appointment_read(request: HttpRequest, public_id: uuid.UUID) -> Any:
    """One appointment (404 when missing or outside your scope)."""
    return appointment_out(appointment_get_for_user(user=_user(request), public_id=public_id))


def _for_change(
    request: HttpRequest, public_id: uuid.UUID, capability: Capability, event: str
) -> Any:
    user = _user(request)
    appointment = appointment_get_for_user(user=user, public_id=public_id, event=event)
    _need(
        user,
        capability,
        event,
        Action.UPDATE,
        patient_public_id=appointment.patient.public_id,
        object_type="scheduling.Appointment",
        object_id=str(public_id),
    )
    return user, appointment


@router.post(
    "/appointments/{uuid:public_id}/cancel",
    response={200: AppointmentOut, **ERRORS},
    summary="Cancel an appointment",
    url_name="appointment-cancel",
)
def appointment_cancel_route(request: HttpRequest, public_id: uuid.UUID, payload: CancelIn) -> Any:
    """Cancel (by the patient or the clinic, with a reason); the time is offered to the
    waitlist."""
    user, appointment = _for_change(
        request, public_id, Capability.SCHEDULE_APPOINTMENTS, "appointment.cancel"
    )
    appointment_cancel(
        actor=user,
        appointment=appointment,
        cancelled_by=payload.cancelled_by,
        reason=payload.reason,
        via="api",
    )
    return appointment_out(appointment_refetch(appointment=appointment))


@router.post(
    "/appointments/{uuid:public_id}/reschedule",
    response={200: AppointmentOut, 409: ConflictProblem, **ERRORS},
    summary="Move an appointment",
    url_name="appointment-reschedule",
)
def appointment_reschedule_route(
    request: HttpRequest, public_id: uuid.UUID, payload: RescheduleIn
) -> Any:
    """Move the appointment to a new start (and optionally other practitioners or resources).
    A clash answers 409 naming what clashes."""
    user, appointment = _for_change(
        request, public_id, Capability.SCHEDULE_APPOINTMENTS, "appointment.reschedule"
    )
    try:
        appointment_reschedule(
            actor=user,
            appointment=appointment,
            start=payload.start,
            practitioners=lookup_practitioners(payload.practitioners)
            if payload.practitioners
            else None,
            resources=lookup_resources(payload.resources),
            via="api",
        )
    except BookingConflict as exc:
        return conflict_problem(exc)
    return appointment_out(appointment_refetch(appointment=appointment))


@router.post(
    "/appointments/{uuid:public_id}/check-in",
    response={200: AppointmentOut, **ERRORS},
    summary="Check a patient in",
    url_name="appointment-check-in",
)
def appointment_check_in_route(
    request: HttpRequest, public_id: uuid.UUID, payload: CheckInIn
) -> Any:
    """The patient arrived; record whether insurance was verified and any copay collected."""
    user, appointment = _for_change(request, public_id, Capability.CHECK_IN, "appointment.check_in")
    appointment_check_in(
        actor=user,
        appointment=appointment,
        insurance_verified=payload.insurance_verified,
        copay_collected=payload.copay_collected,
        via="api",
    )
    return appointment_out(appointment_refetch(appointment=appointment))


@router.post(
    "/appointments/{uuid:public_id}/no-show",
    response={200: AppointmentOut, **ERRORS},
    summary="Mark a no-show",
    url_name="appointment-no-show",
)
def appointment_no_show_route(request: HttpRequest, public_id: uuid.UUID) -> Any:
    """The patient did not come (possible once the start time has passed)."""
    user, appointment = _for_change(request, public_id, Capability.CHECK_IN, "appointment.no_show")
    appointment_no_show(actor=user, appointment=appointment, via="api")
    return appointment_out(appointment_refetch(appointment=appointment))
