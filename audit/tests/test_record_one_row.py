"""record() writes its row without an ORM query (a cached INSERT, the saved object assembled
directly): the object it returns is the row as stored, every field, and the chain verifies; with
save-signal receivers connected it saves through the ORM, so they are still sent."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db.models import Model
from django.db.models.signals import post_save

from accounts.models import User
from audit import services
from audit.chain import iter_rows, verify_chain
from audit.models import Action, AuditEvent, Category, Outcome
from audit.services import record, record_after_writes

pytestmark = pytest.mark.django_db


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields}


@pytest.mark.parametrize("hinted", [False, True])
def test_the_returned_event_is_the_stored_row(persona: Any, hinted: bool) -> None:
    frontdesk: User = persona("frontdesk")
    if not hinted:
        services._tail_hints.clear()  # the tail is read (SQLite always; PostgreSQL the first time)
    patient_id = uuid.uuid4()
    returned = record(
        actor=frontdesk,
        action=Action.UPDATE,
        event="patient.update",
        category=Category.DEMOGRAPHICS,
        patient_public_id=patient_id,
        object_type="patients.Patient",
        object_id="42",
        outcome=Outcome.SUCCESS,
        reason="moved house",
        fields=["address_line1", "city", "address_line1"],
    )
    stored = AuditEvent.objects.get(pk=returned.pk)

    assert not returned._state.adding
    assert {**_fields(returned), "patient_public_id": str(stored.patient_public_id)} == {
        **_fields(stored),
        "patient_public_id": str(patient_id),
    }
    assert stored.fields == ["address_line1", "city"]
    assert stored.user_id == frontdesk.pk
    assert verify_chain(iter_rows()).intact


def test_record_after_writes_runs_the_writes_first() -> None:
    table = AuditEvent._meta.db_table
    before = AuditEvent.objects.count()
    event = record_after_writes(
        [(f"UPDATE {table} SET reason = reason WHERE sequence < 0", [])],  # noqa: S608
        actor=None,
        username="system",
        action=Action.READ,
        event="report.view",
        category=Category.DEMOGRAPHICS,
    )
    assert AuditEvent.objects.count() == before + 1
    assert AuditEvent.objects.get(pk=event.pk).username == "system"


def test_save_signal_receivers_are_still_sent_the_event() -> None:
    saved: list[Model] = []

    def receiver(sender: type[Model], instance: Model, created: bool, **kwargs: Any) -> None:
        saved.append(instance)

    services._tail_hints.clear()  # no hint: the path that saves through the ORM when asked to
    post_save.connect(receiver, sender=AuditEvent)
    try:
        event = record(
            actor=None,
            username="clerk",
            action=Action.READ,
            event="patient.view",
            category=Category.DEMOGRAPHICS,
        )
    finally:
        post_save.disconnect(receiver, sender=AuditEvent)
    assert saved == [event]
    assert verify_chain(iter_rows()).intact
