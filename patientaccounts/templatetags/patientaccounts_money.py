"""`{{ amount|usd }}`: $1,234.50, and a credit with a minus sign (U+2212) in front."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def usd(value: object) -> str:
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return ""
    text = f"${abs(amount):,.2f}"
    return f"\u2212{text}" if amount < 0 else text
