from __future__ import annotations

from decimal import Decimal

from patientaccounts.templatetags.patientaccounts_money import usd


def test_usd_filter_shows_cents_thousands_and_credits_with_a_minus_sign():
    assert usd(Decimal("1234.5")) == "$1,234.50"
    assert usd(Decimal("-25")) == "\u2212$25.00"
    assert usd(None) == ""
    assert usd("not a number") == ""
