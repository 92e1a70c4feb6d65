"""Field rules shared by the forms, the API schemas and the importers."""

from __future__ import annotations

import datetime as dt
import functools

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils import timezone

MAX_AGE_YEARS = 130


def validate_birth_date(value: dt.date) -> None:
    today = timezone.localdate()
    if value > today:
        raise ValidationError("Date of birth cannot be in the future.", code="future")
    try:
        oldest = today.replace(year=today.year - MAX_AGE_YEARS)
    except ValueError:  # 29 February
        oldest = today.replace(year=today.year - MAX_AGE_YEARS, day=28)
    if value < oldest:
        raise ValidationError(
            f"Date of birth is more than {MAX_AGE_YEARS} years ago; check the year.", code="too_old"
        )


def normalize_phone(value: str, region: str = "US") -> str:
    """Return the E.164 form of a phone number, or raise ValidationError saying what is wrong."""
    value = (value or "").strip()
    if not value:
        return ""
    return _e164(value, region)


@functools.lru_cache(maxsize=4096)
def _e164(value: str, region: str) -> str:
    """normalize_phone's work, remembered: parsing a number is the costliest step of checking a
    registration, and a form often gives the same number two or three times (mobile, guarantor,
    emergency contact). A number that is refused raises again each time (nothing is cached)."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            "Enter a phone number such as (555) 201-3344 or +1 555 201 3344.", code="invalid"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            "This is not a valid phone number: check the area code and the number of digits.",
            code="invalid",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_phone(value: str) -> None:
    normalize_phone(value)


def validate_postal_code(value: str) -> None:
    import re

    if value and not re.fullmatch(r"\d{5}(-\d{4})?", value):
        raise ValidationError("Enter a ZIP code as 12345 or 12345-6789.", code="invalid")


def format_phone(value: str) -> str:
    """E.164 to a friendly national format for display."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
