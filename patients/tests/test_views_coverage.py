from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from core.models import Location
from patients.models import Coverage, Patient
from patients.tests.factories import CoverageFactory, PatientFactory

pytestmark = pytest.mark.django_db

VALID = {
    "payer_name": "Aetna",
    "payer_identifier": "60054",
    "plan_name": "Choice POS II",
    "member_id": "W987654321",
    "group_number": "G-1",
    "relationship": "self",
    "order": "1",
    "is_active": "on",
    "effective_start": "2024-01-01",
}


def add_url(patient: Patient) -> str:
    return reverse("patients:coverage_add", args=[patient.public_id])


def edit_url(coverage: Coverage) -> str:
    return reverse("patients:coverage_edit", args=[coverage.patient.public_id, coverage.public_id])


def verify_url(coverage: Coverage) -> str:
    return reverse(
        "patients:coverage_verify", args=[coverage.patient.public_id, coverage.public_id]
    )


def test_coverage_form_shows_the_patient_banner(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    html = client_as("frontdesk").get(add_url(patient)).content.decode()

    assert "patient-banner" in html
    assert "Order of benefits" in html


def test_adding_a_coverage(client_as: Callable[[str], Client], patient: Patient) -> None:
    response = client_as("billing").post(add_url(patient), VALID)

    assert response.status_code == 302
    coverage = patient.coverages.get()
    assert coverage.member_id == "W987654321"
    assert AuditEvent.objects.filter(
        event="coverage.add", patient_public_id=patient.public_id
    ).exists()


def test_a_second_active_primary_is_shown_inline(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    CoverageFactory.create(patient=patient, order=1)

    response = client_as("frontdesk").post(add_url(patient), VALID)

    html = response.content.decode()
    assert response.status_code == 200
    assert "already has an active primary coverage" in html
    assert 'id="id_order_error"' in html
    assert patient.coverages.count() == 1


def test_an_end_before_the_start_is_shown_inline(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    data = VALID | {"effective_end": "2023-12-31"}

    html = client_as("frontdesk").post(add_url(patient), data).content.decode()

    assert "The end date is before the start date." in html
    assert 'id="id_effective_end_error"' in html
    assert not patient.coverages.exists()


def test_a_dependant_coverage_needs_the_subscriber(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    html = (
        client_as("frontdesk")
        .post(add_url(patient), VALID | {"relationship": "child"})
        .content.decode()
    )

    assert "Name the subscriber" in html


def test_editing_a_coverage(client_as: Callable[[str], Client], patient: Patient) -> None:
    coverage = CoverageFactory.create(patient=patient)

    response = client_as("frontdesk").post(edit_url(coverage), VALID | {"group_number": "G-2"})

    assert response.status_code == 302
    coverage.refresh_from_db()
    assert coverage.group_number == "G-2"
    assert "group_number" in AuditEvent.objects.get(event="coverage.update").fields


def test_a_coverage_of_another_patient_is_404(
    client_as: Callable[[str], Client], patient: Patient, main_clinic: Location
) -> None:
    other = CoverageFactory.create(patient=PatientFactory.create(home_location=main_clinic))
    wrong = reverse("patients:coverage_edit", args=[patient.public_id, other.public_id])

    assert client_as("frontdesk").get(wrong).status_code == 404


def test_verifying_a_coverage(client_as: Callable[[str], Client], patient: Patient) -> None:
    coverage = CoverageFactory.create(patient=patient)

    response = client_as("frontdesk").post(verify_url(coverage))

    assert response.status_code == 302
    coverage.refresh_from_db()
    assert coverage.verified_at is not None


def test_roles_without_the_coverage_capability_get_403(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    coverage = CoverageFactory.create(patient=patient)
    client = client_as("meddirector")

    assert client.get(add_url(patient)).status_code == 403
    assert client.post(edit_url(coverage), VALID).status_code == 403
    assert client.post(verify_url(coverage)).status_code == 403
    coverage.refresh_from_db()
    assert coverage.verified_at is None


def test_coverages_at_another_location_are_404(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    coverage = CoverageFactory.create(patient=patient)
    client = client_as("outsider")

    assert client.get(add_url(patient)).status_code == 404
    assert client.get(edit_url(coverage)).status_code == 404
    assert client.post(verify_url(coverage)).status_code == 404


def test_anonymous_users_are_sent_to_sign_in(client: Client, patient: Patient) -> None:
    coverage = CoverageFactory.create(patient=patient)

    for response in (client.get(add_url(patient)), client.post(verify_url(coverage))):
        assert response["Location"].startswith(reverse("accounts:login"))


def test_coverage_screens_answer_405_to_wrong_methods(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    coverage = CoverageFactory.create(patient=patient)
    client = client_as("frontdesk")

    assert client.get(verify_url(coverage)).status_code == 405
    assert client.put(add_url(patient)).status_code == 405
    assert client.delete(edit_url(coverage)).status_code == 405
