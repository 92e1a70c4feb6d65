"""Fixtures for the JSON and FHIR API tests: bearer-token clients and patients at each site."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import User
from accounts.services import api_token_create
from core.models import Location
from patients.models import Coverage, Patient
from patients.tests.factories import CoverageFactory, PatientFactory


@pytest.fixture
def token_client() -> Callable[[User], Client]:
    """A client that sends `Authorization: Bearer <token>` for the user's new personal token."""

    def make(user: User) -> Client:
        _, raw = api_token_create(actor=user, user=user, name="tests")
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    return make


@pytest.fixture
def patient(main_clinic: Location) -> Patient:
    return PatientFactory(
        home_location=main_clinic,
        family_name="Hoeger",
        given_name="Buster",
        birth_date="1988-03-16",
        phone_mobile="+16175550100",
    )


@pytest.fixture
def riverside_patient(riverside: Location) -> Patient:
    return PatientFactory(home_location=riverside, family_name="Kreiger", given_name="Clemente")


@pytest.fixture
def coverage(patient: Patient) -> Coverage:
    return CoverageFactory(patient=patient, member_id="W123456789")


@pytest.fixture
def riverside_coverage(riverside_patient: Patient) -> Coverage:
    return CoverageFactory(patient=riverside_patient, member_id="W987654321")
