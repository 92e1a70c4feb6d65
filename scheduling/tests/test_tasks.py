"""Announcing appointment changes from the background: the queue each change writes in its own
transaction, the worker's task, and the cron command for sites without a worker."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from scheduling.events import AppointmentChange, appointment_changed
from scheduling.services import appointment_cancel
from scheduling.tasks import announce_appointment_change, announce_queued_changes

pytestmark = pytest.mark.django_db

Book = Callable[..., Any]


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(sender: object, **kwargs: Any) -> None:
        calls.append(kwargs)

    appointment_changed.connect(receiver)
    yield calls
    appointment_changed.disconnect(receiver)


def queued() -> Any:
    return DBTaskResult.objects.filter(task_path=announce_appointment_change.module_path)


def test_the_cron_command_announces_what_is_queued_once(
    book: Book, at: Callable[..., dt.datetime], frontdesk: Any, received: list[dict[str, Any]]
) -> None:
    # given a booking and its cancellation, both queued
    appointment = book(at("09:00"))
    appointment_cancel(
        actor=frontdesk, appointment=appointment, cancelled_by="clinic", reason="doctor ill"
    )
    out = io.StringIO()

    # when
    call_command("announce_changes", stdout=out)
    call_command("announce_changes", stdout=out)

    # then: in order, and not twice
    assert [r["change"] for r in received] == [
        AppointmentChange.BOOKED,
        AppointmentChange.CANCELLED,
    ]
    assert out.getvalue().splitlines() == [
        "2 appointment change(s) announced",
        "0 appointment change(s) announced",
    ]
    assert set(queued().values_list("status", flat=True)) == {"SUCCESSFUL"}


def test_a_failing_receiver_is_logged_and_the_others_still_run(
    book: Book,
    at: Callable[..., dt.datetime],
    received: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a receiver that fails with patient data in its message
    def broken(sender: object, **kwargs: Any) -> None:
        raise RuntimeError("Ann Example 1970-01-01")

    appointment_changed.connect(broken)
    try:
        appointment = book(at("09:00"))
        # when
        announce_queued_changes()
    finally:
        appointment_changed.disconnect(broken)

    # then
    assert [r["appointment_id"] for r in received] == [appointment.pk]
    assert f"receiver of appointment {appointment.pk} (booked) failed: RuntimeError" in caplog.text
    assert queued().get().status == "SUCCESSFUL"
