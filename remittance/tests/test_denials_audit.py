"""Every denial route is classified here: the ones that show or change patient data write an
audit event for allowed and for refused requests alike (as billing/tests/test_views_audit.py
does). A new denial route nobody classified fails `test_every_denial_route_is_classified`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from accounts.models import User
from audit.models import AuditEvent, Outcome
from remittance import denials

from .denial_helpers import deny

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Call:
    method: str
    path: Callable[[dict[str, Any]], str]
    data: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    scope: str = "patient"  # "patient": an event names the patient; "query": a list event
    allowed_as: str = "billing"
    denied_as: str = "outsider"


def _d(o: dict[str, Any], action: str = "") -> str:
    return f"/remittances/denials/{o['denial'].public_id}/" + (f"{action}/" if action else "")


PATIENT_ROUTES: dict[str, Call] = {
    "remittance:denial_queue": Call(
        "get", lambda o: "/remittances/denials/", scope="query", denied_as="privacy"
    ),
    "remittance:denial_assign_many": Call(
        "post",
        lambda o: "/remittances/denials/assign/",
        lambda o: {"owner": "none", "denials": [str(o["denial"].public_id)]},
    ),
    "remittance:denial": Call("get", _d),
    "remittance:denial_assign": Call(
        "post", lambda o: _d(o, "assign"), lambda o: {"owner": "none"}
    ),
    "remittance:denial_status": Call(
        "post", lambda o: _d(o, "status"), lambda o: {"to_status": "in_progress"}
    ),
    "remittance:denial_note": Call("post", lambda o: _d(o, "notes"), lambda o: {"text": "Called."}),
    "remittance:denial_appeal": Call(
        "post", lambda o: _d(o, "appeal"), lambda o: {"argument": "Please pay."}
    ),
    "remittance:denial_letter": Call("get", lambda o: _d(o, f"letters/{o['letter'].public_id}")),
    "remittance:denial_resubmit": Call("post", lambda o: _d(o, "resubmit")),
}

NOT_PATIENT_DATA: dict[str, str] = {}


def _denial_routes() -> set[str]:
    resolver = next(
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and p.namespace == "remittance"
    )
    return {
        f"remittance:{p.name}"
        for p in resolver.url_patterns
        if getattr(p, "name", None) and str(p.name).startswith("denial")
    }


def test_every_denial_route_is_classified() -> None:
    assert _denial_routes() == set(PATIENT_ROUTES) | set(NOT_PATIENT_DATA)


@pytest.fixture
def world(make_claim: Callable[..., Any], persona: Callable[[str], User]) -> dict[str, Any]:
    denial = deny(make_claim, "PD00000400")
    other = deny(make_claim, "PD00000401")
    letter = denials.denial_appeal(actor=persona("psmanager"), denial=other, argument="Pay it.")
    return {"denial": denial, "letter": letter, "appealed": other}


def _world_for(route: str, world: dict[str, Any]) -> dict[str, Any]:
    if route == "remittance:denial_letter":
        return {**world, "denial": world["appealed"]}
    return world


def _last() -> int:
    return AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0


def _request(client: Client, call: Call, world: dict[str, Any]) -> Any:
    data = call.data(world) if call.data else {}
    return getattr(client, call.method)(call.path(world), data=data)


@pytest.mark.parametrize("route", sorted(PATIENT_ROUTES))
def test_allowed_denial_request_writes_an_audit_event(
    route: str, world: dict[str, Any], persona: Callable[[str], User], login_client: Any
) -> None:
    # given
    call = PATIENT_ROUTES[route]
    here = _world_for(route, world)
    client = login_client(persona(call.allowed_as))
    before = _last()
    # when
    response = _request(client, call, here)
    # then
    assert response.status_code < 400, (route, response.status_code)
    events = AuditEvent.objects.filter(sequence__gt=before, outcome=Outcome.SUCCESS)
    if call.scope == "patient":
        patient = here["denial"].claim.patient
        assert events.filter(patient_public_id=patient.public_id).exists(), route
    else:
        assert events.exists(), route


@pytest.mark.parametrize("route", sorted(PATIENT_ROUTES))
def test_refused_denial_request_writes_an_audit_event(
    route: str, world: dict[str, Any], persona: Callable[[str], User], login_client: Any
) -> None:
    # given
    call = PATIENT_ROUTES[route]
    client = login_client(persona(call.denied_as))
    before = _last()
    # when
    response = _request(client, call, _world_for(route, world))
    # then
    assert response.status_code in (403, 404), (route, response.status_code)
    assert AuditEvent.objects.filter(sequence__gt=before, outcome=Outcome.DENIED).exists(), route
