"""validate_837 gives pyx12's verdict with error lines, and never raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing.x12.validate import ValidationResult, validate_837

DATA = Path(__file__).parent / "data" / "837"


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="ascii")


@pytest.mark.parametrize("name", ["uhin_837p_minimal.837", "lfh_demo.example1.x222a1.837"])
def test_accepts_valid_third_party_files(name):
    result = validate_837(read(name))

    assert result == ValidationResult(ok=True, errors=[])


def test_accepts_the_tr3_coordination_of_benefits_example_once_relabelled():
    text = read("lfh_demo.cob.example3.B.837").replace("005010X222A2", "005010X222A1")

    assert validate_837(text).ok


def test_rejects_a_parser_fixture_that_pyx12_finds_invalid_with_its_error_lines():
    result = validate_837(read("ims_x12_valid.837"))

    assert not result.ok
    assert len(result.errors) == 20
    assert any("SE count of 25" in line for line in result.errors)
    assert any(line.startswith("line 23 HI:") for line in result.errors)


def test_rejects_the_relabelled_example_with_a_wrong_component_separator():
    # given
    text = read("lfh_demo.example6.837").replace("005010X222A2", "005010X222A1")

    # when
    result = validate_837(text)

    # then
    assert not result.ok
    assert len(result.errors) == 8
    assert any("Place of Service Code (CLM05-01)" in line for line in result.errors)


def test_names_the_version_pyx12_has_no_map_for():
    result = validate_837(read("lfh_demo.example6.837"))

    assert result == ValidationResult(
        ok=False, errors=["expected 837P 005010X222A1 in GS08/ST03, found 005010X222A2"]
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "does not start with a fixed-width ISA"),
        ("hello world", "does not start with a fixed-width ISA"),
        ("ISA*00*short~", "does not start with a fixed-width ISA"),
        ("\ufeffISA*00", "byte-order mark"),
        ("ISA*00*Zoë", "non-ASCII character at offset 9"),
    ],
)
def test_refuses_unreadable_input_with_a_message(text, message):
    result = validate_837(text)

    assert not result.ok
    assert message in result.errors[0]


def test_refuses_a_transaction_that_is_not_an_837():
    text = read("uhin_837p_minimal.837").replace("ST*837*", "ST*835*")

    result = validate_837(text)

    assert result == ValidationResult(ok=False, errors=["not an 837 transaction (ST01=835)"])


def test_reports_a_missing_mandatory_segment():
    # given: the claim's CLM segment removed
    lines = read("uhin_837p_minimal.837").splitlines(keepends=True)
    text = "".join(line for line in lines if not line.startswith("CLM*"))

    # when
    result = validate_837(text)

    # then
    assert not result.ok
    assert result.errors


def test_reports_an_envelope_whose_trailers_are_missing():
    text = read("uhin_837p_minimal.837").split("SE*")[0]

    result = validate_837(text)

    assert not result.ok
    assert result.errors
