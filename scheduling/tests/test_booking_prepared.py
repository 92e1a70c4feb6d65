"""The booking's reads as server-side prepared statements (scheduling.prepared, PostgreSQL on a
connection that allows them): the same rows and the same conflicts as through Django's cursor,
a clear conflict after preparation (found by the overlap query, or by the exclusion constraint
when a race is lost), on a connection reused across bookings, rollbacks and DDL. On SQLite, and
where prepared statements are not allowed (Django's default, for connection poolers), the
booking takes Django's cursor and books all the same."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, connections
from django.db.backends.signals import connection_created
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from core.models import Location
from patients.models import Patient
from patients.tests.factories import PatientFactory
from scheduling import prepared, services
from scheduling.models import (
    Appointment,
    AppointmentPractitioner,
    AppointmentType,
    Practitioner,
    Resource,
)
from scheduling.services import BookingConflict, appointment_book
from scheduling.tests.factories import ResourceFactory
from scheduling.tests.test_booking_writes import _written

WEEK = dt.timedelta(days=7)
POSTGRESQL = connection.vendor == "postgresql"


def _allow(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "postgresql":
        connection.connection.prepare_threshold = 5


@pytest.fixture
def allowed(db: None) -> Iterator[bool]:
    """Prepared statements allowed on this thread's connection and on every new one (as the
    database's OPTIONS `prepare_threshold` does); whether the booking can use them here."""
    connection_created.connect(_allow)
    raw, before = None, None
    if POSTGRESQL:
        connection.ensure_connection()
        raw = connection.connection
        raw.prepare_threshold, before = 5, raw.prepare_threshold
    try:
        yield prepared.available()
    finally:
        connection_created.disconnect(_allow)
        if raw is not None:
            raw.prepare_threshold = before  # as the settings opened it


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many statements each call of prepared.run sent."""
    calls: list[int] = []
    original = prepared.run

    def counting(statements: Any) -> Any:
        calls.append(len(statements))
        return original(statements)

    monkeypatch.setattr(prepared, "run", counting)
    return calls


def _prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


def _clash(book: Callable[[], Appointment]) -> list[tuple[Any, ...]]:
    with pytest.raises(BookingConflict) as refused:
        book()
    return [(c.kind, c.label, c.start, c.end, c.object_id) for c in refused.value.conflicts]


@pytest.mark.django_db
def test_the_prepared_statements_are_used_only_where_allowed(
    allowed: bool,
    runs: list[int],
    book: Callable[..., Appointment],
    at: Callable[..., dt.datetime],
    main_clinic: Location,
) -> None:
    assert allowed is POSTGRESQL
    book(at("09:00"))  # no location: found first, then the reads go through Django's cursor
    assert runs == []
    book(at("10:00"), location=main_clinic)
    assert runs == ([2] if POSTGRESQL else [])  # the patient's lock; the overlap query


@pytest.mark.django_db
@pytest.mark.parametrize("with_resources", [False, True])
def test_the_prepared_reads_book_the_rows_the_unprepared_reads_book(
    allowed: bool,
    runs: list[int],
    at: Callable[..., dt.datetime],
    frontdesk: User,
    patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    main_clinic: Location,
    monkeypatch: pytest.MonkeyPatch,
    with_resources: bool,
) -> None:
    room: Resource = ResourceFactory(location=main_clinic, name="Room 1", capacity=1)
    lab: Resource = ResourceFactory(location=main_clinic, name="Lab", kind="lab", capacity=2)

    def book(week: int) -> Appointment:
        return appointment_book(
            actor=frontdesk,
            patient=patient,
            appointment_type=follow_up,
            practitioners=[ana],
            resources=[room, lab] if with_resources else None,
            start=at("09:00") + WEEK * week,
            location=main_clinic,
            reason="Follow-up",
            via="api",
        )

    fast = [book(0), book(1)]  # the second one with the statements prepared
    assert runs == (([3, 3] if with_resources else [2, 2]) if allowed else [])
    monkeypatch.setattr(prepared, "ENABLED", False)
    slow = [book(2), book(3)]
    assert len(runs) == (2 if allowed else 0)  # the unprepared path did not use them
    assert [_written(a) for a in fast] == [_written(a) for a in slow]
    assert [a.pk for a in fast] == sorted(a.pk for a in fast)  # ids from the sequence


@pytest.mark.django_db
def test_a_clash_after_preparation_names_the_same_conflicts(
    allowed: bool,
    runs: list[int],
    at: Callable[..., dt.datetime],
    frontdesk: User,
    patient: Patient,
    other_patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    ben: Practitioner,
    main_clinic: Location,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    room: Resource = ResourceFactory(location=main_clinic, name="Room 1", capacity=1)

    def book(who: Patient, practitioner: Practitioner, hhmm: str, **more: Any) -> Appointment:
        return appointment_book(
            actor=frontdesk,
            patient=who,
            appointment_type=follow_up,
            practitioners=[practitioner],
            start=at(hhmm),
            location=main_clinic,
            **more,
        )

    # given: Ana booked with the room at 09:00 for the patient, and six more bookings (past
    # PostgreSQL's five custom plans) with the statements prepared
    book(patient, ana, "09:00", resources=[room])
    for n in range(6):
        book(PatientFactory(home_location=main_clinic), ben, f"{10 + n}:00")
    # when: the other patient wants Ana and the room at 09:15, the patient Ben at 09:15
    prepared_clash = [
        _clash(lambda: book(other_patient, ana, "09:15", resources=[room])),
        _clash(lambda: book(patient, ben, "09:15")),
    ]
    after_rollbacks = book(other_patient, ana, "11:00")  # the connection still books
    monkeypatch.setattr(prepared, "ENABLED", False)
    unprepared_clash = [
        _clash(lambda: book(other_patient, ana, "09:15", resources=[room])),
        _clash(lambda: book(patient, ben, "09:15")),
    ]
    # then
    assert prepared_clash == unprepared_clash
    assert [kind for kind, *_ in prepared_clash[0]] == ["practitioner", "resource"]
    assert [kind for kind, *_ in prepared_clash[1]] == ["patient"]
    assert after_rollbacks.start == at("11:00")
    assert len(runs) == (10 if allowed else 0)


@pytest.mark.django_db
def test_a_lost_race_after_preparation_answers_the_conflict_the_constraint_found(
    allowed: bool,
    book: Callable[..., Appointment],
    at: Callable[..., dt.datetime],
    other_patient: Patient,
    main_clinic: Location,
    ana: Practitioner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = book(at("09:00"), location=main_clinic)
    book(at("10:00"), location=main_clinic)
    # the overlap query misses Ana's 09:00 (as when the other booking commits just after it
    # ran): on PostgreSQL the exclusion constraint refuses the rows
    monkeypatch.setattr(services, "_busy_from_rows", lambda rows: services._Busy({}, {}, []))
    if POSTGRESQL:
        clash = _clash(lambda: book(at("09:15"), patient=other_patient, location=main_clinic))
        assert clash == [
            ("practitioner", "Ana Núñez, NP", first.start, first.end, str(ana.public_id))
        ]
    monkeypatch.undo()
    assert book(at("11:00"), location=main_clinic).start == at("11:00")


@pytest.mark.django_db
def test_queries_are_listed_and_execute_wrappers_see_every_statement(
    allowed: bool,
    runs: list[int],
    book: Callable[..., Appointment],
    at: Callable[..., dt.datetime],
    main_clinic: Location,
) -> None:
    with CaptureQueriesContext(connection) as captured:
        book(at("09:00"), location=main_clinic)
    texts = [query["sql"] for query in captured.captured_queries]
    assert any("UNION ALL" in text for text in texts)  # the overlap query, listed
    assert len(runs) == (1 if allowed else 0)
    seen: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        assert prepared.available() is False  # the wrapper must see what runs
        book(at("10:00"), location=main_clinic)
    assert any("UNION ALL" in text for text in seen)
    assert len(runs) == (1 if allowed else 0)


@pytest.mark.django_db
def test_without_permission_to_prepare_the_booking_takes_djangos_cursor(
    runs: list[int],
    book: Callable[..., Appointment],
    at: Callable[..., dt.datetime],
    main_clinic: Location,
) -> None:
    # prepare_threshold None: Django's default, and the setting behind PgBouncer in
    # transaction mode
    before = None
    if POSTGRESQL:
        connection.ensure_connection()
        connection.connection.prepare_threshold, before = (
            None,
            connection.connection.prepare_threshold,
        )
    try:
        assert prepared.available() is False
        assert book(at("09:00"), location=main_clinic).start == at("09:00")
    finally:
        if POSTGRESQL:
            connection.connection.prepare_threshold = before
    assert runs == []


def test_ints_go_as_int8_so_each_statement_is_prepared_once() -> None:
    # psycopg would send 1 as int2 and 2**40 as int8: two prepared statements for one text
    typed = prepared._typed([1, 2**40, True, [3, 4], "x", None])
    assert [type(value).__name__ for value in typed] == [
        "Int8",
        "Int8",
        "bool",
        "list",
        "str",
        "NoneType",
    ]
    assert [type(item).__name__ for item in typed[3]] == ["Int8", "Int8"]
    assert typed == [1, 2**40, True, [3, 4], "x", None]


# ---- real transactions: commits, rollbacks, other connections --------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_prepared_statements_survive_rollbacks_and_ddl_on_a_reused_connection(
    allowed: bool,
    book: Callable[..., Appointment],
    at: Callable[..., dt.datetime],
    other_patient: Patient,
    main_clinic: Location,
) -> None:
    book(at("09:00"), location=main_clinic)
    book(at("10:00"), location=main_clinic)
    if POSTGRESQL:
        assert any("UNION ALL" in text for text in _prepared_names())
    # a clash rolls the whole transaction back (psycopg then deallocates its statements)
    with pytest.raises(BookingConflict):
        book(at("09:15"), patient=other_patient, location=main_clinic)
    if POSTGRESQL:
        assert not any("UNION ALL" in text for text in _prepared_names())
    book(at("11:00"), location=main_clinic)
    if POSTGRESQL:
        assert any("UNION ALL" in text for text in _prepared_names())  # prepared again
        # DDL from another connection (a migration while the server runs): a new column on a
        # table the statements read, and a new type for a column they return
        length = AppointmentType._meta.get_field("name").max_length
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("ALTER TABLE scheduling_appointment ADD COLUMN probe integer")
                cursor.execute("ALTER TABLE scheduling_appointmenttype ALTER name TYPE text")
            assert book(at("12:00"), location=main_clinic).start == at("12:00")
            with pytest.raises(BookingConflict) as refused:
                book(at("12:15"), patient=other_patient, location=main_clinic)
            assert [c.kind for c in refused.value.conflicts] == ["practitioner"]
        finally:
            with other.cursor() as cursor:
                cursor.execute("ALTER TABLE scheduling_appointment DROP COLUMN probe")
                cursor.execute(
                    f"ALTER TABLE scheduling_appointmenttype ALTER name TYPE varchar({length})"
                )
            other.close()
    assert Appointment.objects.filter(status="booked").count() == (4 if POSTGRESQL else 3)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_bookings_of_one_slot_after_preparation_book_exactly_one(
    allowed: bool,
    shared_database: None,
    frontdesk: User,
    follow_up: AppointmentType,
    ana: Practitioner,
    ben: Practitioner,
    at: Callable[..., dt.datetime],
    main_clinic: Location,
) -> None:
    # given: fifty front desks, each with its own connection and the statements prepared on it
    # by six earlier bookings (with Ben, on other days)
    patients = [PatientFactory(home_location=main_clinic) for _ in range(50)]
    barrier = threading.Barrier(len(patients))
    results: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def attempt(n: int, patient: Patient) -> None:
        try:
            for k in range(6):
                slot = 50 * k + n  # 300 different half-hours on Ben's Tuesdays to Fridays
                day, half_hour = 1 + slot // 18 % 4, slot % 18
                start = (
                    at("08:00", days=day)
                    + WEEK * (slot // 72)
                    + half_hour * dt.timedelta(minutes=30)
                )
                appointment_book(
                    actor=frontdesk,
                    patient=patient,
                    appointment_type=follow_up,
                    practitioners=[ben],
                    start=start,
                    location=main_clinic,
                )
            barrier.wait(timeout=120)
            outcome: tuple[str, Any] = (
                "booked",
                appointment_book(
                    actor=frontdesk,
                    patient=patient,
                    appointment_type=follow_up,
                    practitioners=[ana],
                    start=at("09:00"),
                    location=main_clinic,
                    via="api",
                ),
            )
        except BookingConflict as exc:
            outcome = ("conflict", exc)
        except Exception as exc:  # any other error is what the test looks for
            outcome = ("error", repr(exc))
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    threads = [
        threading.Thread(target=attempt, args=(n, patient)) for n, patient in enumerate(patients)
    ]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    # then
    assert not any(thread.is_alive() for thread in threads)
    assert [detail for outcome, detail in results if outcome == "error"] == []
    assert Counter(outcome for outcome, _ in results) == {"booked": 1, "conflict": 49}
    for outcome, detail in results:
        if outcome == "conflict":
            assert [(c.kind, c.label) for c in detail.conflicts] == [
                ("practitioner", "Ana Núñez, NP")
            ]
    assert AppointmentPractitioner.objects.filter(practitioner=ana, blocks=True).count() == 1
    assert AppointmentPractitioner.objects.filter(practitioner=ben).count() == 300
