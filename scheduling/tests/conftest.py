"""Fixtures for the scheduling tests: Main Street Clinic (New York time) open weekdays 08:00-18:00,
Ana Núñez NP and Ben Okafor MD working there weekdays 08:00-17:00, a 30-minute follow-up visit,
a patient, and `at(day, "09:00")` for local times on a Monday two to three weeks ahead."""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from accounts.models import User
from core.models import Location
from patients.models import Patient
from patients.tests.factories import PatientFactory
from scheduling.availability import zone
from scheduling.models import AppointmentType, Practitioner
from scheduling.services import appointment_book
from scheduling.tests.announcing import committed  # noqa: F401  (a fixture)
from scheduling.tests.factories import (
    AppointmentTypeFactory,
    AvailabilityRuleFactory,
    OpeningHoursFactory,
    PractitionerFactory,
)

NEW_YORK = "America/New_York"


def local(day: dt.date, hhmm: str, time_zone: str = NEW_YORK) -> dt.datetime:
    """An aware datetime: `hhmm` wall-clock time on `day` in `time_zone`."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hours, minutes), tzinfo=zone(time_zone))


def next_dst_change(time_zone: str = NEW_YORK) -> dt.date:
    """The first date ahead on which the zone's UTC offset at noon differs from the day before."""
    tz = zone(time_zone)
    day = dt.datetime.now(tz=tz).date() + dt.timedelta(days=1)
    while True:
        before = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), tzinfo=tz)
        after = dt.datetime.combine(day, dt.time(12), tzinfo=tz)
        if before.utcoffset() != after.utcoffset():
            return day
        day += dt.timedelta(days=1)


@pytest.fixture
def monday() -> dt.date:
    """A Monday 14 to 20 days from today (so never in the past, whatever today is)."""
    today = dt.datetime.now(tz=zone(NEW_YORK)).date()
    return today + dt.timedelta(days=14 + (7 - today.weekday()) % 7)


@pytest.fixture
def at(monday: dt.date) -> Callable[..., dt.datetime]:
    """at("09:00") is Monday 09:00 at the clinic; at("09:00", days=1) is Tuesday."""

    def make(hhmm: str, days: int = 0) -> dt.datetime:
        return local(monday + dt.timedelta(days=days), hhmm)

    return make


@pytest.fixture
def opening_hours(main_clinic: Location) -> None:
    for weekday in range(5):
        OpeningHoursFactory(
            location=main_clinic, weekday=weekday, opens=dt.time(8), closes=dt.time(18)
        )


@pytest.fixture
def ana(main_clinic: Location, opening_hours: None) -> Practitioner:
    practitioner = PractitionerFactory(
        given_name="Ana", family_name="Núñez", credentials="NP", locations=[main_clinic]
    )
    AvailabilityRuleFactory(practitioner=practitioner, location=main_clinic)
    return practitioner


@pytest.fixture
def ben(main_clinic: Location, opening_hours: None) -> Practitioner:
    practitioner = PractitionerFactory(
        given_name="Ben", family_name="Okafor", credentials="MD", locations=[main_clinic]
    )
    AvailabilityRuleFactory(practitioner=practitioner, location=main_clinic)
    return practitioner


@pytest.fixture
def follow_up(db: None) -> AppointmentType:
    return AppointmentTypeFactory(code="follow-up", name="Follow-up", duration_minutes=30)


@pytest.fixture
def patient(main_clinic: Location) -> Patient:
    return PatientFactory(home_location=main_clinic, family_name="Hoeger", given_name="Buster")


@pytest.fixture
def other_patient(main_clinic: Location) -> Patient:
    return PatientFactory(home_location=main_clinic, family_name="Kreiger", given_name="Clem")


@pytest.fixture
def book(
    frontdesk: User, patient: Patient, follow_up: AppointmentType, ana: Practitioner
) -> Callable[..., Any]:
    """book(start, **changes): appointment_book as the front desk, for the patient with Ana,
    a follow-up, unless told otherwise."""

    def make(start: dt.datetime, **changes: Any) -> Any:
        values: dict[str, Any] = {
            "actor": frontdesk,
            "patient": patient,
            "appointment_type": follow_up,
            "practitioners": [ana],
            "start": start,
        }
        values.update(changes)
        return appointment_book(**values)

    return make


# ---- a database that threads can share -------------------------------------------------------


@pytest.fixture
def shared_database(transactional_db: None) -> Iterator[None]:
    """Let every thread's own connection reach the test database.

    PostgreSQL: nothing to do (transactional tests commit for real). SQLite: the test database
    is in memory, shared between connections through SQLite's shared cache, which takes
    table locks without waiting and bypasses BEGIN IMMEDIATE's database lock; concurrent
    writers then fail instead of queueing. So for the duration of the test the 'default'
    database is switched to a file (a copy of the migrated in-memory database made with
    SQLite's backup API), with WAL and the busy timeout from the settings, as in production.
    The in-memory database is kept open meanwhile and restored afterwards, where the
    transactional test's flush then runs as usual.
    """
    settings_dict = connections.settings["default"]
    memory_name = settings_dict["NAME"]
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield  # PostgreSQL, or a test database that is a file already
        return
    keeper = sqlite3.connect(str(memory_name), uri=True, check_same_thread=False)
    with tempfile.TemporaryDirectory(prefix="patientdesk-concurrency-") as folder:
        path = Path(folder) / "test.sqlite3"
        target = sqlite3.connect(path)
        keeper.backup(target)
        target.close()
        settings_dict["NAME"] = str(path)
        connection.close()  # no longer looks in-memory, so this really closes; `keeper` holds it
        try:
            yield
        finally:
            connections.close_all()
            settings_dict["NAME"] = memory_name
            connection.ensure_connection()  # back on the in-memory database before letting go
    keeper.close()
