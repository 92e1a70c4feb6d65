"""FHIR R4 scheduling resources: Practitioner, Location, Schedule, Slot, Appointment.

Every answer parses with fhir.resources R4B; every route has its access matrix (allowed role,
lesser role, other location, anonymous, wrong method), and appointment reads are audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.location import Location as FhirLocation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.practitioner import Practitioner as FhirPractitioner
from fhir.resources.R4B.schedule import Schedule as FhirSchedule
from fhir.resources.R4B.slot import Slot as FhirSlot

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from fhirapi.scheduling import FHIR_STATUS, schedule_id
from patients.models import BreakGlassGrant, Patient
from patients.tests.factories import PatientFactory
from scheduling.availability import zone
from scheduling.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    CancelledBy,
    Practitioner,
)
from scheduling.services import appointment_book
from scheduling.tests.factories import (
    AppointmentFactory,
    AppointmentTypeFactory,
    AvailabilityRuleFactory,
    OpeningHoursFactory,
    PractitionerFactory,
    ResourceFactory,
)

FHIR_JSON = "application/fhir+json"
NPI = "http://hl7.org/fhir/sid/us-npi"
S = AppointmentStatus


# ---- the clinic -------------------------------------------------------------------------------


def local(day: dt.date, hhmm: str) -> dt.datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hours, minutes), tzinfo=zone("America/New_York"))


@pytest.fixture
def monday() -> dt.date:
    """A Monday 14 to 20 days ahead (never in the past)."""
    today = timezone.now().astimezone(zone("America/New_York")).date()
    return today + dt.timedelta(days=14 + (7 - today.weekday()) % 7)


@pytest.fixture
def clinic(main_clinic: Location) -> Location:
    """Main Street Clinic with an address, a phone and weekday opening hours 08:00-18:00."""
    main_clinic.address_line1 = "120 Main Street"
    main_clinic.city = "Hartford"
    main_clinic.state = "CT"
    main_clinic.postal_code = "06103"
    main_clinic.phone = "+18605550100"
    main_clinic.save()
    for weekday in range(5):
        OpeningHoursFactory(
            location=main_clinic, weekday=weekday, opens=dt.time(8), closes=dt.time(18)
        )
    return main_clinic


@pytest.fixture
def ana(clinic: Location) -> Practitioner:
    practitioner = PractitionerFactory(
        given_name="Ana",
        family_name="Núñez-Rivera",
        credentials="NP",
        npi="1234567893",
        locations=[clinic],
    )
    AvailabilityRuleFactory(practitioner=practitioner, location=clinic)
    return practitioner


@pytest.fixture
def rita(riverside: Location) -> Practitioner:
    """Works at Riverside only."""
    practitioner = PractitionerFactory(
        given_name="Rita", family_name="Moreno", locations=[riverside]
    )
    AvailabilityRuleFactory(practitioner=practitioner, location=riverside)
    return practitioner


@pytest.fixture
def follow_up(db: None) -> AppointmentType:
    return AppointmentTypeFactory(
        code="follow-up", name="Follow-up visit", duration_minutes=30, buffer_minutes=0
    )


@pytest.fixture
def appointment(
    patient: Patient, ana: Practitioner, follow_up: AppointmentType, monday: dt.date
) -> Appointment:
    """Monday 09:00-09:30 with Ana for the patient (Main Street Clinic)."""
    return AppointmentFactory(
        patient=patient,
        appointment_type=follow_up,
        location=ana.locations.get(),
        start=local(monday, "09:00"),
        practitioners=[ana],
        reason="Blood pressure check",
    )


@pytest.fixture
def schedule(ana: Practitioner, clinic: Location) -> str:
    return str(schedule_id(ana, clinic))


@pytest.fixture
def fhir(frontdesk: User, token_client: Callable[[User], Client]) -> Client:
    return token_client(frontdesk)


def parse(model: Any, response: Any) -> Any:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    return model.model_validate_json(response.content)


def entries(response: Any, model: Any) -> list[Any]:
    bundle = parse(Bundle, response)
    assert bundle.type == "searchset"
    return [model.model_validate(entry.resource.model_dump()) for entry in bundle.entry or []]


def outcome(response: Any, status: int) -> Any:
    assert response.status_code == status, response.content
    return OperationOutcome.model_validate_json(response.content).issue[0]


def last_event() -> AuditEvent:
    return AuditEvent.objects.order_by("-sequence").first()


# ---- Practitioner -----------------------------------------------------------------------------


def test_reads_a_practitioner_with_npi_name_and_qualification(
    fhir: Client, ana: Practitioner
) -> None:
    resource = parse(FhirPractitioner, fhir.get(f"/fhir/r4/Practitioner/{ana.public_id}"))

    assert resource.id == str(ana.public_id)
    assert [(i.system, i.value) for i in resource.identifier] == [(NPI, "1234567893")]
    assert resource.name[0].family == "Núñez-Rivera"
    assert resource.name[0].given == ["Ana"]
    assert resource.name[0].suffix == ["NP"]
    assert resource.qualification[0].code.coding[0].code == "NP"
    assert resource.qualification[0].code.text == "Nurse practitioner"


def test_searches_practitioners_by_name_ignoring_accents_and_by_npi(
    fhir: Client, ana: Practitioner, rita: Practitioner, clinic: Location
) -> None:
    # given a second practitioner at the clinic
    PractitionerFactory(given_name="Ben", family_name="Okafor", locations=[clinic])

    by_name = entries(fhir.get("/fhir/r4/Practitioner?name=rivera"), FhirPractitioner)
    by_npi = entries(
        fhir.get(f"/fhir/r4/Practitioner?identifier={NPI}|1234567893"), FhirPractitioner
    )
    everyone = entries(fhir.get("/fhir/r4/Practitioner"), FhirPractitioner)

    assert [p.id for p in by_name] == [str(ana.public_id)]
    assert [p.id for p in by_npi] == [str(ana.public_id)]
    # Rita works at Riverside only: not in the front desk's list
    assert [p.name[0].family for p in everyone] == ["Núñez-Rivera", "Okafor"]


def test_practitioner_search_pages_with_a_next_link(fhir: Client, clinic: Location) -> None:
    for family in ("Adams", "Baker", "Clark"):
        PractitionerFactory(family_name=family, locations=[clinic])

    first = parse(Bundle, fhir.get("/fhir/r4/Practitioner?_count=2"))
    following = [link.url for link in first.link if link.relation == "next"]
    second = parse(Bundle, fhir.get(following[0]))

    assert [e.resource.name[0].family for e in first.entry] == ["Adams", "Baker"]
    assert [e.resource.name[0].family for e in second.entry] == ["Clark"]


def test_practitioner_identifier_of_another_system_is_refused(
    fhir: Client, ana: Practitioner
) -> None:
    issue = outcome(fhir.get("/fhir/r4/Practitioner?identifier=urn:other|1"), 400)

    assert issue.expression == ["identifier"]


# ---- Location ---------------------------------------------------------------------------------


def test_reads_a_location_with_address_phone_hours_and_time_zone(
    fhir: Client, clinic: Location
) -> None:
    resource = parse(FhirLocation, fhir.get(f"/fhir/r4/Location/{clinic.public_id}"))

    assert resource.name == "Main Street Clinic"
    assert resource.address.line == ["120 Main Street"]
    assert (resource.address.city, resource.address.state) == ("Hartford", "CT")
    assert resource.telecom[0].value == "+18605550100"
    assert resource.extension[0].valueCode == "America/New_York"
    hours = resource.hoursOfOperation[0]
    assert hours.daysOfWeek == ["mon", "tue", "wed", "thu", "fri"]
    assert (str(hours.openingTime), str(hours.closingTime)) == ("08:00:00", "18:00:00")


def test_location_search_lists_only_the_users_locations(
    fhir: Client, clinic: Location, riverside: Location
) -> None:
    found = entries(fhir.get("/fhir/r4/Location"), FhirLocation)

    assert [loc.id for loc in found] == [str(clinic.public_id)]


# ---- Schedule ---------------------------------------------------------------------------------


def test_schedule_search_by_practitioner_gives_one_schedule_per_location(
    fhir: Client, ana: Practitioner, clinic: Location, schedule: str
) -> None:
    found = entries(fhir.get(f"/fhir/r4/Schedule?actor=Practitioner/{ana.public_id}"), FhirSchedule)

    assert [s.id for s in found] == [schedule]
    actors = [a.reference for a in found[0].actor]
    assert actors == [f"Practitioner/{ana.public_id}", f"Location/{clinic.public_id}"]
    assert found[0].active is True
    assert (
        found[0].planningHorizon.start == timezone.now().astimezone(zone("America/New_York")).date()
    )
    assert "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR 08:00-17:00" in found[0].comment


def test_schedule_read_answers_the_same_id(fhir: Client, schedule: str) -> None:
    resource = parse(FhirSchedule, fhir.get(f"/fhir/r4/Schedule/{schedule}"))

    assert resource.id == schedule


def test_schedule_search_by_location_of_another_site_is_empty(
    fhir: Client, ana: Practitioner, rita: Practitioner, riverside: Location
) -> None:
    found = entries(
        fhir.get(f"/fhir/r4/Schedule?actor=Location/{riverside.public_id}"), FhirSchedule
    )

    assert found == []


# ---- Slot -------------------------------------------------------------------------------------


def slot_url(schedule: str, monday: dt.date, *extra: str) -> str:
    start = local(monday, "09:00").isoformat()
    end = local(monday, "10:30").isoformat()
    query = "&".join((f"start=ge{start}", f"start=lt{end}", *extra)).replace("+", "%2B")
    return f"/fhir/r4/Slot?schedule=Schedule/{schedule}&{query}"


def test_slot_search_gives_the_booked_time_as_busy_and_the_rest_as_free(
    fhir: Client,
    schedule: str,
    appointment: Appointment,
    follow_up: AppointmentType,
    monday: dt.date,
) -> None:
    slots = entries(fhir.get(slot_url(schedule, monday)), FhirSlot)

    starts = [
        (s.status, s.start.astimezone(zone("America/New_York")).strftime("%H:%M")) for s in slots
    ]
    assert starts == [
        ("busy", "09:00"),
        ("free", "09:30"),
        ("free", "09:45"),
        ("free", "10:00"),
        ("free", "10:15"),
    ]
    assert all(s.schedule.reference == f"Schedule/{schedule}" for s in slots)
    assert slots[1].appointmentType.coding[1].code == "follow-up"
    assert slots[1].end - slots[1].start == dt.timedelta(minutes=30)


def test_slot_search_filters_by_status(
    fhir: Client, schedule: str, appointment: Appointment, monday: dt.date
) -> None:
    busy = entries(fhir.get(slot_url(schedule, monday, "status=busy")), FhirSlot)
    free = entries(fhir.get(slot_url(schedule, monday, "status=free")), FhirSlot)

    assert [s.status for s in busy] == ["busy"]
    assert {s.status for s in free} == {"free"}


def test_slot_ids_are_stable_and_read_back(
    fhir: Client, schedule: str, appointment: Appointment, monday: dt.date
) -> None:
    # given the same search twice
    first = entries(fhir.get(slot_url(schedule, monday)), FhirSlot)
    second = entries(fhir.get(slot_url(schedule, monday)), FhirSlot)
    # when each slot is read by its id
    read = [parse(FhirSlot, fhir.get(f"/fhir/r4/Slot/{s.id}")) for s in first[:2]]
    # then the ids are the same, and reading answers the same slot
    assert [s.id for s in first] == [s.id for s in second]
    assert [(s.id, s.status) for s in read] == [(s.id, s.status) for s in first[:2]]


def test_a_free_slot_read_after_it_was_booked_answers_busy(
    fhir: Client,
    frontdesk: User,
    schedule: str,
    appointment: Appointment,
    ana: Practitioner,
    follow_up: AppointmentType,
    monday: dt.date,
    main_clinic: Location,
) -> None:
    # given the free 09:30 slot
    free = entries(fhir.get(slot_url(schedule, monday, "status=free")), FhirSlot)[0]
    # when it is booked
    appointment_book(
        actor=frontdesk,
        patient=PatientFactory(home_location=main_clinic),
        appointment_type=follow_up,
        start=local(monday, "09:30"),
        practitioners=[ana],
    )
    # then the same id now reads as busy
    assert parse(FhirSlot, fhir.get(f"/fhir/r4/Slot/{free.id}")).status == "busy"


def test_slot_search_pages_without_losing_the_upper_bound(
    fhir: Client, schedule: str, appointment: Appointment, monday: dt.date
) -> None:
    first = parse(Bundle, fhir.get(slot_url(schedule, monday, "_count=2")))
    following = next(link.url for link in first.link if link.relation == "next")
    second = entries(fhir.get(following), FhirSlot)

    assert len(first.entry) == 2
    assert parse_qs(urlsplit(following).query)["start"][1].startswith("lt")
    assert [s.start.astimezone(zone("America/New_York")).strftime("%H:%M") for s in second] == [
        "09:45",
        "10:00",
    ]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("", "schedule"),
        ("schedule=Schedule/{schedule}&appointment-type=nope", "appointment-type"),
        ("schedule=Schedule/{schedule}&status=open", "status"),
        ("schedule=Schedule/{schedule}&start=ge2030-01-01&start=lt2030-06-01", "start"),
        ("schedule=Schedule/{schedule}&start=tomorrow", "start"),
        ("schedule=Schedule/{schedule}&start=ge2030-01-01T09:00", "start"),
        ("schedule=Schedule/{schedule}&practitioner=x", "practitioner"),
    ],
)
def test_slot_search_names_the_bad_parameter(
    fhir: Client, schedule: str, query: str, parameter: str
) -> None:
    issue = outcome(fhir.get("/fhir/r4/Slot?" + query.format(schedule=schedule)), 400)

    assert issue.expression == [parameter]


# ---- Appointment ------------------------------------------------------------------------------


def test_reads_an_appointment_with_participants_type_and_times(
    fhir: Client, appointment: Appointment, patient: Patient, ana: Practitioner, clinic: Location
) -> None:
    resource = parse(FhirAppointment, fhir.get(f"/fhir/r4/Appointment/{appointment.public_id}"))

    assert resource.status == "booked"
    assert resource.start == appointment.start
    assert resource.end == appointment.end
    assert resource.minutesDuration == 30
    assert resource.serviceType[0].coding[0].code == "follow-up"
    assert resource.appointmentType.coding[0].code == "FOLLOWUP"
    assert resource.reasonCode[0].text == "Blood pressure check"
    actors = [p.actor.reference for p in resource.participant]
    assert actors == [
        f"Patient/{patient.public_id}",
        f"Practitioner/{ana.public_id}",
        f"Location/{clinic.public_id}",
    ]
    assert resource.participant[0].status == "needs-action"


@pytest.mark.parametrize("status", list(S))
def test_every_status_maps_to_a_fhir_appointment_status(
    fhir: Client, appointment: Appointment, status: str
) -> None:
    # given the appointment in that status (a cancelled one with who and why)
    appointment.status = status
    if status == S.CANCELLED:
        appointment.cancelled_by, appointment.cancel_reason = CancelledBy.PATIENT, "Work conflict"
    appointment.save()
    # when it is read
    resource = parse(FhirAppointment, fhir.get(f"/fhir/r4/Appointment/{appointment.public_id}"))
    # then the FHIR status is the mapped one
    assert resource.status == FHIR_STATUS[status]
    if status == S.CANCELLED:
        assert resource.cancelationReason.coding[0].code == "pat"
        assert resource.cancelationReason.text == "Work conflict"
        assert resource.participant[0].status == "declined"
    else:
        assert resource.cancelationReason is None


def test_in_room_is_checked_in_and_completed_is_fulfilled() -> None:
    assert (FHIR_STATUS[S.IN_ROOM], FHIR_STATUS[S.COMPLETED]) == ("checked-in", "fulfilled")
    assert (FHIR_STATUS[S.CONFIRMED], FHIR_STATUS[S.NO_SHOW]) == ("booked", "noshow")


def test_appointment_lists_its_rooms_as_participants(
    fhir: Client,
    patient: Patient,
    ana: Practitioner,
    follow_up: AppointmentType,
    clinic: Location,
    monday: dt.date,
) -> None:
    room = ResourceFactory(location=clinic, name="Exam room 3")
    booked = AppointmentFactory(
        patient=patient, appointment_type=follow_up, location=clinic,
        start=local(monday, "11:00"), practitioners=[ana], resources=[room],
    )  # fmt: skip

    resource = parse(FhirAppointment, fhir.get(f"/fhir/r4/Appointment/{booked.public_id}"))

    assert resource.participant[-1].actor.display == "Exam room 3"


def test_appointment_search_by_local_date_practitioner_and_patient(
    fhir: Client,
    appointment: Appointment,
    patient: Patient,
    ana: Practitioner,
    follow_up: AppointmentType,
    clinic: Location,
    monday: dt.date,
) -> None:
    # given an evening appointment (after midnight UTC) and one the next day for someone else
    evening = AppointmentFactory(
        patient=patient, appointment_type=follow_up, location=clinic,
        start=local(monday, "20:30"), practitioners=[ana],
    )  # fmt: skip
    other = PatientFactory(home_location=clinic)
    AppointmentFactory(
        patient=other, appointment_type=follow_up, location=clinic,
        start=local(monday + dt.timedelta(days=1), "09:00"), practitioners=[ana],
    )  # fmt: skip
    # when searching for the Monday (local date), Ana's, the patient's
    day = entries(fhir.get(f"/fhir/r4/Appointment?date={monday}"), FhirAppointment)
    mine = entries(
        fhir.get(f"/fhir/r4/Appointment?patient=Patient/{patient.public_id}"), FhirAppointment
    )
    hers = entries(fhir.get(f"/fhir/r4/Appointment?practitioner={ana.public_id}"), FhirAppointment)
    # then
    assert [a.id for a in day] == [str(appointment.public_id), str(evening.public_id)]
    assert [a.id for a in mine] == [str(appointment.public_id), str(evening.public_id)]
    assert len(hers) == 3


def test_appointment_search_by_date_range_and_status(
    fhir: Client,
    appointment: Appointment,
    patient: Patient,
    follow_up: AppointmentType,
    ana: Practitioner,
    clinic: Location,
    monday: dt.date,
) -> None:
    # given a confirmed one on Tuesday and a cancelled one on Wednesday
    AppointmentFactory(
        patient=patient, appointment_type=follow_up, location=clinic, status=S.CONFIRMED,
        start=local(monday + dt.timedelta(days=1), "09:00"), practitioners=[ana],
    )  # fmt: skip
    AppointmentFactory(
        patient=patient, appointment_type=follow_up, location=clinic, status=S.CANCELLED,
        cancelled_by=CancelledBy.CLINIC, cancel_reason="Scheduling error",
        start=local(monday + dt.timedelta(days=2), "09:00"), practitioners=[ana],
    )  # fmt: skip
    tuesday = monday + dt.timedelta(days=1)

    from_tuesday = entries(fhir.get(f"/fhir/r4/Appointment?date=ge{tuesday}"), FhirAppointment)
    booked = entries(fhir.get("/fhir/r4/Appointment?status=booked"), FhirAppointment)
    cancelled = entries(fhir.get("/fhir/r4/Appointment?status=cancelled,noshow"), FhirAppointment)

    assert [a.status for a in from_tuesday] == ["booked", "cancelled"]
    assert [a.status for a in booked] == ["booked", "booked"]
    assert [a.cancelationReason.coding[0].code for a in cancelled] == ["prov"]


def test_appointment_search_pages_in_a_fixed_number_of_queries(
    fhir: Client,
    patient: Patient,
    ana: Practitioner,
    follow_up: AppointmentType,
    clinic: Location,
    monday: dt.date,
    django_assert_max_num_queries: Any,
) -> None:
    for hour in range(8, 16):
        AppointmentFactory(
            patient=PatientFactory(home_location=clinic), appointment_type=follow_up,
            location=clinic, start=local(monday, f"{hour:02d}:00"), practitioners=[ana],
        )  # fmt: skip

    with django_assert_max_num_queries(16):
        first = parse(Bundle, fhir.get("/fhir/r4/Appointment?_count=5"))
    following = next(link.url for link in first.link if link.relation == "next")
    second = parse(Bundle, fhir.get(following))

    assert len(first.entry) == 5
    assert len(second.entry) == 3


def test_appointment_search_audits_one_query_event(
    fhir: Client, appointment: Appointment, patient: Patient
) -> None:
    fhir.get(f"/fhir/r4/Appointment?patient={patient.public_id}")

    event = last_event()
    assert (event.event, event.action, event.outcome) == ("appointment.search", "query", "success")
    assert event.patient_public_id == patient.public_id
    assert event.object_id == "1 results"


def test_appointment_search_for_a_patient_outside_scope_is_404_and_audited(
    fhir: Client, riverside: Location
) -> None:
    stranger = PatientFactory(home_location=riverside)

    issue = outcome(fhir.get(f"/fhir/r4/Appointment?patient={stranger.public_id}"), 404)

    assert issue.code == "not-found"
    event = last_event()
    assert (event.event, event.outcome) == ("appointment.search", "denied")


def test_break_glass_lets_a_user_read_an_appointment_of_another_location(
    outsider: User,
    appointment: Appointment,
    patient: Patient,
    token_client: Callable[[User], Client],
) -> None:
    # given an open break-glass grant for the patient
    BreakGlassGrant.objects.create(
        user=outsider, patient=patient, reason="ER transfer",
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )  # fmt: skip
    # when the outsider reads the appointment
    response = token_client(outsider).get(f"/fhir/r4/Appointment/{appointment.public_id}")
    # then it is served and audited against the patient
    assert parse(FhirAppointment, response).id == str(appointment.public_id)
    event = last_event()
    assert (event.event, event.outcome, event.patient_public_id) == (
        "appointment.view", "success", patient.public_id
    )  # fmt: skip


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("date=2030-13-45", "date"),
        ("date=sa2030-01-01", "date"),
        ("status=open", "status"),
        ("patient=Coverage/abc", "patient"),
        ("practitioner=Practitioner/not-a-uuid", "practitioner"),
        ("name=smith", "name"),
        ("_count=0", "_count"),
    ],
)
def test_appointment_search_names_the_bad_parameter(
    fhir: Client, query: str, parameter: str
) -> None:
    issue = outcome(fhir.get(f"/fhir/r4/Appointment?{query}"), 400)

    assert issue.expression == [parameter]


def test_capability_statement_lists_the_scheduling_resources() -> None:
    statement = parse(CapabilityStatement, Client().get("/fhir/r4/metadata"))

    served = {r.type: r for r in statement.rest[0].resource}
    assert {"Practitioner", "Location", "Schedule", "Slot", "Appointment"} <= set(served)
    assert {p.name for p in served["Slot"].searchParam} >= {"schedule", "start", "status"}
    assert {p.name for p in served["Appointment"].searchParam} >= {
        "date", "practitioner", "patient", "status"
    }  # fmt: skip


# ---- access matrix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    path: Callable[[dict[str, Any]], str]
    lesser: int  # service director (no view-schedule): reads 404, searches 403
    refused: str  # audit event of the service director's refusal
    outsider: str  # audit event of the outsider's 404; "" for a search that shows them nothing
    audits_success: bool = False  # patient data: the allowed read is audited too


def _slot_id(w: dict[str, Any]) -> str:
    start = w["appointment"].start.astimezone(dt.UTC)
    return f"{w['schedule'].replace('-', '')}-{start:%Y%m%d%H%M}-30"


def _ana(w: dict[str, Any]) -> str:
    return str(w["ana"].public_id)


ROUTES: dict[str, Route] = {
    "search practitioners": Route(
        lambda w: "/fhir/r4/Practitioner", 403, "practitioner.search", ""
    ),
    "read practitioner": Route(
        lambda w: f"/fhir/r4/Practitioner/{_ana(w)}", 404, "practitioner.view",
        "practitioner.view",
    ),
    "search locations": Route(
        lambda w: "/fhir/r4/Location?name=Main", 403, "location.search", ""
    ),
    "read location": Route(
        lambda w: f"/fhir/r4/Location/{w['clinic'].public_id}", 404, "location.view",
        "location.view",
    ),
    "search schedules": Route(
        lambda w: f"/fhir/r4/Schedule?actor=Practitioner/{_ana(w)}", 403, "schedule.search", ""
    ),
    "read schedule": Route(
        lambda w: f"/fhir/r4/Schedule/{w['schedule']}", 404, "schedule.view", "schedule.view"
    ),
    "search slots": Route(
        lambda w: f"/fhir/r4/Slot?schedule=Schedule/{w['schedule']}", 403, "slot.search",
        "schedule.view",
    ),
    "read slot": Route(
        lambda w: f"/fhir/r4/Slot/{_slot_id(w)}", 404, "schedule.view", "schedule.view"
    ),
    "search appointments": Route(
        lambda w: "/fhir/r4/Appointment", 403, "appointment.search", "", audits_success=True
    ),
    "read appointment": Route(
        lambda w: f"/fhir/r4/Appointment/{w['appointment'].public_id}", 404, "appointment.view",
        "appointment.view", audits_success=True,
    ),
}  # fmt: skip


@pytest.fixture
def world(
    ana: Practitioner, clinic: Location, schedule: str, appointment: Appointment
) -> dict[str, Any]:
    return {"ana": ana, "clinic": clinic, "schedule": schedule, "appointment": appointment}


@pytest.mark.parametrize("name", ROUTES)
def test_allowed_role_is_served(name: str, world: dict[str, Any], fhir: Client) -> None:
    route = ROUTES[name]
    before = last_event().sequence if last_event() else 0

    response = fhir.get(route.path(world))

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    if route.audits_success:
        event = last_event()
        assert event.sequence > before
        assert (event.event, event.outcome, event.username) == (
            route.refused, "success", "frontdesk"
        )  # fmt: skip


@pytest.mark.parametrize("name", ROUTES)
def test_role_without_the_schedule_capability_is_refused_and_audited(
    name: str,
    world: dict[str, Any],
    persona: Callable[[str], User],
    login_client: Callable[[User], Client],
) -> None:
    route = ROUTES[name]
    client = login_client(persona("servicedirector"))

    response = client.get(route.path(world))

    assert response.status_code == route.lesser, response.content
    OperationOutcome.model_validate_json(response.content)
    event = last_event()
    assert (event.event, event.outcome, event.username) == (
        route.refused,
        "denied",
        "servicedirector",
    )


@pytest.mark.parametrize("name", ROUTES)
def test_user_of_another_location_does_not_see_it(
    name: str, world: dict[str, Any], outsider: User, token_client: Callable[[User], Client]
) -> None:
    route = ROUTES[name]

    response = token_client(outsider).get(route.path(world))

    if route.outsider:
        assert outcome(response, 404).code == "not-found"
        event = last_event()
        assert (event.event, event.outcome, event.username) == (
            route.outsider, "denied", "outsider"
        )  # fmt: skip
    else:
        assert parse(Bundle, response).entry is None


@pytest.mark.parametrize("name", ROUTES)
def test_anonymous_caller_gets_401(name: str, world: dict[str, Any]) -> None:
    response = Client().get(ROUTES[name].path(world))

    assert outcome(response, 401).code == "login"
    event = last_event()
    assert (event.event, event.outcome, event.user_id) == ("fhir.unauthenticated", "denied", None)


@pytest.mark.parametrize("name", ROUTES)
def test_wrong_method_answers_405(name: str, world: dict[str, Any], fhir: Client) -> None:
    response = fhir.post(ROUTES[name].path(world))

    assert outcome(response, 405).code == "not-supported"
    assert "GET" in response["Allow"]


def test_session_user_is_served_like_a_token_user(
    world: dict[str, Any], frontdesk: User, login_client: Callable[[User], Client]
) -> None:
    response = login_client(frontdesk).get(f"/fhir/r4/Appointment/{world['appointment'].public_id}")

    assert parse(FhirAppointment, response).id == str(world["appointment"].public_id)
