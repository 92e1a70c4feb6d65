"""Medical record numbers: a sequence number followed by a Luhn (mod 10) check digit."""

from __future__ import annotations

MRN_START = 1_000_000


def luhn_check_digit(number: str) -> int:
    total = 0
    for index, char in enumerate(reversed(number)):
        value = int(char)
        if index % 2 == 0:  # positions that get doubled once the check digit is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def make_mrn(sequence: int) -> str:
    body = str(sequence)
    return f"{body}{luhn_check_digit(body)}"


def is_valid_mrn(value: str) -> bool:
    value = (value or "").strip()
    if not value.isdigit() or len(value) < 2:
        return False
    return luhn_check_digit(value[:-1]) == int(value[-1])
