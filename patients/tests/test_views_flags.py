from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from patients.models import Patient, PatientFlag
from patients.tests.factories import PatientFlagFactory

pytestmark = pytest.mark.django_db


def add_url(patient: Patient) -> str:
    return reverse("patients:flag_add", args=[patient.public_id])


def clear_url(flag: PatientFlag) -> str:
    return reverse("patients:flag_clear", args=[flag.patient.public_id, flag.public_id])


def test_adding_an_alert_puts_it_on_the_banner(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    client = client_as("frontdesk")

    response = client.post(
        add_url(patient), {"kind": "fall_risk", "severity": "warning", "note": ""}
    )

    assert response.status_code == 302
    assert patient.flags.get().kind == "fall_risk"
    page = client.get(reverse("patients:detail", args=[patient.public_id])).content.decode()
    banner = page[page.index('aria-label="Patient banner"') : page.index('<main id="main"')]
    assert "Fall risk" in banner
    event = AuditEvent.objects.get(event="flag.add")
    assert event.fields == ["kind", "severity"]


def test_an_other_alert_without_a_note_is_shown_inline(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    response = client_as("frontdesk").post(add_url(patient), {"kind": "other", "severity": "info"})

    assert 'id="id_note_error"' in response.content.decode()
    assert not patient.flags.exists()


def test_clearing_an_alert(client_as: Callable[[str], Client], patient: Patient) -> None:
    flag = PatientFlagFactory.create(patient=patient)

    response = client_as("frontdesk").post(clear_url(flag))

    assert response.status_code == 302
    flag.refresh_from_db()
    assert not flag.is_active
    assert AuditEvent.objects.filter(event="flag.clear").exists()


def test_roles_without_the_alert_capability_get_403(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    flag = PatientFlagFactory.create(patient=patient)
    client = client_as("billing")

    assert (
        client.post(add_url(patient), {"kind": "fall_risk", "severity": "warning"}).status_code
        == 403
    )
    assert client.post(clear_url(flag)).status_code == 403
    flag.refresh_from_db()
    assert flag.is_active


def test_alerts_at_another_location_are_404(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    flag = PatientFlagFactory.create(patient=patient)
    client = client_as("outsider")

    assert client.get(add_url(patient)).status_code == 404
    assert client.post(clear_url(flag)).status_code == 404


def test_anonymous_users_are_sent_to_sign_in(client: Client, patient: Patient) -> None:
    assert client.get(add_url(patient))["Location"].startswith(reverse("accounts:login"))


def test_alert_screens_answer_405_to_wrong_methods(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    flag = PatientFlagFactory.create(patient=patient)
    client = client_as("frontdesk")

    assert client.get(clear_url(flag)).status_code == 405
    assert client.put(add_url(patient)).status_code == 405
