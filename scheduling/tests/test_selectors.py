"""Reading the schedule: scope, audit, and a fixed number of queries for calendars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from audit.models import Action, AuditEvent
from audit.services import record
from core.models import Location
from patients.models import BreakGlassGrant, Patient
from patients.tests.factories import PatientFactory, PatientFlagFactory
from scheduling.models import Appointment, AppointmentType, Practitioner
from scheduling.selectors import (
    appointment_get_for_user,
    appointments_for_location_day,
    appointments_for_patient,
    appointments_for_practitioner_day,
    calendar_entries_for_location_day,
    checkin_board,
    practitioners_for_location,
    split_upcoming,
)
from scheduling.tests.conftest import local
from scheduling.tests.factories import (
    AppointmentFactory,
    AvailabilityRuleFactory,
    PractitionerFactory,
    ResourceFactory,
)
from scheduling.view_selectors import appointments_for_practitioner_week

pytestmark = pytest.mark.django_db


def audit_append_queries(user: User) -> int:
    """What one more audit append costs in queries (the audit app's business, measured not
    assumed): the first append of a transaction may cost more than the next ones, so one is made
    first, as the calls measured after this come after it."""
    record(actor=user, action=Action.QUERY, event="test.probe", category="scheduling")
    with CaptureQueriesContext(connection) as captured:
        record(actor=user, action=Action.QUERY, event="test.probe", category="scheduling")
    return len(captured.captured_queries)


def last_audit() -> AuditEvent:
    return AuditEvent.objects.order_by("-sequence").first()


@pytest.fixture
def appointment(
    patient: Patient, follow_up: AppointmentType, ana: Practitioner, main_clinic: Location, at: Any
) -> Any:
    return AppointmentFactory(
        patient=patient,
        appointment_type=follow_up,
        location=main_clinic,
        start=at("09:00"),
        practitioners=[ana],
    )


# ---- one appointment -------------------------------------------------------------------------


def test_reads_an_appointment_at_the_users_location_and_audits_it(
    appointment: Any, frontdesk: User
) -> None:
    found = appointment_get_for_user(user=frontdesk, public_id=appointment.public_id)

    assert found == appointment
    audit = last_audit()
    assert (audit.event, audit.outcome, audit.action) == ("appointment.view", "success", "read")
    assert audit.patient_public_id == appointment.patient.public_id


def test_an_appointment_elsewhere_is_not_found_and_the_attempt_is_audited(
    appointment: Any, outsider: User
) -> None:
    with pytest.raises(Http404):
        appointment_get_for_user(user=outsider, public_id=appointment.public_id)

    audit = last_audit()
    assert (audit.event, audit.outcome) == ("appointment.view", "denied")
    assert audit.user == outsider


def test_an_appointment_elsewhere_is_visible_when_its_patient_is(
    appointment: Any, outsider: User, riverside: Location
) -> None:
    # given: the patient's home is Riverside, where the outsider works
    appointment.patient.home_location = riverside
    appointment.patient.save()

    assert appointment_get_for_user(user=outsider, public_id=appointment.public_id) == appointment


def test_a_missing_appointment_is_not_found(frontdesk: User) -> None:
    with pytest.raises(Http404):
        appointment_get_for_user(user=frontdesk, public_id="00000000-0000-0000-0000-000000000000")

    assert last_audit().outcome == "denied"


def test_a_user_without_schedule_access_cannot_read_an_appointment(
    appointment: Any, persona: Callable[[str], User]
) -> None:
    with pytest.raises(Http404):
        appointment_get_for_user(user=persona("privacy"), public_id=appointment.public_id)


# ---- the day at a location: fixed queries ----------------------------------------------------


def _fill_day(count: int, location: Location, at: Any, follow_up: AppointmentType) -> None:
    practitioners = [PractitionerFactory() for _ in range(3)]  # each busy back to back
    for n in range(count):
        patient = PatientFactory(home_location=location)
        PatientFlagFactory(patient=patient)
        AppointmentFactory(
            patient=patient,
            appointment_type=follow_up,
            location=location,
            start=at("08:00") + dt.timedelta(minutes=10 * n),
            practitioners=[practitioners[n % 3]],
            resources=[ResourceFactory(location=location)],
        )


@pytest.mark.parametrize("count", [5, 50])
def test_the_day_at_a_location_reads_in_a_fixed_number_of_queries(
    count: int,
    frontdesk: User,
    main_clinic: Location,
    at: Any,
    follow_up: AppointmentType,
    django_assert_num_queries: Any,
) -> None:
    # given
    _fill_day(count, main_clinic, at, follow_up)
    AppointmentFactory(location=main_clinic, start=at("09:00", days=1))  # the next day
    assert frontdesk.location_ids  # the user's locations, capabilities and roles are read
    assert frontdesk.capability_set  # once per request, whatever the page shows
    assert frontdesk.role_slugs
    audit_cost = audit_append_queries(frontdesk)
    # when: appointments (with patient and room), types, locations, which practitioners and
    # resources each has, those practitioners, those resources, the alerts,
    # then the audit row
    with django_assert_num_queries(8 + audit_cost):
        rows = appointments_for_location_day(
            user=frontdesk, location=main_clinic, day=at("00:00").date()
        )
        for row in rows:  # everything a calendar cell shows, without another query
            assert row.patient.active_flags
            assert list(row.practitioners.all())
            assert list(row.resources.all())
            assert row.appointment_type.name
    # then
    assert len(rows) == count
    assert [r.start for r in rows] == sorted(r.start for r in rows)
    audit = last_audit()
    assert (audit.event, audit.action) == ("appointment.day_list", "query")


@pytest.mark.parametrize("count", [5, 50])
def test_the_calendars_read_of_a_day_takes_a_fixed_number_of_queries(
    count: int,
    frontdesk: User,
    main_clinic: Location,
    at: Any,
    follow_up: AppointmentType,
    django_assert_num_queries: Any,
) -> None:
    # given
    _fill_day(count, main_clinic, at, follow_up)
    AppointmentFactory(location=main_clinic, start=at("09:00", days=1))  # the next day
    assert frontdesk.location_ids  # read once per request, whatever the page shows
    assert frontdesk.capability_set
    assert frontdesk.role_slugs
    audit_cost = audit_append_queries(frontdesk)
    # when: one query (appointments with type and patient name, their practitioner and
    # resource ids and their patients' alerts), then the audit row
    with django_assert_num_queries(1 + audit_cost):
        rows = calendar_entries_for_location_day(
            user=frontdesk, location=main_clinic, day=at("00:00").date()
        )
    # then: what a calendar cell shows, as plain values
    assert len(rows) == count
    assert [r.start for r in rows] == sorted(r.start for r in rows)
    first = Appointment.objects.get(public_id=rows[0].public_id)
    assert (rows[0].start, rows[0].end, rows[0].status) == (first.start, first.end, first.status)
    assert rows[0].appointment_type == (follow_up.code, follow_up.name)
    assert rows[0].patient.family_name == first.patient.family_name
    assert [f.kind for f in rows[0].patient.banner_flags] == [
        f.kind for f in first.patient.banner_flags
    ]
    assert rows[0].practitioner_ids == [p.pk for p in first.practitioners.all()]
    assert rows[0].resource_ids == [r.pk for r in first.resources.all()]
    assert rows[0].get_status_display() == first.get_status_display()
    audit = last_audit()
    assert (audit.event, audit.action) == ("appointment.day_list", "query")


def test_the_calendars_read_gives_every_link_and_alert_once(
    frontdesk: User, main_clinic: Location, at: Any, follow_up: AppointmentType
) -> None:
    # given an appointment of two practitioners and two rooms, whose patient has two active
    # alerts and an inactive one, and another appointment of that patient the same day
    ana, ben = PractitionerFactory(), PractitionerFactory()
    rooms = [ResourceFactory(location=main_clinic) for _ in range(2)]
    patient = PatientFactory(home_location=main_clinic)
    PatientFlagFactory(patient=patient, kind="fall_risk", severity="warning")
    PatientFlagFactory(patient=patient, kind="allergy", severity="critical")
    PatientFlagFactory(patient=patient, kind="other", severity="critical", is_active=False)
    both = AppointmentFactory(
        patient=patient,
        appointment_type=follow_up,
        location=main_clinic,
        start=at("09:00"),
        practitioners=[ben, ana],
        resources=rooms[::-1],
    )
    later = AppointmentFactory(
        patient=patient,
        appointment_type=follow_up,
        location=main_clinic,
        start=at("11:00"),
        practitioners=[ana],
    )

    # when
    rows = calendar_entries_for_location_day(
        user=frontdesk, location=main_clinic, day=at("00:00").date()
    )
    # a practitioner's week reads through a filter on the practitioner links
    week = appointments_for_practitioner_week(
        user=frontdesk, location=main_clinic, practitioner=ben, days=[at("00:00").date()]
    )

    # then: each appointment once, with all its links, ids in order, alerts most severe first
    assert [r.public_id for r in rows] == [str(both.public_id), str(later.public_id)]
    assert rows[0].practitioner_ids == sorted([ana.pk, ben.pk])
    assert rows[0].resource_ids == sorted(room.pk for room in rooms)
    assert (rows[1].practitioner_ids, rows[1].resource_ids) == ([ana.pk], [])
    assert [(f.kind, f.severity) for f in rows[0].patient.banner_flags] == [
        ("allergy", "critical"),
        ("fall_risk", "warning"),
    ]
    assert rows[1].patient is rows[0].patient
    assert [r.public_id for r in week] == [str(both.public_id)]
    assert week[0].practitioner_ids == sorted([ana.pk, ben.pk])


def test_another_locations_calendar_is_not_found(
    outsider: User, main_clinic: Location, monday: dt.date
) -> None:
    with pytest.raises(Http404):
        calendar_entries_for_location_day(user=outsider, location=main_clinic, day=monday)

    assert last_audit().outcome == "denied"


def test_the_day_is_the_locations_local_day(
    frontdesk: User, main_clinic: Location, follow_up: AppointmentType, monday: dt.date
) -> None:
    late = AppointmentFactory(
        location=main_clinic, appointment_type=follow_up, start=local(monday, "23:30")
    )  # 04:30 UTC the next day

    rows = appointments_for_location_day(user=frontdesk, location=main_clinic, day=monday)

    assert rows == [late]


def test_another_locations_day_is_not_found(
    outsider: User, main_clinic: Location, monday: dt.date
) -> None:
    with pytest.raises(Http404):
        appointments_for_location_day(user=outsider, location=main_clinic, day=monday)

    assert last_audit().outcome == "denied"


def test_the_practitioners_day_lists_only_theirs_at_the_users_locations(
    appointment: Any,
    frontdesk: User,
    ana: Practitioner,
    ben: Practitioner,
    riverside: Location,
    at: Any,
) -> None:
    AppointmentFactory(location=riverside, start=at("10:00"), practitioners=[ana])
    AppointmentFactory(location=appointment.location, start=at("11:00"), practitioners=[ben])

    rows = appointments_for_practitioner_day(
        user=frontdesk, practitioner=ana, day=at("00:00").date()
    )

    assert rows == [appointment]


# ---- a patient's appointments ----------------------------------------------------------------


def test_lists_a_patients_appointments_newest_first_and_splits_them(
    frontdesk: User, patient: Patient, follow_up: AppointmentType
) -> None:
    now = timezone.now()
    past = AppointmentFactory(patient=patient, start=now - dt.timedelta(days=3))
    soon = AppointmentFactory(patient=patient, start=now + dt.timedelta(days=2))
    later = AppointmentFactory(patient=patient, start=now + dt.timedelta(days=9))

    rows = appointments_for_patient(user=frontdesk, patient=patient)

    assert rows == [later, soon, past]
    assert split_upcoming(rows, now) == ([soon, later], [past])
    audit = last_audit()
    assert (audit.event, audit.patient_public_id) == ("appointment.patient_list", patient.public_id)


def test_a_patient_outside_the_users_locations_needs_break_glass(
    outsider: User, patient: Patient
) -> None:
    AppointmentFactory(patient=patient)
    with pytest.raises(Http404):
        appointments_for_patient(user=outsider, patient=patient)

    BreakGlassGrant.objects.create(
        user=outsider,
        patient=patient,
        reason="Emergency",
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )
    assert len(appointments_for_patient(user=outsider, patient=patient)) == 1


# ---- practitioners and the check-in board ----------------------------------------------------


def test_lists_practitioners_working_at_a_location(
    ana: Practitioner, ben: Practitioner, main_clinic: Location, riverside: Location
) -> None:
    visiting = PractitionerFactory(family_name="Visiting")
    AvailabilityRuleFactory(practitioner=visiting, location=main_clinic)
    PractitionerFactory(locations=[riverside])
    PractitionerFactory(locations=[main_clinic], is_active=False)

    assert practitioners_for_location(location=main_clinic) == [ana, ben, visiting]


def test_the_check_in_board_groups_the_day_by_stage(
    frontdesk: User, main_clinic: Location, monday: dt.date
) -> None:
    # given: at noon, appointments in every stage
    now = local(monday, "12:00")
    late = AppointmentFactory(location=main_clinic, start=now - dt.timedelta(minutes=20))
    later = AppointmentFactory(location=main_clinic, start=now + dt.timedelta(minutes=30))
    arrived = AppointmentFactory(
        location=main_clinic,
        start=now - dt.timedelta(minutes=5),
        status="arrived",
        arrived_at=now - dt.timedelta(minutes=12),
    )
    roomed = AppointmentFactory(location=main_clinic, start=now, status="in_room")
    missed = AppointmentFactory(location=main_clinic, start=now, status="no_show")
    AppointmentFactory(location=main_clinic, start=now + dt.timedelta(days=1))  # tomorrow
    # when
    board = checkin_board(user=frontdesk, location=main_clinic, day=monday, now=now)
    # then
    assert [row.appointment for row in board.expected] == [late, later]
    assert [(row.appointment, row.minutes_late) for row in board.late] == [(late, 20)]
    assert [(row.appointment, row.waiting_minutes) for row in board.arrived] == [(arrived, 12)]
    assert [row.appointment for row in board.in_room] == [roomed]
    assert [row.appointment for row in board.no_show] == [missed]
    assert last_audit().event == "appointment.checkin_board"


def test_the_check_in_board_of_another_location_is_not_found(
    outsider: User, main_clinic: Location
) -> None:
    with pytest.raises(Http404):
        checkin_board(user=outsider, location=main_clinic)
