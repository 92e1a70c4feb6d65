"""Aging of a patient-responsibility balance (pure: no database).

Amounts carrying a service date (charges, transfers to patient responsibility, their
reversals) age from that date. Amounts without one (payments, refunds) and net credits on a
date are applied to the oldest open amounts first (FIFO). What remains is bucketed by days
since the service date; a credit left over (the patient paid more than they owe) sits in the
current bucket. The buckets always sum to the balance.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal("0.00")
BUCKETS = ("0-30", "31-60", "61-90", "91-120", "120+")
_UPPER_DAYS = (30, 60, 90, 120)


def bucket_for(*, service_date: dt.date, as_of: dt.date) -> str:
    days = (as_of - service_date).days
    for label, upper in zip(BUCKETS, _UPPER_DAYS, strict=False):
        if days <= upper:
            return label
    return BUCKETS[-1]


@dataclass(frozen=True)
class Aging:
    current: Decimal  # 0-30
    days_31_60: Decimal
    days_61_90: Decimal
    days_91_120: Decimal
    over_120: Decimal

    @property
    def total(self) -> Decimal:
        return self.current + self.days_31_60 + self.days_61_90 + self.days_91_120 + self.over_120

    def as_pairs(self) -> list[tuple[str, Decimal]]:
        values = (self.current, self.days_31_60, self.days_61_90, self.days_91_120, self.over_120)
        return list(zip(BUCKETS, values, strict=True))


def age_balance(amounts: Iterable[tuple[dt.date | None, Decimal]], *, as_of: dt.date) -> Aging:
    """Bucket signed amounts (+owed / -paid) by service date, credits applied oldest first."""
    by_date: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
    pool = ZERO  # undated amounts and net credits, to apply FIFO
    for service_date, amount in amounts:
        if service_date is None:
            pool += amount
        else:
            by_date[service_date] += amount
    open_items: list[tuple[dt.date, Decimal]] = []
    for day in sorted(by_date):
        if by_date[day] > 0:
            open_items.append((day, by_date[day]))
        else:
            pool += by_date[day]
    buckets: dict[str, Decimal] = dict.fromkeys(BUCKETS, ZERO)
    for day, owed in open_items:  # oldest first
        if pool < 0:
            applied = min(owed, -pool)
            owed -= applied
            pool += applied
        if owed:
            buckets[bucket_for(service_date=day, as_of=as_of)] += owed
    buckets[BUCKETS[0]] += pool  # an undated debit, or a credit balance left over
    return Aging(*(buckets[label] for label in BUCKETS))
