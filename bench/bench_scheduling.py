#!/usr/bin/env python
"""Scheduling benchmarks: the slot finder, the day view and booking throughput.

`run(database, quick)` works in the (fresh, migrated) database the caller configured: it seeds
its own data with bulk_create, then measures

- the slot finder: the first 10 open slots for a 30-minute type across 50 practitioners over
  90 days, with 200,000 booked appointments in the database (target p95 <= 50 ms);
- the day view of a 30-practitioner location with 600 appointments: the selector's time and
  its query count (target p95 <= 50 ms, a fixed number of queries);
- booking throughput through scheduling.services.appointment_book, every check and the audit
  row on, one transaction per booking (target >= 500 appointments/s on PostgreSQL).

The schedule it seeds: 50 practitioners working weekdays 08:00-17:00 (18 half-hour visits a
day), 200,000 appointments from about ten months back to 90 days ahead, the next two weeks 95 %
full, the weeks after filling less the further out they are (80 % down to 35 %), the past 85 %.

Standalone: `python bench/bench_scheduling.py --database sqlite|postgresql [--quick]` (for
PostgreSQL inside scripts/with_postgres.sh) creates and drops its own database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import random
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Section, Target, percentile, say, summarize_ms

FULL = {"appointments": 200_000, "searches": 300, "day_views": 100, "bookings": 2000}
QUICK = {"appointments": 20_000, "searches": 40, "day_views": 20, "bookings": 200}
PRACTITIONERS = 50
DAY_VIEW_PRACTITIONERS = 30
DAY_VIEW_APPOINTMENTS = 600
SLOTS_PER_DAY = 18  # 08:00-17:00 in 30-minute visits
TIME_ZONE = "America/New_York"
TARGET_SLOT_P95_MS = 50.0
TARGET_DAY_P95_MS = 50.0
TARGET_BOOKINGS_PER_SECOND = 500.0
SEED = 20_261_122


def _fill_rate(offset_days: int) -> float:
    """Share of a day's visits already booked, by how far the day is from today."""
    if offset_days < 0:
        return 0.85
    if offset_days < 14:
        return 0.95
    return max(0.35, 0.80 - 0.45 * (offset_days - 14) / 76)


def _npi(n: int) -> str:
    from scheduling.validators import make_npi

    return make_npi(f"{176_000_000 + n:09d}")


def _patients(location: Any, count: int, offset: int) -> list[Any]:
    """`count` patients numbered from `offset` (MRNs 90,000,000 + n: clear of the counter's)."""
    from core.text import fold
    from patients.models import Patient
    from patients.mrn import make_mrn

    rows = [
        Patient(
            mrn=make_mrn(90_000_000 + offset + n),
            home_location=location,
            family_name=f"Benchmark{offset + n}",
            given_name="Pat",
            family_fold=fold(f"Benchmark{offset + n}"),
            given_fold="pat",
            birth_date=dt.date(1950, 1, 1) + dt.timedelta(days=(offset + n) % 20_000),
            sex_at_birth="F" if n % 2 else "M",
        )
        for n in range(count)
    ]
    return Patient.objects.bulk_create(rows, batch_size=2000)


def _location(code: str, name: str) -> Any:
    from core.models import Location
    from scheduling.models import OpeningHours

    location, _ = Location.objects.get_or_create(
        code=code, defaults={"name": name, "time_zone": TIME_ZONE}
    )
    OpeningHours.objects.bulk_create(
        [
            OpeningHours(location=location, weekday=day, opens=dt.time(7), closes=dt.time(19))
            for day in range(5)
        ]
    )
    return location


def _practitioners(location: Any, count: int, offset: int, today: dt.date) -> list[Any]:
    from scheduling.models import AvailabilityRule, Practitioner

    practitioners = Practitioner.objects.bulk_create(
        [
            Practitioner(
                given_name=f"Bench{offset + n}",
                family_name=f"Practitioner{offset + n:03d}",
                credentials="MD",
                npi=_npi(offset + n),
                specialty="Family Medicine",
            )
            for n in range(count)
        ]
    )
    Practitioner.locations.through.objects.bulk_create(
        [
            Practitioner.locations.through(practitioner_id=p.pk, location_id=location.pk)
            for p in practitioners
        ]
    )
    AvailabilityRule.objects.bulk_create(
        [
            AvailabilityRule(
                practitioner=p,
                location=location,
                start_date=today - dt.timedelta(days=400),
                start_time=dt.time(8),
                end_time=dt.time(17),
                rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            )
            for p in practitioners
        ]
    )
    return practitioners


def _bulk_appointments(
    rows: list[tuple[Any, dt.datetime, Any]], appointment_type: Any, location: Any
) -> None:
    """(practitioner, start, patient) triples as booked (or, in the past, completed) visits."""
    from django.db import transaction
    from django.utils import timezone

    from scheduling.models import Appointment, AppointmentPractitioner, AppointmentStatus

    length = dt.timedelta(minutes=appointment_type.duration_minutes)
    now = timezone.now()
    for first in range(0, len(rows), 5000):
        batch = rows[first : first + 5000]
        with transaction.atomic():
            appointments = Appointment.objects.bulk_create(
                [
                    Appointment(
                        patient=patient,
                        appointment_type=appointment_type,
                        location=location,
                        start=start,
                        end=start + length,
                        status=AppointmentStatus.COMPLETED
                        if start < now
                        else AppointmentStatus.BOOKED,
                    )
                    for _, start, patient in batch
                ]
            )
            AppointmentPractitioner.objects.bulk_create(
                [
                    AppointmentPractitioner(
                        appointment=appointment,
                        practitioner=practitioner,
                        start=appointment.start,
                        end=appointment.end,
                    )
                    for appointment, (practitioner, _, _) in zip(appointments, batch, strict=True)
                ]
            )


def _visit_starts(day: dt.date) -> list[dt.datetime]:
    from scheduling.availability import to_utc, zone

    tz = zone(TIME_ZONE)
    return [to_utc(day, dt.time(8 + n // 2, 30 * (n % 2)), tz) for n in range(SLOTS_PER_DAY)]


def seed(appointments: int, rng: random.Random) -> dict[str, Any]:
    """The slot-finder location: 50 practitioners and `appointments` visits around today; and
    the free visits left in the coming weeks, for the booking benchmark."""
    from scheduling.models import AppointmentType

    today = dt.datetime.now(dt.UTC).date()
    location = _location("bench-slots", "Benchmark Clinic")
    practitioners = _practitioners(location, PRACTITIONERS, 0, today)
    visit, _ = AppointmentType.objects.get_or_create(
        code="bench-visit", defaults={"name": "Benchmark visit", "duration_minutes": 30}
    )
    patients = _patients(location, 2000, 0)
    # Every weekday visit from the first day needed (going back) to 90 days ahead.
    past_days = int(appointments / (PRACTITIONERS * SLOTS_PER_DAY * 0.85) * 7 / 5) + 7
    chosen: list[tuple[Any, dt.datetime, Any]] = []
    free: list[tuple[Any, dt.datetime]] = []
    for offset in range(-past_days, 91):
        day = today + dt.timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        rate = _fill_rate(offset)
        for slot, start in enumerate(_visit_starts(day)):
            for n, practitioner in enumerate(practitioners):
                if rng.random() < rate:
                    patient = patients[(offset * SLOTS_PER_DAY * 50 + slot * 50 + n) % 2000]
                    chosen.append((practitioner, start, patient))
                elif offset >= 14:
                    free.append((practitioner, start))
    # Keep exactly the number asked for: the furthest past visits go first.
    chosen.sort(key=lambda row: row[1])
    chosen = chosen[len(chosen) - appointments :] if len(chosen) > appointments else chosen
    _bulk_appointments(chosen, visit, location)
    rng.shuffle(free)
    return {
        "location": location,
        "practitioners": practitioners,
        "type": visit,
        "appointments": len(chosen),
        "free": free[:10_000],  # open visits for the booking benchmark (no two the same)
    }


def seed_day_view(rng: random.Random) -> dict[str, Any]:
    """A 30-practitioner location with 600 appointments on one day, and a user who works there."""
    from accounts.models import Role, User
    from scheduling.models import AppointmentType

    today = dt.datetime.now(dt.UTC).date()
    location = _location("bench-day", "Benchmark Day Clinic")
    practitioners = _practitioners(location, DAY_VIEW_PRACTITIONERS, 100, today)
    visit, _ = AppointmentType.objects.get_or_create(
        code="bench-visit", defaults={"name": "Benchmark visit", "duration_minutes": 30}
    )
    patients = _patients(location, DAY_VIEW_APPOINTMENTS, 10_000)
    day = today + dt.timedelta(days=7 + (2 - today.weekday()) % 7)  # a Wednesday ahead
    starts = _visit_starts(day) + [
        start + dt.timedelta(hours=9) for start in _visit_starts(day)[:2]
    ]  # 08:00-18:00: 20 visits each
    rows = [
        (practitioner, start, patients[n * len(starts) + k])
        for n, practitioner in enumerate(practitioners)
        for k, start in enumerate(starts)
    ]
    _bulk_appointments(rows[:DAY_VIEW_APPOINTMENTS], visit, location)
    user, _ = User.objects.get_or_create(username="bench-frontdesk")
    user.roles.set(Role.objects.filter(slug="patient_service_rep"))
    user.locations.set([location])
    return {"location": location, "day": day, "user": User.objects.get(pk=user.pk)}


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure_slots(data: dict[str, Any], searches: int, rng: random.Random) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from scheduling.slots import slot_find, third_next_available

    now = timezone.now()
    samples: list[float] = []
    found: list[int] = []
    for n in range(searches + 5):
        start = now + dt.timedelta(minutes=rng.randrange(0, 72 * 60))
        began = time.perf_counter()
        slots = slot_find(
            appointment_type=data["type"],
            start=start,
            end=start + dt.timedelta(days=90),
            practitioners=data["practitioners"],
            location=data["location"],
            limit=10,
        )
        elapsed = time.perf_counter() - began
        if n >= 5:  # the first calls warm caches, as a running server's would be
            samples.append(elapsed)
            found.append(len(slots))
    with CaptureQueriesContext(connection) as captured:
        slot_find(
            appointment_type=data["type"],
            start=now,
            end=now + dt.timedelta(days=90),
            practitioners=data["practitioners"],
            location=data["location"],
            limit=10,
        )
    third: list[float] = []
    for practitioner in data["practitioners"][:10]:
        began = time.perf_counter()
        third_next_available(practitioner=practitioner, appointment_type=data["type"])
        third.append(time.perf_counter() - began)
    return {
        **summarize_ms(samples),
        "slots_found_min": min(found),
        "queries": len(captured.captured_queries),
        "third_next_available_p95_ms": percentile(third, 95) * 1000,
    }


def measure_day_view(data: dict[str, Any], runs: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from scheduling.selectors import calendar_entries_for_location_day

    user, location, day = data["user"], data["location"], data["day"]
    samples: list[float] = []
    cpu: list[float] = []
    rows: list[Any] = []
    gc.collect()
    for n in range(runs + 3):
        began, began_cpu = time.perf_counter(), time.process_time()
        # everything a calendar cell shows, as the day view reads it
        rows = calendar_entries_for_location_day(user=user, location=location, day=day)
        if n >= 3:
            samples.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
    with CaptureQueriesContext(connection) as captured:
        calendar_entries_for_location_day(user=user, location=location, day=day)
    return {
        **summarize_ms(samples),
        "cpu_p50": percentile(cpu, 50) * 1000,
        "cpu_p95": percentile(cpu, 95) * 1000,
        "appointments": len(rows),
        "queries": len(captured),
    }


def _receiver_names(receivers: list[Any]) -> list[str]:
    names = []
    for entry in receivers:
        target = entry[1]() if isinstance(entry[1], weakref.ref) else entry[1]
        names.append(f"{target.__module__}.{target.__qualname__}" if target else "?")
    return names


def _book_share(user_id: int, type_id: int, location_id: int, share: list[Any]) -> int:
    """Book `share` ((practitioner id, start, patient id) triples) one appointment per call
    through appointment_book, as one front-desk worker; returns the conflicts met."""
    from accounts.models import User
    from core.models import Location
    from patients.models import Patient
    from scheduling.models import AppointmentType, Practitioner
    from scheduling.services import BookingConflict, appointment_book

    user = User.objects.get(pk=user_id)
    assert user.capability_set  # read once, as a request does
    assert user.location_ids
    assert user.role_slugs
    visit = AppointmentType.objects.prefetch_related("allowed_practitioners").get(pk=type_id)
    location = Location.objects.get(pk=location_id)
    practitioners = Practitioner.objects.in_bulk({pid for pid, _, _ in share})
    patients = Patient.objects.in_bulk([patient_id for _, _, patient_id in share])
    lost = 0
    for practitioner_id, start, patient_id in share:
        try:
            appointment_book(
                actor=user,
                patient=patients[patient_id],
                appointment_type=visit,
                start=start,
                practitioners=[practitioners[practitioner_id]],
                location=location,
                via="api",
            )
        except BookingConflict:
            lost += 1
    return lost


def _process_worker(args: tuple[int, int, int, list[Any]], results: Any) -> None:
    from django.db import connections

    try:
        results.put(_book_share(*args))
    finally:
        connections.close_all()


def measure_booking(
    data: dict[str, Any], count: int, *, workers: int = 1, processes: bool = False
) -> dict[str, Any]:
    """Book `count` open visits, one appointment_book call (one transaction) each, from
    `workers` front-desk workers: threads of this process, each with its own database
    connection, or (`processes`) forked processes, as several server workers would. Every check
    and the audit row are on; each booking queues its announcement (scheduling.tasks), which
    a background worker sends to the other apps' receivers (see measure_announcements)."""
    import multiprocessing

    from django.db import connections

    from accounts.models import User
    from scheduling.events import appointment_changed

    user = User.objects.get(username="bench-frontdesk")
    user.locations.add(data["location"])
    todo, data["free"] = data["free"][:count], data["free"][count:]
    first = data.get("booked_patients", 0)
    data["booked_patients"] = first + len(todo)
    patients = _patients(data["location"], len(todo), 20_000 + first)
    jobs = [
        (practitioner.pk, start, patient.pk)
        for (practitioner, start), patient in zip(todo, patients, strict=True)
    ]
    shares = [jobs[n::workers] for n in range(workers)]
    base = (user.pk, data["type"].pk, data["location"].pk)
    conflicts: list[int] = []
    gc.collect()
    began, began_cpu = time.perf_counter(), time.process_time()
    if processes:
        connections.close_all()  # the children open their own
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        children = [
            context.Process(target=_process_worker, args=((*base, share), results))
            for share in shares
        ]
        for child in children:
            child.start()
        conflicts = [results.get() for _ in children]
        for child in children:
            child.join()
    elif workers == 1:
        conflicts.append(_book_share(*base, jobs))
    else:

        def work(share: list[Any]) -> None:
            try:
                conflicts.append(_book_share(*base, share))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work, args=(share,)) for share in shares]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - began_cpu
    return {
        "workers": workers,
        "kind": "processes" if processes else ("threads" if workers > 1 else "one process"),
        "receivers": _receiver_names(list(appointment_changed.receivers)),
        "bookings": len(todo),
        "conflicts": sum(conflicts),
        "seconds": elapsed,
        "per_second": len(todo) / elapsed,
        # CPU of this process only (the children's is not counted with processes)
        "cpu_ms_per_booking": cpu / len(todo) * 1000,
    }


def measure_announcements() -> dict[str, Any]:
    """Run the announcements the bookings queued, as the background worker does (the other
    apps' receivers: reminder planning, HL7 SIU queueing), and time them."""
    from scheduling.tasks import announce_queued_changes

    gc.collect()
    began, began_cpu = time.perf_counter(), time.process_time()
    done = announce_queued_changes()
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - began_cpu
    return {
        "announcements": done,
        "seconds": elapsed,
        "per_second": done / elapsed if elapsed else 0.0,
        "cpu_ms_each": cpu / done * 1000 if done else 0.0,
    }


def run(database: str, quick: bool) -> dict[str, Any]:
    """Seed, measure and return the figures (the database is the caller's, already migrated)."""
    sizes = QUICK if quick else FULL
    rng = random.Random(SEED)
    say(
        f"scheduling: seeding {sizes['appointments']:,} appointments, "
        f"{PRACTITIONERS} practitioners ..."
    )
    began = time.perf_counter()
    data = seed(sizes["appointments"], rng)
    day = seed_day_view(rng)
    _analyze()
    seed_seconds = time.perf_counter() - began
    say(f"scheduling: seeded in {seed_seconds:.1f} s")
    gc.collect()
    slots = measure_slots(data, sizes["searches"], rng)
    say(
        f"slot finder: p50 {slots['p50']:.1f} ms, p95 {slots['p95']:.1f} ms over "
        f"{slots['n']} searches ({slots['queries']} queries each)"
    )
    day_view = measure_day_view(day, sizes["day_views"])
    say(
        f"day view: {day_view['appointments']} appointments, p50 {day_view['p50']:.1f} ms, "
        f"p95 {day_view['p95']:.1f} ms (CPU p50 {day_view['cpu_p50']:.1f} ms), "
        f"{day_view['queries']} queries"
    )
    booking = measure_booking(data, sizes["bookings"])
    say(
        f"booking: {booking['bookings']} in {booking['seconds']:.2f} s = "
        f"{booking['per_second']:.0f}/s ({booking['conflicts']} conflicts, "
        f"{booking['cpu_ms_per_booking']:.2f} ms CPU each)"
    )
    announcements = measure_announcements()
    say(
        f"background announcements of those bookings: {announcements['per_second']:.0f}/s "
        f"({announcements['cpu_ms_each']:.2f} ms CPU each)"
    )
    parallel = measure_booking(data, sizes["bookings"], workers=4)
    say(f"booking from 4 threads: {parallel['per_second']:.0f}/s")
    processes = measure_booking(data, sizes["bookings"], workers=2, processes=True)
    say(f"booking from 2 processes: {processes['per_second']:.0f}/s")
    # docs/deploy.md runs gunicorn with 4 sync workers on a machine like this one (2-4 per
    # core): the booking throughput of the system as deployed.
    deployed = measure_booking(data, sizes["bookings"], workers=4, processes=True)
    say(f"booking from 4 processes (as deployed): {deployed['per_second']:.0f}/s")
    measure_announcements()  # the queue left empty, as a running worker keeps it
    return {
        "database": database,
        "quick": quick,
        "seed_seconds": seed_seconds,
        "appointments_seeded": data["appointments"],
        "practitioners": PRACTITIONERS,
        "slot_finder": slots,
        "day_view": day_view,
        "booking": booking,
        "announcements": announcements,
        "booking_parallel": parallel,
        "booking_processes": processes,
        "booking_deployed": deployed,
    }


def section(figures: dict[str, Any], full: bool) -> Section:
    """The figures as a bench.common.Section (targets and Markdown for docs/performance.md)."""
    slots, day, booking = figures["slot_finder"], figures["day_view"], figures["booking"]
    postgres = figures["database"] == "postgresql"
    best = max(
        (
            figures.get(key) or booking
            for key in ("booking_parallel", "booking_processes", "booking_deployed")
        ),
        key=lambda run: run["per_second"],
    )
    result = Section("Scheduling")
    result.targets += [
        Target(
            "slot finder p95 (first 10 slots, 50 practitioners, 90 days)",
            f"<= {TARGET_SLOT_P95_MS:.0f} ms",
            f"{slots['p95']:.1f} ms",
            slots["p95"] <= TARGET_SLOT_P95_MS if full else None,
        ),
        Target(
            "day view p95 (30 practitioners, 600 appointments)",
            f"<= {TARGET_DAY_P95_MS:.0f} ms, fixed queries",
            f"{day['p95']:.1f} ms, {day['queries']} queries",
            day["p95"] <= TARGET_DAY_P95_MS if full else None,
        ),
        Target(
            "booking through appointment_book",
            f">= {TARGET_BOOKINGS_PER_SECOND:.0f}/s (PostgreSQL)",
            f"{best['per_second']:.0f}/s from {best['workers']} {best['kind']}; "
            f"{booking['per_second']:.0f}/s from one",
            (best["per_second"] >= TARGET_BOOKINGS_PER_SECOND if postgres else None)
            if full
            else None,
        ),
    ]
    result.lines += [
        f"{figures['appointments_seeded']:,} appointments for {figures['practitioners']} "
        "practitioners working weekdays 08:00-17:00 (half-hour visits), from about ten months "
        "back to 90 days ahead: the past 85 % full, the next two weeks 95 %, then 80 % falling "
        f"to 35 % at 90 days; seeded with bulk_create in {figures['seed_seconds']:.0f} s.",
        "",
        f"- Slot finder (`scheduling.slots.slot_find`, first 10 open 30-minute slots across the "
        f"50 practitioners over 90 days, starting at random times in the next 72 hours): "
        f"p50 {slots['p50']:.1f} ms, **p95 {slots['p95']:.1f} ms**, max {slots['max']:.1f} ms "
        f"over {slots['n']} searches; {slots['queries']} queries per search. "
        f"`third_next_available`: p95 {slots['third_next_available_p95_ms']:.1f} ms.",
        f"- Day view's read (`scheduling.selectors.calendar_entries_for_location_day`: "
        f"everything a calendar cell shows, {day['appointments']} appointments of "
        f"{DAY_VIEW_PRACTITIONERS} practitioners): p50 {day['p50']:.1f} ms, "
        f"**p95 {day['p95']:.1f} ms**, {day['queries']} queries (fixed: asserted in "
        "scheduling/tests/test_selectors.py for 5 and 50 appointments, and for the page "
        "in scheduling/tests/test_views_calendar.py).",
        f"- Booking (`scheduling.services.appointment_book`, one call and one transaction per "
        f"appointment with the availability, opening-hours, exception, practitioner, resource "
        f"and patient checks, the timeline row, the audit row and the queued announcement): "
        f"{booking['bookings']} bookings in {booking['seconds']:.2f} s, "
        f"**{booking['per_second']:.0f} appointments/s** from one worker "
        f"({booking['cpu_ms_per_booking']:.2f} ms CPU per booking in it).",
    ]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scheduling benchmarks on a fresh database.")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PATIENTDESK_TESTING", "1")
    from bench.common import fresh_database

    with fresh_database(args.database) as where:
        import django

        django.setup()
        from django.core.management import call_command

        say(f"bench: {args.database} database {where}")
        call_command("migrate", verbosity=0)
        figures = run(args.database, args.quick)
    for target in section(figures, full=not args.quick).targets:
        say(f"{target.verdict:<4}  {target.name}: {target.measured}  (target {target.goal})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
