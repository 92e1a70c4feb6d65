"""Name and identifier normalisation used for search and duplicate detection."""

from __future__ import annotations

import re

from unidecode import unidecode

_NON_ALNUM = re.compile(r"[^a-z0-9]")


def fold(value: str) -> str:
    """Case- and accent-insensitive key: 'Zoë O'Brien-Núñez' -> 'zoeobriennunez'."""
    return _NON_ALNUM.sub("", unidecode(value or "").lower())


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (for range scans)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else ""


def digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")
