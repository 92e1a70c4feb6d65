"""Fixtures for the patient screens: a patient at Main Street Clinic and clients per persona."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import User
from core.models import Location
from patients.models import Patient
from patients.tests.factories import PatientFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def patient(main_clinic: Location) -> Patient:
    return PatientFactory.create(
        home_location=main_clinic,
        family_name="Smith",
        given_name="Joanna",
        preferred_name="Jo",
        birth_date=dt.date(1980, 4, 12),
        sex_at_birth="F",
        phone_mobile="+16175550142",
        email="jo.smith@example.org",
    )


@pytest.fixture
def client_as(
    persona: Callable[[str], User], login_client: Callable[[User], Client]
) -> Callable[[str], Client]:
    """client_as("frontdesk") -> a signed-in client for that persona (2FA satisfied)."""

    def make(name: str) -> Client:
        return login_client(persona(name))

    return make
