"""Break-glass review: every emergency access with user, patient, reason, time and expiry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from audit.selectors import PAGE_SIZE
from core.models import Location
from patients.models import Patient
from patients.services import break_glass_grant
from patients.tests.factories import PatientFactory

URL = reverse("audit:break_glass")


@pytest.fixture
def privacy_client(privacy: User, login_client: Callable[..., Client]) -> Client:
    return login_client(privacy)


@pytest.fixture
def patient(main_clinic: Location) -> Patient:
    return PatientFactory(home_location=main_clinic, family_name="Nguyen", given_name="Linh")


def rows(response: Any) -> Any:
    return response.context["review"].rows


def test_lists_emergency_access_with_user_patient_reason_and_expiry(
    privacy_client: Client, outsider: User, patient: Patient, settings, at_time
) -> None:
    # given: at 14:00 UTC on 3 February (09:00 in New York) the outsider breaks the glass
    settings.TIME_ZONE = "America/New_York"
    settings.BREAK_GLASS_DURATION = dt.timedelta(minutes=60)
    at_time(dt.datetime(2026, 2, 3, 14, 0, tzinfo=dt.UTC))
    grant = break_glass_grant(
        actor=outsider, patient=patient, reason="Patient unconscious in the emergency room"
    )

    # when
    response = privacy_client.get(URL)

    # then
    (row,) = rows(response)
    assert row.grant == grant
    assert row.patient == patient
    html = response.content.decode()
    assert "2026-02-03 09:00:00 EST" in html
    assert "outsider" in html
    assert f"{patient.mrn}</span> Nguyen, Linh" in html
    assert "Patient unconscious in the emergency room" in html
    assert "2026-02-03 10:00 EST" in html


def test_shows_whether_each_grant_is_still_active(
    privacy_client: Client, outsider: User, patient: Patient, at_time
) -> None:
    # given: one grant from two hours ago (expired) and one from now (active)
    now = dt.datetime.now(dt.UTC)
    at_time(now - dt.timedelta(hours=2))
    break_glass_grant(actor=outsider, patient=patient, reason="Old emergency, long expired")
    at_time(now)
    break_glass_grant(actor=outsider, patient=patient, reason="Current emergency right now")

    # when
    response = privacy_client.get(URL)

    # then: newest first
    newest, oldest = rows(response)
    assert (newest.expired, oldest.expired) == (False, True)
    assert newest.event.reason == "Current emergency right now"
    html = response.content.decode()
    assert 'text-bg-warning">active' in html
    assert 'text-bg-secondary">expired' in html


def test_filters_by_date_in_the_clinic_time_zone(
    privacy_client: Client, outsider: User, patient: Patient, settings, at_time
) -> None:
    # given: 03:00 UTC on 6 January is still 5 January in New York
    settings.TIME_ZONE = "America/New_York"
    at_time(dt.datetime(2026, 1, 6, 3, 0, tzinfo=dt.UTC))
    break_glass_grant(actor=outsider, patient=patient, reason="Late-night emergency access")
    at_time(dt.datetime(2026, 1, 6, 15, 0, tzinfo=dt.UTC))
    break_glass_grant(actor=outsider, patient=patient, reason="Afternoon emergency access")

    # when
    on_fifth = rows(privacy_client.get(URL, {"date_from": "2026-01-05", "date_to": "2026-01-05"}))
    from_sixth = rows(privacy_client.get(URL, {"date_from": "2026-01-06"}))

    # then
    assert [r.event.reason for r in on_fifth] == ["Late-night emergency access"]
    assert [r.event.reason for r in from_sixth] == ["Afternoon emergency access"]


def test_lists_only_break_glass_events(
    privacy_client: Client, outsider: User, patient: Patient
) -> None:
    from audit.tests.conftest import add_events

    add_events(3, patient=patient)
    break_glass_grant(actor=outsider, patient=patient, reason="Emergency access needed now")

    response = privacy_client.get(URL)

    assert [r.event.event for r in rows(response)] == ["access.break_glass"]


def test_bad_dates_get_messages_naming_the_field(privacy_client: Client) -> None:
    response = privacy_client.get(URL, {"date_from": "2026-02-30", "date_to": "2026-01-01x"})

    assert response.status_code == 200
    assert response.context["review"] is None
    html = response.content.decode()
    assert "From</a>: Enter a valid date." in html
    assert "To</a>: Enter a valid date." in html
    assert 'class="form-control is-invalid"' in html


def test_an_end_date_before_the_start_is_an_error(privacy_client: Client) -> None:
    response = privacy_client.get(URL, {"date_from": "2026-02-03", "date_to": "2026-02-01"})

    assert response.context["form"].errors == {
        "date_to": ["The end date must be on or after the start date."]
    }


def test_pages_through_many_grants_without_extra_queries_per_row(
    privacy_client: Client, outsider: User, main_clinic: Location
) -> None:
    # given: a page and a bit of grants, each for a different patient
    patients = PatientFactory.create_batch(PAGE_SIZE + 2, home_location=main_clinic)
    for p in patients[:3]:
        break_glass_grant(actor=outsider, patient=p, reason="Emergency access for this one")
    with CaptureQueriesContext(connection) as few:
        privacy_client.get(URL)
    for p in patients[3:]:
        break_glass_grant(actor=outsider, patient=p, reason="Emergency access for this one")

    # when
    with CaptureQueriesContext(connection) as many:
        first = privacy_client.get(URL)
    second = privacy_client.get(URL, {"page": "2"})

    # then
    assert len(many.captured_queries) == len(few.captured_queries)
    assert len(rows(first)) == PAGE_SIZE
    assert first.context["review"].has_next
    assert "?page=2" in first.content.decode()
    assert len(rows(second)) == 2
    assert not second.context["review"].has_next


def test_viewing_the_review_is_audited(privacy_client: Client) -> None:
    privacy_client.get(URL, {"date_from": "2026-01-01"})

    event = AuditEvent.objects.order_by("-sequence").first()
    assert (event.event, event.action, event.category) == (
        "audit.break_glass_review",
        "query",
        "audit",
    )
    assert event.fields == ["date_from"]


@pytest.mark.parametrize("name", ["frontdesk", "officemanager", "sysadmin", "meddirector"])
def test_other_roles_are_forbidden_and_the_attempt_is_audited(
    persona: Callable[[str], User], login_client: Callable[..., Client], name: str
) -> None:
    response = login_client(persona(name)).get(URL)

    assert response.status_code == 403
    denied = AuditEvent.objects.order_by("-sequence").first()
    assert (denied.event, denied.outcome) == ("audit.break_glass_review", "denied")


def test_anonymous_visitor_is_sent_to_sign_in(client: Client, db: None) -> None:
    response = client.get(URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_only_get_is_allowed(privacy_client: Client, method: str) -> None:
    response = getattr(privacy_client, method)(URL)

    assert response.status_code == 405
