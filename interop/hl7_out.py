"""Outbound HL7 v2.5.1 SIU messages describing an appointment change.

booked -> SIU^S12, rescheduled -> S13, modified -> S14, cancelled -> S15, no-show -> S26; every
one uses the SIU_S12 structure:

  MSH  SCH  TQ1  PID  PV1  RGS  AIS  AIG*  AIL+  AIP*

* SCH-1/SCH-2 placer and filler appointment ids: the appointment's public id (namespace
  PATIENTDESK); SCH-6 event reason; SCH-7 reason for visit (text); SCH-8 appointment type;
  SCH-9/10 duration in minutes; SCH-11 timing (TQ: duration, start, end) for receivers still
  on v2.3 habits; SCH-16/20 who made the change; SCH-25 filler status (HL7 table 0278).
* TQ1-6/7/8: duration, start and end (the v2.5 place for timing).
* PID: our MRN (assigning authority PATIENTDESK_HL7_MRN_AUTHORITY, type MR), legal name, date of
  birth, sex and phone numbers; nothing else (minimum necessary for scheduling).
* PV1: outpatient, the location (and room), the first practitioner as attending doctor.
* RGS with AIS (the appointment type), AIG (each practitioner by NPI, each piece of equipment),
  AIL (the location, and each room booked), AIP (each practitioner as personnel, NPI in XCN).
Times carry the location's UTC offset (DTM with seconds and offset).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import phonenumbers
from django.utils import timezone

from interop import conf
from interop.hl7_codec import components, escape, segment, timestamp
from scheduling.events import AppointmentChange
from scheduling.models import (
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentStatus,
    ResourceCategory,
)

if TYPE_CHECKING:
    from accounts.models import User
    from scheduling.models import Appointment, Practitioner

VERSION = "2.5.1"
TRIGGERS: dict[str, str] = {
    AppointmentChange.BOOKED: "S12",
    AppointmentChange.RESCHEDULED: "S13",
    AppointmentChange.MODIFIED: "S14",
    AppointmentChange.CANCELLED: "S15",
    AppointmentChange.NO_SHOW: "S26",
}
EVENT_REASONS: dict[str, str] = {
    AppointmentChange.BOOKED: "New appointment",
    AppointmentChange.RESCHEDULED: "Rescheduled",
    AppointmentChange.MODIFIED: "Modified",
    AppointmentChange.CANCELLED: "Cancelled",
    AppointmentChange.NO_SHOW: "No-show",
}
# Appointment status -> HL7 table 0278 filler status code.
FILLER_STATUS: dict[str, str] = {
    AppointmentStatus.PROPOSED: "Pending",
    AppointmentStatus.BOOKED: "Booked",
    AppointmentStatus.CONFIRMED: "Booked",
    AppointmentStatus.ARRIVED: "Started",
    AppointmentStatus.IN_ROOM: "Started",
    AppointmentStatus.COMPLETED: "Complete",
    AppointmentStatus.CANCELLED: "Cancelled",
    AppointmentStatus.NO_SHOW: "Noshow",
}
NPI_AUTHORITY = "NPI&2.16.840.1.113883.4.6&ISO"
MINUTES = components("min", "minutes", "UCUM")


def trigger_for(change: str) -> str | None:
    return TRIGGERS.get(change)


def filler_status(appointment: Appointment) -> str:
    status = FILLER_STATUS.get(appointment.status, "Booked")
    if status == "Booked" and appointment.is_overbooked:
        return "Overbook"
    return status


def _xcn_for_user(actor: User | None, via: str) -> str:
    if actor is None:
        label = "Patient self-service" if via == "patient-link" else "patientdesk"
        return components(via or "system", label)
    return components(actor.get_username(), actor.last_name, actor.first_name)


def _xcn_for_practitioner(practitioner: Practitioner) -> str:
    name = components(practitioner.npi, practitioner.family_name, practitioner.given_name)
    # XCN.9 assigning authority (NPI's OID), XCN.10 name type L, XCN.13 identifier type NPI
    return f"{name}^^^^^^{NPI_AUTHORITY}^L^^^NPI"


def _xtn(phone: str, equipment: str) -> str:
    """E.164 phone -> XTN with use PRN, equipment, country, area and local number."""
    try:
        number = phonenumbers.parse(phone, "US")
    except phonenumbers.NumberParseException:
        return ""
    national = str(number.national_number)
    if number.country_code == 1 and len(national) == 10:
        area, local = national[:3], national[3:]
    else:
        area, local = "", national
    return "^".join(["", "PRN", equipment, "", str(number.country_code), area, local]) + (
        "^^^^^" + escape(phone)
    )


def build_siu(
    *,
    appointment: Appointment,
    change: str,
    control_id: str,
    actor: User | None = None,
    via: str = "ui",
    now: dt.datetime | None = None,
) -> str:
    """The SIU message (segments separated by CR) for `change` of `appointment`."""
    trigger = TRIGGERS[change]
    location = appointment.location
    zone = location.time_zone
    start = timestamp(appointment.start, zone)
    end = timestamp(appointment.end, zone)
    minutes = str(int((appointment.end - appointment.start).total_seconds() // 60))
    status = filler_status(appointment)
    status_ce = components(status, status, "HL70278")
    appointment_id = components(str(appointment.public_id), conf.sending_application())
    atype = appointment.appointment_type
    type_ce = components(atype.code, atype.name, "L")
    practitioners = [
        row.practitioner
        for row in AppointmentPractitioner.objects.filter(appointment=appointment)
        .select_related("practitioner")
        .order_by("id")
    ]
    resources = [
        row.resource
        for row in AppointmentResource.objects.filter(appointment=appointment)
        .select_related("resource")
        .order_by("id")
    ]
    rooms = [r for r in resources if r.category == ResourceCategory.ROOM]
    equipment = [r for r in resources if r.category != ResourceCategory.ROOM]
    if appointment.room is not None and appointment.room not in rooms:
        rooms.insert(0, appointment.room)
    patient = appointment.patient
    reason = EVENT_REASONS[change]
    if change == AppointmentChange.CANCELLED and appointment.cancelled_by:
        reason = f"Cancelled by {appointment.get_cancelled_by_display().lower()}"
    entered_by = _xcn_for_user(actor, via)
    phones = [
        x
        for x in (
            _xtn(patient.phone_mobile, "CP") if patient.phone_mobile else "",
            _xtn(patient.phone_home, "PH") if patient.phone_home else "",
        )
        if x
    ]
    segments = [
        # MSH-1 is the field separator itself, so key n here is MSH-(n+1): 2 -> MSH-3 ...
        segment(
            "MSH",
            {
                1: "^~\\&",
                2: escape(conf.sending_application()),
                3: escape(conf.sending_facility() or location.code),
                4: escape(conf.receiving_application()),
                5: escape(conf.receiving_facility()),
                6: timestamp(now or timezone.now(), zone),
                8: f"SIU^{trigger}^SIU_S12",
                9: escape(control_id),
                10: conf.processing_id(),
                11: VERSION,
                14: "AL",
                15: "NE",
            },
        ),
        segment(
            "SCH",
            {
                1: appointment_id,
                2: appointment_id,
                6: components(change.upper(), reason, "L"),
                7: components("", appointment.reason) if appointment.reason else "",
                8: type_ce,
                9: minutes,
                10: MINUTES,
                11: f"^^M{minutes}^{start}^{end}",
                16: entered_by,
                17: _xtn(location.phone, "PH") if location.phone else "",
                20: entered_by,
                25: status_ce,
            },
        ),
        segment("TQ1", {1: "1", 6: f"{minutes}^min", 7: start, 8: end}),
        segment(
            "PID",
            {
                1: "1",
                3: components(patient.mrn, "", "", conf.mrn_authority(), "MR"),
                5: components(
                    patient.family_name,
                    patient.given_name,
                    patient.middle_name,
                    patient.suffix,
                    "",
                    "",
                    "L",
                ),
                7: patient.birth_date.strftime("%Y%m%d"),
                8: patient.sex_at_birth,
                13: "~".join(phones),
            },
        ),
        segment(
            "PV1",
            {
                1: "1",
                2: "O",
                3: components(location.code, rooms[0].name if rooms else "", "", location.code),
                7: _xcn_for_practitioner(practitioners[0]) if practitioners else "",
            },
        ),
        segment("RGS", {1: "1"}),
        segment(
            "AIS",
            {1: "1", 3: type_ce, 4: start, 7: minutes, 8: MINUTES, 10: status_ce},
        ),
    ]
    general = [
        (components(p.npi, f"{p.family_name}, {p.given_name}", "NPI"), "PRACTITIONER^Practitioner")
        for p in practitioners
    ] + [(components(str(r.public_id), r.name, "L"), "EQUIPMENT^Equipment") for r in equipment]
    for index, (resource_id, resource_type) in enumerate(general, start=1):
        segments.append(
            segment(
                "AIG",
                {
                    1: str(index),
                    3: resource_id,
                    4: resource_type,
                    8: start,
                    11: minutes,
                    12: MINUTES,
                    14: status_ce,
                },
            )
        )
    places = [components(location.code, r.name, "", location.code) for r in rooms] or [
        components(location.code, "", "", location.code)
    ]
    for index, place in enumerate(places, start=1):
        segments.append(
            segment(
                "AIL",
                {
                    1: str(index),
                    3: place,
                    4: components("C", "Clinic", "HL70305"),
                    6: start,
                    9: minutes,
                    10: MINUTES,
                    12: status_ce,
                },
            )
        )
    for index, practitioner in enumerate(practitioners, start=1):
        segments.append(
            segment(
                "AIP",
                {
                    1: str(index),
                    3: _xcn_for_practitioner(practitioner),
                    4: components("AT", "Attending", "HL70443"),
                    6: start,
                    9: minutes,
                    10: MINUTES,
                    12: status_ce,
                },
            )
        )
    return "\r".join(segments)
