"""Double booking under real concurrency: many threads, each with its own database connection,
book the same slot at the same moment. Exactly one wins; every other gets a BookingConflict
naming what clashes, and nothing else goes wrong. Runs on SQLite (a file database shared by the
threads, BEGIN IMMEDIATE) and on PostgreSQL (the exclusion constraints)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from accounts.models import User
from core.models import Location
from patients.models import Patient
from patients.tests.factories import PatientFactory
from scheduling.models import (
    Appointment,
    AppointmentPractitioner,
    AppointmentType,
    Practitioner,
    Resource,
)
from scheduling.services import BookingConflict, appointment_book
from scheduling.tests.factories import AvailabilityRuleFactory, PractitionerFactory, ResourceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def race(attempts: list[Callable[[], Any]]) -> list[tuple[str, Any]]:
    """Run the callables in threads released together; (outcome, detail) per attempt."""
    barrier = threading.Barrier(len(attempts))
    results: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def run(attempt: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=60)
            outcome: tuple[str, Any] = ("booked", attempt())
        except BookingConflict as exc:
            outcome = ("conflict", exc)
        except Exception as exc:  # any other error is what the test looks for
            outcome = ("error", repr(exc))
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(attempt,)) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "an attempt never finished"
    return results


def test_fifty_concurrent_bookings_of_one_slot_book_exactly_one(
    shared_database: None,
    frontdesk: User,
    follow_up: AppointmentType,
    ana: Practitioner,
    at: Callable[..., Any],
    main_clinic: Location,
) -> None:
    # given: fifty patients, one slot, and a database every thread reaches on its own
    if connection.vendor == "sqlite":
        assert "mode=memory" not in str(connection.settings_dict["NAME"])
    patients = [PatientFactory(home_location=main_clinic) for _ in range(50)]

    def attempt(patient: Patient) -> Callable[[], Appointment]:
        return lambda: appointment_book(
            actor=frontdesk,
            patient=patient,
            appointment_type=follow_up,
            practitioners=[ana],
            start=at("09:00"),
            via="api",
        )

    # when
    results = race([attempt(patient) for patient in patients])
    # then
    outcomes = Counter(outcome for outcome, _ in results)
    errors = [detail for outcome, detail in results if outcome == "error"]
    assert errors == []
    assert outcomes == {"booked": 1, "conflict": 49}
    for outcome, detail in results:
        if outcome == "conflict":
            assert [(c.kind, c.label) for c in detail.conflicts] == [
                ("practitioner", "Ana Núñez, NP")
            ]
    assert AppointmentPractitioner.objects.filter(practitioner=ana, blocks=True).count() == 1
    assert Appointment.objects.count() == 1


def test_concurrent_bookings_of_one_room_with_different_practitioners_book_exactly_one(
    shared_database: None,
    frontdesk: User,
    follow_up: AppointmentType,
    at: Callable[..., Any],
    main_clinic: Location,
    opening_hours: None,
) -> None:
    # given: twenty practitioners who all want the only procedure room at 10:00
    room: Resource = ResourceFactory(
        location=main_clinic, name="Procedure room", kind="procedure-room"
    )
    practitioners = [PractitionerFactory(locations=[main_clinic]) for _ in range(20)]
    for practitioner in practitioners:
        AvailabilityRuleFactory(practitioner=practitioner, location=main_clinic)

    def attempt(practitioner: Practitioner) -> Callable[[], Appointment]:
        return lambda: appointment_book(
            actor=frontdesk,
            patient=PatientFactory(home_location=main_clinic),
            appointment_type=follow_up,
            practitioners=[practitioner],
            resources=[room],
            start=at("10:00"),
        )

    # when
    results = race([attempt(practitioner) for practitioner in practitioners])
    # then
    outcomes = Counter(outcome for outcome, _ in results)
    assert [detail for outcome, detail in results if outcome == "error"] == []
    assert outcomes == {"booked": 1, "conflict": 19}
    for outcome, detail in results:
        if outcome == "conflict":
            assert {(c.kind, c.label) for c in detail.conflicts} == {("resource", "Procedure room")}
