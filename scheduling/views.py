"""Scheduling screens: the day and week calendars, booking, an appointment's panel and actions,
the check-in board, the waitlist and availability management.

Thin views over scheduling.selectors / view_selectors (reads, scope, audit) and
scheduling.services / availability_services (writes). Missing and out-of-scope objects answer
404; a signed-in user whose roles lack the capability gets 403 (both audited). A booking clash
answers 409 with what it clashes with; invalid input 422 with the fields named. htmx requests get
the partial that was asked for (the panel, the calendar or the board); plain requests the page.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import capability_required, deny_capability
from core.capabilities import Capability
from core.models import Location
from patients import selectors as patient_selectors
from scheduling import availability_services, selectors, services, slots, view_selectors
from scheduling.availability import zone
from scheduling.forms import (
    AvailabilityRuleForm,
    BookingForm,
    CalendarQueryForm,
    CancelForm,
    CheckInForm,
    ExceptionForm,
    OccurrenceForm,
    PatientPickForm,
    RescheduleForm,
    RoomForm,
    StyledForm,
    WaitlistForm,
    local_input,
)
from scheduling.models import ALLOWED_TRANSITIONS, AppointmentStatus, AppointmentType
from scheduling.services import BookingConflict

if TYPE_CHECKING:
    from accounts.models import User
    from patients.models import Patient
    from scheduling.models import Appointment

View = Callable[..., HttpResponse]
S = AppointmentStatus
CHANGED = "scheduleChanged"
_CSS_CLASS = re.compile(r"[A-Za-z0-9_-]+")
_HEX = re.compile(r"#[0-9A-Fa-f]{6}")


def _user(request: HttpRequest) -> User:
    return cast("User", request.user)


def _htmx(request: HttpRequest) -> bool:
    """An htmx request (not a boosted page load)."""
    details: Any = getattr(request, "htmx", None)
    return bool(details) and not details.boosted


def _target(request: HttpRequest) -> str | None:
    """The id of the element an htmx request will fill (None for plain requests)."""
    details: Any = getattr(request, "htmx", None)
    return details.target if details else None


def _page_or_partial(
    request: HttpRequest, partial: str, page: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """The partial for htmx (into the panel), the whole page otherwise."""
    template = partial if _htmx(request) else page
    return render(request, template, context, status=status)


def _today(location: Location) -> dt.date:
    return timezone.now().astimezone(zone(location.time_zone)).date()


def _location(request: HttpRequest, source: Any, event: str) -> Location:
    query = CalendarQueryForm(source)
    return view_selectors.location_get_for_user(
        user=_user(request), public_id=query.value("location"), event=event
    )


def _patient(request: HttpRequest, patient_id: uuid.UUID | None, event: str) -> Patient | None:
    if patient_id is None:
        return None
    return patient_selectors.patient_get_for_user(
        user=_user(request), public_id=patient_id, event=event
    )


# ---- calendars -------------------------------------------------------------------------------


def _calendar_context(
    request: HttpRequest, query: CalendarQueryForm, location: Location, day: dt.date, days: int
) -> dict[str, Any]:
    user = _user(request)
    return {
        "location": location,
        "locations": view_selectors.locations_for_user(user=user),
        "day": day,
        "today": _today(location),
        "previous_day": day - dt.timedelta(days=days),
        "next_day": day + dt.timedelta(days=days),
        "steps": view_selectors.STEPS,
        "by": query.value("by", "practitioner"),
    }


@login_required
@require_GET
@capability_required(Capability.VIEW_SCHEDULE)
def day(request: HttpRequest, patient_id: uuid.UUID | None = None) -> HttpResponse:
    """The day at a location, practitioners (or rooms) side by side; click an empty slot to book.
    With a patient in the path, every slot books that patient."""
    if patient_id is not None and not _user(request).can(Capability.SCHEDULE_APPOINTMENTS):
        deny_capability(
            request, view_name="day_for_patient", capability=Capability.SCHEDULE_APPOINTMENTS
        )
    query = CalendarQueryForm(request.GET)
    location = _location(request, request.GET, "appointment.day_list")
    current = query.value("date") or _today(location)
    patient = _patient(request, patient_id, "appointment.book_form")
    grid = view_selectors.calendar_day(
        user=_user(request),
        location=location,
        day=current,
        step=query.value("step"),
        by=query.value("by", "practitioner"),
        book_url=view_selectors.book_url(patient_id),
    )
    context = _calendar_context(request, query, location, current, 1)
    context |= {"grid": grid, "patient": patient, "view": "day", "step": grid.step}
    wants_grid = _target(request) == "calendar"
    return render(
        request, "scheduling/_calendar.html" if wants_grid else "scheduling/day.html", context
    )


@login_required
@require_GET
@capability_required(Capability.VIEW_SCHEDULE)
def week(request: HttpRequest) -> HttpResponse:
    """One practitioner's week (Monday to Sunday), days side by side."""
    user = _user(request)
    query = CalendarQueryForm(request.GET)
    location = _location(request, request.GET, "appointment.week_list")
    current = query.value("date") or _today(location)
    practitioners = selectors.practitioners_for_location(location=location, user=user)
    practitioner = _chosen(practitioners, query.value("practitioner"))
    grid = None
    if practitioner is not None:
        grid = view_selectors.calendar_week(
            user=user,
            location=location,
            practitioner=practitioner,
            day=current,
            step=query.value("step"),
            book_url=view_selectors.book_url(),
        )
    context = _calendar_context(request, query, location, current, 7)
    context |= {"grid": grid, "practitioners": practitioners, "practitioner": practitioner}
    context |= {"view": "week", "step": grid.step if grid else view_selectors.DEFAULT_STEP}
    wants_grid = _target(request) == "calendar"
    return render(
        request, "scheduling/_calendar.html" if wants_grid else "scheduling/week.html", context
    )


def _chosen(practitioners: list[Any], wanted: uuid.UUID | None) -> Any:
    if wanted is None:
        return practitioners[0] if practitioners else None
    found = next((p for p in practitioners if p.public_id == wanted), None)
    if found is None:
        raise Http404("No such practitioner here.")
    return found


@login_required
@require_GET
def type_colors(request: HttpRequest) -> HttpResponse:
    """The appointment types' colours as CSS custom properties (CSP allows no style="")."""
    rules = []
    for code, color in AppointmentType.objects.values_list("code", "color").order_by("code"):
        if _CSS_CLASS.fullmatch(code) and _HEX.fullmatch(color or ""):
            rules.append(f".appt-type-{code}{{--appt-color:{color};--appt-tint:{_tint(color)}}}")
    response = HttpResponse("\n".join(rules) + "\n", content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response


def _tint(color: str, keep: float = 0.18) -> str:
    """`color` mixed with white (light enough for dark text at WCAG AA contrast)."""
    channels = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * keep):02x}" for c in channels)


# ---- booking ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.SCHEDULE_APPOINTMENTS)
def book(request: HttpRequest, patient_id: uuid.UUID | None = None) -> HttpResponse:
    """The booking panel (prefilled from the slot clicked) and its submission."""
    user = _user(request)
    location = _location(request, request.POST or request.GET, "appointment.book_form")
    patient = _patient(request, patient_id, "appointment.book_form")
    practitioners = selectors.practitioners_for_location(location=location, user=user)
    form = BookingForm(
        request.POST or None,
        initial=_booking_initial(request, location, patient),
        location=location,
        practitioners=practitioners,
        can_overbook=user.can(Capability.OVERBOOK),
    )
    if request.method == "POST" and form.is_valid():
        return _book(request, form, location, fixed=patient)
    context = {"form": form, "location": location, "patient": patient}
    context["patient_fixed"] = patient is not None
    return _page_or_partial(
        request, "scheduling/_book_form.html", "scheduling/book.html", context,
        status=422 if form.errors else 200,
    )  # fmt: skip


def _booking_initial(
    request: HttpRequest, location: Location, patient: Patient | None
) -> dict[str, Any]:
    params = request.GET
    initial: dict[str, Any] = {
        "start": params.get("start", "")[:16],
        "practitioners": params.getlist("practitioner"),
        "resources": params.getlist("resource"),
        "overbook": params.get("overbook") == "1",
    }
    if patient is not None:
        initial["patient"] = patient.public_id
    return initial


def _book(
    request: HttpRequest, form: BookingForm, location: Location, fixed: Patient | None
) -> HttpResponse:
    user, data = _user(request), form.cleaned_data
    context: dict[str, Any] = {"form": form, "location": location, "patient": fixed}
    context["patient_fixed"] = fixed is not None
    try:
        patient = patient_selectors.patient_get_for_user(
            user=user, public_id=data["patient"], event="appointment.book"
        )
        context["patient"] = patient
        appointment = services.appointment_book(
            actor=user,
            patient=patient,
            appointment_type=data["appointment_type"],
            start=form.start_at,
            practitioners=list(data["practitioners"]),
            resources=list(data["resources"]) or None,
            location=location,
            reason=data["reason"],
            overbook=bool(data.get("overbook")),
            overbook_reason=data.get("overbook_reason", ""),
        )
    except Http404:
        form.add_error("patient", "Choose a patient at your locations.")
    except BookingConflict as exc:
        context["conflict"] = exc
        return _page_or_partial(
            request, "scheduling/_book_form.html", "scheduling/book.html", context, status=409
        )
    except ValidationError as exc:
        form.add_service_errors(exc)
    else:
        return _done(request, appointment, "Booked")
    return _page_or_partial(
        request, "scheduling/_book_form.html", "scheduling/book.html", context, status=422
    )


@login_required
@require_POST
@capability_required(Capability.VIEW_PATIENTS)
def patient_pick(request: HttpRequest) -> HttpResponse:
    """Type-ahead for the patient picker (POST: what was typed is PHI): radio options."""
    form = PatientPickForm(request.POST)
    text = form.data.get("patient_query", "")[:200]
    context: dict[str, Any] = {
        "result": None,
        "message": "",
        "name": request.POST.get("name", "patient"),
    }
    try:
        criteria = patient_selectors.criteria_from_text(text)
    except ValidationError as exc:
        context["message"] = " ".join(exc.messages)
        return render(request, "scheduling/_patient_options.html", context)
    if criteria.is_empty() or (criteria.name and len(criteria.name.strip()) < 2):
        context["message"] = "Type two letters of a name, or a date of birth or MRN."
    else:
        context["result"] = patient_selectors.patient_search(
            user=_user(request), criteria=criteria, page_size=8
        )
    return render(request, "scheduling/_patient_options.html", context)


# ---- one appointment: the panel and its actions --------------------------------------------


def _when(appointment: Appointment, *, who: bool = True) -> str:
    """ "Hoeger, Buster, Mon 07 Jan 2030 09:00" (without the name: "Mon 07 Jan 2030 09:00")."""
    local = appointment.start.astimezone(zone(appointment.location.time_zone))
    when = f"{local:%a %d %b %Y %H:%M}"
    return f"{appointment.patient.display_name}, {when}" if who else when


def _panel_context(request: HttpRequest, appointment: Appointment, **extra: Any) -> dict[str, Any]:
    user = _user(request)
    location = appointment.location
    practitioners = selectors.practitioners_for_location(location=location)
    rooms = view_selectors.rooms_for_location(location)
    status = appointment.status
    context: dict[str, Any] = {
        "appointment": appointment,
        "local_start": appointment.start.astimezone(zone(location.time_zone)),
        "local_end": appointment.end.astimezone(zone(location.time_zone)),
        "events": list(appointment.events.select_related("actor").order_by("-at", "-id")[:8]),
        "can_schedule": user.can(Capability.SCHEDULE_APPOINTMENTS),
        "can_check_in": user.can(Capability.CHECK_IN),
        "allowed": ALLOWED_TRANSITIONS[status],
        "movable": status in view_selectors.MOVABLE,
        "started": appointment.start <= timezone.now(),
        "reschedule_form": RescheduleForm(
            initial={"start": local_input(appointment.start, location)},
            location=location,
            practitioners=practitioners,
        ),
        "cancel_form": CancelForm(),
        "check_in_form": CheckInForm(),
        "room_form": RoomForm(rooms=rooms),
        "status_icon": view_selectors.STATUS_ICONS.get(status, "bi-circle"),
    }
    context.update(extra)
    return context


@login_required
@require_GET
@capability_required(Capability.VIEW_SCHEDULE)
def appointment_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The appointment's panel: who, when, status, timeline and what can be done now."""
    appointment = selectors.appointment_get_for_user(user=_user(request), public_id=public_id)
    return _page_or_partial(
        request,
        "scheduling/_appointment_panel.html",
        "scheduling/appointment.html",
        _panel_context(request, appointment),
    )


@dataclass(frozen=True)
class _Step:
    capabilities: tuple[Capability, ...]
    form: type[StyledForm] | None
    run: Callable[..., Appointment]
    done: str


def _run_cancel(user: User, appointment: Appointment, data: dict[str, Any]) -> Appointment:
    return services.appointment_cancel(
        actor=user,
        appointment=appointment,
        cancelled_by=data["cancelled_by"],
        reason=data["reason"],
    )


def _run_check_in(user: User, appointment: Appointment, data: dict[str, Any]) -> Appointment:
    return services.appointment_check_in(
        actor=user,
        appointment=appointment,
        insurance_verified=data["insurance_verified"],
        copay_collected=data["copay_collected"],
    )


def _run_room(user: User, appointment: Appointment, data: dict[str, Any]) -> Appointment:
    return services.appointment_room(actor=user, appointment=appointment, room=data["room"])


ACTIONS: dict[str, _Step] = {
    "confirm": _Step(
        (Capability.SCHEDULE_APPOINTMENTS, Capability.CHECK_IN),
        None,
        lambda user, appointment, data: services.appointment_confirm(
            actor=user, appointment=appointment
        ),
        "Confirmed",
    ),
    "cancel": _Step((Capability.SCHEDULE_APPOINTMENTS,), CancelForm, _run_cancel, "Cancelled"),
    "check_in": _Step((Capability.CHECK_IN,), CheckInForm, _run_check_in, "Checked in"),
    "room": _Step((Capability.CHECK_IN,), RoomForm, _run_room, "Roomed"),
    "check_out": _Step(
        (Capability.CHECK_IN,),
        None,
        lambda user, appointment, data: services.appointment_check_out(
            actor=user, appointment=appointment
        ),
        "Checked out",
    ),
    "no_show": _Step(
        (Capability.CHECK_IN, Capability.SCHEDULE_APPOINTMENTS),
        None,
        lambda user, appointment, data: services.appointment_no_show(
            actor=user, appointment=appointment
        ),
        "Marked as a no-show",
    ),
}


@login_required
@require_POST
def appointment_action(request: HttpRequest, public_id: uuid.UUID, action: str) -> HttpResponse:
    """Confirm, cancel, check in, room, check out or mark a no-show (ACTIONS says who may)."""
    user, step = _user(request), ACTIONS[action]
    if not any(user.can(c) for c in step.capabilities):
        deny_capability(request, view_name=f"appointment_{action}", capability=step.capabilities[0])
    appointment = selectors.appointment_get_for_user(
        user=user, public_id=public_id, event=f"appointment.{action}"
    )
    form = _step_form(step, request, appointment)
    try:
        if form is not None and not form.is_valid():
            raise ValidationError(form.errors.as_data())
        step.run(user, appointment, form.cleaned_data if form is not None else {})
    except ValidationError as exc:
        return _refused(request, appointment, exc, form, action)
    return _done(request, appointment, step.done)


def _step_form(step: _Step, request: HttpRequest, appointment: Appointment) -> StyledForm | None:
    if step.form is None:
        return None
    if step.form is RoomForm:
        return RoomForm(request.POST, rooms=view_selectors.rooms_for_location(appointment.location))
    return step.form(request.POST)


def _refused(
    request: HttpRequest,
    appointment: Appointment,
    exc: ValidationError,
    form: StyledForm | None,
    action: str,
) -> HttpResponse:
    """422 with the problem named: on the board row, or in the panel next to the field."""
    problems = list(exc.messages)
    if _target(request) == "checkin-board":
        errors = {str(appointment.public_id): problems}
        return _board(request, appointment.location, row_errors=errors, status=422)
    fresh = selectors.appointment_get_for_user(user=_user(request), public_id=appointment.public_id)
    extra: dict[str, Any] = {"problems": problems, "failed_action": action}
    if form is not None:
        if not form.errors:
            form.add_service_errors(exc)
        extra[f"{action}_form"] = form
    return _page_or_partial(
        request,
        "scheduling/_appointment_panel.html",
        "scheduling/appointment.html",
        _panel_context(request, fresh, **extra),
        status=422,
    )


def _done(request: HttpRequest, appointment: Appointment, done: str) -> HttpResponse:
    """After a change: the board or the panel (htmx, telling the calendar to refresh), or back
    to the appointment's page (the flash message, kept between requests, names no patient)."""
    if not _htmx(request):
        messages.success(request, f"{done}: {_when(appointment, who=False)}.")
        return redirect("scheduling:appointment", public_id=appointment.public_id)
    message = f"{done}: {_when(appointment)}."
    if _target(request) == "checkin-board":
        response = _board(request, appointment.location, notice=message)
    else:
        fresh = selectors.appointment_get_for_user(
            user=_user(request), public_id=appointment.public_id
        )
        context = _panel_context(request, fresh, notice=message)
        response = render(request, "scheduling/_appointment_panel.html", context)
    response["HX-Trigger"] = CHANGED
    return response


@login_required
@require_POST
@capability_required(Capability.SCHEDULE_APPOINTMENTS)
def reschedule(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Move an appointment (dragged on the calendar, or a new time typed in its panel)."""
    user = _user(request)
    appointment = selectors.appointment_get_for_user(
        user=user, public_id=public_id, event="appointment.reschedule"
    )
    practitioners = selectors.practitioners_for_location(location=appointment.location)
    form = RescheduleForm(request.POST, location=appointment.location, practitioners=practitioners)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors.as_data())
        chosen = form.cleaned_data["practitioner"]
        current = {p.pk for p in appointment.practitioners.all()}
        services.appointment_reschedule(
            actor=user,
            appointment=appointment,
            start=form.start_at,
            practitioners=[chosen] if chosen is not None and chosen.pk not in current else None,
        )
    except BookingConflict as exc:
        context = _panel_context(request, appointment, conflict=exc, reschedule_form=form)
        return _page_or_partial(
            request,
            "scheduling/_appointment_panel.html",
            "scheduling/appointment.html",
            context,
            status=409,
        )
    except ValidationError as exc:
        return _refused(request, appointment, exc, form, "reschedule")
    return _done(request, appointment, "Moved")


@login_required
@require_GET
@capability_required(Capability.SCHEDULE_APPOINTMENTS)
def find_slots(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The next open slots for the appointment's type with its practitioners (or anyone who
    takes the type, with ?anyone=1) at its location, each a button that moves it there."""
    appointment = selectors.appointment_get_for_user(
        user=_user(request), public_id=public_id, event="appointment.find_slots"
    )
    anyone = request.GET.get("anyone") == "1"
    now = timezone.now()
    found = slots.slot_find(
        appointment_type=appointment.appointment_type,
        start=now,
        end=now + dt.timedelta(days=90),
        practitioners=None if anyone else list(appointment.practitioners.all()),
        location=appointment.location,
        limit=10,
    )
    tz = zone(appointment.location.time_zone)
    choices = [(s, s.start.astimezone(tz)) for s in found]
    context = {
        "appointment": appointment,
        "anyone": anyone,
        "choices": [(s, f"{t:%Y-%m-%dT%H:%M}", f"{t:%a %m/%d %H:%M}") for s, t in choices],
    }
    return render(request, "scheduling/_slots.html", context)


# ---- the check-in board ----------------------------------------------------------------------


def _board_context(
    request: HttpRequest,
    location: Location,
    *,
    notice: str = "",
    row_errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    user, now = _user(request), timezone.now()
    board = selectors.checkin_board(user=user, location=location, now=now)
    return {
        "board": board,
        "lines": view_selectors.board_lines(board, now=now, row_errors=row_errors),
        "location": location,
        "rooms": view_selectors.rooms_for_location(location),
        "updated": now.astimezone(zone(location.time_zone)).replace(tzinfo=None),
        "notice": notice,
        "can_check_in": user.can(Capability.CHECK_IN),
    }


def _board(
    request: HttpRequest,
    location: Location,
    *,
    notice: str = "",
    row_errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = _board_context(request, location, notice=notice, row_errors=row_errors)
    return render(request, "scheduling/_checkin_board.html", context, status=status)


@login_required
@require_GET
@capability_required(Capability.VIEW_SCHEDULE)
def checkin(request: HttpRequest) -> HttpResponse:
    """Today's front desk at a location, in time order: who is expected, waiting (and for how
    long), in a room or done. The board refreshes itself every 30 seconds."""
    location = _location(request, request.GET, "appointment.checkin_board")
    if _target(request) == "checkin-board":
        return _board(request, location)
    context = _board_context(request, location)
    context["locations"] = view_selectors.locations_for_user(user=_user(request))
    return render(request, "scheduling/checkin.html", context)


# ---- waitlist --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.VIEW_SCHEDULE)
def waitlist(request: HttpRequest) -> HttpResponse:
    """Waiting and offered patients at a location, and adding one."""
    user = _user(request)
    if request.method == "POST" and not user.can(Capability.SCHEDULE_APPOINTMENTS):
        deny_capability(
            request, view_name="waitlist_add", capability=Capability.SCHEDULE_APPOINTMENTS
        )
    location = _location(request, request.POST or request.GET, "waitlist.list")
    practitioners = selectors.practitioners_for_location(location=location, user=user)
    form = WaitlistForm(
        request.POST or None, location=location, practitioners=practitioners,
        initial={"earliest": _today(location), "latest": _today(location) + dt.timedelta(days=30)},
    )  # fmt: skip
    if request.method == "POST" and form.is_valid() and _waitlist_add(request, form, location):
        messages.success(request, "Added to the waitlist.")
        return redirect(reverse("scheduling:waitlist") + f"?location={location.public_id}")
    context = {
        "form": form,
        "location": location,
        "locations": view_selectors.locations_for_user(user=user),
        "entries": selectors.waitlist_for_location(user=user, location=location),
    }
    return render(request, "scheduling/waitlist.html", context, status=422 if form.errors else 200)


def _waitlist_add(request: HttpRequest, form: WaitlistForm, location: Location) -> bool:
    user, data = _user(request), form.cleaned_data
    try:
        patient = patient_selectors.patient_get_for_user(
            user=user, public_id=data["patient"], event="waitlist.add"
        )
        earliest, latest = form.window()
        services.waitlist_add(
            actor=user,
            patient=patient,
            appointment_type=data["appointment_type"],
            location=location,
            earliest=earliest,
            latest=latest,
            practitioner=data["practitioner"],
            preferred_weekdays=data["preferred_weekdays"],
            priority=data["priority"],
            note=data["note"],
        )
    except Http404:
        form.add_error("patient", "Choose a patient at your locations.")
        return False
    except ValidationError as exc:
        form.add_service_errors(exc)
        return False
    return True


@login_required
@require_POST
@capability_required(Capability.SCHEDULE_APPOINTMENTS)
def waitlist_remove(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    entry = view_selectors.waitlist_entry_get_for_user(user=_user(request), public_id=public_id)
    try:
        availability_services.waitlist_remove(actor=_user(request), entry=entry)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Took the patient off the waitlist.")
    return redirect(reverse("scheduling:waitlist") + f"?location={entry.location.public_id}")


# ---- availability management -----------------------------------------------------------------


def _availability_page(
    request: HttpRequest,
    location: Location,
    practitioner: Any,
    *,
    rule_form: AvailabilityRuleForm | None = None,
    exception_form: ExceptionForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = _user(request)
    practitioners = selectors.practitioners_for_location(location=location, user=user)
    if practitioner is None and practitioners:
        practitioner = practitioners[0]
    context: dict[str, Any] = {
        "location": location,
        "locations": view_selectors.locations_for_user(user=user),
        "practitioners": practitioners,
        "practitioner": practitioner,
        "rule_form": rule_form or AvailabilityRuleForm(initial={"start_date": _today(location)}),
        "exception_form": exception_form
        or ExceptionForm(location=location, practitioners=practitioners),
    }
    if practitioner is not None:
        context["plan"] = view_selectors.availability_for_practitioner(
            practitioner=practitioner, location=location, today=_today(location)
        )
    return render(request, "scheduling/availability.html", context, status=status)


def _practitioner(request: HttpRequest, source: Any) -> Any:
    wanted = CalendarQueryForm(source).value("practitioner")
    if wanted is None:
        return None
    return view_selectors.practitioner_get_for_user(user=_user(request), public_id=wanted)


@login_required
@require_GET
@capability_required(Capability.MANAGE_SCHEDULES)
def availability(request: HttpRequest) -> HttpResponse:
    """A practitioner's availability rules, the coming occurrences and the exceptions."""
    location = _location(request, request.GET, "availability.view")
    return _availability_page(request, location, _practitioner(request, request.GET))


def _back_to_availability(location: Location, practitioner: Any) -> HttpResponse:
    url = reverse("scheduling:availability") + f"?location={location.public_id}"
    if practitioner is not None:
        url += f"&practitioner={practitioner.public_id}"
    return redirect(url)


@login_required
@require_POST
@capability_required(Capability.MANAGE_SCHEDULES)
def rule_add(request: HttpRequest) -> HttpResponse:
    location = _location(request, request.POST, "availability.rule_add")
    practitioner = _practitioner(request, request.POST)
    if practitioner is None:
        raise Http404("Choose a practitioner.")
    form = AvailabilityRuleForm(request.POST)
    if form.is_valid() and _save_rule(request, form, practitioner, location, None):
        messages.success(request, "Added the availability rule.")
        return _back_to_availability(location, practitioner)
    return _availability_page(request, location, practitioner, rule_form=form, status=422)


def _save_rule(
    request: HttpRequest,
    form: AvailabilityRuleForm,
    practitioner: Any,
    location: Location,
    rule: Any,
) -> bool:
    try:
        availability_services.availability_rule_save(
            actor=_user(request),
            practitioner=practitioner,
            location=location,
            values=form.values(),
            appointment_types=form.cleaned_data["appointment_types"],
            rule=rule,
        )
    except ValidationError as exc:
        form.add_service_errors(exc)
        return False
    return True


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.MANAGE_SCHEDULES)
def rule_edit(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    rule = view_selectors.rule_get_for_user(user=_user(request), public_id=public_id)
    initial = {f: getattr(rule, f) for f in availability_services.RULE_FIELDS}
    initial["appointment_types"] = [t.public_id for t in rule.appointment_types.all()]
    form = AvailabilityRuleForm(request.POST or None, initial=initial)
    saved = (
        request.method == "POST"
        and form.is_valid()
        and _save_rule(request, form, rule.practitioner, rule.location, rule)
    )
    if saved:
        messages.success(request, "Saved the availability rule: every occurrence follows it.")
        return _back_to_availability(rule.location, rule.practitioner)
    context = {"form": form, "rule": rule}
    return render(request, "scheduling/rule_form.html", context, status=422 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.MANAGE_SCHEDULES)
def occurrence_edit(request: HttpRequest, public_id: uuid.UUID, day: dt.date) -> HttpResponse:
    """Change or cancel one occurrence of a rule; the other occurrences stay as they are."""
    rule = view_selectors.rule_get_for_user(user=_user(request), public_id=public_id)
    existing = rule.overrides.filter(original_date=day).first()
    form = OccurrenceForm(request.POST or None, initial=_occurrence_initial(rule, existing))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            availability_services.availability_occurrence_change(
                actor=_user(request),
                rule=rule,
                original_date=day,
                cancel=data["change"] == "cancelled",
                start_time=data["start_time"] if data["change"] == "changed" else None,
                end_time=data["end_time"] if data["change"] == "changed" else None,
                reason=data["reason"],
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Saved the change for {day:%a %d %b %Y} only.")
            return _back_to_availability(rule.location, rule.practitioner)
    context = {"form": form, "rule": rule, "day": day}
    return render(
        request, "scheduling/occurrence_form.html", context, status=422 if form.errors else 200
    )


def _occurrence_initial(rule: Any, existing: Any) -> dict[str, Any]:
    if existing is None:
        return {"change": "planned", "start_time": rule.start_time, "end_time": rule.end_time}
    return {
        "change": "cancelled" if existing.is_cancelled else "changed",
        "start_time": existing.start_time or rule.start_time,
        "end_time": existing.end_time or rule.end_time,
        "reason": existing.reason,
    }


@login_required
@require_POST
@capability_required(Capability.MANAGE_SCHEDULES)
def exception_add(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    location = _location(request, request.POST, "availability.exception_add")
    shown = _practitioner(request, {"practitioner": request.POST.get("shown", "")})
    practitioners = selectors.practitioners_for_location(location=location, user=user)
    form = ExceptionForm(request.POST, location=location, practitioners=practitioners)
    if form.is_valid():
        start, end = form.span()
        try:
            availability_services.availability_exception_add(
                actor=user, location=location, practitioner=form.cleaned_data["practitioner"],
                kind=form.cleaned_data["kind"], start=start, end=end,
                reason=form.cleaned_data["reason"],
            )  # fmt: skip
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Added the exception.")
            return _back_to_availability(location, shown)
    return _availability_page(request, location, shown, exception_form=form, status=422)


@login_required
@require_POST
@capability_required(Capability.MANAGE_SCHEDULES)
def exception_remove(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    exception = view_selectors.exception_get_for_user(user=_user(request), public_id=public_id)
    availability_services.availability_exception_remove(actor=_user(request), exception=exception)
    messages.success(request, f"Removed the exception: {exception.reason}.")
    return _back_to_availability(exception.location, exception.practitioner)
