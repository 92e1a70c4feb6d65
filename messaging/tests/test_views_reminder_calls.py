"""The front desk's list of patients who need a reminder call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from messaging import selectors, services
from messaging.models import MessageKind, MessageStatus, OutboundMessage
from messaging.tests.factories import AppointmentFactory, ReachablePatientFactory
from scheduling.models import Appointment

pytestmark = pytest.mark.django_db

URL = "/m/reminder-calls/"


def unreachable_appointment(location: Location, **kwargs: Any) -> Appointment:
    patient = ReachablePatientFactory(
        home_location=location, consent_sms=False, consent_email=False, family_name="Nocontact"
    )
    appointment: Appointment = AppointmentFactory(location=location, patient=patient, **kwargs)
    services.reminders_plan(appointment=appointment)
    return appointment


def test_lists_upcoming_appointments_whose_patient_cannot_be_reminded(
    persona: Callable[[str], User], main_clinic: Location, login_client: Callable[..., Any]
) -> None:
    # given one patient without consent, one reachable, one without consent far ahead
    unreachable = unreachable_appointment(main_clinic)
    reachable = AppointmentFactory(location=main_clinic, patient__family_name="Reachable")
    services.reminders_plan(appointment=reachable)
    unreachable_appointment(main_clinic, start=timezone.now() + dt.timedelta(days=20))
    # when the front desk opens the list
    response = login_client(persona("frontdesk")).get(URL)
    # then only the first is on it, with the reason
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nocontact" in page
    assert "Reachable" not in page
    assert "no SMS consent; no email consent" in page
    assert page.count("<tr>") == 2  # the header and one appointment
    assert str(unreachable.patient.public_id) in page
    assert AuditEvent.objects.filter(event="messaging.reminder_calls", action="query").exists()


def test_a_reminder_that_failed_to_deliver_puts_the_patient_on_the_list(
    persona: Callable[[str], User], main_clinic: Location
) -> None:
    appointment: Appointment = AppointmentFactory(location=main_clinic)
    services.reminders_plan(appointment=appointment)
    OutboundMessage.objects.filter(appointment=appointment).update(
        status=MessageStatus.FAILED, next_attempt_at=None
    )

    [row] = selectors.reminder_calls_for_user(user=persona("frontdesk"))

    assert row.appointment == appointment
    assert row.reason == "delivery failed"


def test_a_patient_with_one_reminder_still_on_its_way_is_not_listed(
    persona: Callable[[str], User], main_clinic: Location
) -> None:
    appointment: Appointment = AppointmentFactory(location=main_clinic)
    services.reminders_plan(appointment=appointment)
    first = OutboundMessage.objects.filter(appointment=appointment).first()
    OutboundMessage.objects.filter(pk=first.pk).update(
        status=MessageStatus.FAILED, next_attempt_at=None
    )

    assert selectors.reminder_calls_for_user(user=persona("frontdesk")) == []


def test_the_list_takes_a_fixed_number_of_queries(
    persona: Callable[[str], User],
    main_clinic: Location,
    login_client: Callable[..., Any],
    django_assert_num_queries: Any,
) -> None:
    client = login_client(persona("frontdesk"))
    unreachable_appointment(main_clinic)
    client.get(URL)
    with CaptureQueriesContext(connection) as one_row:
        client.get(URL)
    for _ in range(5):
        unreachable_appointment(main_clinic)

    with django_assert_num_queries(len(one_row)):
        response = client.get(URL)

    assert response.content.decode().count("Nocontact") == 6
    assert OutboundMessage.objects.filter(kind=MessageKind.REMINDER).count() == 12


def test_a_user_at_another_location_sees_none_of_them(
    persona: Callable[[str], User], main_clinic: Location, login_client: Callable[..., Any]
) -> None:
    unreachable_appointment(main_clinic)

    response = login_client(persona("outsider")).get(URL)

    assert response.status_code == 200
    assert "Nocontact" not in response.content.decode()


@pytest.mark.parametrize("name", ["servicedirector", "sysadmin", "privacy"])
def test_roles_without_the_schedule_are_forbidden(
    persona: Callable[[str], User], login_client: Callable[..., Any], name: str
) -> None:
    response = login_client(persona(name)).get(URL)

    assert response.status_code == 403
    assert AuditEvent.objects.filter(event="auth.permission_denied", outcome="denied").exists()


def test_an_anonymous_visitor_is_sent_to_sign_in() -> None:
    from django.test import Client

    response = Client().get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_list_answers_only_get(
    persona: Callable[[str], User], login_client: Callable[..., Any]
) -> None:
    response = login_client(persona("frontdesk")).post(URL)

    assert response.status_code == 405
