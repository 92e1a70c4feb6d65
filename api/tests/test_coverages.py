"""The coverage routes of the JSON API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from patients.models import Coverage, Patient
from patients.tests.factories import CoverageFactory


@pytest.fixture
def api(frontdesk: User, token_client: Callable[[User], Client]) -> Client:
    return token_client(frontdesk)


def send(client: Client, method: str, url: str, body: Any) -> Any:
    return getattr(client, method)(url, body, content_type="application/json")


def test_adds_a_coverage_to_a_patient(api: Client, patient: Patient) -> None:
    body = {"payer_name": "Aetna", "member_id": "W1", "group_number": "G7",
            "effective_start": "2024-01-01", "relationship": "spouse",
            "subscriber_name": "Dana Hoeger"}  # fmt: skip

    response = send(api, "post", f"/api/v1/patients/{patient.public_id}/coverages", body)

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["patient"] == str(patient.public_id)
    assert (data["member_id"], data["relationship"], data["order"]) == ("W1", "spouse", 1)
    coverage = Coverage.objects.get(public_id=data["public_id"])
    assert coverage.patient == patient
    event = AuditEvent.objects.order_by("-sequence").first()
    assert (event.event, event.patient_public_id) == ("coverage.add", patient.public_id)


def test_lists_a_patients_coverages_active_first(api: Client, patient: Patient) -> None:
    CoverageFactory(patient=patient, payer_name="Old payer", is_active=False)
    CoverageFactory(patient=patient, payer_name="Aetna")

    response = api.get(f"/api/v1/patients/{patient.public_id}/coverages")

    assert response.status_code == 200
    assert [c["payer_name"] for c in response.json()] == ["Aetna", "Old payer"]


def test_reads_and_updates_a_coverage(api: Client, coverage: Coverage) -> None:
    url = f"/api/v1/coverages/{coverage.public_id}"

    read = api.get(url)
    updated = send(api, "patch", url, {"plan_name": "Gold", "effective_end": "2030-12-31"})

    assert read.json()["member_id"] == "W123456789"
    assert updated.status_code == 200, updated.content
    coverage.refresh_from_db()
    assert (coverage.plan_name, str(coverage.effective_end)) == ("Gold", "2030-12-31")
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event.event == "coverage.update"
    assert set(event.fields) == {"plan_name", "effective_end"}


def test_medicare_secondary_payer_type_is_written_and_read(api: Client, patient: Patient) -> None:
    CoverageFactory(patient=patient, payer_name="Aetna")
    body = {"payer_name": "Medicare Part B", "member_id": "1EG4TE5MK73", "order": 2,
            "medicare_secondary_type": "12"}  # fmt: skip

    created = send(api, "post", f"/api/v1/patients/{patient.public_id}/coverages", body)

    assert created.status_code == 201, created.content
    assert created.json()["medicare_secondary_type"] == "12"
    url = f"/api/v1/coverages/{created.json()['public_id']}"
    updated = send(api, "patch", url, {"medicare_secondary_type": "43"})
    assert updated.json()["medicare_secondary_type"] == "43"
    assert (
        Coverage.objects.get(public_id=created.json()["public_id"]).medicare_secondary_type == "43"
    )


def test_patch_with_null_clears_a_coverage_date(api: Client, coverage: Coverage) -> None:
    Coverage.objects.filter(pk=coverage.pk).update(effective_start="2020-01-01")

    response = send(api, "patch", f"/api/v1/coverages/{coverage.public_id}",
                    {"effective_start": None})  # fmt: skip

    assert response.status_code == 200
    coverage.refresh_from_db()
    assert coverage.effective_start is None


def test_second_active_primary_is_refused_naming_order(api: Client, coverage: Coverage) -> None:
    body = {"payer_name": "Cigna", "member_id": "C1", "order": 1}

    response = send(api, "post", f"/api/v1/patients/{coverage.patient.public_id}/coverages", body)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["order"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payer_name": "A", "member_id": "M", "order": 4}, "order"),
        ({"payer_name": "A", "member_id": "M", "relationship": "cousin"}, "relationship"),
        ({"payer_name": "A"}, "member_id"),
        ({"payer_name": "A", "member_id": "M", "copay": 20}, "copay"),
        ({"payer_name": "A", "member_id": "M", "effective_start": "2024-13-01"}, "effective_start"),
        (
            {"payer_name": "A", "member_id": "M", "medicare_secondary_type": "99"},
            "medicare_secondary_type",
        ),
    ],
)
def test_rejects_bad_coverage_fields(
    api: Client, patient: Patient, body: dict[str, Any], field: str
) -> None:
    response = send(api, "post", f"/api/v1/patients/{patient.public_id}/coverages", body)

    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {field}
    assert not patient.coverages.exists()


def test_end_before_start_is_refused(api: Client, patient: Patient) -> None:
    body = {"payer_name": "A", "member_id": "M", "effective_start": "2024-06-01",
            "effective_end": "2024-01-01"}  # fmt: skip

    response = send(api, "post", f"/api/v1/patients/{patient.public_id}/coverages", body)

    assert response.status_code == 422
    assert not patient.coverages.exists()


def test_billing_may_update_coverage_but_not_demographics(
    persona: Callable[[str], User], token_client: Callable, coverage: Coverage
) -> None:
    client = token_client(persona("billing"))

    coverage_change = send(client, "patch", f"/api/v1/coverages/{coverage.public_id}",
                           {"group_number": "G2"})  # fmt: skip
    patient_change = send(client, "patch", f"/api/v1/patients/{coverage.patient.public_id}",
                          {"preferred_name": "B"})  # fmt: skip

    assert coverage_change.status_code == 200
    assert patient_change.status_code == 403


def test_missing_coverage_answers_404_and_is_audited(api: Client) -> None:
    response = api.get("/api/v1/coverages/00000000-0000-4000-8000-000000000000")

    assert response.status_code == 404
    event = AuditEvent.objects.order_by("-sequence").first()
    assert (event.event, event.outcome, event.object_type) == (
        "coverage.view", "denied", "patients.Coverage"
    )  # fmt: skip
