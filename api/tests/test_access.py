"""Access matrix of every JSON API route, and the audit event each answer leaves.

For each route: the allowed role (front desk), a role without the capability (403 for writes and
collections, 404 for single records), a user of another location (404), anonymous (401) and a
wrong method (405, problem+json).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from patients.models import Coverage, Patient


@dataclass(frozen=True)
class Route:
    method: str
    path: Callable[[Patient, Coverage], str]
    body: dict[str, Any] | None
    ok: int
    event: str
    lesser: str
    lesser_status: int
    lesser_event: str = ""
    outsider_event: str = ""
    outsider_status: int = 404
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, patient: Patient, coverage: Coverage) -> str:
        return self.path(patient, coverage)


NEW_PATIENT = {
    "family_name": "Okafor",
    "given_name": "Ada",
    "birth_date": "1990-05-01",
    "sex_at_birth": "F",
}
NEW_COVERAGE = {"payer_name": "Aetna", "member_id": "W555", "order": 2}

ROUTES = {
    "list patients": Route(
        "GET", lambda p, c: "/api/v1/patients", None, 200, "patient.list",
        "servicedirector", 403, outsider_status=200,
    ),
    "register patient": Route(
        "POST", lambda p, c: "/api/v1/patients", NEW_PATIENT, 201, "patient.register",
        "meddirector", 403, outsider_status=201, outsider_event="patient.register",
    ),
    "search patients": Route(
        "POST", lambda p, c: "/api/v1/patients/search", {"name": "hoeger"}, 200,
        "patient.search", "servicedirector", 403, outsider_status=200,
    ),
    "read patient": Route(
        "GET", lambda p, c: f"/api/v1/patients/{p.public_id}", None, 200, "patient.view",
        "servicedirector", 404,
    ),
    "update patient": Route(
        "PATCH", lambda p, c: f"/api/v1/patients/{p.public_id}", {"preferred_name": "Bus"}, 200,
        "patient.update", "meddirector", 403, outsider_event="patient.view",
    ),
    "list coverages": Route(
        "GET", lambda p, c: f"/api/v1/patients/{p.public_id}/coverages", None, 200,
        "coverage.list", "servicedirector", 404,
    ),
    "add coverage": Route(
        "POST", lambda p, c: f"/api/v1/patients/{p.public_id}/coverages", NEW_COVERAGE, 201,
        "coverage.add", "meddirector", 403, outsider_event="coverage.view",
    ),
    "read coverage": Route(
        "GET", lambda p, c: f"/api/v1/coverages/{c.public_id}", None, 200, "coverage.view",
        "servicedirector", 404,
    ),
    "update coverage": Route(
        "PATCH", lambda p, c: f"/api/v1/coverages/{c.public_id}", {"plan_name": "Gold"}, 200,
        "coverage.update", "meddirector", 403, outsider_event="coverage.view",
    ),
}  # fmt: skip
WRONG_METHOD = {"GET": "DELETE", "POST": "PUT", "PATCH": "PUT"}


def call(client: Client, method: str, url: str, body: dict[str, Any] | None) -> Any:
    return getattr(client, method.lower())(url, body, content_type="application/json")


def last_event() -> AuditEvent:
    return AuditEvent.objects.order_by("-sequence").first()


@pytest.fixture
def world(patient: Patient, coverage: Coverage) -> tuple[Patient, Coverage]:
    return patient, coverage


@pytest.mark.parametrize("name", ROUTES)
def test_allowed_role_succeeds_and_is_audited(
    name: str, world: tuple[Patient, Coverage], frontdesk: User, token_client: Callable
) -> None:
    route = ROUTES[name]
    before = AuditEvent.objects.count()

    response = call(token_client(frontdesk), route.method, route.url(*world), route.body)

    assert response.status_code == route.ok, response.content
    assert response["Content-Type"].startswith("application/json")
    assert AuditEvent.objects.count() > before
    event = last_event()
    assert (event.event, event.outcome, event.username) == (route.event, "success", "frontdesk")


@pytest.mark.parametrize("name", ROUTES)
def test_role_without_the_capability_is_refused_and_audited(
    name: str,
    world: tuple[Patient, Coverage],
    persona: Callable[[str], User],
    login_client: Callable,
) -> None:
    route = ROUTES[name]
    user = persona(route.lesser)

    response = call(login_client(user), route.method, route.url(*world), route.body)

    assert response.status_code == route.lesser_status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == route.lesser_status
    event = last_event()
    assert (event.event, event.outcome, event.username) == (route.event, "denied", route.lesser)


@pytest.mark.parametrize("name", ROUTES)
def test_user_of_another_location_cannot_reach_the_record(
    name: str, world: tuple[Patient, Coverage], outsider: User, token_client: Callable
) -> None:
    route = ROUTES[name]

    response = call(token_client(outsider), route.method, route.url(*world), route.body)

    assert response.status_code == route.outsider_status, response.content
    event = last_event()
    assert event.username == "outsider"
    if route.outsider_status == 404:
        assert response["Content-Type"] == "application/problem+json"
        assert (event.event, event.outcome) == (route.outsider_event or route.event, "denied")
        assert event.patient_public_id == world[0].public_id
    else:
        assert str(world[0].public_id) not in response.content.decode()


@pytest.mark.parametrize("name", ROUTES)
def test_anonymous_caller_gets_401_and_the_attempt_is_audited(
    name: str, world: tuple[Patient, Coverage]
) -> None:
    route = ROUTES[name]

    response = call(Client(), route.method, route.url(*world), route.body)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    event = last_event()
    assert (event.event, event.outcome, event.user_id) == ("api.unauthenticated", "denied", None)


@pytest.mark.parametrize("name", ROUTES)
def test_wrong_method_answers_405_problem(
    name: str, world: tuple[Patient, Coverage], frontdesk: User, token_client: Callable
) -> None:
    route = ROUTES[name]

    response = call(token_client(frontdesk), WRONG_METHOD[route.method], route.url(*world), {})

    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert route.method in response["Allow"]
    assert response.json()["title"] == "Method Not Allowed"


def test_revoked_capability_stops_a_token_from_working(
    frontdesk: User, token_client: Callable, patient: Patient
) -> None:
    # given a token created while the user could use the API
    client = token_client(frontdesk)
    # when the user's roles no longer grant it
    frontdesk.roles.clear()
    frontdesk.__dict__.pop("capability_set", None)

    response = client.get(f"/api/v1/patients/{patient.public_id}")

    # then
    assert response.status_code == 401
    assert last_event().event == "auth.token_invalid"


def test_invalid_token_is_refused_with_401(patient: Patient) -> None:
    client = Client(HTTP_AUTHORIZATION="Bearer pdk_not-a-real-token")

    response = client.get(f"/api/v1/patients/{patient.public_id}")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_session_write_without_csrf_token_is_refused(
    frontdesk: User, login_client: Callable, patient: Patient
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(frontdesk)

    response = client.patch(
        f"/api/v1/patients/{patient.public_id}", {"preferred_name": "B"},
        content_type="application/json",
    )  # fmt: skip

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    patient.refresh_from_db()
    assert patient.preferred_name == ""


def test_session_write_with_csrf_token_is_accepted(frontdesk: User, patient: Patient) -> None:
    # given a signed-in browser that has the CSRF cookie
    client = Client(enforce_csrf_checks=True)
    client.force_login(frontdesk)
    client.get("/api/v1/docs")
    token = client.cookies["csrftoken"].value

    # when
    response = client.patch(
        f"/api/v1/patients/{patient.public_id}", {"preferred_name": "B"},
        content_type="application/json", HTTP_X_CSRFTOKEN=token,
    )  # fmt: skip

    # then
    assert response.status_code == 200, response.content
    assert response.json()["preferred_name"] == "B"


def test_break_glass_grant_opens_a_record_of_another_location(
    outsider: User, token_client: Callable, patient: Patient
) -> None:
    from patients.services import break_glass_grant

    break_glass_grant(actor=outsider, patient=patient, reason="Patient unconscious in the ED")

    response = token_client(outsider).get(f"/api/v1/patients/{patient.public_id}")

    assert response.status_code == 200
    assert last_event().reason == "break-glass"
