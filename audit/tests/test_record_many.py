"""record_many: several events appended at once keep the chain that record() builds."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.chain import iter_rows, verify_chain
from audit.models import Action, AuditEvent, Category
from audit.services import record, record_many
from audit.tests.conftest import add_events

pytestmark = pytest.mark.django_db


def event(number: int) -> dict[str, object]:
    return {
        "actor": None,
        "username": "importer",
        "action": Action.CREATE,
        "event": "patient.import",
        "category": Category.DEMOGRAPHICS,
        "object_id": f"row {number}",
        "fields": ["family_name", "birth_date"],
    }


def test_events_are_appended_in_order_after_the_existing_chain() -> None:
    # given
    add_events(3)

    # when
    created = record_many(event(n) for n in range(4))

    # then
    assert [e.sequence for e in created] == [4, 5, 6, 7]
    stored = list(AuditEvent.objects.filter(sequence__gte=4).order_by("sequence"))
    assert [e.object_id for e in stored] == ["row 0", "row 1", "row 2", "row 3"]
    assert stored[0].prev_hash == AuditEvent.objects.get(sequence=3).hmac
    assert [e.prev_hash for e in stored[1:]] == [e.hmac for e in stored[:-1]]


def test_the_chain_verifies_across_single_and_batched_appends() -> None:
    add_events(2)
    record_many(event(n) for n in range(3))
    add_events(1)
    record_many([event(9)])

    result = verify_chain(iter_rows())

    assert result.intact
    assert result.count == 7


def test_fields_are_stored_as_sorted_names() -> None:
    [created] = record_many([event(1) | {"fields": ["phone_mobile", "birth_date", "birth_date"]}])

    assert AuditEvent.objects.get(pk=created.pk).fields == ["birth_date", "phone_mobile"]


def test_nothing_is_written_for_no_events() -> None:
    assert record_many([]) == []
    assert not AuditEvent.objects.exists()


@transaction.atomic
def change_that_fails() -> None:
    record_many(event(n) for n in range(2))
    record(**event(3))
    raise RuntimeError("the change failed")


def test_events_roll_back_with_the_change_they_describe() -> None:
    # given a transaction that records events, then fails
    add_events(1)
    with pytest.raises(RuntimeError):
        change_that_fails()

    # then none of its events remain, and the chain goes on from the last kept row
    assert AuditEvent.objects.count() == 1
    [next_event] = record_many([event(4)])
    assert next_event.sequence == 2
    assert verify_chain(iter_rows()).intact
