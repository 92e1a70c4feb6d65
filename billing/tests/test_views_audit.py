"""Every billing route is classified here: the ones that show or change patient data write an
audit event for allowed and for refused requests alike (as tests/test_audit_coverage.py does for
the other apps); the others say why they hold no patient data. A new route nobody classified
fails `test_every_billing_route_is_classified`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from accounts.models import User
from audit.models import AuditEvent, Outcome
from billing import services
from billing.models import Encounter
from billing.services import LineInput

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Call:
    method: str
    path: Callable[[dict[str, Any]], str]
    data: dict[str, str] | None = None
    scope: str = "patient"  # "patient": an event names the patient; "query": a list event
    allowed_as: str = "billing"
    denied_as: str = "outsider"


def _c(o: dict[str, Any], action: str = "") -> str:
    return f"/billing/claims/{o['claim'].public_id}/" + (f"{action}/" if action else "")


def _e(o: dict[str, Any], action: str = "") -> str:
    return f"/billing/encounters/{o['encounter'].public_id}/" + (f"{action}/" if action else "")


PATIENT_ROUTES: dict[str, Call] = {
    "billing:home": Call("get", lambda o: "/billing/", scope="query", denied_as="servicedirector"),
    "billing:claim_list": Call(
        "get", lambda o: "/billing/claims/", scope="query", denied_as="servicedirector"
    ),
    "billing:claim": Call("get", _c),
    "billing:claim_cms1500": Call("get", lambda o: _c(o) + "cms1500.pdf"),
    "billing:claim_scrub": Call("post", lambda o: _c(o, "scrub")),
    "billing:claim_status": Call("post", lambda o: _c(o, "status"), {"to_status": "ready"}),
    "billing:claim_replace": Call("post", lambda o: _c(o, "replace")),
    "billing:claim_void": Call("post", lambda o: _c(o, "void")),
    "billing:encounter_new": Call(
        "get", lambda o: f"/billing/patients/{o['patient'].public_id}/encounters/new/"
    ),
    "billing:encounter": Call("get", _e),
    "billing:charge_add": Call(
        "post", lambda o: _e(o, "charges"), {"code": "85025", "units": "1", "pointer1": "1"}
    ),
    "billing:claim_create": Call("post", lambda o: _e(o, "claims")),
    "billing:charge_correct": Call(
        "post",
        lambda o: f"/billing/charges/{o['line'].public_id}/correct/",
        {"reason": "Wrong code"},
    ),
}

NOT_PATIENT_DATA: dict[str, str] = {
    "billing:icd10_check": "looks up an ICD-10-CM code's description (reference data)",
    "billing:payer_list": "payers (reference data)",
    "billing:payer_new": "adding a payer (audited as payer.save)",
    "billing:payer_edit": "editing a payer (audited as payer.save)",
    "billing:fee_schedule_list": "fee schedules (prices, reference data)",
    "billing:fee_schedule_new": "adding a fee schedule (audited as fee_schedule.save)",
    "billing:fee_schedule": "a fee schedule and its prices (changes audited)",
    "billing:fee_entry_set": "setting a price (audited as fee_entry.set)",
}


def _billing_routes() -> set[str]:
    resolver = next(
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and p.namespace == "billing"
    )
    return {f"billing:{p.name}" for p in resolver.url_patterns if getattr(p, "name", None)}


def test_every_billing_route_is_classified() -> None:
    assert _billing_routes() == set(PATIENT_ROUTES) | set(NOT_PATIENT_DATA)


@pytest.fixture
def world(billing_user: User, encounter: Encounter) -> dict[str, Any]:
    line = services.charge_line_add(
        actor=billing_user, encounter=encounter, line=LineInput(code="99213")
    )
    claim = services.claim_create_from_encounter(actor=billing_user, encounter=encounter)
    return {"patient": encounter.patient, "encounter": encounter, "line": line, "claim": claim}


def _last() -> int:
    return AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0


def _request(client: Client, call: Call, world: dict[str, Any]) -> Any:
    return getattr(client, call.method)(call.path(world), data=call.data or {})


@pytest.mark.parametrize("route", sorted(PATIENT_ROUTES))
def test_allowed_billing_request_writes_an_audit_event(
    route: str, world: dict[str, Any], persona: Callable[[str], User], login_client: Any
) -> None:
    # given
    call = PATIENT_ROUTES[route]
    client = login_client(persona(call.allowed_as))
    before = _last()

    # when
    response = _request(client, call, world)

    # then
    assert response.status_code < 400, (route, response.status_code)
    events = AuditEvent.objects.filter(sequence__gt=before, outcome=Outcome.SUCCESS)
    if call.scope == "patient":
        assert events.filter(patient_public_id=world["patient"].public_id).exists(), route
    else:
        assert events.exists(), route


@pytest.mark.parametrize("route", sorted(PATIENT_ROUTES))
def test_refused_billing_request_writes_an_audit_event(
    route: str, world: dict[str, Any], persona: Callable[[str], User], login_client: Any
) -> None:
    # given
    call = PATIENT_ROUTES[route]
    client = login_client(persona(call.denied_as))
    before = _last()

    # when
    response = _request(client, call, world)

    # then
    assert response.status_code in (403, 404), (route, response.status_code)
    assert AuditEvent.objects.filter(sequence__gt=before, outcome=Outcome.DENIED).exists(), route
