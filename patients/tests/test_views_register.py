from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, User
from accounts.tests.factories import UserFactory
from audit.models import AuditEvent
from core.models import Location
from patients.models import Coverage, Patient, PatientFlag
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def input_tag(html: str, name: str) -> str:
    """The HTML of the <input> (or <select>) named `name`."""
    match = re.search(rf'<(?:input|select)[^>]*name="{re.escape(name)}"[^>]*>', html)
    assert match, f"no field named {name}"
    return match.group(0)


URL = reverse("patients:register")


@pytest.fixture
def form_data(main_clinic: Location) -> dict[str, Any]:
    """A complete, valid registration as the browser would post it."""
    return {
        "home_location": str(main_clinic.pk),
        "family_name": "Okafor",
        "given_name": "Adaeze",
        "middle_name": "",
        "suffix": "",
        "preferred_name": "Ada",
        "birth_date": "1991-07-03",
        "sex_at_birth": "F",
        "gender_identity": "female",
        "address_line1": "12 Elm Street",
        "address_line2": "",
        "city": "Springfield",
        "state": "MA",
        "postal_code": "01103",
        "phone_mobile": "(413) 555-0199",
        "phone_home": "",
        "email": "Ada.Okafor@Example.org",
        "preferred_language": "English",
        "preferred_contact": "sms",
        "consent_sms": "on",
        "emergency_contact_name": "Chidi Okafor",
        "emergency_contact_relationship": "brother",
        "emergency_contact_phone": "413-555-0123",
        "guarantor_relationship": "self",
        "guarantor_name": "",
        "guarantor_phone": "",
        "guarantor_address": "",
        "coverage-relationship": "self",
    }


def test_registration_form_preselects_the_only_location_and_focuses_the_first_field(
    client_as: Callable[[str], Client], main_clinic: Location
) -> None:
    html = client_as("frontdesk").get(URL).content.decode()

    assert f'<option value="{main_clinic.pk}" selected>' in html
    assert "autofocus" in input_tag(html, "family_name")
    assert 'name="coverage-payer_name"' in html
    assert 'name="alerts"' in html
    for label in ("Legal family name", "Date of birth", "ZIP code", "Mobile phone", "Guarantor"):
        assert label in html


def test_anonymous_users_are_sent_to_sign_in(client: Client) -> None:
    assert client.get(URL)["Location"].startswith(reverse("accounts:login"))


def test_a_role_that_cannot_register_gets_403(client_as: Callable[[str], Client]) -> None:
    assert client_as("billing").get(URL).status_code == 403


def test_register_answers_405_to_other_methods(client_as: Callable[[str], Client]) -> None:
    assert client_as("frontdesk").delete(URL).status_code == 405


def test_registering_redirects_to_the_new_patient_page(
    client_as: Callable[[str], Client], form_data: dict[str, Any]
) -> None:
    response = client_as("frontdesk").post(URL, form_data)

    patient = Patient.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:detail", args=[patient.public_id])
    assert patient.phone_mobile == "+14135550199"
    assert patient.emergency_contact_phone == "+14135550123"
    assert patient.email == "ada.okafor@example.org"
    assert patient.consent_sms is True
    assert not Coverage.objects.exists()


def test_registering_with_a_primary_coverage_and_alerts(
    client_as: Callable[[str], Client], form_data: dict[str, Any]
) -> None:
    form_data.update(
        {
            "coverage-payer_name": "Blue Cross Blue Shield of Massachusetts",
            "coverage-member_id": "XQZ123456789",
            "coverage-group_number": "G-77",
            "coverage-effective_start": "01/01/2024",
            "alerts": ["fall_risk", "behavioural"],
        }
    )

    response = client_as("frontdesk").post(URL, form_data)

    assert response.status_code == 302
    coverage = Coverage.objects.get()
    assert (coverage.member_id, coverage.order, coverage.is_active) == ("XQZ123456789", 1, True)
    assert coverage.effective_start == dt.date(2024, 1, 1)
    severities = dict(PatientFlag.objects.values_list("kind", "severity"))
    assert severities == {"fall_risk": "warning", "behavioural": "critical"}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"family_name": ""}, "family_name", "This field is required."),
        ({"birth_date": "2999-01-01"}, "birth_date", "cannot be in the future"),
        ({"birth_date": "1850-01-01"}, "birth_date", "more than 130 years ago"),
        ({"birth_date": "13/45/1990"}, "birth_date", "Enter a valid date."),
        ({"phone_mobile": "555-01"}, "phone_mobile", "phone number"),
        ({"postal_code": "1234"}, "postal_code", "ZIP code as 12345"),
        ({"state": "ZZ"}, "state", "Select a valid choice"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"city": ""}, "city", "complete address"),
        ({"phone_mobile": ""}, "phone_mobile", "Text messages need a mobile number"),
        ({"preferred_contact": "email"}, "preferred_contact", "consent to email"),
        (
            {"emergency_contact_phone": ""},
            "emergency_contact_phone",
            "phone number for the contact",
        ),
        ({"guarantor_relationship": "parent"}, "guarantor_name", "Name the guarantor"),
        ({"sex_at_birth": ""}, "sex_at_birth", "This field is required."),
    ],
)
def test_invalid_fields_are_shown_inline_and_nothing_is_saved(
    client_as: Callable[[str], Client],
    form_data: dict[str, Any],
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    form_data.update(changes)

    response = client_as("frontdesk").post(URL, form_data)

    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert f'id="id_{field}_error"' in html
    assert "is-invalid" in html
    assert f'href="#id_{field}"' in html  # the summary at the top links to the field
    assert not Patient.objects.exists()


def test_registration_refuses_a_location_that_is_not_the_users(
    client_as: Callable[[str], Client], form_data: dict[str, Any], riverside: Location
) -> None:
    form_data["home_location"] = str(riverside.pk)

    response = client_as("frontdesk").post(URL, form_data)

    assert 'id="id_home_location_error"' in response.content.decode()
    assert not Patient.objects.exists()


def test_a_half_filled_coverage_is_an_error_and_nothing_is_saved(
    client_as: Callable[[str], Client], form_data: dict[str, Any]
) -> None:
    form_data["coverage-payer_name"] = "Aetna"

    response = client_as("frontdesk").post(URL, form_data)

    html = response.content.decode()
    assert 'id="id_coverage-member_id_error"' in html
    assert "Insurance member id" in html
    assert not Patient.objects.exists()


def test_an_other_alert_needs_a_note(
    client_as: Callable[[str], Client], form_data: dict[str, Any]
) -> None:
    form_data["alerts"] = ["other"]

    html = client_as("frontdesk").post(URL, form_data).content.decode()

    assert "Say what the &#x27;Other&#x27; alert is about." in html
    assert not Patient.objects.exists()


@pytest.fixture
def existing(main_clinic: Location) -> Patient:
    return PatientFactory.create(
        home_location=main_clinic,
        family_name="Okafor",
        given_name="Adaeze",
        birth_date=dt.date(1991, 7, 3),
        phone_mobile="+14135550100",
    )


def test_a_likely_duplicate_is_shown_before_anything_is_created(
    client_as: Callable[[str], Client], form_data: dict[str, Any], existing: Patient
) -> None:
    response = client_as("frontdesk").post(URL, form_data)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Possible duplicate" in html
    assert existing.mrn in html
    assert "07/03/1991" in html
    assert "(413) 555-0100" in html
    assert reverse("patients:detail", args=[existing.public_id]) in html
    assert "Register anyway — not the same person" in html
    assert 'value="Okafor"' in html  # the form keeps what was typed
    assert Patient.objects.count() == 1
    assert AuditEvent.objects.filter(
        event="patient.duplicate_candidate", patient_public_id=existing.public_id
    ).exists()


def test_confirming_not_a_duplicate_registers_and_is_audited(
    client_as: Callable[[str], Client], form_data: dict[str, Any], existing: Patient
) -> None:
    form_data["confirm_not_duplicate"] = "1"

    response = client_as("frontdesk").post(URL, form_data)

    assert response.status_code == 302
    new = Patient.objects.exclude(pk=existing.pk).get()
    event = AuditEvent.objects.get(event="patient.register", patient_public_id=new.public_id)
    assert event.reason == "confirmed not a duplicate"


def test_a_duplicate_at_another_location_shows_no_name(
    client_as: Callable[[str], Client], form_data: dict[str, Any], riverside: Location
) -> None:
    other = PatientFactory.create(
        home_location=riverside,
        family_name="Okafor",
        given_name="Adaeze",
        birth_date=dt.date(1991, 7, 3),
    )

    html = client_as("frontdesk").post(URL, form_data).content.decode()

    assert "Possible duplicate" in html
    assert "Hidden: record at another location" in html
    assert other.mrn in html
    assert f'href="{reverse("patients:detail", args=[other.public_id])}"' not in html
    assert reverse("patients:break_glass", args=[other.public_id]) in html


def test_birth_date_rules_use_the_clinic_calendar(
    client_as: Callable[[str], Client], form_data: dict[str, Any]
) -> None:
    form_data["birth_date"] = timezone.localdate().isoformat()

    response = client_as("frontdesk").post(URL, form_data)

    assert response.status_code == 302


def test_a_role_that_cannot_manage_coverage_sees_no_insurance_section(
    login_client: Callable[[User], Client], main_clinic: Location
) -> None:
    role = Role.objects.create(
        slug="register_only",
        name="Register only",
        capabilities=["view_patients", "register_patients"],
    )
    user = UserFactory(username="regonly", locations=[main_clinic])
    user.roles.set([role])

    html = login_client(user).get(URL).content.decode()

    assert 'name="family_name"' in html
    assert 'name="coverage-payer_name"' not in html
