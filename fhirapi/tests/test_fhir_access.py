"""Access matrix of every FHIR route, and the audit event each answer leaves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import Client
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from accounts.models import User
from audit.models import AuditEvent
from patients.models import Coverage, Patient


@dataclass(frozen=True)
class Route:
    method: str
    path: Callable[[Patient, Coverage], str]
    data: str
    event: str
    lesser_status: int
    outsider_status: int
    wrong_method: str


FORM = "application/x-www-form-urlencoded"
ROUTES = {
    "read patient": Route(
        "GET", lambda p, c: f"/fhir/r4/Patient/{p.public_id}", "", "patient.view", 404, 404,
        "DELETE",
    ),
    "search patients": Route(
        "GET", lambda p, c: "/fhir/r4/Patient?name=hoeger", "", "patient.search", 403, 200, "POST"
    ),
    "search patients by POST": Route(
        "POST", lambda p, c: "/fhir/r4/Patient/_search", "name=hoeger", "patient.search", 403, 200,
        "GET",
    ),
    "search coverages": Route(
        "GET", lambda p, c: f"/fhir/r4/Coverage?patient={p.public_id}", "", "coverage.list", 404,
        404, "POST",
    ),
    "read coverage": Route(
        "GET", lambda p, c: f"/fhir/r4/Coverage/{c.public_id}", "", "coverage.view", 404, 404,
        "DELETE",
    ),
}  # fmt: skip


def call(client: Client, method: str, url: str, data: str = "") -> object:
    if method == "GET":
        return client.get(url)
    return client.generic(method, url, data, content_type=FORM)


def last_event() -> AuditEvent:
    return AuditEvent.objects.order_by("-sequence").first()


@pytest.fixture
def world(patient: Patient, coverage: Coverage) -> tuple[Patient, Coverage]:
    return patient, coverage


@pytest.mark.parametrize("name", ROUTES)
def test_allowed_role_reads_and_is_audited(
    name: str, world: tuple[Patient, Coverage], frontdesk: User, token_client: Callable
) -> None:
    route = ROUTES[name]

    response = call(token_client(frontdesk), route.method, route.path(*world), route.data)

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    event = last_event()
    assert (event.event, event.outcome, event.username) == (route.event, "success", "frontdesk")


@pytest.mark.parametrize("name", ROUTES)
def test_role_without_view_capability_is_refused_and_audited(
    name: str,
    world: tuple[Patient, Coverage],
    persona: Callable[[str], User],
    login_client: Callable,
) -> None:
    route = ROUTES[name]

    response = call(
        login_client(persona("servicedirector")), route.method, route.path(*world), route.data
    )

    assert response.status_code == route.lesser_status, response.content
    OperationOutcome.model_validate_json(response.content)
    event = last_event()
    assert (event.event, event.outcome, event.username) == (
        route.event, "denied", "servicedirector"
    )  # fmt: skip


@pytest.mark.parametrize("name", ROUTES)
def test_user_of_another_location_does_not_see_the_patient(
    name: str, world: tuple[Patient, Coverage], outsider: User, token_client: Callable
) -> None:
    route = ROUTES[name]

    response = call(token_client(outsider), route.method, route.path(*world), route.data)

    assert response.status_code == route.outsider_status
    event = last_event()
    assert (event.event, event.username) == (route.event, "outsider")
    if route.outsider_status == 404:
        OperationOutcome.model_validate_json(response.content)
        assert event.outcome == "denied"
    else:
        assert Bundle.model_validate_json(response.content).entry is None


@pytest.mark.parametrize("name", ROUTES)
def test_anonymous_caller_gets_401_outcome_and_is_audited(
    name: str, world: tuple[Patient, Coverage]
) -> None:
    route = ROUTES[name]

    response = call(Client(), route.method, route.path(*world), route.data)

    assert response.status_code == 401
    assert OperationOutcome.model_validate_json(response.content).issue[0].code == "login"
    event = last_event()
    assert (event.event, event.outcome, event.user_id) == ("fhir.unauthenticated", "denied", None)


@pytest.mark.parametrize("name", ROUTES)
def test_wrong_method_answers_405_outcome(
    name: str, world: tuple[Patient, Coverage], frontdesk: User, token_client: Callable
) -> None:
    route = ROUTES[name]

    response = call(token_client(frontdesk), route.wrong_method, route.path(*world))

    assert response.status_code == 405
    assert route.method in response["Allow"]
    assert OperationOutcome.model_validate_json(response.content).issue[0].code == "not-supported"


def test_metadata_is_public_but_only_for_reading() -> None:
    assert Client().get("/fhir/r4/metadata").status_code == 200
    assert Client().post("/fhir/r4/metadata").status_code == 405


def test_session_search_by_post_needs_the_csrf_token(frontdesk: User, patient: Patient) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(frontdesk)

    response = client.post("/fhir/r4/Patient/_search", "name=hoeger", content_type=FORM)

    assert response.status_code == 403
    assert OperationOutcome.model_validate_json(response.content).issue[0].code == "forbidden"


def test_invalid_token_is_refused(patient: Patient) -> None:
    response = Client(HTTP_AUTHORIZATION="Bearer pdk_wrong").get(
        f"/fhir/r4/Patient/{patient.public_id}"
    )

    assert response.status_code == 401
