"""SIU messages queued on appointment changes and delivered to a file drop and over MLLP."""

from __future__ import annotations

import datetime as dt
import json
import time
from io import StringIO
from pathlib import Path
from typing import Any

import hl7
import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from audit.models import AuditEvent
from core.models import Location
from interop.models import OutboundHl7Message, OutboundStatus, Transport
from interop.services import (
    _claim_head,
    outbound_purge_payloads,
    outbound_queue_for_appointment,
    outbound_retry,
    outbound_send_pending,
)
from interop.tasks import deliver_hl7_messages
from scheduling.events import AppointmentChange, appointment_changed, appointment_changed_on_commit
from scheduling.models import Appointment

from .conftest import RemoteSystem, ack_for
from .factories import AppointmentFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def appointment(main_clinic: Location) -> Appointment:
    return AppointmentFactory(location=main_clinic, patient__home_location=main_clinic)


def queue(appointment: Appointment, change: str = AppointmentChange.BOOKED) -> OutboundHl7Message:
    rows = outbound_queue_for_appointment(appointment_id=appointment.pk, change=change)
    assert len(rows) == 1
    return rows[0]


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


# --- queueing ----------------------------------------------------------------------------------


def test_a_booking_queues_an_s12_for_each_destination(
    appointment: Appointment,
    mllp_destination: RemoteSystem,
    file_drop: Path,
    settings: object,
    committed: Any,
) -> None:
    # given: both destinations configured
    settings.PATIENTDESK_HL7_OUT_HOST = mllp_destination.host
    # when: scheduling announces the booking after its transaction commits
    with committed():
        appointment_changed_on_commit(
            appointment_id=appointment.pk, change=AppointmentChange.BOOKED, actor_id=None
        )
    # then
    rows = list(OutboundHl7Message.objects.order_by("transport"))
    assert [(r.transport, r.message_type, r.status) for r in rows] == [
        (Transport.FILE, "SIU^S12", OutboundStatus.QUEUED),
        (Transport.MLLP, "SIU^S12", OutboundStatus.QUEUED),
    ]
    assert rows[0].control_id != rows[1].control_id
    assert all(hl7.parse(r.payload)["MSH.F10"] == r.control_id for r in rows)
    assert DBTaskResult.objects.filter(task_path="interop.tasks.deliver_hl7_messages").exists()
    assert (
        AuditEvent.objects.filter(
            event="hl7.siu_queue", patient_public_id=appointment.patient.public_id
        ).count()
        == 2
    )


@pytest.mark.parametrize(
    ("change", "message_type"),
    [
        (AppointmentChange.RESCHEDULED, "SIU^S13"),
        (AppointmentChange.MODIFIED, "SIU^S14"),
        (AppointmentChange.CANCELLED, "SIU^S15"),
        (AppointmentChange.NO_SHOW, "SIU^S26"),
    ],
)
def test_each_change_has_its_trigger_event(
    appointment: Appointment, mllp_destination: RemoteSystem, change: str, message_type: str
) -> None:
    appointment_changed.send(
        sender=Appointment, appointment_id=appointment.pk, change=change, actor_id=None, via="ui"
    )
    assert OutboundHl7Message.objects.get().message_type == message_type


def test_status_only_changes_and_changes_that_came_over_hl7_send_nothing(
    appointment: Appointment, mllp_destination: RemoteSystem
) -> None:
    outbound_queue_for_appointment(appointment_id=appointment.pk, change=AppointmentChange.STATUS)
    outbound_queue_for_appointment(
        appointment_id=appointment.pk, change=AppointmentChange.BOOKED, via="hl7"
    )
    assert not OutboundHl7Message.objects.exists()


def test_nothing_is_queued_without_a_destination(
    appointment: Appointment, no_destinations: None
) -> None:
    outbound_queue_for_appointment(appointment_id=appointment.pk, change=AppointmentChange.BOOKED)
    assert not OutboundHl7Message.objects.exists()


# --- MLLP delivery -----------------------------------------------------------------------------


def test_s12_and_s15_are_acknowledged_by_a_real_listener(
    appointment: Appointment, mllp_destination: RemoteSystem
) -> None:
    # given
    booked = queue(appointment, AppointmentChange.BOOKED)
    cancelled = queue(appointment, AppointmentChange.CANCELLED)
    # when
    report = outbound_send_pending()
    # then
    assert report.as_json() == {"delivered": 2, "retrying": 0, "failed": 0}
    received = [hl7.parse(text) for text in mllp_destination.received]
    assert [str(m.segment("MSH")[9]) for m in received] == ["SIU^S12^SIU_S12", "SIU^S15^SIU_S12"]
    assert [m["MSH.F10"] for m in received] == [booked.control_id, cancelled.control_id]
    for row in (booked, cancelled):
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_ack_code) == (OutboundStatus.ACKED, 1, "AA")
        assert row.delivered_at is not None
        assert row.next_attempt_at is None
    assert AuditEvent.objects.filter(event="hl7.siu_delivered").count() == 2


def test_an_application_error_is_retried_after_a_back_off(
    appointment: Appointment, mllp_destination: RemoteSystem
) -> None:
    # given: the receiver answers AE once, then AA
    answers = iter(["AE", "AA"])
    mllp_destination.answer = lambda text: ack_for(text, next(answers), "busy")
    row = queue(appointment)
    # when
    first = outbound_send_pending()
    row.refresh_from_db()
    # then
    assert first.as_json() == {"delivered": 0, "retrying": 1, "failed": 0}
    assert (row.status, row.attempts, row.last_ack_code, row.last_ack_text) == (
        OutboundStatus.QUEUED,
        1,
        "AE",
        "busy",
    )
    assert row.last_error == "the receiver answered AE"
    assert row.next_attempt_at is not None
    assert later(25) < row.next_attempt_at < later(35)
    # and: nothing is sent before the back-off ends
    assert outbound_send_pending().as_json()["delivered"] == 0
    assert len(mllp_destination.received) == 1
    # when: the back-off has passed
    outbound_send_pending(now=later(40))
    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutboundStatus.ACKED, 2)
    assert len(mllp_destination.received) == 2


def test_a_failed_attempt_schedules_the_next_delivery_run(
    appointment: Appointment,
    mllp_destination: RemoteSystem,
    committed: Any,
) -> None:
    mllp_destination.answer = lambda text: ack_for(text, "AR")
    queue(appointment)
    with committed():
        outbound_send_pending()
    task = DBTaskResult.objects.filter(task_path="interop.tasks.deliver_hl7_messages").latest(
        "enqueued_at"
    )
    assert task.run_after is not None
    assert task.run_after > timezone.now()


def test_gives_up_after_the_last_attempt(
    appointment: Appointment, mllp_destination: RemoteSystem, settings: object
) -> None:
    settings.PATIENTDESK_HL7_MAX_ATTEMPTS = 2
    mllp_destination.answer = lambda text: ack_for(text, "AR", "unknown patient")
    row = queue(appointment)
    outbound_send_pending()
    outbound_send_pending(now=later(3600))
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == (OutboundStatus.FAILED, 2, None)
    assert AuditEvent.objects.filter(event="hl7.siu_failed").count() == 1


def test_no_ack_in_time_is_retried(
    appointment: Appointment, mllp_destination: RemoteSystem, settings: object
) -> None:
    settings.PATIENTDESK_HL7_ACK_TIMEOUT = 0.3

    def too_slow(text: str) -> str:
        time.sleep(1)
        return ack_for(text)

    mllp_destination.answer = too_slow
    row = queue(appointment)
    outbound_send_pending()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (
        OutboundStatus.QUEUED,
        1,
        "no ACK within 0.3 s",
    )


def test_an_ack_for_another_message_does_not_count(
    appointment: Appointment, mllp_destination: RemoteSystem
) -> None:
    mllp_destination.answer = lambda text: ack_for(text).replace("MSA|AA|PD", "MSA|AA|XX")
    row = queue(appointment)
    outbound_send_pending()
    row.refresh_from_db()
    assert row.status == OutboundStatus.QUEUED
    assert row.last_error == "the ACK answers another message (MSA-2)"


def test_a_receiver_that_is_down_is_retried(
    appointment: Appointment, mllp_destination: RemoteSystem
) -> None:
    row = queue(appointment)
    mllp_destination.server.stop()
    outbound_send_pending()
    row.refresh_from_db()
    assert row.status == OutboundStatus.QUEUED
    assert row.last_error.startswith("cannot connect")


def test_a_message_waiting_for_a_retry_holds_back_the_later_ones(
    appointment: Appointment, mllp_destination: RemoteSystem
) -> None:
    # given: the first message is refused, the second would be accepted
    mllp_destination.answer = lambda text: ack_for(
        text, "AE" if "SIU^S12" in text.split("\r")[0] else "AA"
    )
    booked = queue(appointment, AppointmentChange.BOOKED)
    cancelled = queue(appointment, AppointmentChange.CANCELLED)
    # when
    outbound_send_pending()
    # then: the cancellation is not sent before the booking
    assert len(mllp_destination.received) == 1
    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.attempts) == (OutboundStatus.QUEUED, 0)
    booked.refresh_from_db()
    assert booked.attempts == 1


def test_two_workers_never_claim_the_same_message(appointment: Appointment) -> None:
    OutboundMessageFactory(transport=Transport.MLLP)
    now = timezone.now()
    assert _claim_head(Transport.MLLP, now) is not None
    assert _claim_head(Transport.MLLP, now) is None


def test_the_background_task_delivers(
    appointment: Appointment, mllp_destination: RemoteSystem
) -> None:
    queue(appointment)
    assert deliver_hl7_messages.call() == {"delivered": 1, "retrying": 0, "failed": 0}


def test_the_command_sends_what_is_due_and_prints_json(
    appointment: Appointment, mllp_destination: RemoteSystem
) -> None:
    queue(appointment)
    out = StringIO()
    call_command("hl7_send_pending", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {
        "delivered": 1,
        "retrying": 0,
        "failed": 0,
        "payloads_purged": 0,
    }


# --- file drop ---------------------------------------------------------------------------------


def test_the_file_drop_gets_one_complete_file_per_message(
    appointment: Appointment, file_drop: Path
) -> None:
    # given
    booked = queue(appointment, AppointmentChange.BOOKED)
    cancelled = queue(appointment, AppointmentChange.CANCELLED)
    # when
    outbound_send_pending()
    # then
    files = sorted(file_drop.iterdir())
    assert [f.name.split("_", 2)[2] for f in files] == [
        f"{booked.control_id}_SIU_S12.hl7",
        f"{cancelled.control_id}_SIU_S15.hl7",
    ]
    content = files[0].read_bytes().decode()
    assert "\n" not in content
    assert content == booked.payload + "\r"
    booked.refresh_from_db()
    assert booked.status == OutboundStatus.SENT


def test_a_file_drop_that_cannot_be_written_is_retried(
    appointment: Appointment, file_drop: Path
) -> None:
    file_drop.parent.mkdir(parents=True, exist_ok=True)
    file_drop.write_text("a file where the folder should be")
    row = queue(appointment)
    outbound_send_pending()
    row.refresh_from_db()
    assert row.status == OutboundStatus.QUEUED
    assert row.last_error.startswith("cannot write the file")


# --- retry and retention -----------------------------------------------------------------------


def test_a_failed_message_can_be_sent_again(
    appointment: Appointment,
    mllp_destination: RemoteSystem,
    persona: Any,
    committed: Any,
) -> None:
    # given
    manager = persona("officemanager")
    row = OutboundMessageFactory(status=OutboundStatus.FAILED, attempts=6, next_attempt_at=None)
    # when
    with committed():
        outbound_retry(actor=manager, message=row)
    # then
    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutboundStatus.QUEUED, 0)
    assert AuditEvent.objects.get(event="hl7.siu_retry").username == "officemanager"
    assert DBTaskResult.objects.filter(task_path="interop.tasks.deliver_hl7_messages").exists()


def test_an_acknowledged_message_cannot_be_sent_again(persona: Any) -> None:
    from django.core.exceptions import ValidationError

    row = OutboundMessageFactory(status=OutboundStatus.ACKED, next_attempt_at=None)
    with pytest.raises(ValidationError):
        outbound_retry(actor=persona("officemanager"), message=row)


def test_retry_needs_the_manage_interfaces_capability(persona: Any) -> None:
    from django.core.exceptions import PermissionDenied

    row = OutboundMessageFactory(status=OutboundStatus.FAILED)
    with pytest.raises(PermissionDenied):
        outbound_retry(actor=persona("officeadmin"), message=row)


def test_old_delivered_payloads_are_blanked_and_queued_ones_kept() -> None:
    old = OutboundMessageFactory(status=OutboundStatus.ACKED)
    waiting = OutboundMessageFactory(status=OutboundStatus.QUEUED)
    OutboundHl7Message.objects.filter(pk__in=[old.pk, waiting.pk]).update(
        updated_at=timezone.now() - dt.timedelta(days=31)
    )
    assert outbound_purge_payloads() == 1
    old.refresh_from_db()
    waiting.refresh_from_db()
    assert old.payload == ""
    assert waiting.payload != ""


@pytest.mark.django_db(transaction=True)
def test_a_database_worker_delivers_the_queued_message(
    appointment: Appointment, mllp_destination: RemoteSystem
) -> None:
    # given: the booking's SIU was queued and its delivery task enqueued on commit
    row = queue(appointment)
    assert DBTaskResult.objects.filter(task_path="interop.tasks.deliver_hl7_messages").exists()
    # when: a django-tasks database worker runs what is queued on the "interfaces" queue
    call_command(
        "db_worker",
        "--batch",
        "--queue-name",
        "interfaces",
        "--no-startup-delay",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    # then
    row.refresh_from_db()
    assert row.status == OutboundStatus.ACKED
    assert len(mllp_destination.received) == 1
