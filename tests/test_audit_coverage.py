"""Every URL pattern and API route that serves patient data writes an audit event, for allowed
and for denied requests alike.

The test walks the URL resolver: every named route must be listed here, either as a patient-data
route (with how to call it) or among the routes that serve no patient data (with why). A new
route that nobody classified fails `test_every_route_is_classified`, so coverage cannot rot.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from audit.models import AuditEvent, Outcome
from billing.tests.test_views_audit import NOT_PATIENT_DATA as BILLING_NOT_PATIENT_DATA
from billing.tests.test_views_audit import PATIENT_ROUTES as BILLING_ROUTES
from messaging.tests.factories import WaitlistOfferFactory
from patientaccounts.tests.test_views_audit import NOT_PATIENT_DATA as ACCOUNTS_NOT_PATIENT_DATA
from patientaccounts.tests.test_views_audit import PATIENT_ROUTES as ACCOUNTS_ROUTES
from patients.models import Coverage, Patient, PatientFlag
from patients.tests.factories import CoverageFactory, PatientFactory, PatientFlagFactory
from remittance.tests.test_denials_audit import NOT_PATIENT_DATA as DENIALS_NOT_PATIENT_DATA
from remittance.tests.test_denials_audit import PATIENT_ROUTES as DENIALS_ROUTES
from scheduling.tests.factories import AppointmentFactory
from scheduling.tests.test_views_audit import NOT_PATIENT_DATA as SCHEDULING_NOT_PATIENT_DATA
from scheduling.tests.test_views_audit import PATIENT_ROUTES as SCHEDULING_ROUTES

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Call:
    method: str
    path: Callable[[dict[str, Any]], str]
    data: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None = None
    json_body: bool = False
    # "patient": the event names the patient; "query": a search/list event (no single patient)
    scope: str = "patient"
    # Who is refused: "outsider" (a user at another location) or a persona lacking the capability
    denied_as: str | None = "outsider"  # None: the route never refuses (it shows less instead)
    allowed_as: str = "frontdesk"
    expect_action: str | None = None  # when set, an event with this action must be among them
    # Statuses besides 2xx/3xx that still count as "allowed" (e.g. a 409 booking conflict after
    # the patient was read): the point here is the audit event, not the booking rules.
    also_ok: tuple[int, ...] = ()


def _p(o: dict[str, Any]) -> str:
    return str(o["patient"].public_id)


def _a(o: dict[str, Any]) -> str:
    return str(o["appointment"].public_id)


def _pr(o: dict[str, Any]) -> str:
    return str(o["appointment"].practitioners.first().public_id)


def _token(o: dict[str, Any], purpose: str, target: str) -> str:
    from messaging.links import Purpose, make_token

    return make_token(Purpose[purpose], o[target].public_id)


def _ical_feed(o: dict[str, Any]) -> str:
    from interop.tests.factories import FeedTokenFactory
    from scheduling.tests.factories import PractitionerFactory

    FeedTokenFactory(
        raw="audit-coverage-feed-token",
        practitioner=PractitionerFactory(locations=[o["location"]]),
    )
    return "/interfaces/ical/audit-coverage-feed-token.ics"


def _registration(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "home_location": str(o["location"].pk),
        "family_name": "Okafor",
        "given_name": "Adaeze",
        "birth_date": "1991-07-03",
        "sex_at_birth": "F",
        "preferred_language": "English",
        "preferred_contact": "phone",
        "phone_mobile": "(413) 555-0199",
        "guarantor_relationship": "self",
        "coverage-relationship": "self",
    }


def _unmatched_payment(o: dict[str, Any]) -> str:
    """An 835 claim payment that matches none of our claims, in the unmatched queue."""
    from billing.x12.edi835_samples import SampleClaim, SampleLine, SampleRemittance, render_835
    from remittance.models import UnmatchedRemittance
    from remittance.services import remittance_ingest

    adjustment = ("CO", "45", Decimal("30.00"))
    line = SampleLine("99213", Decimal("100.00"), Decimal("70.00"), (adjustment,))
    data = render_835(SampleRemittance(claims=[SampleClaim("NOSUCHCLAIM", (line,))])).encode()
    remittance_ingest(actor=None, data=data, file_name="audit-coverage.835")
    return str(UnmatchedRemittance.objects.get().public_id)


PATIENT_ROUTES: dict[str, Call] = {
    "dashboard:home": Call("get", lambda o: "/", scope="query", denied_as=None),
    "patients:search": Call(
        "post", lambda o: "/patients/", {"q": "smith"}, scope="query", denied_as="servicedirector"
    ),
    "patients:register": Call(
        "post",
        lambda o: "/patients/register/",
        lambda o: _registration(o),
        denied_as="billing",
        scope="query",
    ),
    "patients:merge": Call(
        "post",
        lambda o: "/patients/merge/",
        lambda o: {"mrn_a": o["patient"].mrn, "mrn_b": o["other"].mrn},
        allowed_as="officemanager",
    ),
    "patients:detail": Call("get", lambda o: f"/patients/{_p(o)}/"),
    "patients:edit": Call("get", lambda o: f"/patients/{_p(o)}/edit/"),
    "patients:coverage_add": Call("get", lambda o: f"/patients/{_p(o)}/coverages/add/"),
    "patients:coverage_edit": Call(
        "get", lambda o: f"/patients/{_p(o)}/coverages/{o['coverage'].public_id}/edit/"
    ),
    "patients:coverage_verify": Call(
        "post", lambda o: f"/patients/{_p(o)}/coverages/{o['coverage'].public_id}/verify/"
    ),
    "patients:flag_add": Call("get", lambda o: f"/patients/{_p(o)}/alerts/add/"),
    "patients:flag_clear": Call(
        "post", lambda o: f"/patients/{_p(o)}/alerts/{o['flag'].public_id}/clear/"
    ),
    "patients:break_glass": Call(
        "get",
        lambda o: f"/patients/{_p(o)}/break-glass/",
        allowed_as="outsider",
        denied_as="servicedirector",
    ),
    "audit:report": Call(
        "post",
        lambda o: "/audit/",
        {},
        scope="query",
        allowed_as="privacy",
        denied_as="frontdesk",
    ),
    "audit:export": Call(
        "post",
        lambda o: "/audit/export/",
        {},
        scope="query",
        allowed_as="privacy",
        denied_as="frontdesk",
    ),
    "audit:break_glass": Call(
        "get",
        lambda o: "/audit/break-glass/",
        scope="query",
        allowed_as="privacy",
        denied_as="frontdesk",
    ),
    "api:patient_list": Call(
        "get", lambda o: "/api/v1/patients", scope="query", denied_as="servicedirector"
    ),
    "api:patient_create": Call(
        "post",
        lambda o: "/api/v1/patients",
        lambda o: {
            "home_location": str(o["location"].public_id),
            "family_name": "Audit",
            "given_name": "Coverage",
            "birth_date": "1980-02-03",
            "sex_at_birth": "F",
        },
        json_body=True,
        scope="query",
        denied_as="billing",
        expect_action="create",
    ),
    "api:patient_search_view": Call(
        "post",
        lambda o: "/api/v1/patients/search",
        {"name": "smith"},
        json_body=True,
        scope="query",
        denied_as="servicedirector",
    ),
    "api:patient_read": Call("get", lambda o: f"/api/v1/patients/{_p(o)}"),
    "api:patient_patch": Call(
        "patch", lambda o: f"/api/v1/patients/{_p(o)}", {"preferred_name": "Sam"}, json_body=True
    ),
    "api:coverage_list": Call("get", lambda o: f"/api/v1/patients/{_p(o)}/coverages"),
    "api:coverage_create": Call(
        "post",
        lambda o: f"/api/v1/patients/{_p(o)}/coverages",
        {"payer_name": "Cigna", "member_id": "C123", "order": 2},
        json_body=True,
    ),
    "api:coverage_read": Call("get", lambda o: f"/api/v1/coverages/{o['coverage'].public_id}"),
    "api:coverage_patch": Call(
        "patch",
        lambda o: f"/api/v1/coverages/{o['coverage'].public_id}",
        {"group_number": "G-9"},
        json_body=True,
    ),
    "messaging:reminder_calls": Call(
        "get", lambda o: "/m/reminder-calls/", scope="query", denied_as="servicedirector"
    ),
    # Signed links sent to patients: the link holder is anonymous; a broken link names nobody.
    "messaging:appointment_confirm": Call(
        "get",
        lambda o: f"/m/a/{_token(o, 'CONFIRM', 'appointment')}/confirm/",
        allowed_as="anonymous",
        denied_as=None,
    ),
    "messaging:appointment_cancel": Call(
        "get",
        lambda o: f"/m/a/{_token(o, 'CANCEL', 'appointment')}/cancel/",
        allowed_as="anonymous",
        denied_as=None,
    ),
    "messaging:offer_accept": Call(
        "get",
        lambda o: f"/m/o/{_token(o, 'OFFER_ACCEPT', 'offer')}/accept/",
        allowed_as="anonymous",
        denied_as=None,
    ),
    "messaging:offer_decline": Call(
        "get",
        lambda o: f"/m/o/{_token(o, 'OFFER_DECLINE', 'offer')}/decline/",
        allowed_as="anonymous",
        denied_as=None,
    ),
    "messaging:unsubscribe": Call(
        "post",
        lambda o: f"/m/u/{_token(o, 'UNSUBSCRIBE', 'patient')}/",
        allowed_as="anonymous",
        denied_as=None,
    ),
    "interop:ical_feed": Call("get", lambda o: _ical_feed(o), scope="query", denied_as=None),
    "api:appointment-detail": Call("get", lambda o: f"/api/v1/appointments/{_a(o)}"),
    "api:appointment-day": Call(
        "get",
        lambda o: (
            f"/api/v1/appointments?practitioner={_pr(o)}&date={o['appointment'].start.date()}"
        ),
        scope="query",
        denied_as="servicedirector",
    ),
    "api:appointment-list": Call(
        "post",
        lambda o: "/api/v1/appointments",
        lambda o: {
            "patient": _p(o),
            "practitioner": _pr(o),
            "appointment_type": str(o["appointment"].appointment_type.public_id),
            "start": (o["appointment"].start + dt.timedelta(days=1)).isoformat(),
        },
        json_body=True,
        also_ok=(409,),
    ),
    "api:appointment-cancel": Call(
        "post",
        lambda o: f"/api/v1/appointments/{_a(o)}/cancel",
        {"cancelled_by": "clinic", "reason": "Practitioner unwell"},
        json_body=True,
    ),
    "api:appointment-reschedule": Call(
        "post",
        lambda o: f"/api/v1/appointments/{_a(o)}/reschedule",
        lambda o: {"start": (o["appointment"].start + dt.timedelta(hours=2)).isoformat()},
        json_body=True,
        also_ok=(409,),
    ),
    "api:appointment-check-in": Call(
        "post",
        lambda o: f"/api/v1/appointments/{o['past_appointment'].public_id}/check-in",
        {"insurance_verified": True},
        json_body=True,
    ),
    "api:appointment-no-show": Call(
        "post",
        lambda o: f"/api/v1/appointments/{o['past_appointment'].public_id}/no-show",
        {},
        json_body=True,
    ),
    "fhir:patient-search": Call(
        "get",
        lambda o: "/fhir/r4/Patient?name=smith",
        scope="query",
        denied_as="servicedirector",
    ),
    "fhir:patient-search-post": Call(
        "post",
        lambda o: "/fhir/r4/Patient/_search",
        {"name": "smith"},
        scope="query",
        denied_as="servicedirector",
    ),
    "fhir:patient-read": Call("get", lambda o: f"/fhir/r4/Patient/{_p(o)}"),
    "fhir:coverage-search": Call("get", lambda o: f"/fhir/r4/Coverage?patient={_p(o)}"),
    "fhir:coverage-read": Call("get", lambda o: f"/fhir/r4/Coverage/{o['coverage'].public_id}"),
    "fhir:appointment-read": Call(
        "get", lambda o: f"/fhir/r4/Appointment/{o['appointment'].public_id}"
    ),
    "fhir:appointment-search": Call(
        "get", lambda o: "/fhir/r4/Appointment", scope="query", denied_as="servicedirector"
    ),
    "receivables:aging": Call(
        "get",
        lambda o: "/receivables/?by=patient",
        scope="query",
        allowed_as="billing",
        denied_as="servicedirector",
        expect_action="query",
    ),
    "receivables:aging_csv": Call(
        "get",
        lambda o: "/receivables/aging.csv?by=patient",
        scope="query",
        allowed_as="billing",
        denied_as="servicedirector",
        expect_action="export",
    ),
    "remittance:unmatched_list": Call(
        "get",
        lambda o: "/remittances/unmatched/",
        scope="query",
        allowed_as="billing",
        denied_as="frontdesk",
    ),
    "remittance:unmatched_resolve": Call(
        "post",
        lambda o: f"/remittances/unmatched/{_unmatched_payment(o)}/resolve/",
        {"patient_control_number": "PD99999999"},
        scope="query",
        allowed_as="billing",
        denied_as="frontdesk",
        also_ok=(400,),  # no claim has that number: the form says so; the read is audited
    ),
}

NOT_PATIENT_DATA: dict[str, str] = {
    "healthz": "load-balancer health check (database reachability only)",
    "accounts:login": "sign-in form (security events audited by signals)",
    "accounts:logout": "sign-out (audited as auth.logout)",
    "accounts:otp_verify": "two-factor form (audited as auth.2fa_*)",
    "accounts:otp_setup": "two-factor enrolment (audited as auth.2fa_enrol)",
    "accounts:tokens": "the user's own API tokens (creation/revocation audited)",
    "accounts:token_revoke": "revoking an API token (audited)",
    "accounts:user_list": "staff accounts, no patient data",
    "accounts:user_create": "staff accounts (audited as user.create)",
    "accounts:user_edit": "staff accounts (audited as user.update / user.role_change)",
    "api:openapi-json": "the API schema",
    "api:openapi-view": "the API documentation page",
    "api:api-root": "the API's 404 for unknown paths",
    "api-not-found": "the API's 404 for unknown paths",
    "fhir:metadata": "the CapabilityStatement",
    "api:practitioner-list": "practitioners (staff directory, no patient data)",
    "api:appointment-type-list": "appointment types (reference data)",
    "api:slots": "open slots (times only, no patient data)",
    "interop:status": "interface status: control ids, types, times (audited interfaces.status)",
    "interop:outbound_retry": "resend an HL7 message (audited hl7.siu_retry)",
    "interop:feeds": "calendar link management (audited ical.token_create)",
    "interop:feed_revoke": "revoking a calendar link (audited ical.token_revoke)",
    "messaging:sms_status": "SMS gateway delivery receipts (message ids only; token-checked)",
    "messaging:sms_inbound": "SMS gateway inbound texts (STOP withdraws consent, audited)",
    "fhir:not-found": "FHIR's 404 for unknown paths",
    "fhir:practitioner-search": "practitioners (NPI, names): staff data, refusals audited",
    "fhir:practitioner-read": "a practitioner (NPI, name): staff data, refusals audited",
    "fhir:location-search": "the user's clinic sites, refusals audited",
    "fhir:location-read": "a clinic site (address, hours), refusals audited",
    "fhir:schedule-search": "practitioners' weekly availability, no patients; refusals audited",
    "fhir:schedule-read": "a practitioner's weekly availability, no patients; refusals audited",
    "fhir:slot-search": "free and busy times, no patient named; refusals audited",
    "fhir:slot-read": "one free or busy time, no patient named; refusals audited",
    "receivables:kpis": "revenue-cycle KPIs: counts and amounts, no patient (refusals audited)",
    "remittance:file_list": "835 files received: names, counts, totals (no patient)",
    "remittance:upload": "the 835 upload form (the POST is audited as remittance.upload)",
    "remittance:job": "an upload's status and totals, payer names and traces (no patient)",
}


def _route_names() -> Iterator[str]:
    def walk(patterns: list[Any], namespace: str) -> Iterator[str]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                ns = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
                yield from walk(pattern.url_patterns, ns)
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield namespace + pattern.name

    yield from walk(get_resolver().url_patterns, "")


# The scheduling screens are classified (and exercised, allowed and denied) in
# scheduling/tests/test_views_audit.py, whose world has practitioners with availability.
# 837P batches: list/build/progress show batch metadata and counts (the build is audited as
# claim_batch.build); the download is patient data, and billing/tests/test_export_837.py proves
# it audits every patient in the file when allowed and the refusal when denied.
BATCH_ROUTES = {
    "billing_batches:list",
    "billing_batches:build",
    "billing_batches:progress",
    "billing_batches:download",
}

CLASSIFIED_ELSEWHERE = (
    BATCH_ROUTES
    | set(BILLING_ROUTES)
    | set(BILLING_NOT_PATIENT_DATA)
    | set(SCHEDULING_ROUTES)
    | set(SCHEDULING_NOT_PATIENT_DATA)
    | set(ACCOUNTS_ROUTES)
    | set(ACCOUNTS_NOT_PATIENT_DATA)
    | set(DENIALS_ROUTES)
    | set(DENIALS_NOT_PATIENT_DATA)
)


def test_every_route_is_classified() -> None:
    unclassified = sorted(
        set(_route_names()) - set(PATIENT_ROUTES) - set(NOT_PATIENT_DATA) - CLASSIFIED_ELSEWHERE
    )
    assert unclassified == [], f"classify these routes in {__name__}: {unclassified}"


def test_no_classification_names_a_route_that_does_not_exist() -> None:
    known = set(PATIENT_ROUTES) | set(NOT_PATIENT_DATA) | CLASSIFIED_ELSEWHERE
    stale = sorted(known - set(_route_names()))
    assert stale == []


@pytest.fixture
def world(main_clinic: Any, persona: Callable[[str], Any]) -> dict[str, Any]:
    patient: Patient = PatientFactory(home_location=main_clinic, family_name="Smith")
    coverage: Coverage = CoverageFactory(patient=patient)
    flag: PatientFlag = PatientFlagFactory(patient=patient)
    other: Patient = PatientFactory(home_location=main_clinic, family_name="Smyth")
    patient.email = "smith@example.org"
    patient.consent_email = True
    patient.save()
    appointment = AppointmentFactory(
        patient=patient, location=main_clinic, start=timezone.now() + dt.timedelta(days=3)
    )
    past_appointment = AppointmentFactory(
        patient=patient,
        location=main_clinic,
        start=timezone.now() - dt.timedelta(minutes=20),
        practitioners=[appointment.practitioners.first()],
        appointment_type=appointment.appointment_type,
    )
    offer = WaitlistOfferFactory(
        entry__patient=patient,
        entry__location=main_clinic,
        expires_at=timezone.now() + dt.timedelta(hours=2),
    )
    return {
        "patient": patient,
        "other": other,
        "coverage": coverage,
        "flag": flag,
        "location": main_clinic,
        "appointment": appointment,
        "past_appointment": past_appointment,
        "offer": offer,
    }


def _request(client: Client, call: Call, world: dict[str, Any]) -> Any:
    path = call.path(world)
    data = call.data(world) if callable(call.data) else call.data
    if call.json_body:
        return getattr(client, call.method)(
            path, data=json.dumps(data or {}), content_type="application/json"
        )
    return getattr(client, call.method)(path, data=data or {})


def _events_after(sequence: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(sequence__gt=sequence).order_by("sequence"))


def _last_sequence() -> int:
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    return last or 0


@pytest.mark.parametrize("route", sorted(PATIENT_ROUTES))
def test_allowed_request_writes_an_audit_event(
    route: str, world: dict[str, Any], persona: Callable[[str], Any], login_client: Any
) -> None:
    # given a user whose role and location allow the request
    call = PATIENT_ROUTES[route]
    client = Client() if call.allowed_as == "anonymous" else login_client(persona(call.allowed_as))
    before = _last_sequence()
    # when they make it
    response = _request(client, call, world)
    # then it succeeded and at least one audit event describes it
    assert response.status_code < 400 or response.status_code in call.also_ok, (
        route,
        response.status_code,
    )
    events = [e for e in _events_after(before) if e.outcome == Outcome.SUCCESS]
    if call.scope == "patient":
        assert any(e.patient_public_id == world["patient"].public_id for e in events), route
    else:
        assert events, route
    if call.expect_action:
        assert call.expect_action in {e.action for e in events}, (route, [e.event for e in events])


@pytest.mark.parametrize("route", sorted(r for r, c in PATIENT_ROUTES.items() if c.denied_as))
def test_denied_request_writes_an_audit_event(
    route: str, world: dict[str, Any], persona: Callable[[str], Any], login_client: Any
) -> None:
    # given a user at another location, or whose role lacks the capability
    call = PATIENT_ROUTES[route]
    assert call.denied_as is not None
    client = login_client(persona(call.denied_as))
    before = _last_sequence()
    # when they try
    response = _request(client, call, world)
    # then they were refused and the refusal is in the trail
    assert response.status_code in (403, 404), (route, response.status_code)
    events = _events_after(before)
    assert any(e.outcome == Outcome.DENIED for e in events), (route, [e.event for e in events])


def test_home_page_shows_no_patient_to_a_role_without_patient_access(
    world: dict[str, Any], persona: Callable[[str], Any], login_client: Any
) -> None:
    # given a service director (operations only, no patient records)
    client = login_client(persona("servicedirector"))
    before = _last_sequence()
    # when they open the home page
    html = client.get("/").content.decode()
    # then no patient appears and no patient was read
    assert world["patient"].family_name not in html
    assert world["patient"].mrn not in html
    assert not [e for e in _events_after(before) if e.patient_public_id]
