"""SIU v2.5.1 messages: structure validated by hl7apy, fields read back with python-hl7."""

from __future__ import annotations

import datetime as dt
from typing import Any

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from accounts.models import User
from core.models import Location
from interop.hl7_out import build_siu
from patients.tests.factories import PatientFactory
from scheduling.events import AppointmentChange
from scheduling.models import Appointment, Practitioner
from scheduling.tests.factories import PractitionerFactory

from .factories import AppointmentFactory, AppointmentTypeFactory, ResourceFactory

pytestmark = pytest.mark.django_db

START = dt.datetime(2025, 3, 4, 19, 30, tzinfo=dt.UTC)  # 14:30 in New York


@pytest.fixture
def practitioner(main_clinic: Location) -> Practitioner:
    return PractitionerFactory(
        given_name="Grace", family_name="Hopper", npi="1234567893", locations=[main_clinic]
    )


@pytest.fixture
def appointment(main_clinic: Location, practitioner: Practitioner) -> Appointment:
    patient = PatientFactory(
        home_location=main_clinic,
        family_name="O'Brien",
        given_name="Zoë",
        birth_date=dt.date(1980, 1, 2),
        sex_at_birth="F",
        phone_mobile="+16082013344",
    )
    room = ResourceFactory(location=main_clinic, name="Exam 1")
    ecg = ResourceFactory(location=main_clinic, name="ECG cart", category="equipment", kind="ecg")
    return AppointmentFactory(
        patient=patient,
        location=main_clinic,
        appointment_type=AppointmentTypeFactory(code="follow-up", name="Follow-up visit"),
        start=START,
        end=START + dt.timedelta(minutes=30),
        reason="Check blood pressure | repeat^test",
        practitioners=[practitioner],
        resources=[room, ecg],
    )


def siu(appointment: Appointment, change: str, actor: User | None = None) -> str:
    return build_siu(
        appointment=appointment, change=change, control_id="PD0001", actor=actor, via="ui"
    )


@pytest.mark.parametrize(
    ("change", "trigger"),
    [
        (AppointmentChange.BOOKED, "S12"),
        (AppointmentChange.RESCHEDULED, "S13"),
        (AppointmentChange.MODIFIED, "S14"),
        (AppointmentChange.CANCELLED, "S15"),
        (AppointmentChange.NO_SHOW, "S26"),
    ],
)
def test_every_trigger_validates_against_the_v251_siu_structure(
    appointment: Appointment, change: str, trigger: str
) -> None:
    text = siu(appointment, change)
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert message.validate() is True
    assert message.msh.msh_9.to_er7() == f"SIU^{trigger}^SIU_S12"
    assert message.msh.msh_12.to_er7() == "2.5.1"
    assert [child.name for child in message.children] == [
        "MSH",
        "SCH",
        "TQ1",
        "SIU_S12_PATIENT",
        "SIU_S12_RESOURCES",
    ]


def test_resources_hold_the_type_practitioner_equipment_room_and_personnel(
    appointment: Appointment,
) -> None:
    message = parse_message(
        siu(appointment, AppointmentChange.BOOKED),
        validation_level=VALIDATION_LEVEL.STRICT,
        find_groups=True,
    )
    resources = message.siu_s12_resources
    assert resources.siu_s12_service.ais.ais_3.to_er7() == "follow-up^Follow-up visit^L"
    general = [
        g.aig.aig_3.to_er7() for g in resources.children if g.name.endswith("GENERAL_RESOURCE")
    ]
    assert general[0] == "1234567893^Hopper, Grace^NPI"
    assert general[1].endswith("^ECG cart^L")
    assert resources.siu_s12_location_resource.ail.ail_3.to_er7() == "main^Exam 1^^main"
    aip = resources.siu_s12_personnel_resource.aip
    assert aip.aip_3.to_er7().startswith(
        "1234567893^Hopper^Grace^^^^^^NPI&2.16.840.1.113883.4.6&ISO"
    )


def test_python_hl7_reads_ids_times_patient_and_status(appointment: Appointment) -> None:
    message = hl7.parse(siu(appointment, AppointmentChange.BOOKED))
    public_id = str(appointment.public_id)
    assert message["SCH.F1.R1.C1"] == public_id
    assert message["SCH.F2.R1.C1"] == public_id
    assert message["SCH.F25.R1.C1"] == "Booked"
    assert message["SCH.F7.R1.C2"] == "Check blood pressure | repeat^test"  # escaped, read back
    assert message["TQ1.F7"] == "20250304143000-0500"
    assert message["TQ1.F8"] == "20250304150000-0500"
    assert message["SCH.F11.R1.C3"] == "M30"
    assert message["SCH.F9"] == "30"
    assert message["PID.F3.R1.C1"] == appointment.patient.mrn
    assert message["PID.F3.R1.C4"] == "PATIENTDESK"
    assert (message["PID.F5.R1.C1"], message["PID.F5.R1.C2"]) == ("O'Brien", "Zoë")
    assert message["PID.F7"] == "19800102"
    assert message["PID.F13.R1.C12"] == "+16082013344"
    assert message["MSH.F10"] == "PD0001"
    assert message["PV1.F2"] == "O"


def test_a_cancellation_says_who_cancelled_and_carries_the_cancelled_status(
    appointment: Appointment,
) -> None:
    appointment.status = "cancelled"
    appointment.cancelled_by = "patient"
    appointment.cancel_reason = "feeling better"
    message = hl7.parse(siu(appointment, AppointmentChange.CANCELLED))
    assert message["SCH.F6.R1.C2"] == "Cancelled by patient"
    assert message["SCH.F25.R1.C1"] == "Cancelled"
    assert message["AIS.F10.R1.C1"] == "Cancelled"
    assert "feeling better" not in str(message)


def test_entered_by_names_the_user_who_made_the_change(
    appointment: Appointment, persona: Any
) -> None:
    user = persona("frontdesk")
    message = hl7.parse(siu(appointment, AppointmentChange.MODIFIED, actor=user))
    assert message["SCH.F20.R1.C1"] == "frontdesk"
    assert message["SCH.F16.R1.C1"] == "frontdesk"


def test_sending_and_receiving_applications_come_from_the_settings(
    appointment: Appointment, settings: object
) -> None:
    settings.PATIENTDESK_HL7_RECEIVING_APPLICATION = "RIS"
    settings.PATIENTDESK_HL7_RECEIVING_FACILITY = "HOSP"
    settings.PATIENTDESK_HL7_PROCESSING_ID = "T"
    msh = siu(appointment, AppointmentChange.BOOKED).split("\r")[0]
    assert msh.startswith("MSH|^~\\&|PATIENTDESK|main|RIS|HOSP|")
    assert msh.split("|")[10] == "T"
