"""ICD-10-CM codes through simple-icd-10-cm: billable = a valid code that is a leaf.

Codes are stored as X12 wants them (no dot, upper-case) and shown with the dot.
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType


@lru_cache(maxsize=1)
def _icd() -> ModuleType:
    """simple-icd-10-cm, imported on first use: importing it parses the whole code set (about
    1.4 s), which every management command (cron runs some every 5 minutes) and every test
    process would otherwise pay at start-up. A web worker loads it before serving
    (config/wsgi.py, `preload`), so no request waits for it."""
    import simple_icd_10_cm

    return simple_icd_10_cm


def preload() -> None:
    """Load the code set now (web workers, before their first request)."""
    _icd()


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
        return bool(_icd().is_valid_item(value) and _icd().is_leaf(value))
    except ValueError:
        return False


def why_not_billable(code: str) -> str:
    """A plain-words reason why a code cannot be billed ('' when it can)."""
    value = normalise(code)
    if is_billable(value):
        return ""
    shown = code.strip() or "(blank)"
    try:
        known = bool(value) and value.isalnum() and _icd().is_valid_item(value)
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
        return str(_icd().get_description(value)) if _icd().is_valid_item(value) else ""
    except ValueError:
        return ""
