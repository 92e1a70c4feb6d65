"""Schemathesis over the scheduling routes' OpenAPI document: no input makes them answer 5xx.
Path ids point at a real appointment, so that bodies reach the services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

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
from patients.models import Patient
from scheduling.models import Appointment, AppointmentType, Practitioner
from scheduling.tests.factories import AppointmentFactory
from scheduling.tests.urls import test_api

pytestmark = [pytest.mark.django_db, pytest.mark.urls("scheduling.tests.urls")]


# Built from the router's own API object (no database, no URL resolution at import); the calls
# go through the whole WSGI application, whose URLs the `urls` mark points at that API.
schema = schemathesis.openapi.from_dict(test_api.get_openapi_schema(path_prefix="/api/v1/"))
schema.app = application


@pytest.fixture(autouse=True)
def keep_test_connection() -> Iterator[None]:
    """Calls go straight into the WSGI application: keep the test's database connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(frontdesk: User) -> str:
    return api_token_create(actor=frontdesk, user=frontdesk, name="schemathesis")[1]


@pytest.fixture
def appointment(
    patient: Patient, follow_up: AppointmentType, ana: Practitioner, main_clinic: Location
) -> Appointment:
    return AppointmentFactory(
        patient=patient,
        appointment_type=follow_up,
        location=main_clinic,
        start=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
        practitioners=[ana],
    )


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_scheduling_api_never_answers_with_a_server_error(
    case: schemathesis.Case, token: str, appointment: Appointment
) -> None:
    if case.path_parameters and "public_id" in case.path_parameters:
        case.path_parameters["public_id"] = str(appointment.public_id)

    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
    )
