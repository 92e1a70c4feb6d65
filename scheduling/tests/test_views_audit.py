"""Every scheduling route is classified here: the ones that show or change patient data write an
audit event for allowed and for refused requests alike (as tests/test_audit_coverage.py does for
the other apps); the others say why they hold no patient data. A new route nobody classified
fails `test_every_scheduling_route_is_classified`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from audit.models import AuditEvent, Outcome
from core.models import Location
from patients.models import Patient
from scheduling.models import AppointmentType, Practitioner
from scheduling.services import waitlist_add

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Call:
    method: str
    path: Callable[[dict[str, Any]], str]
    data: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    scope: str = "patient"  # "patient": an event names the patient; "query": a list event
    allowed_as: str = "frontdesk"
    denied_as: str = "outsider"


def _a(o: dict[str, Any], action: str = "") -> str:
    return f"/schedule/appointments/{o['appointment'].public_id}/" + (
        f"{action}/" if action else ""
    )


def _loc(o: dict[str, Any]) -> str:
    return f"location={o['location'].public_id}"


def _booking(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "location": str(o["location"].public_id),
        "patient": str(o["patient"].public_id),
        "appointment_type": str(o["type"].public_id),
        "practitioners": [str(o["ana"].public_id)],
        "start": f"{o['monday']}T11:00",
    }


PATIENT_ROUTES: dict[str, Call] = {
    "scheduling:index": Call("get", lambda o: f"/schedule/?{_loc(o)}", scope="query"),
    "scheduling:day": Call("get", lambda o: f"/schedule/day/?{_loc(o)}", scope="query"),
    "scheduling:day_for_patient": Call(
        "get", lambda o: f"/schedule/day/for/{o['patient'].public_id}/"
    ),
    "scheduling:week": Call("get", lambda o: f"/schedule/week/?{_loc(o)}", scope="query"),
    "scheduling:book": Call("post", lambda o: "/schedule/book/", _booking),
    "scheduling:book_for_patient": Call(
        "get", lambda o: f"/schedule/book/for/{o['patient'].public_id}/"
    ),
    "scheduling:patient_pick": Call(
        "post",
        lambda o: "/schedule/patients/pick/",
        lambda o: {"patient_query": "hoeger"},
        scope="query",
        denied_as="servicedirector",
    ),
    "scheduling:appointment": Call("get", _a),
    "scheduling:reschedule": Call(
        "post", lambda o: _a(o, "reschedule"), lambda o: {"start": f"{o['monday']}T11:00"}
    ),
    "scheduling:find_slots": Call("get", lambda o: _a(o, "slots")),
    "scheduling:appointment_confirm": Call("post", lambda o: _a(o, "confirm")),
    "scheduling:appointment_cancel": Call(
        "post", lambda o: _a(o, "cancel"), lambda o: {"cancelled_by": "clinic", "reason": "Ill"}
    ),
    "scheduling:appointment_check_in": Call("post", lambda o: _a(o, "check-in")),
    "scheduling:appointment_room": Call("post", lambda o: _a(o, "room"), lambda o: {"room": ""}),
    "scheduling:appointment_check_out": Call("post", lambda o: _a(o, "check-out")),
    "scheduling:appointment_no_show": Call("post", lambda o: _a(o, "no-show")),
    "scheduling:checkin": Call("get", lambda o: f"/schedule/check-in/?{_loc(o)}", scope="query"),
    "scheduling:waitlist": Call("get", lambda o: f"/schedule/waitlist/?{_loc(o)}", scope="query"),
    "scheduling:waitlist_remove": Call(
        "post", lambda o: f"/schedule/waitlist/{o['entry'].public_id}/remove/"
    ),
}

NOT_PATIENT_DATA: dict[str, str] = {
    "scheduling:type_colors": "appointment type colours as CSS",
    "scheduling:availability": "practitioners' availability (writes audited, denials audited)",
    "scheduling:rule_add": "an availability rule (audited as availability_rule.create)",
    "scheduling:rule_edit": "an availability rule (audited as availability_rule.update)",
    "scheduling:occurrence_edit": "one occurrence of a rule (audited as availability_occurrence.*)",
    "scheduling:exception_add": "holiday, leave or blocked time (audited)",
    "scheduling:exception_remove": "holiday, leave or blocked time (audited)",
}

# Actions that need the appointment in another status than booked.
NEEDS_STATUS = {
    "scheduling:appointment_room": "arrived",
    "scheduling:appointment_check_out": "arrived",
}


def _scheduling_routes() -> set[str]:
    resolver = next(
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and p.namespace == "scheduling"
    )
    return {f"scheduling:{p.name}" for p in resolver.url_patterns if p.name}


def test_every_scheduling_route_is_classified() -> None:
    assert _scheduling_routes() == set(PATIENT_ROUTES) | set(NOT_PATIENT_DATA)


@pytest.fixture
def world(
    main_clinic: Location, ana: Practitioner, patient: Patient, follow_up: AppointmentType,
    frontdesk: Any, book: Any, monday: dt.date, at: Any, persona: Any,
) -> dict[str, Any]:  # fmt: skip
    entry = waitlist_add(
        actor=frontdesk, patient=patient, appointment_type=follow_up, location=main_clinic,
        earliest=at("08:00"), latest=at("17:00", days=3),
    )  # fmt: skip
    return {
        "location": main_clinic,
        "ana": ana,
        "patient": patient,
        "type": follow_up,
        "monday": monday,
        "entry": entry,
        "book": book,
        "at": at,
    }


def _prepare(route: str, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    appointment = world["book"](world["at"]("09:00"))
    if route in NEEDS_STATUS:
        from scheduling.models import Appointment

        Appointment.objects.filter(pk=appointment.pk).update(status=NEEDS_STATUS[route])
    if route == "scheduling:appointment_no_show":
        from django.utils import timezone

        later = world["at"]("09:20")
        monkeypatch.setattr(timezone, "now", lambda: later)
    world["appointment"] = appointment


def _request(client: Client, call: Call, world: dict[str, Any]) -> Any:
    data = call.data(world) if call.data else {}
    return getattr(client, call.method)(call.path(world), data=data)


def _last() -> int:
    return AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0


@pytest.mark.parametrize("route", sorted(PATIENT_ROUTES))
def test_allowed_scheduling_request_writes_an_audit_event(
    route: str, world: dict[str, Any], persona: Any, login_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # given a user whose role and location allow the request
    call = PATIENT_ROUTES[route]
    _prepare(route, world, monkeypatch)
    client = login_client(persona(call.allowed_as))
    before = _last()
    # when they make it
    response = _request(client, call, world)
    # then it succeeded and an audit event describes it
    assert response.status_code < 400, (route, response.status_code)
    events = AuditEvent.objects.filter(sequence__gt=before, outcome=Outcome.SUCCESS)
    if call.scope == "patient":
        assert events.filter(patient_public_id=world["patient"].public_id).exists(), route
    else:
        assert events.exists(), route


@pytest.mark.parametrize("route", sorted(PATIENT_ROUTES))
def test_refused_scheduling_request_writes_an_audit_event(
    route: str, world: dict[str, Any], persona: Any, login_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # given a user at another location, or whose role lacks the capability
    call = PATIENT_ROUTES[route]
    _prepare(route, world, monkeypatch)
    client = login_client(persona(call.denied_as))
    before = _last()
    # when they try
    response = _request(client, call, world)
    # then they were refused and the refusal is in the trail
    assert response.status_code in (403, 404), (route, response.status_code)
    assert AuditEvent.objects.filter(sequence__gt=before, outcome=Outcome.DENIED).exists(), route
