"""Delivery against real servers: nothing is marked sent unless the channel accepted it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from messaging import services
from messaging.models import Channel, MessageKind, MessageStatus, OutboundMessage
from messaging.services import Outcome
from messaging.tests.conftest import Gateway, SmtpServer
from messaging.tests.factories import (
    AppointmentFactory,
    OutboundMessageFactory,
    ReachablePatientFactory,
    WaitlistOfferFactory,
)
from messaging.timing import zone
from scheduling.models import Appointment

pytestmark = pytest.mark.django_db


def due_reminder(**patient: Any) -> OutboundMessage:
    """The first reminder of an appointment, made due now."""
    appointment: Appointment = AppointmentFactory(patient=ReachablePatientFactory(**patient))
    [first, *_] = services.reminders_plan(appointment=appointment)
    OutboundMessage.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
    return first


def make_due(message: OutboundMessage) -> None:
    OutboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())


def test_an_email_accepted_by_the_smtp_server_is_marked_sent(smtp_server: SmtpServer) -> None:
    message = due_reminder(preferred_contact="email")

    outcome = services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == Outcome.SENT
    assert message.status == MessageStatus.SENT
    assert message.sent_at is not None
    assert message.attempts == 1
    assert message.next_attempt_at is None
    assert message.provider_message_id in smtp_server.messages()[0]
    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == ["ann@example.org"]
    content = smtp_server.messages()[0]
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in content
    assert "Chest pain" not in content
    sent = AuditEvent.objects.get(event="message.sent")
    assert sent.username == "system"
    assert str(sent.patient_public_id) == str(message.patient.public_id)
    assert "ann@example.org" not in sent.reason


def test_a_temporary_smtp_refusal_is_retried_with_back_off_then_fails(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    # given a mail server that keeps answering 451, and MESSAGE_MAX_ATTEMPTS = 3
    server = start_smtp(reply="451 4.3.0 Try again later")
    message: OutboundMessage = OutboundMessageFactory()
    # when the first attempt fails
    before = timezone.now()
    first = services.message_deliver(message_id=message.pk)
    message.refresh_from_db()
    # then it waits a minute, still queued, never marked sent
    assert first == Outcome.RETRY
    assert message.status == MessageStatus.QUEUED
    assert message.sent_at is None
    assert message.last_error == "SMTP 451 (SMTPDataError)"
    retry_at = message.next_attempt_at
    assert retry_at is not None
    assert (
        before + dt.timedelta(seconds=59) <= retry_at <= timezone.now() + dt.timedelta(seconds=61)
    )
    # when the second attempt fails, it waits five minutes
    make_due(message)
    before = timezone.now()
    assert services.message_deliver(message_id=message.pk) == Outcome.RETRY
    message.refresh_from_db()
    retry_at = message.next_attempt_at
    assert retry_at is not None
    assert retry_at >= before + dt.timedelta(minutes=5) - dt.timedelta(seconds=1)
    # when the third attempt fails, it has failed for good
    make_due(message)
    assert services.message_deliver(message_id=message.pk) == Outcome.FAILED
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.attempts == 3
    assert message.failed_at is not None
    assert message.sent_at is None
    assert server.handler.attempts == 3
    assert AuditEvent.objects.filter(event="message.failed").count() == 1


def test_a_permanent_smtp_refusal_fails_at_once(start_smtp: Callable[..., SmtpServer]) -> None:
    start_smtp(reply="554 5.7.1 Message rejected")
    message: OutboundMessage = OutboundMessageFactory()

    outcome = services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == Outcome.FAILED
    assert message.status == MessageStatus.FAILED
    assert message.attempts == 1
    assert message.last_error == "SMTP 554 (SMTPDataError)"
    assert message.sent_at is None


def test_an_sms_accepted_by_the_gateway_is_sent_with_its_message_id(
    start_gateway: Callable[..., Gateway],
) -> None:
    gateway = start_gateway("accept")
    message = due_reminder()

    outcome = services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == Outcome.SENT
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id == "gw-1"
    [request] = gateway.requests
    assert request["json"]["to"] == "+16175550142"
    assert request["json"]["body"] == message.body
    assert request["json"]["callback_url"] == "http://testserver/m/sms/status"


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("error", "SMS gateway answered HTTP 500"),
        ("timeout", "SMS gateway timed out"),
        ("no-id", "SMS gateway answered without a message id"),
    ],
)
def test_an_sms_the_gateway_did_not_accept_is_retried_not_sent(
    start_gateway: Callable[..., Gateway], mode: str, error: str
) -> None:
    start_gateway(mode, timeout=0.3)
    message = due_reminder()

    outcome = services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == Outcome.RETRY
    assert message.status == MessageStatus.QUEUED
    assert message.sent_at is None
    assert message.provider_message_id == ""
    assert message.last_error == error
    assert message.next_attempt_at is not None
    assert message.next_attempt_at > timezone.now()


def test_a_message_not_yet_due_is_left_alone(smtp_server: SmtpServer) -> None:
    message: OutboundMessage = OutboundMessageFactory(
        next_attempt_at=timezone.now() + dt.timedelta(hours=1)
    )

    assert services.message_deliver(message_id=message.pk) == Outcome.SKIPPED
    assert smtp_server.envelopes == []


def test_a_claimed_message_is_not_sent_twice(smtp_server: SmtpServer) -> None:
    # given one worker has claimed the message and is talking to the mail server
    message: OutboundMessage = OutboundMessageFactory()
    services._claim(message.pk, timezone.now())
    # when another worker (or a cron run) tries the same message
    outcome = services.message_deliver(message_id=message.pk)
    # then it keeps its hands off
    assert outcome == Outcome.SKIPPED
    assert smtp_server.envelopes == []


def test_a_message_due_in_quiet_hours_is_deferred_not_dropped(
    settings: Any, smtp_server: SmtpServer
) -> None:
    message = due_reminder(preferred_contact="email")
    local_now = timezone.now().astimezone(zone(message.patient.home_location.time_zone))
    quiet_start = (local_now - dt.timedelta(hours=1)).strftime("%H:%M")
    quiet_end = (local_now + dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    settings.QUIET_HOURS = f"{quiet_start}-{quiet_end:%H:%M}"

    outcome = services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == Outcome.DEFERRED
    assert message.status == MessageStatus.QUEUED
    assert message.attempts == 0
    assert message.next_attempt_at == quiet_end
    assert smtp_server.envelopes == []


def test_a_patient_who_withdrew_sms_consent_is_reached_by_email_instead(
    smtp_server: SmtpServer,
) -> None:
    message = due_reminder()
    assert message.channel == Channel.SMS
    message.patient.consent_sms = False
    message.patient.save()

    outcome = services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == Outcome.SENT
    assert message.channel == Channel.EMAIL
    assert message.recipient == "ann@example.org"
    assert smtp_server.envelopes[0].rcpt_tos == ["ann@example.org"]


def test_a_patient_with_no_consent_left_is_suppressed_at_sending_time(
    smtp_server: SmtpServer,
) -> None:
    message = due_reminder()
    message.patient.consent_sms = message.patient.consent_email = False
    message.patient.save()

    outcome = services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == Outcome.SUPPRESSED
    assert message.status == MessageStatus.SUPPRESSED
    assert message.status_reason == "no SMS consent; no email consent"
    assert smtp_server.envelopes == []


def test_a_reminder_for_a_cancelled_appointment_is_cancelled_not_sent(
    smtp_server: SmtpServer,
) -> None:
    message = due_reminder(preferred_contact="email")
    message.appointment.status, message.appointment.cancel_reason = "cancelled", "ill"
    message.appointment.save()

    outcome = services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == Outcome.CANCELLED
    assert message.status_reason == "appointment cancelled"
    assert smtp_server.envelopes == []


def test_the_text_is_rendered_again_at_sending_time(smtp_server: SmtpServer) -> None:
    message = due_reminder(preferred_contact="email")
    message.patient.preferred_name = "Annie"
    message.patient.save()

    services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.body.startswith("Hello Annie,")
    assert "Hello Annie," in smtp_server.messages()[0]


def test_an_offer_taken_by_someone_else_is_not_sent(smtp_server: SmtpServer) -> None:
    offer = WaitlistOfferFactory(entry__patient__preferred_contact="email")
    message = services.waitlist_offer_queue(offer=offer)
    offer.status = "taken"
    offer.save()

    outcome = services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == Outcome.CANCELLED
    assert message.status_reason == "offer no longer open"
    assert smtp_server.envelopes == []


def test_a_message_that_cannot_be_prepared_counts_as_a_failed_attempt(
    monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer
) -> None:
    message = due_reminder(preferred_contact="email")

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("template variable")

    monkeypatch.setattr(services.rendering, "render", broken)

    outcome = services.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == Outcome.RETRY
    assert message.attempts == 1
    assert message.last_error == "could not prepare the message (KeyError)"
    assert smtp_server.envelopes == []


def test_deliver_due_sends_everything_due_once_and_leaves_the_rest(
    smtp_server: SmtpServer,
) -> None:
    OutboundMessageFactory.create_batch(3)
    later: OutboundMessage = OutboundMessageFactory(
        next_attempt_at=timezone.now() + dt.timedelta(hours=2)
    )

    counts = services.deliver_due(batch_size=2)

    assert counts == {"sent": 3}
    assert len(smtp_server.envelopes) == 3
    later.refresh_from_db()
    assert later.status == MessageStatus.QUEUED
    assert services.next_due_at() == later.next_attempt_at


# --- delivery receipts and STOP ---------------------------------------------------------------


def sent_sms(provider_id: str = "gw-77") -> OutboundMessage:
    return OutboundMessageFactory(
        kind=MessageKind.STAFF_NOTICE,
        channel=Channel.SMS,
        status=MessageStatus.SENT,
        sent_at=timezone.now(),
        next_attempt_at=None,
        provider_message_id=provider_id,
    )


def test_a_delivery_receipt_marks_the_message_delivered() -> None:
    message = sent_sms()

    services.delivery_receipt_record(provider_message_id="gw-77", status="delivered")

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert message.delivered_at is not None


def test_a_failure_receipt_marks_the_message_failed_with_the_code() -> None:
    message = sent_sms()

    services.delivery_receipt_record(
        provider_message_id="gw-77", status="undelivered", error_code="30005"
    )

    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.last_error == "gateway reported undelivered (code 30005)"


def test_a_repeated_receipt_changes_nothing() -> None:
    message = sent_sms()
    services.delivery_receipt_record(provider_message_id="gw-77", status="delivered")

    services.delivery_receipt_record(provider_message_id="gw-77", status="failed")

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def test_a_receipt_for_an_unknown_message_is_refused() -> None:
    sent_sms()

    with pytest.raises(OutboundMessage.DoesNotExist):
        services.delivery_receipt_record(provider_message_id="gw-other", status="delivered")


def test_status_changes_only_along_allowed_transitions() -> None:
    message = sent_sms()

    with pytest.raises(services.InvalidTransition):
        services._transition(message, MessageStatus.QUEUED)


def test_replying_stop_turns_sms_consent_off_for_that_number() -> None:
    patient = ReachablePatientFactory()
    other = ReachablePatientFactory(phone_mobile="+16175550199")

    action = services.sms_inbound(from_number="(617) 555-0142", body=" stop ")

    patient.refresh_from_db()
    other.refresh_from_db()
    assert action == "opted-out"
    assert patient.consent_sms is False
    assert other.consent_sms is True
    event = AuditEvent.objects.get(event="patient.consent_withdrawn")
    assert event.username == "patient-sms"


@pytest.mark.parametrize("body", ["Yes", "", "see you then", "STOPPED by later"])
def test_other_replies_change_nothing(body: str) -> None:
    patient = ReachablePatientFactory()

    assert services.sms_inbound(from_number="+16175550142", body=body) == "ignored"
    patient.refresh_from_db()
    assert patient.consent_sms is True
