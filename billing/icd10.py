"""ICD-10-CM codes through simple-icd-10-cm: billable = a valid code that is a leaf.

Codes are stored as X12 wants them (no dot, upper-case) and shown with the dot.
"""

from __future__ import annotations

from functools import lru_cache

import simple_icd_10_cm as icd


def normalise(code: str) -> str:
    """'j45.909 ' -> 'J45909' (the stored and X12 form)."""
    return (code or "").strip().upper().replace(".", "")


@lru_cache(maxsize=4096)
def is_billable(code: str) -> bool:
    """True for a valid ICD-10-CM code that has no children (a billable leaf)."""
    value = normalise(code)
    if not value or not value.isalnum():
        return False
    try:
        return bool(icd.is_valid_item(value) and icd.is_leaf(value))
    except ValueError:
        return False


def why_not_billable(code: str) -> str:
    """A plain-words reason why a code cannot be billed ('' when it can)."""
    value = normalise(code)
    if is_billable(value):
        return ""
    shown = code.strip() or "(blank)"
    try:
        known = bool(value) and value.isalnum() and icd.is_valid_item(value)
    except ValueError:
        known = False
    if known:
        return f"{shown} is a category, not a billable code: choose a more specific code."
    return f"{shown} is not an ICD-10-CM code."


def display_code(code: str) -> str:
    """'J45909' -> 'J45.909'."""
    value = normalise(code)
    return value if len(value) <= 3 else f"{value[:3]}.{value[3:]}"


@lru_cache(maxsize=4096)
def description(code: str) -> str:
    value = normalise(code)
    try:
        return str(icd.get_description(value)) if icd.is_valid_item(value) else ""
    except ValueError:
        return ""
