from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patients.mrn import MRN_START, is_valid_mrn, luhn_check_digit, make_mrn

sequences = st.integers(min_value=MRN_START, max_value=10**12)


@given(sequences)
def test_every_generated_mrn_validates(sequence: int) -> None:
    assert is_valid_mrn(make_mrn(sequence))


@given(sequences, st.data())
def test_changing_any_single_digit_is_detected(sequence: int, data: st.DataObject) -> None:
    mrn = make_mrn(sequence)
    position = data.draw(st.integers(min_value=0, max_value=len(mrn) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != mrn[position]]))
    altered = mrn[:position] + replacement + mrn[position + 1 :]
    assert not is_valid_mrn(altered)


def test_known_luhn_example_matches_the_standard() -> None:
    # 7992739871 has the check digit 3 in the usual Luhn worked example.
    assert luhn_check_digit("7992739871") == 3
    assert is_valid_mrn("79927398713")


@pytest.mark.parametrize("value", ["", "7", "abc", "1000000-1", " ", "10000O0"])
def test_rejects_values_that_are_not_mrns(value: str) -> None:
    assert not is_valid_mrn(value)
