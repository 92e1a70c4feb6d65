"""NPI check digit (hypothesis) and ICD-10-CM validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing import icd10
from billing.npi import npi_check_digit, npi_is_valid, why_npi_invalid
from scheduling.validators import make_npi

bodies = st.from_regex(r"[12][0-9]{8}", fullmatch=True)


@given(bodies)
def test_the_check_digit_makes_a_valid_npi(body: str) -> None:
    assert npi_is_valid(f"{body}{npi_check_digit(body)}")


@given(bodies, st.integers(min_value=1, max_value=9))
def test_any_other_last_digit_is_refused(body: str, shift: int) -> None:
    wrong = (npi_check_digit(body) + shift) % 10

    assert not npi_is_valid(f"{body}{wrong}")


@given(bodies, st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=9))
def test_a_single_mistyped_digit_is_caught(body: str, position: int, shift: int) -> None:
    npi = f"{body}{npi_check_digit(body)}"
    typo = npi[:position] + str((int(npi[position]) + shift) % 10) + npi[position + 1 :]

    assert typo[0] not in "12" or not npi_is_valid(typo)


@given(bodies)
def test_agrees_with_the_scheduling_validator(body: str) -> None:
    assert npi_is_valid(make_npi(body))


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "missing"),
        ("12345", "not 10 digits"),
        ("\uff11234567893", "not 10 digits"),
        ("3234567893", "start with 1 or 2"),
        ("1234567890", "check digit"),
    ],
)
def test_explains_why_an_npi_is_refused(value: str, words: str) -> None:
    assert words in why_npi_invalid(value)
    assert not npi_is_valid(value)


def test_the_cms_example_npi_is_valid() -> None:
    assert npi_is_valid("1234567893")
    assert why_npi_invalid("1234567893") == ""


@pytest.mark.parametrize("code", ["J45.909", "j45909", " E11.9 ", "S72.001A", "Z00.00"])
def test_accepts_billable_codes_with_or_without_the_dot(code: str) -> None:
    assert icd10.is_billable(code)


@pytest.mark.parametrize("code", ["J45", "E11", "", "XYZ", "J45.9O9", "J45;909"])
def test_refuses_categories_and_unknown_codes(code: str) -> None:
    assert not icd10.is_billable(code)


def test_stores_without_the_dot_and_shows_with_it() -> None:
    assert icd10.normalise("j45.909") == "J45909"
    assert icd10.display_code("J45909") == "J45.909"
    assert icd10.display_code("I10") == "I10"


def test_describes_a_code_from_the_library() -> None:
    assert icd10.description("J45.909") == "Unspecified asthma, uncomplicated"
    assert icd10.description("nonsense") == ""


def test_the_code_set_loads_on_first_use_not_at_start_up() -> None:
    """Importing billing (every management command and worker does) leaves the 1.4-second
    ICD-10-CM load for the first lookup; the web entry point loads it before serving."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); "
        "import django; django.setup(); "
        "import billing.services, billing.screens, billing.scrub_rules; "
        "print('simple_icd_10_cm' in sys.modules); "
        "import config.wsgi; print('simple_icd_10_cm' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PATIENTDESK_TESTING": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["False", "True"]
    assert icd10.is_billable("J45909")
