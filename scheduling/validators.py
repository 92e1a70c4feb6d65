"""National Provider Identifier (NPI) rules.

An NPI is 10 digits: 9 identifying digits starting with 1 or 2, then a Luhn check digit computed
over the 9 digits prefixed with 80840 (the ISO card-issuer prefix for US health providers), as
CMS specifies in "Requirements for NPI check digit".
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

NPI_PREFIX = "80840"


def npi_check_digit(body: str) -> int:
    """The check digit for the first nine digits of an NPI."""
    if len(body) != 9 or not body.isdigit():
        raise ValueError("An NPI body is exactly nine digits.")
    total = 0
    # Walk right to left over prefix + body; the digit next to the check digit is doubled.
    for index, char in enumerate(reversed(NPI_PREFIX + body)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def make_npi(body: str) -> str:
    """A full NPI from its nine identifying digits."""
    return f"{body}{npi_check_digit(body)}"


def is_valid_npi(value: str) -> bool:
    value = value or ""
    return (
        len(value) == 10
        and value.isascii()
        and value.isdigit()
        and value[0] in "12"
        and npi_check_digit(value[:9]) == int(value[9])
    )


def validate_npi(value: str) -> None:
    """Field validator: says which rule the value breaks."""
    value = value or ""
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        raise ValidationError("An NPI is exactly 10 digits, e.g. 1234567893.", code="format")
    if value[0] not in "12":
        raise ValidationError("An NPI starts with 1 or 2.", code="format")
    if npi_check_digit(value[:9]) != int(value[9]):
        raise ValidationError(
            "This NPI's check digit does not match: look for a mistyped digit.", code="checksum"
        )
