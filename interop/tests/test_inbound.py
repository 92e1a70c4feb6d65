"""Inbound ADT applied to patients through patients.services, answered and logged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import hl7
import pytest

from audit.models import AuditEvent
from core.models import Location
from interop.hl7_codec import split_messages
from interop.models import InboundHl7Message, InboundStatus, Transport
from interop.services import SERVICE_USERNAME, inbound_receive
from patients.models import Patient, PatientIdentifier
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

MSH = (
    "MSH|^~\\&|REG|CLINIC|PATIENTDESK|{facility}|20250301120000||ADT^{event}^ADT_A01|{cid}|P|2.5.1"
)


def adt(
    pid: str = "PID|1||A1^^^REG^MR||Doe^Jane^Q||19800102|F|||1 Main St^^Monroe^WI^53566",
    *,
    event: str = "A04",
    cid: str = "C100",
    facility: str = "main",
) -> str:
    msh = MSH.format(event=event, cid=cid, facility=facility)
    return f"{msh}\rEVN|{event}|20250301120000\r{pid}\rPV1|1|O"


def receive(text: str, location: Location | None = None) -> tuple[str, str, str]:
    result = inbound_receive(text, transport=Transport.FILE, default_location=location)
    ack = hl7.parse(result.ack)
    assert str(ack["MSA.F1"]) == result.code
    assert str(ack["MSA.F2"]) == result.control_id
    return result.code, result.control_id, result.text


def test_registers_the_microsoft_a04_sample(
    sample: Callable[[str], str], hl7_location: Location
) -> None:
    # when
    code, control_id, text = receive(sample("msfc_ADT-A04-02.hl7"), hl7_location)
    # then
    assert (code, control_id) == ("AA", "MSG00001")
    patient = Patient.objects.get(family_name="EVERYMAN")
    assert text.startswith(f"registered as MRN {patient.mrn}; ignored: PID-13 repetition 1")
    assert patient.home_location == hl7_location
    assert patient.birth_date == dt.date(1988, 8, 18)
    assert set(patient.identifiers.values_list("system", "value")) == {
        (PatientIdentifier.MRN_SYSTEM, patient.mrn),
        ("urn:patientdesk:hl7:test1", "PATID1234"),
    }


def test_registration_is_audited_as_the_interface_account(
    sample: Callable[[str], str], hl7_location: Location
) -> None:
    receive(sample("msfc_ADT-A04-02.hl7"), hl7_location)
    patient = Patient.objects.get(family_name="EVERYMAN")
    register = AuditEvent.objects.get(event="patient.hl7_register")
    assert register.username == SERVICE_USERNAME
    assert register.patient_public_id == patient.public_id
    receipt = AuditEvent.objects.get(event="hl7.receive")
    assert receipt.patient_public_id == patient.public_id
    assert "EVERYMAN" not in receipt.reason


def test_the_service_account_cannot_sign_in(hl7_location: Location) -> None:
    receive(adt(), hl7_location)
    from accounts.models import User

    account = User.objects.get(username=SERVICE_USERNAME)
    assert not account.has_usable_password()
    assert set(account.locations.all()) == set(Location.objects.filter(is_active=True))


def test_a08_updates_the_patient_registered_by_the_a04(
    sample: Callable[[str], str], hl7_location: Location
) -> None:
    # given
    receive(adt(), hl7_location)
    patient = Patient.objects.get(family_name="Doe")
    pid = "PID|1||A1^^^REG^MR||Doe^Jane^Q||19800102|F|||9 Elm St^^Madison^WI^53703"
    # when
    code, _, text = receive(adt(pid, event="A08", cid="C101"), hl7_location)
    # then
    assert code == "AA"
    assert text == f"updated MRN {patient.mrn}: address_line1, city, postal_code"
    patient.refresh_from_db()
    assert (patient.address_line1, patient.city, patient.postal_code) == (
        "9 Elm St",
        "Madison",
        "53703",
    )
    assert AuditEvent.objects.filter(
        event="patient.hl7_update", patient_public_id=patient.public_id
    )


def test_a08_adds_the_identifiers_the_patient_does_not_have_yet(hl7_location: Location) -> None:
    # given: registered with the REG number only
    receive(adt(), hl7_location)
    patient = Patient.objects.get(family_name="Doe")
    before = set(patient.identifiers.values_list("system", "value"))
    # when: an A08 carries it and a second facility's record number
    pid = "PID|1||A1^^^REG^MR~B77^^^LAB^MR||Doe^Jane^Q||19800102|F|||1 Main St^^Monroe^WI^53566"
    code, _, text = receive(adt(pid, event="A08", cid="C102"), hl7_location)
    # then
    assert code == "AA"
    assert text == f"updated MRN {patient.mrn}: 1 identifier added from PID-3"
    after = set(patient.identifiers.values_list("system", "value"))
    assert len(after - before) == 1
    ((system, value),) = after - before
    assert value == "B77"
    assert "LAB" in system
    added = AuditEvent.objects.get(event="patient.hl7_identifiers_add")
    assert added.username == SERVICE_USERNAME
    assert added.patient_public_id == patient.public_id
    assert "B77" not in str(added.fields)
    # and: a later A04 with only the new number finds the same patient
    pid_b = "PID|1||B77^^^LAB^MR||Doe^Jane^Q||19800102|F|||1 Main St^^Monroe^WI^53566"
    code, _, text = receive(adt(pid_b, cid="C103"), hl7_location)
    assert (code, text) == ("AA", f"no changes for MRN {patient.mrn}")
    assert Patient.objects.count() == 1


def test_an_a08_naming_another_patients_identifier_is_refused_whole(
    hl7_location: Location,
) -> None:
    # given: two patients, each with their own number
    receive(adt(), hl7_location)
    other = "PID|1||C5^^^LAB^MR||Roe^Rick||19700101|M|||2 Oak St^^Monroe^WI^53566"
    receive(adt(other, cid="C104"), hl7_location)
    jane = Patient.objects.get(family_name="Doe")
    # when: an update for Jane names Rick's number too
    pid = "PID|1||A1^^^REG^MR~C5^^^LAB^MR||Doe^Janet||19800102|F|||1 Main St^^Monroe^WI^53566"
    code, _, text = receive(adt(pid, event="A08", cid="C105"), hl7_location)
    # then: refused, and Jane's name is unchanged
    assert code == "AE"
    assert text.startswith("PID-3 identifiers belong to different patients")
    jane.refresh_from_db()
    assert jane.given_name == "Jane"


def test_an_a08_with_an_mrn_of_ours_the_patient_lacks_is_refused_whole(
    hl7_location: Location,
) -> None:
    # given
    receive(adt(), hl7_location)
    jane = Patient.objects.get(family_name="Doe")
    identifiers_before = set(jane.identifiers.values_list("system", "value"))
    # when: a name change, with an MRN in our own authority that Jane does not have
    pid = "PID|1||A1^^^REG^MR~M9999999^^^PATIENTDESK^MR||Doe^Janet||19800102|F"
    code, _, text = receive(adt(pid, event="A08", cid="C106"), hl7_location)
    # then: refused; neither the name nor the identifiers changed; no value in the log
    assert code == "AE"
    assert text == "PID-3 names an MRN (PATIENTDESK) that this patient does not have"
    jane.refresh_from_db()
    assert jane.given_name == "Jane"
    assert set(jane.identifiers.values_list("system", "value")) == identifiers_before
    logged = InboundHl7Message.objects.get(control_id="C106")
    assert "M9999999" not in logged.error_text
    assert not AuditEvent.objects.filter(event="patient.hl7_update").exists()


def test_the_microsoft_a08_sample_after_its_a04_changes_nothing(
    sample: Callable[[str], str], hl7_location: Location
) -> None:
    receive(sample("msfc_ADT-A04-02.hl7"), hl7_location)
    code, control_id, text = receive(sample("msfc_ADT-A08-02.hl7"), hl7_location)
    patient = Patient.objects.get(family_name="EVERYMAN")
    assert (code, control_id) == ("AA", "MSG00001")
    assert text.startswith(f"no changes for MRN {patient.mrn}")


def test_a08_for_an_unknown_patient_is_an_application_error(
    sample: Callable[[str], str], hl7_location: Location
) -> None:
    code, _, text = receive(sample("msfc_ADT-A08-02.hl7"), hl7_location)
    assert code == "AE"
    assert text == "no patient has the identifiers in PID-3; register with ADT^A04 first"
    assert not Patient.objects.exists()


def test_registers_the_v23_sample_with_a_byte_order_mark(
    sample: Callable[[str], str], hl7_location: Location
) -> None:
    code, control_id, _ = receive(sample("msfc_ADT04-28.hl7"), hl7_location)
    assert (code, control_id) == ("AA", "1270326314")
    patient = Patient.objects.get(family_name="Bixby")
    assert (patient.given_name, patient.phone_home, patient.state) == (
        "Timothy",
        "+18088675301",
        "WI",
    )


def test_a_likely_duplicate_without_a_matching_identifier_is_refused_naming_its_mrn(
    hl7_location: Location,
) -> None:
    # given
    existing = PatientFactory(
        family_name="Doe",
        given_name="Jane",
        birth_date=dt.date(1980, 1, 2),
        home_location=hl7_location,
    )
    # when
    code, _, text = receive(adt(), hl7_location)
    # then
    assert code == "AE"
    assert f"likely duplicate of MRN {existing.mrn}" in text
    assert Patient.objects.count() == 1
    log = InboundHl7Message.objects.get()
    assert str(existing.mrn) not in log.error_text  # the log names no patient
    candidate = AuditEvent.objects.get(event="hl7.duplicate_candidate")
    assert candidate.patient_public_id == existing.public_id


def test_a_duplicate_with_a_matching_identifier_is_an_update_instead(
    hl7_location: Location,
) -> None:
    # given
    existing = PatientFactory(
        family_name="Doe",
        given_name="Jane",
        birth_date=dt.date(1980, 1, 2),
        home_location=hl7_location,
    )
    PatientIdentifier.objects.create(patient=existing, system="urn:patientdesk:hl7:REG", value="A1")
    # when
    code, _, text = receive(adt(), hl7_location)
    # then
    assert code == "AA"
    assert text.startswith(f"updated MRN {existing.mrn}")
    assert Patient.objects.count() == 1


def test_our_mrn_in_pid3_finds_the_patient(hl7_location: Location) -> None:
    existing = PatientFactory(home_location=hl7_location, given_name="Ann")
    pid = f"PID|1||{existing.mrn}^^^PATIENTDESK^MR||||||||||^PRN^PH^^1^608^2013344"
    code, _, _ = receive(adt(pid, event="A08"), hl7_location)
    existing.refresh_from_db()
    assert code == "AA"
    assert existing.phone_home == "+16082013344"


def test_identifiers_of_two_different_patients_are_refused(hl7_location: Location) -> None:
    first, second = (
        PatientFactory(home_location=hl7_location),
        PatientFactory(home_location=hl7_location),
    )
    PatientIdentifier.objects.create(patient=first, system="urn:patientdesk:hl7:REG", value="A1")
    PatientIdentifier.objects.create(patient=second, system="urn:patientdesk:hl7:LAB", value="L9")
    pid = "PID|1||A1^^^REG^MR~L9^^^LAB^MR||Doe^Jane||19800102|F"
    code, _, text = receive(adt(pid, event="A08"), hl7_location)
    assert code == "AE"
    assert text.startswith("PID-3 identifiers belong to different patients (MRN ")


@pytest.mark.parametrize(
    ("pid", "expected"),
    [
        ("PID|1||A1^^^REG^MR||Doe^Jane||19801302|F", "PID-7 date of birth is not a valid date"),
        ("PID|1||A1^^^REG^MR||Doe^Jane|||F", "PID-7 date of birth is required"),
    ],
)
def test_a_bad_date_of_birth_is_an_application_error_naming_the_field(
    pid: str, expected: str, hl7_location: Location
) -> None:
    code, _, text = receive(adt(pid), hl7_location)
    assert code == "AE"
    assert text.startswith(expected)
    assert not Patient.objects.exists()
    assert InboundHl7Message.objects.get().status == InboundStatus.ERROR


def test_a_message_without_pid_is_an_application_error(hl7_location: Location) -> None:
    text = MSH.format(event="A04", cid="C7", facility="main") + "\rEVN|A04|20250301\rPV1|1|O"
    code, control_id, message = receive(text, hl7_location)
    assert (code, control_id) == ("AE", "C7")
    assert message == "the PID segment is missing: ADT^A04 needs the patient identification"


def test_an_unknown_event_is_rejected(hl7_location: Location) -> None:
    code, control_id, text = receive(adt(event="A01", cid="C8"), hl7_location)
    assert (code, control_id) == ("AR", "C8")
    assert text.startswith("MSH-9 event A01 is not supported")
    log = InboundHl7Message.objects.get()
    assert (log.status, log.ack_code, log.message_type) == (InboundStatus.REJECTED, "AR", "ADT^A01")


def test_text_that_is_not_hl7_is_rejected_and_logged() -> None:
    result = inbound_receive("GET / HTTP/1.1", transport=Transport.MLLP, peer="10.0.0.9")
    assert result.code == "AR"
    assert InboundHl7Message.objects.get().peer == "10.0.0.9"


def test_msh6_chooses_the_home_location(hl7_location: Location, riverside: Location) -> None:
    receive(adt(facility="RIVERSIDE"), hl7_location)
    assert Patient.objects.get().home_location == riverside


def test_an_unknown_msh6_falls_back_to_the_default_location(
    hl7_location: Location, riverside: Location
) -> None:
    receive(adt(facility="GHHRFacility"), riverside)
    assert Patient.objects.get().home_location == riverside


def test_the_setting_names_the_default_location(
    hl7_location: Location, riverside: Location, settings: object
) -> None:
    settings.PATIENTDESK_HL7_DEFAULT_LOCATION = "riverside"
    receive(adt(facility=""))
    assert Patient.objects.get().home_location == riverside


def test_a_resent_message_is_acknowledged_without_being_applied_twice(
    hl7_location: Location,
) -> None:
    # given
    first = receive(adt(), hl7_location)
    # when
    second = receive(adt(), hl7_location)
    # then
    assert first[0] == second[0] == "AA"
    assert second[2].startswith("already accepted earlier")
    assert Patient.objects.count() == 1
    assert AuditEvent.objects.filter(event="patient.hl7_register").count() == 1


def test_the_same_control_id_with_other_content_is_processed(hl7_location: Location) -> None:
    receive(adt(), hl7_location)
    pid = "PID|1||B2^^^REG^MR||Roe^Richard||19700304|M"
    code, _, text = receive(adt(pid), hl7_location)
    assert code == "AA"
    assert text.startswith("registered as MRN")
    assert Patient.objects.count() == 2


def test_log_keeps_no_message_content(sample: Callable[[str], str], hl7_location: Location) -> None:
    receive(sample("msfc_ADT-A04-02.hl7"), hl7_location)
    log = InboundHl7Message.objects.get()
    stored = " ".join(str(getattr(log, f.attname)) for f in InboundHl7Message._meta.fields)
    assert "EVERYMAN" not in stored
    assert "19880818" not in stored
    assert len(log.payload_sha256) == 64


def test_a_file_of_several_messages_is_answered_message_by_message(
    hl7_location: Location,
) -> None:
    text = "\n".join(
        [adt(cid="F1"), adt("PID|1||B2^^^REG^MR||Roe^Richard||19700304|M", cid="F2")]
    ).replace("\r", "\n")
    results = [inbound_receive(m, transport=Transport.FILE) for m in split_messages(text)]
    assert [(r.control_id, r.code) for r in results] == [("F1", "AA"), ("F2", "AA")]
