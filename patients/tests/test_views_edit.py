from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from patients.models import Patient
from patients.tests.factories import PatientFlagFactory

pytestmark = pytest.mark.django_db


def url(patient: Patient) -> str:
    return reverse("patients:edit", args=[patient.public_id])


def current_values(patient: Patient) -> dict[str, str]:
    """The edit form as the browser posts it when nothing was changed."""
    return {
        "family_name": patient.family_name,
        "given_name": patient.given_name,
        "preferred_name": patient.preferred_name,
        "birth_date": patient.birth_date.isoformat(),
        "sex_at_birth": patient.sex_at_birth,
        "phone_mobile": patient.phone_mobile,
        "email": patient.email,
        "preferred_language": patient.preferred_language,
        "preferred_contact": patient.preferred_contact,
        "guarantor_relationship": patient.guarantor_relationship,
    }


def test_edit_form_is_filled_in_and_keeps_the_banner(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    PatientFlagFactory.create(patient=patient, kind="fall_risk")

    html = client_as("frontdesk").get(url(patient)).content.decode()

    assert 'value="Smith"' in html
    assert 'value="1980-04-12"' in html
    assert "patient-banner" in html
    assert "Fall risk" in html


def test_saving_an_edit_records_only_the_changed_field_names(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    data = current_values(patient) | {"phone_home": "617 555 0100", "preferred_name": "Joey"}

    response = client_as("frontdesk").post(url(patient), data)

    assert response.status_code == 302
    assert response["Location"] == reverse("patients:detail", args=[patient.public_id])
    patient.refresh_from_db()
    assert patient.phone_home == "+16175550100"
    event = AuditEvent.objects.get(event="patient.update")
    assert event.fields == ["phone_home", "preferred_name"]


def test_an_invalid_edit_is_shown_inline_and_not_saved(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    data = current_values(patient) | {"birth_date": "2999-12-31", "given_name": "Changed"}

    response = client_as("frontdesk").post(url(patient), data)

    html = response.content.decode()
    assert response.status_code == 200
    assert "cannot be in the future" in html
    assert 'id="id_birth_date_error"' in html
    assert "Smith, Joanna" in html  # the banner shows the saved record, not the attempt
    patient.refresh_from_db()
    assert patient.given_name == "Joanna"
    assert not AuditEvent.objects.filter(event="patient.update").exists()


def test_a_role_that_cannot_edit_gets_403(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    response = client_as("billing").post(url(patient), current_values(patient))

    assert response.status_code == 403
    assert (
        AuditEvent.objects.get(event="auth.permission_denied").patient_public_id
        == patient.public_id
    )


def test_editing_a_record_at_another_location_is_404(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    assert client_as("outsider").get(url(patient)).status_code == 404


def test_anonymous_users_are_sent_to_sign_in(client: Client, patient: Patient) -> None:
    assert client.get(url(patient))["Location"].startswith(reverse("accounts:login"))


def test_edit_answers_405_to_other_methods(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    assert client_as("frontdesk").delete(url(patient)).status_code == 405
