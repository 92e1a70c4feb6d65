"""The channels against real servers on loopback: aiosmtpd for email, http.server for SMS."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from django.core.mail import EmailMessage, get_connection

from messaging.channels import (
    ConsoleSmsBackend,
    HttpSmsBackend,
    mask_recipient,
    send_email,
    sms_backend,
)
from messaging.tests.conftest import GATEWAY_TOKEN, Gateway, SmtpServer, free_port


def test_email_is_accepted_by_a_real_smtp_server(smtp_server: SmtpServer) -> None:
    result = send_email(
        to="ann@example.org",
        subject="Reminder",
        body="Hello Ann",
        headers={"List-Unsubscribe": "<http://testserver/m/u/x/>"},
    )

    assert result.accepted
    assert result.provider_message_id
    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == ["ann@example.org"]
    assert "Hello Ann" in smtp_server.messages()[0]
    assert "List-Unsubscribe: <http://testserver/m/u/x/>" in smtp_server.messages()[0]
    assert result.provider_message_id in smtp_server.messages()[0]


def test_a_temporary_smtp_refusal_is_not_accepted_and_may_be_retried(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    server = start_smtp(reply="451 4.3.0 Mailbox busy, try again later")

    result = send_email(to="ann@example.org", subject="Reminder", body="Hello")

    assert not result.accepted
    assert not result.permanent
    assert result.error == "SMTP 451 (SMTPDataError)"
    assert server.handler.attempts == 1


def test_a_permanent_smtp_refusal_is_not_accepted_and_not_retried(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    start_smtp(reply="554 5.7.1 Message rejected")

    result = send_email(to="ann@example.org", subject="Reminder", body="Hello")

    assert not result.accepted
    assert result.permanent
    assert "554" in result.error


def test_an_unreachable_mail_server_is_a_temporary_failure_without_the_address(
    settings: object,
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()

    result = send_email(to="ann@example.org", subject="Reminder", body="Hello")

    assert not result.accepted
    assert not result.permanent
    assert "unreachable" in result.error
    assert "ann" not in result.error


def test_sms_gateway_that_answers_2xx_with_an_id_accepts(
    start_gateway: Callable[..., Gateway],
) -> None:
    gateway = start_gateway("accept")

    result = HttpSmsBackend().send(
        to="+16175550142", body="Hi Ann", callback_url="http://testserver/m/sms/status"
    )

    assert result.accepted
    assert result.provider_message_id == "gw-1"
    [request] = gateway.requests
    assert request["json"] == {
        "to": "+16175550142",
        "body": "Hi Ann",
        "callback_url": "http://testserver/m/sms/status",
    }
    assert request["headers"]["Authorization"] == f"Bearer {GATEWAY_TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json"


def test_sms_gateway_error_is_a_temporary_failure(start_gateway: Callable[..., Gateway]) -> None:
    start_gateway("error")

    result = HttpSmsBackend().send(to="+16175550142", body="Hi", callback_url="")

    assert not result.accepted
    assert not result.permanent
    assert result.error == "SMS gateway answered HTTP 500"


def test_sms_gateway_that_does_not_answer_in_time_is_a_temporary_failure(
    start_gateway: Callable[..., Gateway],
) -> None:
    start_gateway("timeout", timeout=0.3)

    result = HttpSmsBackend().send(to="+16175550142", body="Hi", callback_url="")

    assert not result.accepted
    assert not result.permanent
    assert result.error == "SMS gateway timed out"


def test_sms_gateway_2xx_without_a_message_id_is_not_accepted(
    start_gateway: Callable[..., Gateway],
) -> None:
    start_gateway("no-id")

    result = HttpSmsBackend().send(to="+16175550142", body="Hi", callback_url="")

    assert not result.accepted
    assert result.error == "SMS gateway answered without a message id"


def test_sms_gateway_refusing_the_request_is_a_permanent_failure(
    start_gateway: Callable[..., Gateway],
) -> None:
    start_gateway("reject")

    result = HttpSmsBackend().send(to="+16175550142", body="Hi", callback_url="")

    assert not result.accepted
    assert result.permanent


def test_an_unreachable_sms_gateway_is_a_temporary_failure() -> None:
    backend = HttpSmsBackend(url=f"http://127.0.0.1:{free_port()}/messages", token="t", timeout=1)

    result = backend.send(to="+16175550142", body="Hi", callback_url="")

    assert not result.accepted
    assert not result.permanent
    assert "unreachable" in result.error


def test_an_unconfigured_sms_gateway_accepts_nothing() -> None:
    result = HttpSmsBackend(url="", token="").send(to="+16175550142", body="Hi", callback_url="")

    assert not result.accepted
    assert "not configured" in result.error


def test_console_backend_prints_the_text_with_the_number_masked_and_accepts() -> None:
    stream = io.StringIO()

    result = ConsoleSmsBackend(stream=stream).send(
        to="+16175550142", body="Hi Ann", callback_url=""
    )

    assert result.accepted
    assert result.provider_message_id.startswith("console-")
    assert "Hi Ann" in stream.getvalue()
    assert "+16175550142" not in stream.getvalue()
    assert "+1••••••••42" in stream.getvalue()


def test_sms_backend_follows_the_setting(settings: object) -> None:
    settings.PATIENTDESK_SMS_BACKEND = "messaging.channels.HttpSmsBackend"

    assert isinstance(sms_backend(), HttpSmsBackend)


def test_masks_email_addresses_and_numbers() -> None:
    assert mask_recipient("ann@example.org") == "a•••@example.org"
    assert mask_recipient("+16175550142") == "+1••••••••42"


def test_console_email_backend_prints_the_email_with_the_address_masked(settings: Any) -> None:
    stream = io.StringIO()
    settings.EMAIL_BACKEND = "messaging.channels.ConsoleEmailBackend"
    connection = get_connection(stream=stream)

    sent = connection.send_messages(
        [EmailMessage(subject="Reminder", body="Hello Ann", to=["ann@example.org"])]
    )

    assert sent == 1
    assert "Hello Ann" in stream.getvalue()
    assert "Subject: Reminder" in stream.getvalue()
    assert "ann@example.org" not in stream.getvalue()
    assert "a•••@example.org" in stream.getvalue()


def test_email_through_the_console_backend_counts_as_accepted(settings: Any) -> None:
    settings.EMAIL_BACKEND = "messaging.channels.ConsoleEmailBackend"

    result = send_email(to="ann@example.org", subject="Reminder", body="Hello Ann")

    assert result.accepted


def test_without_a_configured_backend_texts_go_to_the_console_only_in_the_demo(
    settings: Any,
) -> None:
    settings.PATIENTDESK_SMS_BACKEND = ""
    settings.DEMO_MODE, settings.DEBUG = True, False
    demo = sms_backend()
    settings.DEMO_MODE = False

    production = sms_backend()

    assert isinstance(demo, ConsoleSmsBackend)
    assert isinstance(production, HttpSmsBackend)
