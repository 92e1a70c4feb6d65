"""Background work: what gets enqueued when, and the cron command."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from messaging import services, tasks
from messaging.models import MessageStatus, OutboundMessage
from messaging.tests.conftest import SmtpServer
from messaging.tests.factories import AppointmentFactory, OutboundMessageFactory
from scheduling.models import Appointment

pytestmark = pytest.mark.django_db

DELIVER = "messaging.tasks.deliver_message"
SWEEP = "messaging.tasks.deliver_due_messages"


def waiting(task_path: str) -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(task_path=task_path, status=TaskResultStatus.READY).order_by(
            "run_after"
        )
    )


def test_a_message_due_now_is_enqueued_for_delivery_after_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    appointment: Appointment = AppointmentFactory(
        status="cancelled", cancelled_by="clinic", cancel_reason="practitioner ill"
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notice = services.cancellation_notice_queue(appointment=appointment)
        assert waiting(DELIVER) == []  # nothing before the commit
    for callback in callbacks:
        callback()

    [job] = waiting(DELIVER)
    assert job.args_kwargs == {"args": [notice.pk], "kwargs": {}}
    assert job.queue_name == "messages"


def test_messages_due_later_wake_one_sweep_at_the_earliest_due_time(
    django_capture_on_commit_callbacks: Any,
) -> None:
    appointment: Appointment = AppointmentFactory(appointment_type__reminder_offsets_hours=[72, 24])

    with django_capture_on_commit_callbacks(execute=True):
        services.reminders_plan(appointment=appointment)

    [sweep] = waiting(SWEEP)
    assert sweep.run_after == appointment.start - dt.timedelta(hours=72)
    assert sweep.queue_name == "messages"
    assert waiting(DELIVER) == []


def test_a_sweep_already_waiting_early_enough_is_not_duplicated() -> None:
    soon = timezone.now() + dt.timedelta(hours=1)
    tasks.ensure_sweep(at=soon)

    tasks.ensure_sweep(at=soon + dt.timedelta(hours=5))
    tasks.ensure_sweep(at=soon)

    assert [s.run_after for s in waiting(SWEEP)] == [soon]


def test_an_earlier_due_time_gets_its_own_sweep() -> None:
    later = timezone.now() + dt.timedelta(hours=5)
    tasks.ensure_sweep(at=later)

    sooner = timezone.now() + dt.timedelta(minutes=10)
    tasks.ensure_sweep(at=sooner)

    assert [s.run_after for s in waiting(SWEEP)] == [sooner, later]


def test_deliver_message_task_delivers_one_message(smtp_server: SmtpServer) -> None:
    message: OutboundMessage = OutboundMessageFactory()

    outcome = tasks.deliver_message.call(message.pk)

    message.refresh_from_db()
    assert outcome == "sent"
    assert message.status == MessageStatus.SENT
    assert len(smtp_server.envelopes) == 1


def test_the_sweep_delivers_what_is_due_and_re_enqueues_itself_for_the_next(
    smtp_server: SmtpServer,
) -> None:
    OutboundMessageFactory.create_batch(2)
    later: OutboundMessage = OutboundMessageFactory(
        next_attempt_at=timezone.now() + dt.timedelta(hours=3)
    )

    counts = tasks.deliver_due_messages.call()

    assert counts == {"sent": 2}
    assert len(smtp_server.envelopes) == 2
    [sweep] = waiting(SWEEP)
    assert sweep.run_after == later.next_attempt_at


def test_a_retry_wakes_a_sweep_when_the_back_off_ends(start_smtp: Any) -> None:
    start_smtp(reply="451 4.3.0 Try again later")
    message: OutboundMessage = OutboundMessageFactory()

    tasks.deliver_due_messages.call()

    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED
    [sweep] = waiting(SWEEP)
    assert sweep.run_after == message.next_attempt_at


def test_run_reminders_plans_missing_reminders_and_delivers_what_is_due(
    smtp_server: SmtpServer,
) -> None:
    OutboundMessageFactory.create_batch(2)
    AppointmentFactory()  # booked without messaging: its reminders are planned now
    out = io.StringIO()

    call_command("run_reminders", stdout=out)

    assert out.getvalue().strip() == ("Planned 2 reminder(s); processed 2 due message(s): sent 2.")
    assert len(smtp_server.envelopes) == 2


def test_run_reminders_prints_json_on_request(smtp_server: SmtpServer) -> None:
    OutboundMessageFactory()
    out = io.StringIO()

    call_command("run_reminders", "--json", stdout=out)

    assert json.loads(out.getvalue()) == {"planned": 0, "processed": 1, "sent": 1}


def test_run_reminders_with_nothing_due_says_so() -> None:
    out = io.StringIO()

    call_command("run_reminders", stdout=out)

    assert out.getvalue().strip() == "Planned 0 reminder(s); processed 0 due message(s)."
    assert not OutboundMessage.objects.exists()
