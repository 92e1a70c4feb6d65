"""API clients get errors in their own format: OperationOutcome under /fhir/, problem+json
under /api/."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_bad_token_on_fhir_answers_an_operation_outcome() -> None:
    response = Client().get("/fhir/r4/Patient", HTTP_AUTHORIZATION="Bearer pdk_nonsense")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/fhir+json"
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "login"


def test_bad_token_on_the_json_api_answers_problem_json() -> None:
    response = Client().get("/api/v1/patients", HTTP_AUTHORIZATION="Bearer pdk_nonsense")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 401


def test_unverified_manager_on_fhir_gets_a_forbidden_outcome(persona, login_client) -> None:
    # given a manager whose session has not passed two-factor
    client = login_client(persona("officemanager"), verified=False)
    # when they call the FHIR API with the session
    response = client.get("/fhir/r4/Patient?name=smith")
    # then the answer is a FHIR OperationOutcome, not HTML or problem+json
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"


def test_idle_session_on_the_api_answers_problem_json(persona, login_client) -> None:
    from accounts.middleware import SESSION_LAST_SEEN

    client = login_client(persona("frontdesk"))
    session = client.session
    session[SESSION_LAST_SEEN] = 0
    session.save()
    response = client.get("/api/v1/patients")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
