"""Problem+json for every kind of error, the OpenAPI document and the docs page."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import User
from patients.models import Patient


@pytest.fixture
def api(frontdesk: User, token_client: Callable[[User], Client]) -> Client:
    return token_client(frontdesk)


def test_malformed_json_answers_400_problem(api: Client) -> None:
    response = api.post("/api/v1/patients", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "The request body is not valid JSON.",
    }


def test_json_that_is_not_an_object_answers_422(api: Client) -> None:
    response = api.post("/api/v1/patients/search", "[1, 2]", content_type="application/json")

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"


def test_unknown_path_under_the_api_answers_404_problem(api: Client) -> None:
    response = api.get("/api/v1/no-such-collection")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_non_uuid_id_answers_404_problem(api: Client) -> None:
    response = api.get("/api/v1/patients/123")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_validation_problem_has_the_rfc_9457_members(api: Client, patient: Patient) -> None:
    response = api.patch(
        f"/api/v1/patients/{patient.public_id}", {"sex_at_birth": "Q"},
        content_type="application/json",
    )  # fmt: skip

    problem = response.json()
    assert set(problem) == {"type", "title", "status", "detail", "errors"}
    assert (problem["type"], problem["status"]) == ("urn:patientdesk:problem:validation", 422)
    assert problem["errors"][0]["field"] == "sex_at_birth"
    assert "'F', 'M' or 'U'" in problem["errors"][0]["message"]


def test_openapi_document_describes_every_route() -> None:
    response = Client().get("/api/v1/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    operations = {(m.upper(), p) for p, item in schema["paths"].items() for m in item}
    assert operations == {
        ("GET", "/api/v1/patients"),
        ("POST", "/api/v1/patients"),
        ("POST", "/api/v1/patients/search"),
        ("GET", "/api/v1/patients/{public_id}"),
        ("PATCH", "/api/v1/patients/{public_id}"),
        ("GET", "/api/v1/patients/{public_id}/coverages"),
        ("POST", "/api/v1/patients/{public_id}/coverages"),
        ("GET", "/api/v1/coverages/{public_id}"),
        ("PATCH", "/api/v1/coverages/{public_id}"),
        ("GET", "/api/v1/practitioners"),
        ("GET", "/api/v1/appointment-types"),
        ("GET", "/api/v1/slots"),
        ("POST", "/api/v1/appointments"),
        ("GET", "/api/v1/appointments"),
        ("GET", "/api/v1/appointments/{public_id}"),
        ("POST", "/api/v1/appointments/{public_id}/cancel"),
        ("POST", "/api/v1/appointments/{public_id}/reschedule"),
        ("POST", "/api/v1/appointments/{public_id}/check-in"),
        ("POST", "/api/v1/appointments/{public_id}/no-show"),
    }
    assert schema["components"]["securitySchemes"]["TokenAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    error = schema["paths"]["/api/v1/patients"]["post"]["responses"]["409"]
    assert "application/problem+json" in error["content"]


def test_no_phi_search_parameter_is_offered_in_a_url() -> None:
    schema = Client().get("/api/v1/openapi.json").json()

    query_names = {
        parameter["name"]
        for item in schema["paths"].values()
        for operation in item.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
    }
    # Scheduling filters name practitioners, types and times: none of them identifies a patient.
    assert query_names == {
        "location",
        "updated_since",
        "sort",
        "limit",
        "offset",
        "appointment_type",
        "practitioner",
        "start",
        "end",
        "date",
    }


def test_docs_page_loads_local_scripts_only_and_no_inline_script() -> None:
    response = Client().get("/api/v1/docs")

    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts
    for attributes, body in scripts:
        if 'type="application/json"' in attributes:  # data, not executed: CSP does not apply
            continue
        src = re.search(r'src="([^"]+)"', attributes)
        assert src is not None, attributes
        assert src.group(1).startswith("/static/")
        assert not body.strip()
    assert "http://" not in html
    assert "https://" not in html
    assert not re.search(r"\son[a-z]+=", html)
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_docs_page_static_files_are_served() -> None:
    client = Client()
    html = client.get("/api/v1/docs").content.decode()

    for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        response = client.get(path)
        assert response.status_code == 200, path
