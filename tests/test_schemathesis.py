"""Property-based run of schemathesis over /api/v1/openapi.json: no input makes the API answer
5xx. Requests go straight into the Django WSGI application with a front-desk bearer token; path
ids point at an existing patient and coverage so that bodies reach the services."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from accounts.models import User
from accounts.services import api_token_create
from config.wsgi import application
from core.models import Location
from patients.models import Coverage, Patient
from patients.tests.factories import CoverageFactory, PatientFactory

# Loaded at import: serving the OpenAPI document needs no database.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture(autouse=True)
def keep_test_connection() -> Iterator[None]:
    """Schemathesis calls the WSGI app directly: like Django's test client, stop the request
    signals from closing the database connection that holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def front_desk_token(persona: Callable[[str], User]) -> str:
    user = persona("frontdesk")
    return api_token_create(actor=user, user=user, name="schemathesis")[1]


@pytest.fixture
def records(main_clinic: Location) -> tuple[Patient, Coverage]:
    patient = PatientFactory(home_location=main_clinic)
    return patient, CoverageFactory(patient=patient)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_never_answers_with_a_server_error(
    case: schemathesis.Case, front_desk_token: str, records: tuple[Patient, Coverage]
) -> None:
    patient, coverage = records
    if case.path_parameters and "public_id" in case.path_parameters:
        target = coverage if case.path.startswith("/api/v1/coverages") else patient
        case.path_parameters["public_id"] = str(target.public_id)

    case.call_and_validate(
        headers={"Authorization": f"Bearer {front_desk_token}"}, checks=[not_a_server_error]
    )
