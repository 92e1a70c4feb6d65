"""Every patient-accounts route is classified here: the ones that show or change patient data
write an audit event for allowed and for refused requests alike (as tests/test_audit_coverage.py
does for the other apps); the others say why they hold no patient data. A new route nobody
classified fails `test_every_patientaccounts_route_is_classified`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from audit.models import AuditEvent, Outcome
from patientaccounts import services
from patientaccounts.tests.factories import post_charge, take_payment
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Call:
    method: str
    path: Callable[[dict[str, Any]], str]
    data: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    scope: str = "patient"  # "patient": an event names the patient; "query": a list event
    allowed_as: str = "frontdesk"
    denied_as: str = "outsider"


def _p(o: dict[str, Any], action: str = "") -> str:
    return f"/patient-accounts/{o['patient'].public_id}/{action}"


def _doc(kind: str, key: str, suffix: str = "") -> Callable[[dict[str, Any]], str]:
    return lambda o: f"/patient-accounts/{kind}/{o[key].public_id}/{suffix}"


PATIENT_ROUTES: dict[str, Call] = {
    "patientaccounts:account": Call("get", _p),
    "patientaccounts:payment_take": Call(
        "post",
        lambda o: _p(o, "pay/"),
        lambda o: {"amount": "5.00", "method": "cash", "idempotency_key": "audit-1"},
    ),
    "patientaccounts:refund_request": Call("get", lambda o: _p(o, "refund/")),
    "patientaccounts:plan_create": Call("get", lambda o: _p(o, "plan/")),
    "patientaccounts:statement_create": Call(
        "post", lambda o: _p(o, "statement/"), allowed_as="billing"
    ),
    "patientaccounts:dispute_open": Call(
        "get", lambda o: _p(o, "dispute/"), allowed_as="officeadmin"
    ),
    "patientaccounts:receipt_pdf": Call(
        "get", lambda o: f"/patient-accounts/payments/{o['payment'].public_id}/receipt.pdf"
    ),
    "patientaccounts:refund_list": Call(
        "get",
        lambda o: "/patient-accounts/refunds/",
        scope="query",
        allowed_as="officemanager",
        denied_as="frontdesk",
    ),
    "patientaccounts:refund_approve": Call(
        "post", _doc("refunds", "refund", "approve/"), allowed_as="officemanager"
    ),
    "patientaccounts:refund_reject": Call(
        "post",
        _doc("refunds", "refund", "reject/"),
        lambda o: {"note": "Not cleared"},
        allowed_as="officemanager",
    ),
    "patientaccounts:statement_pdf": Call("get", _doc("statements", "statement", "pdf/")),
    "patientaccounts:dispute_list": Call(
        "get",
        lambda o: "/patient-accounts/disputes/",
        scope="query",
        allowed_as="officeadmin",
        denied_as="frontdesk",
    ),
    "patientaccounts:dispute_detail": Call(
        "get", _doc("disputes", "dispute"), allowed_as="officeadmin"
    ),
    "patientaccounts:dispute_note": Call(
        "post",
        _doc("disputes", "dispute", "notes/"),
        lambda o: {"text": "Called back"},
        allowed_as="officeadmin",
    ),
    "patientaccounts:dispute_letter": Call(
        "get",
        lambda o: (
            f"/patient-accounts/disputes/{o['dispute'].public_id}/letters/acknowledgement.pdf"
        ),
        allowed_as="officeadmin",
    ),
}

NOT_PATIENT_DATA: dict[str, str] = {
    "patientaccounts:statement_runs": "statement runs: dates, locations, counts (starts audited)",
    "patientaccounts:statement_run": "one run's progress counts (denials audited)",
    "patientaccounts:deposit_report": "totals by staff user and method (audited as a query)",
}


def _routes() -> set[str]:
    resolver = next(
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and p.namespace == "patientaccounts"
    )
    return {f"patientaccounts:{p.name}" for p in resolver.url_patterns if p.name}


def test_every_patientaccounts_route_is_classified() -> None:
    assert _routes() == set(PATIENT_ROUTES) | set(NOT_PATIENT_DATA)


@pytest.fixture
def world(main_clinic: Any, frontdesk: Any, persona: Any) -> dict[str, Any]:
    patient = PatientFactory(home_location=main_clinic)
    post_charge(patient, "100.00")
    payment = take_payment(patient, frontdesk, "130.00")  # a credit of 30
    refund = services.refund_request(
        actor=frontdesk, patient=patient, amount="10.00", method="check", reason="Overpaid"
    )
    statement = services.statement_generate(actor=None, patient=patient)
    dispute = services.dispute_open(
        actor=persona("officeadmin"), patient=patient, reason="other", disputed_amount="5.00"
    )
    return {
        "patient": patient,
        "payment": payment,
        "refund": refund,
        "statement": statement,
        "dispute": dispute,
    }


def _request(client: Client, call: Call, world: dict[str, Any]) -> Any:
    data = call.data(world) if call.data else {}
    return getattr(client, call.method)(call.path(world), data=data)


def _last() -> int:
    return AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0


@pytest.mark.parametrize("route", sorted(PATIENT_ROUTES))
def test_allowed_patientaccounts_request_writes_an_audit_event(
    route: str, world: dict[str, Any], persona: Any, login_client: Any
) -> None:
    # given a user whose role and location allow the request
    call = PATIENT_ROUTES[route]
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
def test_refused_patientaccounts_request_writes_an_audit_event(
    route: str, world: dict[str, Any], persona: Any, login_client: Any
) -> None:
    # given a user at another location, or whose role lacks the capability
    call = PATIENT_ROUTES[route]
    client = login_client(persona(call.denied_as))
    before = _last()
    # when they try
    response = _request(client, call, world)
    # then they were refused and the refusal is in the trail
    assert response.status_code in (403, 404), (route, response.status_code)
    assert AuditEvent.objects.filter(sequence__gt=before, outcome=Outcome.DENIED).exists(), route
