from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from patientaccounts.aging import BUCKETS, age_balance, bucket_for

D = Decimal
AS_OF = dt.date(2026, 11, 23)

amounts = st.integers(min_value=-500_000, max_value=500_000).map(lambda c: D(c) / 100)
dates = st.one_of(st.none(), st.dates(min_value=dt.date(2024, 1, 1), max_value=AS_OF))


@given(items=st.lists(st.tuples(dates, amounts), max_size=30))
def test_property_aging_buckets_always_sum_to_the_balance(items):
    aging = age_balance(items, as_of=AS_OF)
    assert aging.total == sum((amount for _, amount in items), D("0"))


@given(items=st.lists(st.tuples(dates, amounts.filter(lambda a: a > 0)), max_size=20))
def test_property_a_balance_with_no_credits_has_no_negative_bucket(items):
    aging = age_balance(items, as_of=AS_OF)
    assert all(value >= 0 for _, value in aging.as_pairs())


def test_payments_settle_the_oldest_charges_first():
    # given: 100 from 100 days ago, 50 from 10 days ago, a payment of 120 (no service date)
    items = [
        (AS_OF - dt.timedelta(days=100), D("100.00")),
        (AS_OF - dt.timedelta(days=10), D("50.00")),
        (None, D("-120.00")),
    ]
    # when
    aging = age_balance(items, as_of=AS_OF)
    # then
    assert aging.as_pairs() == [
        ("0-30", D("30.00")),
        ("31-60", D("0.00")),
        ("61-90", D("0.00")),
        ("91-120", D("0.00")),
        ("120+", D("0.00")),
    ]


def test_a_credit_balance_sits_in_the_current_bucket():
    aging = age_balance(
        [(AS_OF - dt.timedelta(days=200), D("10.00")), (None, D("-25.00"))], as_of=AS_OF
    )
    assert aging.current == D("-15.00")
    assert aging.over_120 == D("0.00")


def test_bucket_boundaries_follow_days_since_service():
    labels = [
        bucket_for(service_date=AS_OF - dt.timedelta(days=n), as_of=AS_OF)
        for n in (0, 30, 31, 60, 61, 90, 91, 120, 121)
    ]
    assert labels == [
        "0-30",
        "0-30",
        "31-60",
        "31-60",
        "61-90",
        "61-90",
        "91-120",
        "91-120",
        "120+",
    ]
    assert BUCKETS == ("0-30", "31-60", "61-90", "91-120", "120+")
