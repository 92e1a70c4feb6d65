"""The interface status screen and its retry button: who may see and use them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from interop.models import OutboundHl7Message, OutboundStatus

from .factories import InboundMessageFactory, OutboundMessageFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("interop.tests.urls")]

Persona = Callable[[str], User]
LoginClient = Callable[[User], Client]


def status_url() -> str:
    return reverse("interop:status")


def retry_url(message: OutboundHl7Message) -> str:
    return reverse("interop:outbound_retry", kwargs={"public_id": message.public_id})


@pytest.mark.parametrize("name", ["officemanager", "sysadmin"])
def test_interface_managers_see_recent_messages_without_phi(
    name: str, persona: Persona, login_client: LoginClient, main_clinic: Location
) -> None:
    # given
    OutboundMessageFactory(
        control_id="PDOUT1", location=main_clinic, status=OutboundStatus.FAILED, payload="PID|DOE"
    )
    InboundMessageFactory(control_id="IN-7", location=main_clinic, error_text="")
    # when
    response = login_client(persona(name)).get(status_url())
    # then
    assert response.status_code == 200
    body = response.content.decode()
    assert "PDOUT1" in body
    assert "IN-7" in body
    assert "PID|DOE" not in body
    assert AuditEvent.objects.filter(event="interfaces.status", username=name).exists()


def test_the_page_runs_a_fixed_number_of_queries(
    persona: Persona,
    login_client: LoginClient,
    main_clinic: Location,
    django_assert_max_num_queries: Callable[[int], object],
) -> None:
    client = login_client(persona("sysadmin"))
    OutboundMessageFactory.create_batch(30, location=main_clinic)
    InboundMessageFactory.create_batch(30, location=main_clinic)
    with django_assert_max_num_queries(20):
        assert client.get(status_url()).status_code == 200


def test_no_retry_button_once_the_content_is_purged(
    persona: Persona, login_client: LoginClient, main_clinic: Location
) -> None:
    kept = OutboundMessageFactory(location=main_clinic, status=OutboundStatus.FAILED)
    purged = OutboundMessageFactory(location=main_clinic, status=OutboundStatus.FAILED, payload="")
    body = login_client(persona("officemanager")).get(status_url()).content.decode()
    assert retry_url(kept) in body
    assert retry_url(purged) not in body


def test_messages_of_other_locations_are_not_listed(
    persona: Persona, login_client: LoginClient, riverside: Location
) -> None:
    OutboundMessageFactory(control_id="PDRIVER", location=riverside)
    body = login_client(persona("officemanager")).get(status_url()).content.decode()
    assert "PDRIVER" not in body


@pytest.mark.parametrize("name", ["officeadmin", "frontdesk", "privacy"])
def test_users_without_the_capability_get_403(
    name: str, persona: Persona, login_client: LoginClient
) -> None:
    response = login_client(persona(name)).get(status_url())
    assert response.status_code == 403
    assert AuditEvent.objects.filter(event="interfaces.status", outcome="denied").exists()


def test_anonymous_users_are_sent_to_sign_in(client: Client) -> None:
    response = client.get(status_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_status_page_refuses_post(persona: Persona, login_client: LoginClient) -> None:
    assert login_client(persona("sysadmin")).post(status_url()).status_code == 405


# --- retry ---------------------------------------------------------------------------------------


def test_a_manager_sends_a_failed_message_again(
    persona: Persona, login_client: LoginClient, main_clinic: Location
) -> None:
    message = OutboundMessageFactory(location=main_clinic, status=OutboundStatus.FAILED, attempts=6)
    response = login_client(persona("officemanager")).post(retry_url(message))
    assert response.status_code == 302
    assert response["Location"] == status_url()
    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboundStatus.QUEUED, 0)


def test_retrying_an_acknowledged_message_says_why_not(
    persona: Persona, login_client: LoginClient, main_clinic: Location
) -> None:
    message = OutboundMessageFactory(location=main_clinic, status=OutboundStatus.ACKED)
    response = login_client(persona("officemanager")).post(retry_url(message), follow=True)
    assert "Only a failed or waiting message" in response.content.decode()
    message.refresh_from_db()
    assert message.status == OutboundStatus.ACKED


def test_retry_by_a_lesser_role_is_403(
    persona: Persona, login_client: LoginClient, main_clinic: Location
) -> None:
    message = OutboundMessageFactory(location=main_clinic, status=OutboundStatus.FAILED)
    assert login_client(persona("officeadmin")).post(retry_url(message)).status_code == 403
    message.refresh_from_db()
    assert message.status == OutboundStatus.FAILED


def test_retry_of_another_locations_message_is_404(
    persona: Persona, login_client: LoginClient, riverside: Location
) -> None:
    message = OutboundMessageFactory(location=riverside, status=OutboundStatus.FAILED)
    assert login_client(persona("officemanager")).post(retry_url(message)).status_code == 404
    assert AuditEvent.objects.filter(event="hl7.outbound_view", outcome="denied").exists()


def test_retry_needs_sign_in(client: Client, main_clinic: Location) -> None:
    message = OutboundMessageFactory(location=main_clinic, status=OutboundStatus.FAILED)
    response = client.post(retry_url(message))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_retry_refuses_get(
    persona: Persona, login_client: LoginClient, main_clinic: Location
) -> None:
    message = OutboundMessageFactory(location=main_clinic, status=OutboundStatus.FAILED)
    assert login_client(persona("officemanager")).get(retry_url(message)).status_code == 405
