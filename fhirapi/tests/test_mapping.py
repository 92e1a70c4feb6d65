"""patients.fhir: what a record exports is what an import of that export gives back."""

from __future__ import annotations

import datetime as dt

import pytest
from fhir.resources.R4B.coverage import Coverage as FhirCoverage
from fhir.resources.R4B.patient import Patient as FhirPatient

from core.models import Location
from patients.fhir import (
    FhirMappingError,
    coverage_from_fhir,
    coverage_to_fhir,
    patient_from_fhir,
    patient_to_fhir,
)
from patients.models import Patient
from patients.services import PATIENT_FIELDS
from patients.tests.factories import CoverageFactory, PatientFactory

MAPPED = set(PATIENT_FIELDS) - {
    "preferred_contact", "consent_sms", "consent_email", "guarantor_relationship",
    "guarantor_name", "guarantor_phone", "guarantor_address",
}  # fmt: skip


@pytest.fixture
def zoe(main_clinic: Location) -> Patient:
    return PatientFactory(
        home_location=main_clinic, family_name="Núñez", given_name="Zoë", middle_name="Ann Marie",
        suffix="Jr", preferred_name="Zo", birth_date=dt.date(1984, 7, 2), sex_at_birth="F",
        gender_identity="non-binary", address_line1="931 Doyle Corner", address_line2="Apt 89",
        city="Wilmington", state="MA", postal_code="01887", phone_mobile="+16175550100",
        phone_home="+16175550111", email="zoe@example.org", preferred_language="Spanish",
        interpreter_needed=True, emergency_contact_name="Luis Núñez",
        emergency_contact_relationship="Brother", emergency_contact_phone="+16175550122",
    )  # fmt: skip


def test_patient_survives_a_round_trip(zoe: Patient) -> None:
    exported = patient_to_fhir(zoe, zoe.identifiers.all())
    FhirPatient.model_validate(exported)

    imported = patient_from_fhir(exported)

    assert set(imported.values) == MAPPED
    assert imported.values == {name: getattr(zoe, name) for name in MAPPED}
    assert imported.match_keys == [("urn:patientdesk:mrn", zoe.mrn)]
    assert imported.identifiers == []
    assert imported.warnings == []


def test_coverage_survives_a_round_trip(zoe: Patient) -> None:
    coverage = CoverageFactory(
        patient=zoe, relationship="child", subscriber_name="Ana Núñez", order=2,
        effective_start=dt.date(2024, 1, 1), effective_end=dt.date(2024, 12, 31), is_active=False,
    )  # fmt: skip
    exported = coverage_to_fhir(coverage, zoe)
    FhirCoverage.model_validate(exported)

    imported = coverage_from_fhir(exported)

    fields = set(imported.values)
    assert imported.values == {name: getattr(coverage, name) for name in fields}
    assert fields >= {"payer_name", "member_id", "group_number", "plan_name", "order"}
    assert imported.source_identifier == f"Coverage/{coverage.public_id}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": []}, "name:"),
        ({"name": [{"family": "Solo"}]}, "name:"),
        ({"birthDate": "1984"}, "birthDate: give a full date"),
        ({"birthDate": None}, "birthDate: a date of birth is required"),
        ({"identifier": []}, "identifier:"),
    ],
)
def test_records_that_cannot_be_imported_say_why(zoe: Patient, change: dict, message: str) -> None:
    exported = patient_to_fhir(zoe, [])
    exported.update(change)

    with pytest.raises(FhirMappingError, match=message):
        patient_from_fhir(exported)


def test_optional_values_that_fail_validation_become_warnings(zoe: Patient) -> None:
    exported = patient_to_fhir(zoe, [])
    exported["address"][0].update(state="Bavaria", postalCode="8O331")
    exported["telecom"][0]["value"] = "555-0100"

    imported = patient_from_fhir(exported)

    assert {"state", "postal_code", "phone_mobile"}.isdisjoint(imported.values)
    assert len(imported.warnings) == 3
