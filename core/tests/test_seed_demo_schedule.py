"""The demo clinic's schedule (core/demo_schedule.py) and `seed_demo --appointments N`."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Max, Min
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.models import User
from audit.models import AuditEvent
from core import demo, demo_schedule
from core.demo_schedule import START_MARGIN, Planned, _Planner, _started_values
from core.models import Location
from messaging.models import OutboundMessage
from scheduling.availability import Availability, covers, zone
from scheduling.models import (
    BLOCKING_STATUSES,
    Appointment,
    AppointmentEvent,
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentStatus,
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    ExceptionKind,
    OpeningHours,
    Practitioner,
    Resource,
    WaitlistEntry,
)
from scheduling.tests.factories import (
    AppointmentFactory,
    AppointmentTypeFactory,
    AvailabilityRuleFactory,
    PractitionerFactory,
)
from scheduling.validators import make_npi

pytestmark = pytest.mark.django_db
S = AppointmentStatus


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, "--verbosity", "0", stdout=out)
    return out.getvalue()


def clinic(patients: int) -> tuple[User, dict[str, Location]]:
    """The demo clinic with `patients` patients (bulk path: quick) and no schedule yet."""
    demo.seed_demo(patients=patients, bulk_above=0)
    locations = {loc.code: loc for loc in Location.objects.filter(code__in=demo.BOTH)}
    return User.objects.get(username=demo.LOADER_USERNAME), locations


@pytest.fixture
def month(django_capture_on_commit_callbacks: Any) -> dict[str, Any]:
    """400 patients and a short demo month (three days back, two ahead) of four of the
    practitioners (one works Saturdays, one does procedures, one works at both sites), seeded
    at `now`, with the other apps' on-commit work (reminders) done as in a real run."""
    loader, locations = clinic(400)
    keep = [make_npi(body) for body in ("150000001", "150000004", "150000009", "150000011")]
    Practitioner.objects.exclude(npi__in=keep).update(is_active=False)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        report = demo_schedule.seed_schedule(
            actor=loader, locations=locations, now=now, days_back=3, days_ahead=2
        )
    # The worker announces the queued changes (reminders are planned then).
    from scheduling.tasks import announce_queued_changes

    with django_capture_on_commit_callbacks(execute=True):
        announce_queued_changes()
    return {"now": now, "report": report, "loader": loader, "locations": locations}


def counts() -> dict[str, int]:
    return {
        "appointments": Appointment.objects.count(),
        "practitioner rows": AppointmentPractitioner.objects.count(),
        "timeline": AppointmentEvent.objects.count(),
        "rules": AvailabilityRule.objects.count(),
        "exceptions": AvailabilityException.objects.count(),
        "hours": OpeningHours.objects.count(),
        "resources": Resource.objects.count(),
        "types": AppointmentType.objects.count(),
        "waitlist": WaitlistEntry.objects.count(),
        "practitioners": Practitioner.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def overlaps(rows: Iterable[tuple[Any, dt.datetime, dt.datetime]]) -> list[tuple[Any, Any]]:
    """Pairs of rows of the same key whose [start, end) overlap."""
    by_key: dict[Any, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    for key, start, end in rows:
        by_key[key].append((start, end))
    found = []
    for key, spans in by_key.items():
        spans.sort()
        found += [(key, b) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    return found


def assert_nothing_double_booked() -> None:
    practitioners = AppointmentPractitioner.objects.filter(blocks=True, is_overbooked=False)
    rooms = AppointmentResource.objects.filter(blocks=True, exclusive=True)
    patients = Appointment.objects.filter(status__in=BLOCKING_STATUSES)
    assert overlaps(practitioners.values_list("practitioner_id", "start", "end")) == []
    assert overlaps(rooms.values_list("resource_id", "start", "end")) == []
    assert overlaps(patients.values_list("patient_id", "start", "end")) == []


# ---- set-up -----------------------------------------------------------------------------------


def test_sets_up_opening_hours_rooms_and_equipment() -> None:
    seed("--patients", "0")

    hours = {
        (h.location.code, h.weekday, f"{h.opens:%H:%M}-{h.closes:%H:%M}")
        for h in OpeningHours.objects.select_related("location")
    }
    weekdays = {(code, day, "08:00-17:00") for code in demo.BOTH for day in range(5)}
    assert hours == weekdays | {("main", 5, "09:00-12:00")}
    kinds = Counter(
        (r.location.code, r.category, r.kind) for r in Resource.objects.select_related("location")
    )
    assert kinds[("main", "room", "exam-room")] == 5
    assert kinds[("riverside", "room", "exam-room")] == 4
    for code in demo.BOTH:
        assert kinds[(code, "room", "procedure-room")] == 1
        assert kinds[(code, "equipment", "ecg")] == 1


def test_sets_up_the_five_appointment_types() -> None:
    seed("--patients", "0")

    types = {t.code: t for t in AppointmentType.objects.all()}
    minutes = {code: t.duration_minutes for code, t in types.items()}
    assert minutes == {
        "new-patient": 40,
        "follow-up": 20,
        "annual-physical": 30,
        "procedure": 60,
        "telehealth": 15,
    }
    assert types["procedure"].required_resource_kinds == ["procedure-room"]
    assert types["procedure"].buffer_minutes == 15
    assert types["new-patient"].is_new_patient
    assert types["telehealth"].is_telehealth
    assert all(t.reminder_offsets_hours == [72, 24] for t in types.values())
    assert len({t.color for t in types.values()}) == 5
    procedure_npis = set(types["procedure"].allowed_practitioners.values_list("npi", flat=True))
    assert procedure_npis == {make_npi(body) for body in demo_schedule.PROCEDURALISTS}


def test_every_demo_practitioner_has_a_weekly_template_some_with_half_days() -> None:
    seed("--patients", "0")

    rules = list(AvailabilityRule.objects.select_related("practitioner", "location"))
    assert {r.practitioner_id for r in rules} == set(
        Practitioner.objects.values_list("pk", flat=True)
    )
    hours = [
        (
            dt.datetime.combine(dt.date.min, r.end_time)
            - dt.datetime.combine(dt.date.min, r.start_time)
        )
        for r in rules
    ]
    assert min(hours) <= dt.timedelta(hours=3)  # a half-day session
    assert any("INTERVAL=2" in r.rrule for r in rules)  # every other Saturday
    shared = {r.practitioner_id for r in rules if r.location.code == "main"} & {
        r.practitioner_id for r in rules if r.location.code == "riverside"
    }
    assert len(shared) == 3
    telehealth_only = [r for r in rules if list(r.appointment_types.values_list("code", flat=True))]
    assert [list(r.appointment_types.values_list("code", flat=True)) for r in telehealth_only] == [
        ["telehealth"]
    ]
    assert AuditEvent.objects.filter(event="availability_rule.create").count() == len(rules)


def test_adds_a_holiday_at_both_sites_and_one_practitioners_leave() -> None:
    seed("--patients", "0")

    holidays = AvailabilityException.objects.filter(kind=ExceptionKind.HOLIDAY)
    assert sorted(h.location.code for h in holidays) == ["main", "riverside"]
    assert all(h.practitioner_id is None and h.start > timezone.now() for h in holidays)
    leave = AvailabilityException.objects.get(kind=ExceptionKind.LEAVE)
    assert leave.practitioner.family_name == "Whitaker"
    assert leave.end - leave.start == dt.timedelta(days=3)


# ---- the demo month ---------------------------------------------------------------------------


def test_books_what_is_ahead_through_the_services(month: dict[str, Any]) -> None:
    cutoff = month["now"] + START_MARGIN
    ahead = Appointment.objects.filter(start__gte=cutoff)

    booked_events = AuditEvent.objects.filter(event="appointment.book")
    assert ahead.exists()
    assert booked_events.count() == ahead.count() == month["report"].booked_through_services
    assert {e.object_id for e in booked_events} == {str(a.public_id) for a in ahead}
    assert all(e.username == demo.LOADER_USERNAME for e in booked_events)
    # the messaging app planned their reminders on commit
    assert OutboundMessage.objects.filter(appointment__in=ahead).exists()
    # some were confirmed or cancelled through the services too
    assert AuditEvent.objects.filter(event="appointment.confirm").count() == (
        month["report"].confirmed
    )
    assert AuditEvent.objects.filter(event="appointment.cancel").count() == (
        month["report"].cancelled
    )


def test_writes_what_has_started_in_bulk_with_one_audit_event_per_batch(
    month: dict[str, Any],
) -> None:
    started = Appointment.objects.filter(start__lt=month["now"] + START_MARGIN)

    batches = list(AuditEvent.objects.filter(event="appointment.bulk_seed"))
    assert started.count() == month["report"].written_in_bulk > 0
    assert len(batches) == 1
    assert {"patient", "start", "status", "practitioners"} <= set(batches[0].fields)
    recorded = " ".join([*batches[0].fields, batches[0].reason, batches[0].object_id])
    for appointment in started.select_related("patient"):
        assert appointment.patient.family_name not in recorded
        assert appointment.reason not in recorded
    assert AppointmentEvent.objects.filter(appointment__in=started, kind="seeded").count() == (
        started.count()
    )


def test_past_appointments_are_finished_and_cancellations_have_reasons(
    month: dict[str, Any],
) -> None:
    yesterday = month["now"] - dt.timedelta(days=1)
    past = Appointment.objects.filter(end__lt=yesterday)

    assert past.exists()
    assert set(past.values_list("status", flat=True)) <= {S.COMPLETED, S.NO_SHOW, S.CANCELLED}
    for appointment in Appointment.objects.filter(status=S.CANCELLED):
        assert appointment.cancel_reason
        assert appointment.cancelled_by in ("patient", "clinic")
        assert not AppointmentPractitioner.objects.filter(
            appointment=appointment, blocks=True
        ).exists()


def test_nothing_is_double_booked(month: dict[str, Any]) -> None:
    assert Appointment.objects.count() > 60
    assert_nothing_double_booked()


def test_every_appointment_lies_within_availability_and_opening_hours(
    month: dict[str, Any],
) -> None:
    rows = AppointmentPractitioner.objects.select_related("appointment__appointment_type")
    for row in rows:
        appointment = row.appointment
        availability = Availability(
            practitioner_ids=[row.practitioner_id],
            start=appointment.start,
            end=appointment.end,
            location_ids=[appointment.location_id],
            appointment_type=appointment.appointment_type,
        )
        free = availability.free(
            row.practitioner_id, appointment.location_id, appointment.start, appointment.end
        )
        assert covers(free, appointment.start, appointment.end), appointment


def test_procedures_hold_the_procedure_room(month: dict[str, Any]) -> None:
    procedures = Appointment.objects.filter(appointment_type__code="procedure")

    for appointment in procedures:
        rooms = AppointmentResource.objects.filter(appointment=appointment)
        assert [r.resource.kind for r in rooms] == ["procedure-room"]


def test_puts_fifteen_patients_on_the_waitlist(month: dict[str, Any]) -> None:
    entries = WaitlistEntry.objects.all()

    assert entries.count() == 15
    assert AuditEvent.objects.filter(event="waitlist.add").count() == 15
    assert all(e.latest > e.earliest > month["now"] for e in entries)


def test_running_twice_adds_nothing(month: dict[str, Any]) -> None:
    # given the counts after the first run (of the schedule here, and of the command, which
    # also adds the billing demo the first time)
    seed("--patients", "400")
    before = counts()
    # when seeding again
    report = demo_schedule.seed_schedule(
        actor=month["loader"], locations=month["locations"], days_back=3, days_ahead=2
    )
    seed("--patients", "400")
    # then nothing was added
    assert report.appointments_created == report.waitlist_created == 0
    assert counts() == before


def test_each_patient_has_at_most_two_visits_in_the_month(month: dict[str, Any]) -> None:
    visits = Counter(Appointment.objects.values_list("patient_id", flat=True))

    assert max(visits.values()) <= demo_schedule.MONTH_VISITS_PER_PATIENT


def test_books_about_seventy_percent_of_the_bookable_time() -> None:
    # given the clinic's set-up and plenty of patients (ids only: the planner writes nothing)
    seed("--patients", "0")
    locations = list(Location.objects.filter(code__in=demo.BOTH))
    practitioners = list(Practitioner.objects.order_by("pk"))
    types = {t.code: t for t in AppointmentType.objects.all()}
    planner = _Planner(
        practitioners=practitioners,
        types=types,
        rng=random.Random(7),
        patients_by_location={
            loc.pk: list(range(loc.pk * 100_000, loc.pk * 100_000 + 5000)) for loc in locations
        },
    )
    today = timezone.now().astimezone(zone("America/New_York")).date()
    start = dt.datetime.combine(today + dt.timedelta(days=20), dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=14)
    # when planning two weeks
    planned = planner.plan(start, end)
    # then the appointments (buffers included) take about 70% of the free time
    availability = Availability(
        practitioner_ids=[p.pk for p in practitioners], start=start, end=end
    )
    free = sum(
        (e - s).total_seconds()
        for p in practitioners
        for loc in availability.locations_of(p.pk)
        for s, e in availability.free(p.pk, loc, start, end)
    )
    taken = sum((p.held - p.start).total_seconds() for p in planned)
    assert 0.55 <= taken / free <= 0.8
    assert {p.type_code for p in planned} == set(types)


def test_planned_buffers_never_reach_into_existing_appointments() -> None:
    # given a practitioner working 08:00-12:00, booked every weekday at 10:00, and a type of
    # 30 minutes plus a 15-minute buffer (starts 08:00, 08:45, 09:30: whose buffer reaches 10:00)
    practitioner: Practitioner = PractitionerFactory()
    rule = AvailabilityRuleFactory(practitioner=practitioner, end_time=dt.time(12))
    visit: AppointmentType = AppointmentTypeFactory(
        code="visit", duration_minutes=30, buffer_minutes=15
    )
    today = timezone.now().astimezone(zone("America/New_York")).date()
    days = [today + dt.timedelta(days=n) for n in range(30, 44)]
    existing = [
        AppointmentFactory(
            appointment_type=visit,
            location=rule.location,
            start=dt.datetime.combine(day, dt.time(10), tzinfo=zone("America/New_York")),
            practitioners=[practitioner],
        )
        for day in days
        if day.weekday() < 5
    ]
    planner = _Planner(
        practitioners=[practitioner],
        types={"visit": visit},
        rng=random.Random(1),
        patients_by_location={rule.location_id: list(range(1, 1000))},
    )
    # when planning those two weeks
    start = dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC)
    planned = planner.plan(start, start + dt.timedelta(days=14))
    # then no planned appointment, buffer included, overlaps an existing one
    held = list(
        AppointmentPractitioner.objects.filter(appointment__in=existing).values_list("start", "end")
    )
    assert planned
    assert not [p for p in planned if any(s < p.held and p.start < e for s, e in held)]


def test_past_outcomes_follow_the_intended_mix() -> None:
    # given two thousand appointments that ended yesterday
    rng = random.Random(3)
    now = timezone.now()
    start = now - dt.timedelta(days=1)
    item = Planned(
        1,
        1,
        "follow-up",
        start,
        start + dt.timedelta(minutes=20),
        start + dt.timedelta(minutes=20),
        None,
        1,
    )
    # when their outcomes are drawn
    outcomes = Counter(_started_values(rng, item, now, [1])["status"] for _ in range(2000))
    # then about 7% no-shows, 10% cancellations, the rest completed
    assert 0.05 <= outcomes[S.NO_SHOW] / 2000 <= 0.09
    assert 0.08 <= outcomes[S.CANCELLED] / 2000 <= 0.12
    assert outcomes[S.COMPLETED] == 2000 - outcomes[S.NO_SHOW] - outcomes[S.CANCELLED]


@settings(max_examples=200, deadline=None)
@given(
    minutes_ago=st.integers(min_value=-4, max_value=600),
    length=st.sampled_from([15, 20, 30, 40, 60]),
    draw=st.integers(min_value=0, max_value=2**32),
)
def test_started_appointments_never_record_a_step_after_now(
    minutes_ago: int, length: int, draw: int
) -> None:
    now = dt.datetime(2030, 3, 4, 15, 0, tzinfo=dt.UTC)
    start = now - dt.timedelta(minutes=minutes_ago)
    item = Planned(
        1,
        1,
        "x",
        start,
        start + dt.timedelta(minutes=length),
        start + dt.timedelta(minutes=length),
        None,
        1,
    )

    values = _started_values(random.Random(draw), item, now, [9])

    steps = {
        "arrived_at",
        "roomed_at",
        "completed_at",
        "no_show_at",
        "cancelled_at",
        "confirmed_at",
    }
    assert all(values[name] <= now for name in steps & set(values))
    status = values["status"]
    assert ("arrived_at" in values) == (status in (S.ARRIVED, S.IN_ROOM, S.COMPLETED))
    assert ("roomed_at" in values) == (status in (S.IN_ROOM, S.COMPLETED))
    assert ("completed_at" in values) == (status == S.COMPLETED)
    assert (status == S.CANCELLED) == bool(values.get("cancel_reason"))
    if status in (S.BOOKED, S.CONFIRMED):  # not arrived yet: only just started
        assert now - start < dt.timedelta(minutes=20)


# ---- the benchmark path -----------------------------------------------------------------------


def test_appointments_option_spreads_them_over_fifty_practitioners_and_ninety_days() -> None:
    # when
    output = seed("--patients", "40", "--appointments", "1500")
    # then
    assert "1500 created" in output
    assert Appointment.objects.count() == 1500
    assert Practitioner.objects.filter(is_active=True).count() == 50
    booked = AppointmentPractitioner.objects.values("practitioner_id").distinct().count()
    assert booked == 50
    span = Appointment.objects.aggregate(first=Min("start"), last=Max("start"))
    assert span["last"] - span["first"] >= dt.timedelta(days=90)
    assert_nothing_double_booked()
    assert not AuditEvent.objects.filter(event="appointment.book").exists()
    assert AuditEvent.objects.filter(event="appointment.bulk_seed").count() == 1


def test_appointments_option_tops_up_and_a_second_run_adds_nothing() -> None:
    # given
    seed("--patients", "40", "--bulk-above", "0", "--appointments", "400")
    # when
    seed("--patients", "40", "--bulk-above", "0", "--appointments", "400")
    unchanged = Appointment.objects.count()
    seed("--patients", "40", "--appointments", "600")
    # then
    assert unchanged == 400
    assert Appointment.objects.count() == 600
    assert_nothing_double_booked()


def test_appointments_option_goes_back_in_time_when_the_future_is_full() -> None:
    # given few practitioners, so a hundred days ahead cannot hold them all
    seed(
        "--patients", "300", "--bulk-above", "0", "--appointments", "9000", "--practitioners", "12"
    )
    # then the rest lie in the past, finished
    now = timezone.now()
    past = Appointment.objects.filter(end__lt=now - dt.timedelta(days=1))
    assert Appointment.objects.count() == 9000
    assert past.count() > 1000
    assert set(past.values_list("status", flat=True)) <= {S.COMPLETED, S.NO_SHOW, S.CANCELLED}
    assert_nothing_double_booked()


def test_bulk_top_up_keeps_clear_of_the_demo_month(month: dict[str, Any]) -> None:
    # given the demo month
    existing = Appointment.objects.count()
    # when topping up in bulk
    seed("--patients", "400", "--appointments", str(existing + 1000))
    # then the new appointments were laid around the existing ones
    assert Appointment.objects.count() == existing + 1000
    assert_nothing_double_booked()


def test_if_empty_adds_the_schedule_to_a_demo_loaded_before_it() -> None:
    # given a demo clinic loaded before the schedule existed
    clinic(10)
    assert not AppointmentType.objects.exists()
    # when make run seeds with --if-empty
    seed("--patients", "10", "--if-empty")
    # then the schedule is there
    assert demo_schedule.schedule_exists()
    assert Appointment.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--appointments", "-1"), "--appointments must be 0 or more."),
        (("--practitioners", "0"), "--practitioners must be 1 or more."),
    ],
)
def test_rejects_bad_counts(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        seed("--patients", "0", *args)
