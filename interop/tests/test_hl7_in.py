"""Reading ADT^A04/A08 (no database): the PID mapping, the problems found, and the ACK."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message, parse_segment

from interop.hl7_in import Header, Hl7Reject, Problem, build_ack, parse_adt
from patients.models import PatientIdentifier

MSH = "MSH|^~\\&|REG|CLINIC|PATIENTDESK|main|20250301120000||ADT^A04^ADT_A01|C100|P|2.5.1"


def adt(pid: str, msh: str = MSH) -> str:
    return f"{msh}\rEVN|A04|20250301120000\r{pid}\rPV1|1|O"


def problems(text: str) -> list[str]:
    return [p.text for p in parse_adt(text).patient.problems]


def test_maps_the_microsoft_a04_sample(sample: Callable[[str], str]) -> None:
    parsed = parse_adt(sample("msfc_ADT-A04-02.hl7"))
    values = parsed.patient.values
    assert parsed.event == "A04"
    assert parsed.header.control_id == "MSG00001"
    assert parsed.header.version == "2.8"
    # the display name is complete, the legal one has no given name: the complete one wins
    assert (values["family_name"], values["given_name"], values["middle_name"]) == (
        "EVERYMAN",
        "ADAM",
        "A",
    )
    assert values["suffix"] == "III"
    assert values["birth_date"] == dt.date(1988, 8, 18)
    assert values["sex_at_birth"] == "M"
    assert values["address_line1"] == "1000 Hospital Lane"
    assert (values["address_line2"], values["city"], values["state"]) == (
        "Ste. 123",
        "Ann Arbor",
        "MI",
    )
    assert values["postal_code"] == "99999"
    assert values["preferred_language"] == "Arabic"


def test_keeps_identifiers_with_their_authority_and_never_the_ssn(
    sample: Callable[[str], str],
) -> None:
    parsed = parse_adt(sample("msfc_ADT-A04-02.hl7"))
    assert parsed.patient.identifiers == [("urn:patientdesk:hl7:test1", "PATID1234")]
    assert "123456789" not in str(parsed.patient.values)


def test_ignores_malformed_phone_numbers_with_a_warning(sample: Callable[[str], str]) -> None:
    patient = parse_adt(sample("msfc_ADT-A04-02.hl7")).patient
    assert patient.errors == []
    assert "phone_home" not in patient.values
    assert any(
        "PID-13 repetition 1 is not a valid phone number" in w.text for w in patient.warnings
    )
    assert all(w.severity == "W" for w in patient.warnings)


def test_reads_the_v23_sample_with_a_byte_order_mark(sample: Callable[[str], str]) -> None:
    parsed = parse_adt(sample("msfc_ADT04-28.hl7"))
    values = parsed.patient.values
    assert parsed.header.version == "2.3"
    assert parsed.header.control_id == "1270326314"
    assert (values["family_name"], values["given_name"], values["middle_name"]) == (
        "Bixby",
        "Timothy",
        "Paul",
    )
    assert values["birth_date"] == dt.date(2008, 1, 6)
    assert values["phone_home"] == "+18088675301"
    assert (values["city"], values["state"], values["postal_code"]) == ("Monroe", "WI", "53566")
    assert ("urn:patientdesk:hl7:MR", "0000000001") in parsed.patient.identifiers
    assert ("urn:patientdesk:hl7:EHRID", "e167267c-16c9-4fe3-96ae-9cff5703e90a") in (
        parsed.patient.identifiers
    )
    assert "101-01-0001" not in str(values)  # PID-19 (SSN) is never read


def test_an_identifier_without_authority_is_scoped_to_the_sending_facility() -> None:
    parsed = parse_adt(adt("PID|1||A77||Doe^Jane||19800102|F"))
    assert parsed.patient.identifiers == [("urn:patientdesk:hl7:CLINIC", "A77")]


def test_an_iso_authority_becomes_an_oid_system() -> None:
    parsed = parse_adt(adt("PID|1||A77^^^HOSP&1.2.3.4&ISO^MR||Doe^Jane||19800102|F"))
    assert parsed.patient.identifiers == [("urn:oid:1.2.3.4", "A77")]


def test_our_own_authority_means_our_mrn() -> None:
    parsed = parse_adt(adt("PID|1||1000007^^^PATIENTDESK^MR||Doe^Jane||19800102|F"))
    assert parsed.patient.identifiers == [(PatientIdentifier.MRN_SYSTEM, "1000007")]


def test_reads_custom_encoding_characters_and_escapes() -> None:
    msh = "MSH#$~\\&#REG#CLINIC#PATIENTDESK#main#20250301##ADT$A04#C9#P#2.5.1"
    parsed = parse_adt(f"{msh}\rPID#1##A1$$$AA##O\\S\\Brien$Ann##19800102#F")
    assert parsed.patient.values["family_name"] == "O$Brien"
    assert parsed.patient.values["given_name"] == "Ann"


def test_mobile_and_email_come_from_the_telecom_equipment_type() -> None:
    pid = (
        "PID|1||A1^^^AA||Doe^Jane||19800102|F|||||"
        "^PRN^PH^^1^608^2013344~^PRN^CP^^1^608^2013345~^NET^Internet^Jane@Example.ORG"
    )
    values = parse_adt(adt(pid)).patient.values
    assert values["phone_home"] == "+16082013344"
    assert values["phone_mobile"] == "+16082013345"
    assert values["email"] == "jane@example.org"


def test_a_foreign_address_is_not_stored_and_says_so() -> None:
    pid = "PID|1||A1^^^AA||Doe^Jane||19800102|F|||1 Rue X^^Paris^^75001^FRA"
    patient = parse_adt(adt(pid)).patient
    assert "city" not in patient.values
    assert [w.text for w in patient.warnings] == ["PID-11 address is outside the United States"]


def test_a_nine_digit_zip_gets_its_dash() -> None:
    pid = "PID|1||A1^^^AA||Doe^Jane||19800102|F|||1 Main St^^Monroe^WI^535661234"
    assert parse_adt(adt(pid)).patient.values["postal_code"] == "53566-1234"


def test_rejects_a_registration_without_pid() -> None:
    text = f"{MSH}\rEVN|A04|20250301\rPV1|1|O"
    parsed = parse_adt(text)
    assert [(p.code, p.text) for p in parsed.patient.errors] == [
        ("100", "the PID segment is missing: ADT^A04 needs the patient identification")
    ]


@pytest.mark.parametrize(
    ("pid", "message"),
    [
        ("PID|1||A1^^^AA||Doe^Jane||19801302|F", "PID-7 date of birth is not a valid date"),
        ("PID|1||A1^^^AA||Doe^Jane||20991231|F", "PID-7 Date of birth cannot be in the future."),
        ("PID|1||A1^^^AA||Doe^Jane|||F", "PID-7 date of birth is required"),
        ("PID|1||A1^^^AA||Doe||19800102|F", "PID-5.2 given name is required"),
        ("PID|1||A1^^^AA||^Jane||19800102|F", "PID-5.1 family name is required"),
        ("PID|1||A1^^^AA||Doe^Jane||19800102|Q", "PID-8 administrative sex is not a code"),
        ("PID|1||A1^^^AA||Doe^Jane||19800102|", "PID-8 administrative sex is required"),
        ("PID|1||||Doe^Jane||19800102|F", "PID-3 needs at least one patient identifier"),
    ],
)
def test_names_the_field_of_each_broken_required_value(pid: str, message: str) -> None:
    found = problems(adt(pid))
    assert len(found) == 1
    assert found[0].startswith(message)


def test_problem_texts_never_repeat_the_values() -> None:
    found = problems(adt("PID|1||A1^^^AA||Doe^Jane||19801302|Q"))
    assert found
    assert not any("19801302" in text or "Doe" in text for text in found)


def test_an_update_may_leave_out_what_does_not_change() -> None:
    msh = MSH.replace("ADT^A04^ADT_A01", "ADT^A08^ADT_A01")
    parsed = parse_adt(adt("PID|1||A1^^^AA||||||||||^PRN^PH^^1^608^2013344", msh=msh))
    assert parsed.event == "A08"
    assert parsed.patient.errors == []
    assert parsed.patient.values == {"phone_home": "+16082013344"}


def test_an_update_clears_a_field_sent_as_hl7_null() -> None:
    msh = MSH.replace("ADT^A04^ADT_A01", "ADT^A08^ADT_A01")
    values = parse_adt(adt('PID|1||A1^^^AA||||||||""||""', msh=msh)).patient.values
    assert values["city"] == ""
    assert values["phone_home"] == ""


@pytest.mark.parametrize(
    ("msh", "code", "message"),
    [
        (MSH.replace("ADT^A04^ADT_A01", "ADT^A01^ADT_A01"), "201", "MSH-9 event A01"),
        (MSH.replace("ADT^A04^ADT_A01", "ORU^R01^ORU_R01"), "200", "MSH-9 message type ORU"),
        (MSH.replace("|2.5.1", "|2.2"), "203", "MSH-12 version 2.2 is not supported"),
        (MSH.replace("|C100|", "||"), "101", "MSH-10 message control id is required"),
    ],
)
def test_rejects_what_the_interface_does_not_take(msh: str, code: str, message: str) -> None:
    with pytest.raises(Hl7Reject) as caught:
        parse_adt(adt("PID|1||A1^^^AA||Doe^Jane||19800102|F", msh=msh))
    assert caught.value.problem.code == code
    assert caught.value.problem.text.startswith(message)


def test_rejects_text_that_is_not_hl7() -> None:
    with pytest.raises(Hl7Reject) as caught:
        parse_adt("hello, this is not HL7")
    assert caught.value.problem.text == "the message does not start with an MSH segment"


def test_rejects_two_messages_sent_as_one() -> None:
    text = adt("PID|1||A1^^^AA||Doe^Jane||19800102|F")
    with pytest.raises(Hl7Reject) as caught:
        parse_adt(text + "\r" + text)
    assert caught.value.problem.text.startswith("several messages arrived as one")
    assert caught.value.header is not None
    assert caught.value.header.control_id == "C100"


def test_the_event_comes_from_evn_when_msh9_has_none() -> None:
    msh = MSH.replace("ADT^A04^ADT_A01", "ADT")
    parsed = parse_adt(f"{msh}\rEVN|A08|20250301\rPID|1||A1^^^AA")
    assert parsed.event == "A08"


# --- the ACK -----------------------------------------------------------------------------------


def _header(version: str = "2.5.1") -> Header:
    return Header(
        sending_application="REG",
        sending_facility="CLINIC",
        receiving_application="PATIENTDESK",
        receiving_facility="main",
        control_id="C100",
        message_code="ADT",
        trigger_event="A04",
        processing_id="P",
        version=version,
    )


def test_ack_echoes_the_control_id_and_addresses_the_sender() -> None:
    ack = hl7.parse(build_ack(header=_header(), code="AA", text="registered as MRN 1000007"))
    assert str(ack["MSA.F1"]) == "AA"
    assert str(ack["MSA.F2"]) == "C100"
    assert str(ack["MSA.F3"]) == "registered as MRN 1000007"
    assert (str(ack["MSH.F5"]), str(ack["MSH.F6"])) == ("REG", "CLINIC")
    assert str(ack.segment("MSH")[9]) == "ACK^A04^ACK"


def test_ack_with_errors_validates_as_a_v251_ack() -> None:
    problem = Problem("PID-7 date of birth is required", "101", ("PID", 1, 7))
    text = build_ack(header=_header(), code="AE", text=problem.text, problems=[problem])
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert message.validate() is True
    assert message.msa.msa_1.value == "AE"
    assert message.err.err_2.value == "PID^1^7"
    assert message.err.err_3.value == "101^Required field missing^HL70357"
    assert message.err.err_8.value == "PID-7 date of birth is required"


def test_ack_to_a_v23_sender_uses_the_old_err_layout() -> None:
    problem = Problem("PID-7 date of birth is required", "101", ("PID", 1, 7))
    text = build_ack(header=_header("2.3"), code="AE", text=problem.text, problems=[problem])
    msh, msa, err = text.split("\r")
    assert msh.endswith("|ACK^A04|" + msh.split("|")[9] + "|P|2.3")
    assert msa == "MSA|AE|C100|PID-7 date of birth is required"
    segment = parse_segment(err, version="2.3", validation_level=VALIDATION_LEVEL.STRICT)
    assert segment.validate() is True
    assert segment.err_1.value == "PID^1^7^101&Required field missing&HL70357"


def test_ack_text_is_escaped_and_cut_to_80_characters() -> None:
    text = build_ack(header=_header(), code="AE", text="a|b^c " + "x" * 200)
    msa = text.split("\r")[1]
    assert msa.startswith("MSA|AE|C100|a\\F\\b\\S\\c x")
    assert len(hl7.parse(text)["MSA.F3"]) == 80
