from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from scheduling.validators import is_valid_npi, make_npi, npi_check_digit, validate_npi

npi_bodies = st.from_regex(r"[12][0-9]{8}", fullmatch=True)


@pytest.mark.parametrize(
    "npi",
    [
        "1234567893",  # the example in CMS's "Requirements for NPI check digit"
        "1245319599",
        "1003000126",
        "1679576722",
        "2000000002",
    ],
)
def test_accepts_npis_with_a_correct_check_digit(npi: str) -> None:
    assert is_valid_npi(npi)
    validate_npi(npi)


def test_computes_the_cms_example_check_digit() -> None:
    assert npi_check_digit("123456789") == 3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("123456789", "exactly 10 digits"),
        ("12345678930", "exactly 10 digits"),
        ("12345 7893", "exactly 10 digits"),
        ("".join(chr(0xFF10 + int(d)) for d in "1234567893"), "exactly 10 digits"),  # full-width
        ("", "exactly 10 digits"),
        ("3234567891", "starts with 1 or 2"),
        ("1234567890", "check digit"),
    ],
)
def test_rejects_an_invalid_npi_naming_the_rule(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_npi(value)
    assert not is_valid_npi(value)


def test_refuses_to_compute_a_check_digit_for_a_body_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="nine digits"):
        npi_check_digit("12345")


@given(body=npi_bodies)
def test_every_generated_npi_is_valid(body: str) -> None:
    npi = make_npi(body)
    assert len(npi) == 10
    assert npi.startswith(body)
    assert is_valid_npi(npi)


@given(body=npi_bodies, position=st.integers(min_value=1, max_value=9), delta=st.integers(1, 9))
def test_changing_any_single_digit_after_the_first_is_detected(
    body: str, position: int, delta: int
) -> None:
    npi = make_npi(body)
    digits = list(npi)
    digits[position] = str((int(digits[position]) + delta) % 10)
    assert not is_valid_npi("".join(digits))


@given(body=npi_bodies, position=st.integers(min_value=1, max_value=8))
def test_swapping_two_different_adjacent_digits_is_detected(body: str, position: int) -> None:
    npi = make_npi(body)
    if npi[position] == npi[position + 1] or {npi[position], npi[position + 1]} == {"0", "9"}:
        return  # Luhn cannot see swapping equal digits, nor the 0<->9 transposition
    swapped = npi[:position] + npi[position + 1] + npi[position] + npi[position + 2 :]
    assert not is_valid_npi(swapped)
