"""The patient routes of the JSON API: registration, duplicates, reading, updating, listing,
searching."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from patients.models import Patient, PatientIdentifier
from patients.tests.factories import CoverageFactory, PatientFactory

ADA = {
    "family_name": "Okafor",
    "given_name": "Ada",
    "birth_date": "1990-05-01",
    "sex_at_birth": "F",
}


@pytest.fixture
def api(frontdesk: User, token_client: Callable[[User], Client]) -> Client:
    return token_client(frontdesk)


def post(client: Client, url: str, body: Any) -> Any:
    return client.post(url, body, content_type="application/json")


def patch(client: Client, url: str, body: Any) -> Any:
    return client.patch(url, body, content_type="application/json")


def fields_in_error(response: Any) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


# ---- registration ------------------------------------------------------------------------


def test_registers_a_patient_at_the_users_only_location(api: Client, main_clinic: Location) -> None:
    response = post(api, "/api/v1/patients", {**ADA, "phone_mobile": "(617) 555-0100"})

    assert response.status_code == 201, response.content
    data = response.json()
    patient = Patient.objects.get(public_id=data["public_id"])
    assert patient.home_location == main_clinic
    assert data["mrn"] == patient.mrn
    assert data["phone_mobile"] == "+16175550100"
    assert data["identifiers"] == [
        {"system": PatientIdentifier.MRN_SYSTEM, "value": patient.mrn, "is_alias": False}
    ]
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event.event == "patient.register"
    assert "phone_mobile" in event.fields
    assert "+16175550100" not in str(event.fields)


def test_user_of_several_locations_must_name_the_home_location(
    frontdesk: User, token_client: Callable, main_clinic: Location, riverside: Location
) -> None:
    frontdesk.locations.add(riverside)

    missing = post(token_client(frontdesk), "/api/v1/patients", ADA)
    named = post(
        token_client(frontdesk),
        "/api/v1/patients",
        {**ADA, "home_location": str(riverside.public_id)},
    )

    assert missing.status_code == 422
    assert fields_in_error(missing) == {"home_location"}
    assert named.status_code == 201
    assert named.json()["home_location"]["code"] == "riverside"


def test_refuses_a_home_location_the_user_does_not_work_at(
    api: Client, riverside: Location
) -> None:
    response = post(api, "/api/v1/patients", {**ADA, "home_location": str(riverside.public_id)})

    assert response.status_code == 422
    assert fields_in_error(response) == {"home_location"}
    assert not Patient.objects.filter(family_name="Okafor").exists()


def test_likely_duplicate_answers_409_with_the_candidates(api: Client, patient: Patient) -> None:
    # given a patient with the same date of birth and a similar name
    body = {"family_name": "Hoeger", "given_name": "Bustr", "birth_date": "1988-03-16",
            "sex_at_birth": "M"}  # fmt: skip

    # when
    response = post(api, "/api/v1/patients", body)

    # then
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:patientdesk:problem:duplicate-candidates"
    assert problem["candidates"] == [{"public_id": str(patient.public_id), "mrn": patient.mrn}]
    assert Patient.objects.count() == 1
    event = AuditEvent.objects.order_by("-sequence").first()
    assert (event.event, event.patient_public_id) == (
        "patient.duplicate_warning",
        patient.public_id,
    )


def test_confirmed_not_duplicate_registers_anyway(api: Client, patient: Patient) -> None:
    body = {"family_name": "Hoeger", "given_name": "Bustr", "birth_date": "1988-03-16",
            "sex_at_birth": "M", "confirm_not_duplicate": True}  # fmt: skip

    response = post(api, "/api/v1/patients", body)

    assert response.status_code == 201
    assert Patient.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"birth_date": "1990-02-30"}, "birth_date"),
        ({"phone_mobile": "12"}, "phone_mobile"),
        ({"postal_code": "ABCDE"}, "postal_code"),
        ({"state": "ZZ"}, "state"),
        ({"email": "not-an-email"}, "email"),
        ({"family_name": "x" * 81}, "family_name"),
        ({"family_name": ""}, "family_name"),
        ({"given_name": "Ada\x00"}, "given_name"),
        ({"sex_at_birth": "X"}, "sex_at_birth"),
        ({"nickname": "Addy"}, "nickname"),
    ],
)
def test_rejects_bad_fields_naming_each(
    api: Client, main_clinic: Location, change: dict[str, Any], field: str
) -> None:
    response = post(api, "/api/v1/patients", {**ADA, **change})

    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert fields_in_error(response) == {field}
    assert field in response.json()["detail"]
    assert not Patient.objects.exists()


def test_unknown_field_message_names_it(api: Client, main_clinic: Location) -> None:
    response = post(api, "/api/v1/patients", {**ADA, "nickname": "Addy"})

    assert response.json()["errors"] == [
        {"field": "nickname", "message": "Unknown field 'nickname': it is not accepted here."}
    ]


def test_missing_required_fields_are_each_named(api: Client, main_clinic: Location) -> None:
    response = post(api, "/api/v1/patients", {"given_name": "Ada"})

    assert response.status_code == 422
    assert fields_in_error(response) == {"family_name", "birth_date", "sex_at_birth"}


# ---- read and update ---------------------------------------------------------------------


def test_reads_a_patient_with_alerts_and_identifiers(api: Client, patient: Patient) -> None:
    from patients.tests.factories import PatientFlagFactory

    PatientFlagFactory(patient=patient, kind="fall_risk")

    response = api.get(f"/api/v1/patients/{patient.public_id}")

    assert response.status_code == 200
    data = response.json()
    assert (data["family_name"], data["birth_date"]) == ("Hoeger", "1988-03-16")
    assert data["alerts"] == [{"kind": "fall_risk", "severity": "warning", "label": "Fall risk"}]
    assert data["identifiers"][0]["value"] == patient.mrn


def test_patch_changes_only_the_fields_sent(api: Client, patient: Patient) -> None:
    response = patch(api, f"/api/v1/patients/{patient.public_id}", {"preferred_name": "Bus"})

    assert response.status_code == 200
    patient.refresh_from_db()
    assert (patient.preferred_name, patient.family_name) == ("Bus", "Hoeger")
    event = AuditEvent.objects.order_by("-sequence").first()
    assert (event.event, event.fields) == ("patient.update", ["preferred_name"])


def test_patch_with_null_clears_an_optional_field(api: Client, patient: Patient) -> None:
    response = patch(api, f"/api/v1/patients/{patient.public_id}", {"phone_mobile": None})

    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.phone_mobile == ""


def test_patch_refuses_null_for_a_required_field(api: Client, patient: Patient) -> None:
    response = patch(api, f"/api/v1/patients/{patient.public_id}", {"family_name": None})

    assert response.status_code == 422
    assert fields_in_error(response) == {"family_name"}
    patient.refresh_from_db()
    assert patient.family_name == "Hoeger"


def test_patch_that_changes_nothing_writes_no_update_event(api: Client, patient: Patient) -> None:
    response = patch(api, f"/api/v1/patients/{patient.public_id}", {"family_name": "Hoeger"})

    assert response.status_code == 200
    assert not AuditEvent.objects.filter(event="patient.update").exists()
    assert AuditEvent.objects.filter(event="patient.view", patient_public_id=patient.public_id)


def test_patch_reports_service_validation_by_field(api: Client, patient: Patient) -> None:
    response = patch(api, f"/api/v1/patients/{patient.public_id}", {"birth_date": "1800-01-01"})

    assert response.status_code == 422
    assert fields_in_error(response) == {"birth_date"}


def test_missing_patient_answers_404_problem(api: Client) -> None:
    response = api.get("/api/v1/patients/00000000-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"


# ---- listing -----------------------------------------------------------------------------


@pytest.fixture
def three_patients(main_clinic: Location, riverside: Location) -> list[Patient]:
    PatientFactory(home_location=riverside, family_name="Elsewhere")
    return [
        PatientFactory(home_location=main_clinic, family_name=name, mrn=mrn)
        for name, mrn in (("Baker", "10000032"), ("Adams", "10000024"), ("Clark", "10000016"))
    ]


def test_lists_patients_of_the_users_locations_paged(
    api: Client, three_patients: list[Patient], django_assert_max_num_queries: Callable
) -> None:
    with django_assert_max_num_queries(14):
        response = api.get("/api/v1/patients", {"sort": "name", "limit": 2, "offset": 0})

    assert response.status_code == 200
    data = response.json()
    assert (data["count"], data["limit"], data["offset"]) == (3, 2, 0)
    assert [p["family_name"] for p in data["items"]] == ["Adams", "Baker"]
    second = api.get("/api/v1/patients", {"sort": "name", "limit": 2, "offset": 2}).json()
    assert [p["family_name"] for p in second["items"]] == ["Clark"]


def test_list_query_count_does_not_grow_with_the_page(
    api: Client, main_clinic: Location, django_assert_max_num_queries: Callable
) -> None:
    PatientFactory.create_batch(30, home_location=main_clinic)

    with django_assert_max_num_queries(14):
        response = api.get("/api/v1/patients", {"limit": 30})

    assert len(response.json()["items"]) == 30


def test_list_sorts_by_mrn_descending(api: Client, three_patients: list[Patient]) -> None:
    response = api.get("/api/v1/patients", {"sort": "-mrn"})

    assert [p["mrn"] for p in response.json()["items"]] == ["10000032", "10000024", "10000016"]


def test_list_refuses_a_sort_field_outside_the_allow_list(api: Client) -> None:
    response = api.get("/api/v1/patients", {"sort": "birth_date"})

    assert response.status_code == 422
    assert fields_in_error(response) == {"sort"}


def test_list_filters_by_location_and_updated_since(
    api: Client, three_patients: list[Patient], main_clinic: Location, riverside: Location
) -> None:
    # given one patient changed recently
    Patient.objects.filter(pk__in=[p.pk for p in three_patients[1:]]).update(
        updated_at=timezone.now() - dt.timedelta(days=3)
    )
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()

    # when
    recent = api.get("/api/v1/patients", {"updated_since": since}).json()
    elsewhere = api.get("/api/v1/patients", {"location": str(riverside.public_id)}).json()

    # then
    assert [p["family_name"] for p in recent["items"]] == ["Baker"]
    assert elsewhere["count"] == 0
    event = AuditEvent.objects.order_by("-sequence").first()
    assert (event.event, event.fields) == ("patient.list", ["location"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"offset": -1}, "offset"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": "0001-01-01T00:00:00+05:00"}, "updated_since"),
        ({"location": "not-a-uuid"}, "location"),
    ],
)
def test_list_rejects_bad_parameters_naming_them(
    api: Client, params: dict[str, Any], field: str
) -> None:
    response = api.get("/api/v1/patients", params)

    assert response.status_code == 422
    assert fields_in_error(response) == {field}


# ---- search ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "criteria",
    [
        {"name": "hoe"},
        {"name": "Hoeger, Bus"},
        {"name": "buster hoeger"},
        {"birth_date": "1988-03-16"},
        {"phone": "617-555-0100"},
        {"member_id": "w123456789"},
    ],
)
def test_search_finds_the_patient_by_each_criterion(
    api: Client, patient: Patient, criteria: dict[str, Any]
) -> None:
    CoverageFactory(patient=patient, member_id="W123456789")

    response = post(api, "/api/v1/patients/search", criteria)

    assert response.status_code == 200, response.content
    assert [p["public_id"] for p in response.json()["items"]] == [str(patient.public_id)]


def test_search_by_mrn(api: Client, patient: Patient) -> None:
    response = post(api, "/api/v1/patients/search", {"mrn": patient.mrn})

    assert [p["mrn"] for p in response.json()["items"]] == [patient.mrn]


def test_search_does_not_show_patients_of_other_locations(
    api: Client, riverside_patient: Patient
) -> None:
    response = post(api, "/api/v1/patients/search", {"name": "kreiger"})

    assert response.json()["items"] == []


def test_search_pages_with_any_offset(api: Client, main_clinic: Location) -> None:
    for given in ("Ann", "Bea", "Cy", "Di", "Ed"):
        PatientFactory(home_location=main_clinic, family_name="Smith", given_name=given)

    response = post(api, "/api/v1/patients/search", {"name": "smith", "limit": 2, "offset": 1})

    data = response.json()
    assert [p["given_name"] for p in data["items"]] == ["Bea", "Cy"]
    assert data["has_more"] is True


def test_search_audits_the_criteria_names_not_values(api: Client, patient: Patient) -> None:
    post(api, "/api/v1/patients/search", {"name": "hoeger", "birth_date": "1988-03-16"})

    event = AuditEvent.objects.order_by("-sequence").first()
    assert (event.event, event.fields) == ("patient.search", ["birth_date", "name"])
    assert "hoeger" not in str(event.__dict__).lower()


def test_search_needs_at_least_one_criterion(api: Client) -> None:
    response = post(api, "/api/v1/patients/search", {"limit": 10})

    assert response.status_code == 422
    assert fields_in_error(response) == {"name"}


def test_search_rejects_unknown_criteria(api: Client) -> None:
    response = post(api, "/api/v1/patients/search", {"ssn": "999-59-2277"})

    assert response.status_code == 422
    assert fields_in_error(response) == {"ssn"}
