from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from patients import services
from patients.models import Patient
from patients.tests.factories import CoverageFactory, PatientFactory, PatientFlagFactory

pytestmark = pytest.mark.django_db


def url(patient: Patient) -> str:
    return reverse("patients:detail", args=[patient.public_id])


def test_patient_page_shows_the_banner_and_every_section(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    # given
    PatientFlagFactory.create(patient=patient, kind="behavioural", severity="critical")
    PatientFlagFactory.create(patient=patient, kind="fall_risk", severity="warning")
    PatientFlagFactory.create(patient=patient, kind="interpreter", severity="info", note="Spanish")
    PatientFlagFactory.create(patient=patient, kind="allergy", severity="critical", is_active=False)

    # when
    response = client_as("frontdesk").get(url(patient))

    # then
    html = response.content.decode()
    assert response.status_code == 200
    banner = html[html.index('aria-label="Patient banner"') : html.index('<main id="main"')]
    for expected in (
        "Smith, Joanna",
        "“Jo”",
        "04/12/1980",
        patient.mrn,
        "Female",
        "Main Street Clinic",
    ):
        assert expected in banner
    assert (
        banner.index("Behavioural alert") < banner.index("Fall risk") < banner.index("Interpreter")
    )
    assert "text-bg-danger" in banner
    assert "text-bg-warning" in banner
    assert "text-bg-info" in banner
    assert "Allergy" not in banner  # cleared alerts leave the banner
    for heading in (
        "Demographics",
        "Contact and consent",
        "Emergency contact",
        "Guarantor",
        "Insurance coverages",
        "Alerts",
        "Identifiers and aliases",
    ):
        assert f">{heading}</h2>" in html
    assert "(617) 555-0142" in html
    assert "break-glass access" not in html.lower()


def test_coverages_are_listed_in_order_of_benefits(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    CoverageFactory.create(patient=patient, order=2, payer_name="Cigna")
    CoverageFactory.create(patient=patient, order=1, payer_name="Aetna")

    html = client_as("frontdesk").get(url(patient)).content.decode()

    assert html.index("Aetna") < html.index("Cigna")
    assert html.index("Primary") < html.index("Secondary")
    assert "not verified" in html
    assert reverse("patients:coverage_add", args=[patient.public_id]) in html


def test_opening_a_record_is_audited(client_as: Callable[[str], Client], patient: Patient) -> None:
    client_as("frontdesk").get(url(patient))

    event = AuditEvent.objects.get(event="patient.view")
    assert event.patient_public_id == patient.public_id
    assert event.outcome == "success"


def test_a_record_at_another_location_is_404_and_audited(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    response = client_as("outsider").get(url(patient))

    assert response.status_code == 404
    assert AuditEvent.objects.get(event="patient.view").outcome == "denied"


def test_a_missing_record_is_the_same_404(client_as: Callable[[str], Client]) -> None:
    response = client_as("frontdesk").get(reverse("patients:detail", args=[uuid.uuid4()]))

    assert response.status_code == 404
    assert AuditEvent.objects.get(event="patient.view").outcome == "denied"


def test_a_role_without_patient_access_gets_404(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    assert client_as("servicedirector").get(url(patient)).status_code == 404


def test_anonymous_users_are_sent_to_sign_in(client: Client, patient: Patient) -> None:
    assert client.get(url(patient))["Location"].startswith(reverse("accounts:login"))


def test_patient_page_answers_405_to_post(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    assert client_as("frontdesk").post(url(patient)).status_code == 405


def test_read_only_roles_see_no_edit_buttons(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    html = client_as("meddirector").get(url(patient)).content.decode()

    assert "Smith, Joanna" in html
    assert reverse("patients:edit", args=[patient.public_id]) not in html
    assert reverse("patients:flag_add", args=[patient.public_id]) not in html


def test_a_merged_away_record_points_to_the_survivor(
    client_as: Callable[[str], Client], officemanager: User, main_clinic: Location
) -> None:
    # given
    survivor = PatientFactory.create(home_location=main_clinic)
    merged = PatientFactory.create(home_location=main_clinic)
    services.patient_merge(actor=officemanager, survivor=survivor, merged=merged, reason="same")

    # when
    old_page = client_as("frontdesk").get(url(merged)).content.decode()
    new_page = client_as("frontdesk").get(url(survivor)).content.decode()

    # then
    assert "was merged" in old_page
    assert f'href="{url(survivor)}"' in old_page
    assert survivor.mrn in old_page
    assert merged.mrn in new_page
    assert "alias from a merged record" in new_page


def test_a_medicare_secondary_coverage_shows_its_payer_type(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    CoverageFactory.create(patient=patient, payer_name="Aetna")
    CoverageFactory.create(
        patient=patient, payer_name="Medicare Part B", order=2, medicare_secondary_type="12"
    )

    html = client_as("frontdesk").get(url(patient)).content.decode()

    assert "Medicare secondary: 12 " in html
    assert html.count("Medicare secondary:") == 1
