"""The booking's lean write path (scheduling.services._insert_booking, raw INSERTs sent with
the audit row) writes exactly the rows the ORM path writes (LEAN_WRITES False): the
appointment, its practitioner and resource rows, the timeline row, the announcement task and
the audit row, on SQLite and PostgreSQL, with and without a location given."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Model
from django.db.models.signals import post_save
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from audit.chain import CHAINED_FIELDS, iter_rows, verify_chain
from audit.models import AuditEvent
from core.models import Location
from patients.models import Patient
from scheduling import services
from scheduling.models import (
    Appointment,
    AppointmentEvent,
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentType,
    Practitioner,
    Resource,
)
from scheduling.services import appointment_book
from scheduling.tasks import announce_appointment_change
from scheduling.tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db

WEEK = dt.timedelta(days=7)


def _values(obj: Model, *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        f.attname: getattr(obj, f.attname)
        for f in obj._meta.concrete_fields
        if f.attname not in leave_out and not f.primary_key
    }


def _written(appointment: Appointment) -> dict[str, Any]:
    """Everything one booking wrote, read back from the database, with what must differ
    between two bookings a week apart (ids, public id, time stamps, the date) taken out."""
    saved = Appointment.objects.get(pk=appointment.pk)
    start = saved.start
    shifted = {"start", "end"}
    stamps = ("id", "public_id", "created_at", "updated_at", "start", "end")
    practitioners = [
        {**_values(row, leave_out=("appointment_id", *shifted)), "span": row.end - row.start}
        for row in AppointmentPractitioner.objects.filter(appointment=saved).order_by("id")
    ]
    resources = [
        {**_values(row, leave_out=("appointment_id", *shifted)), "span": row.end - row.start}
        for row in AppointmentResource.objects.filter(appointment=saved).order_by("id")
    ]
    when = services._when(start, saved.location)
    timeline = [
        {
            **_values(row, leave_out=("appointment_id", "at")),
            "detail": row.detail.replace(when, "…"),
        }
        for row in AppointmentEvent.objects.filter(appointment=saved).order_by("id")
    ]
    tasks = [
        {
            **_values(row, leave_out=("id", "enqueued_at")),
            "args_kwargs": {
                **row.args_kwargs,
                "args": ["appointment", *row.args_kwargs["args"][1:]],
            },
            "first_arg_is_the_appointment": row.args_kwargs["args"][0] == saved.pk,
        }
        for row in DBTaskResult.objects.filter(
            task_path=announce_appointment_change.module_path
        ).order_by("enqueued_at")
        if row.args_kwargs["args"][0] == saved.pk
    ]
    (audit,) = AuditEvent.objects.filter(object_id=str(saved.public_id))
    audit_row = {
        name: getattr(audit, "user_id" if name == "user_id" else name)
        for name in CHAINED_FIELDS
        if name not in ("sequence", "occurred_at", "prev_hash", "object_id")
    }
    return {
        "appointment": {
            **_values(saved, leave_out=stamps),
            "span": saved.end - saved.start,
            "is_saved": not appointment._state.adding,
            "same_public_id": appointment.public_id == saved.public_id,
        },
        "practitioners": practitioners,
        "resources": resources,
        "timeline": timeline,
        "tasks": tasks,
        "audit": audit_row,
    }


@pytest.mark.parametrize("location_given", [True, False])
@pytest.mark.parametrize("via", ["ui", "api"])
def test_the_lean_path_writes_the_rows_the_orm_path_writes(
    at: Callable[..., dt.datetime],
    frontdesk: User,
    patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    main_clinic: Location,
    monkeypatch: pytest.MonkeyPatch,
    location_given: bool,
    via: str,
) -> None:
    room: Resource = ResourceFactory(location=main_clinic, name="Room 1", capacity=1)
    shared: Resource = ResourceFactory(location=main_clinic, name="Lab", kind="lab", capacity=2)

    def book() -> Appointment:
        return appointment_book(
            actor=frontdesk,
            patient=patient,
            appointment_type=follow_up,
            practitioners=[ana],
            resources=[room, shared],
            start=at("09:00") + WEEK * (0 if services.LEAN_WRITES else 1),
            location=main_clinic if location_given else None,
            reason="Follow-up of  the results",
            via=via,
        )

    def orm_save_refused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the lean path does not go through Model.save")

    with monkeypatch.context() as patched:
        patched.setattr(Appointment, "save", orm_save_refused)
        lean = book()
    monkeypatch.setattr(services, "LEAN_WRITES", False)
    orm = book()

    assert _written(lean) == _written(orm)
    assert _written(lean)["tasks"]  # one announcement each, compared above
    assert verify_chain(iter_rows()).intact


def test_the_lean_path_is_left_when_something_listens_to_the_saves(
    book: Callable[..., Appointment], at: Callable[..., dt.datetime]
) -> None:
    saved: list[Model] = []

    def receiver(sender: type[Model], instance: Model, created: bool, **kwargs: Any) -> None:
        saved.append(instance)

    post_save.connect(receiver, sender=Appointment)
    try:
        appointment = book(at("09:00"))
    finally:
        post_save.disconnect(receiver, sender=Appointment)
    assert saved == [appointment]


def test_the_lean_path_books_back_to_back_and_refuses_a_clash(
    book: Callable[..., Appointment], at: Callable[..., dt.datetime], other_patient: Patient
) -> None:
    first = book(at("09:00"))
    second = book(at("09:30"))
    assert (first.end, second.start) == (at("09:30"), at("09:30"))
    with pytest.raises(services.BookingConflict) as clash:
        book(at("09:00"), patient=other_patient)
    assert [c.kind for c in clash.value.conflicts] == ["practitioner"]
    assert Appointment.objects.count() == 2
