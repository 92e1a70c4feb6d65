"""The SMS gateway's webhooks: delivery receipts and inbound replies (STOP)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from messaging.models import Channel, MessageStatus, OutboundMessage
from messaging.tests.conftest import GATEWAY_TOKEN
from messaging.tests.factories import OutboundMessageFactory, ReachablePatientFactory

pytestmark = pytest.mark.django_db

STATUS_URL = "/m/sms/status"
INBOUND_URL = "/m/sms/inbound"


def post(url: str, body: Any, token: str | None = GATEWAY_TOKEN) -> Any:
    headers = {"X-Gateway-Token": token} if token is not None else {}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return Client(enforce_csrf_checks=True).post(
        url, data=data, content_type="application/json", headers=headers
    )


@pytest.fixture
def sent_sms() -> OutboundMessage:
    return OutboundMessageFactory(
        channel=Channel.SMS,
        recipient="+16175550142",
        status=MessageStatus.SENT,
        sent_at=timezone.now(),
        next_attempt_at=None,
        provider_message_id="gw-42",
    )


def test_the_webhook_urls_are_where_the_gateway_is_told() -> None:
    assert reverse("messaging:sms_status") == STATUS_URL
    assert reverse("messaging:sms_inbound") == INBOUND_URL


def test_a_delivery_receipt_marks_the_message_delivered(sent_sms: OutboundMessage) -> None:
    response = post(STATUS_URL, {"message_id": "gw-42", "status": "DELIVERED"})

    sent_sms.refresh_from_db()
    assert response.status_code == 200
    assert response.json() == {"message_id": "gw-42", "status": "delivered"}
    assert sent_sms.status == MessageStatus.DELIVERED


def test_a_failure_receipt_marks_the_message_failed(sent_sms: OutboundMessage) -> None:
    response = post(STATUS_URL, {"message_id": "gw-42", "status": "failed", "error_code": "30003"})

    sent_sms.refresh_from_db()
    assert response.status_code == 200
    assert sent_sms.status == MessageStatus.FAILED
    assert sent_sms.last_error == "gateway reported failed (code 30003)"


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_a_receipt_without_the_right_token_is_forbidden(
    sent_sms: OutboundMessage, token: str | None
) -> None:
    response = post(STATUS_URL, {"message_id": "gw-42", "status": "delivered"}, token=token)

    sent_sms.refresh_from_db()
    assert response.status_code == 403
    assert sent_sms.status == MessageStatus.SENT
    assert AuditEvent.objects.filter(event="messaging.webhook_denied", outcome="denied").exists()


def test_no_receipt_is_accepted_when_no_token_is_configured(
    settings: Any, sent_sms: OutboundMessage
) -> None:
    settings.PATIENTDESK_SMS_GATEWAY_TOKEN = ""

    response = post(STATUS_URL, {"message_id": "gw-42", "status": "delivered"}, token="")

    assert response.status_code == 403


def test_a_dedicated_webhook_token_replaces_the_gateway_token(
    settings: Any, sent_sms: OutboundMessage
) -> None:
    settings.PATIENTDESK_SMS_WEBHOOK_TOKEN = "webhook-only"

    refused = post(STATUS_URL, {"message_id": "gw-42", "status": "delivered"})
    accepted = post(
        STATUS_URL, {"message_id": "gw-42", "status": "delivered"}, token="webhook-only"
    )

    assert refused.status_code == 403
    assert accepted.status_code == 200


def test_a_receipt_for_an_unknown_message_is_not_found(sent_sms: OutboundMessage) -> None:
    response = post(STATUS_URL, {"message_id": "gw-999", "status": "delivered"})

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", None),
        (b"\xff\xfe", None),
        ("[1, 2]", None),
        ({"status": "delivered"}, "message_id"),
        ({"message_id": "gw-42"}, "status"),
        ({"message_id": "gw-42", "status": "exploded"}, "status"),
        ({"message_id": "gw-42", "status": 5}, "status"),
        ({"message_id": "x" * 300, "status": "delivered"}, "message_id"),
    ],
)
def test_a_malformed_receipt_is_a_bad_request_naming_the_field(
    sent_sms: OutboundMessage, body: Any, field: str | None
) -> None:
    response = post(STATUS_URL, body)

    sent_sms.refresh_from_db()
    assert response.status_code == 400
    assert sent_sms.status == MessageStatus.SENT
    if field:
        assert field in response.json()["errors"]


@pytest.mark.parametrize("url", [STATUS_URL, INBOUND_URL])
def test_the_webhooks_answer_only_post(url: str) -> None:
    response = Client().get(url, headers={"X-Gateway-Token": GATEWAY_TOKEN})

    assert response.status_code == 405


def test_an_inbound_stop_turns_sms_consent_off() -> None:
    patient = ReachablePatientFactory()

    response = post(INBOUND_URL, {"from": "+16175550142", "body": "STOP"})

    patient.refresh_from_db()
    assert response.status_code == 200
    assert response.json() == {"action": "opted-out"}
    assert patient.consent_sms is False


def test_an_inbound_message_that_is_not_stop_is_ignored() -> None:
    patient = ReachablePatientFactory()

    response = post(INBOUND_URL, {"from": "+16175550142", "body": "See you Tuesday"})

    patient.refresh_from_db()
    assert response.json() == {"action": "ignored"}
    assert patient.consent_sms is True


def test_an_inbound_message_without_the_token_is_forbidden() -> None:
    patient = ReachablePatientFactory()

    response = post(INBOUND_URL, {"from": "+16175550142", "body": "STOP"}, token="nope")

    patient.refresh_from_db()
    assert response.status_code == 403
    assert patient.consent_sms is True


@pytest.mark.parametrize("body", [b"{", "42", {"body": "STOP"}])
def test_a_malformed_inbound_message_is_a_bad_request(body: Any) -> None:
    response = post(INBOUND_URL, body)

    assert response.status_code == 400
