"""National Provider Identifier check (CMS: Luhn over the 80840 prefix + the first 9 digits)."""

from __future__ import annotations

NPI_PREFIX = "80840"


def npi_check_digit(body: str) -> int:
    """The Luhn check digit for the nine identifying digits of an NPI."""
    if len(body) != 9 or not body.isascii() or not body.isdigit():
        raise ValueError("An NPI body is exactly nine digits.")
    total = 0
    for index, char in enumerate(reversed(NPI_PREFIX + body)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def npi_is_valid(value: str | None) -> bool:
    """Ten ASCII digits, starting with 1 or 2, whose last digit is the Luhn check digit."""
    value = value or ""
    return (
        len(value) == 10
        and value.isascii()
        and value.isdigit()
        and value[0] in "12"
        and npi_check_digit(value[:9]) == int(value[9])
    )


def why_npi_invalid(value: str | None) -> str:
    """A plain-words reason ('' for a valid NPI)."""
    value = value or ""
    if not value:
        return "The NPI is missing."
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return f"NPI {value} is not 10 digits."
    if value[0] not in "12":
        return f"NPI {value} must start with 1 or 2."
    if not npi_is_valid(value):
        return f"NPI {value} fails its check digit: look for a mistyped digit."
    return ""
