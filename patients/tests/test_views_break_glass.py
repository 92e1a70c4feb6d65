from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from patients.models import BreakGlassGrant, Patient

pytestmark = pytest.mark.django_db

REASON = "Patient collapsed in our waiting room; need allergies and contacts"


def url(patient: Patient) -> str:
    return reverse("patients:break_glass", args=[patient.public_id])


def detail(patient: Patient) -> str:
    return reverse("patients:detail", args=[patient.public_id])


def test_break_glass_page_explains_emergency_access_without_showing_the_record(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    response = client_as("outsider").get(url(patient))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Emergency access" in html
    assert patient.mrn in html
    assert "Main Street Clinic" in html
    assert "Smith" not in html
    assert 'name="reason"' in html


def test_a_reason_is_required(client_as: Callable[[str], Client], patient: Patient) -> None:
    response = client_as("outsider").post(url(patient), {"reason": "urgent"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "at least 10 characters" in html
    assert 'id="id_reason_error"' in html
    assert not BreakGlassGrant.objects.exists()


def test_each_step_of_break_glass_until_the_grant_expires(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    client = client_as("outsider")

    # given: the record is out of scope
    assert client.get(detail(patient)).status_code == 404

    # when: the user gives a reason
    response = client.post(url(patient), {"reason": REASON})

    # then: they land on the record, with the break-glass notice, and it is audited
    assert response.status_code == 302
    assert response["Location"] == detail(patient)
    page = client.get(detail(patient))
    assert page.status_code == 200
    assert "Break-glass access." in page.content.decode()
    grant = BreakGlassGrant.objects.get()
    assert grant.reason == REASON
    assert AuditEvent.objects.get(event="access.break_glass").reason == REASON
    view = AuditEvent.objects.filter(event="patient.view", outcome="success").get()
    assert view.reason == "break-glass"

    # when: the grant expires
    BreakGlassGrant.objects.filter(pk=grant.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )

    # then: the record is out of reach again
    assert client.get(detail(patient)).status_code == 404


def test_the_grant_lasts_the_configured_time(
    client_as: Callable[[str], Client], patient: Patient, settings: object
) -> None:
    settings.BREAK_GLASS_DURATION = dt.timedelta(minutes=5)
    before = timezone.now()

    client_as("outsider").post(url(patient), {"reason": REASON})

    expires = BreakGlassGrant.objects.get().expires_at
    assert before + dt.timedelta(minutes=5) <= expires <= timezone.now() + dt.timedelta(minutes=5)


def test_a_user_who_already_has_access_goes_straight_to_the_record(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    response = client_as("frontdesk").get(url(patient))

    assert response.status_code == 302
    assert response["Location"] == detail(patient)
    assert not BreakGlassGrant.objects.exists()


def test_a_role_without_break_glass_gets_404(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    response = client_as("servicedirector").post(url(patient), {"reason": REASON})

    assert response.status_code == 404
    assert not BreakGlassGrant.objects.exists()
    assert AuditEvent.objects.get(event="access.break_glass_form").outcome == "denied"


def test_a_missing_record_is_404(client_as: Callable[[str], Client]) -> None:
    response = client_as("outsider").get(reverse("patients:break_glass", args=[uuid.uuid4()]))

    assert response.status_code == 404


def test_anonymous_users_are_sent_to_sign_in(client: Client, patient: Patient) -> None:
    assert client.get(url(patient))["Location"].startswith(reverse("accounts:login"))


def test_break_glass_answers_405_to_other_methods(
    client_as: Callable[[str], Client], patient: Patient
) -> None:
    assert client_as("outsider").put(url(patient)).status_code == 405
