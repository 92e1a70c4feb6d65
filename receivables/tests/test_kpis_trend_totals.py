"""With the monthly trend, the period's KPIs are summed from the monthly rows: they must equal
the period queries' figures (only the adjudication counts keep their own period query)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from receivables.kpis import compute_kpis
from receivables.tests.test_kpis import END, START, period_data  # noqa: F401 (fixture)


def _figures(report):
    return [(k.key, k.value, k.numerator, k.denominator) for k in report.kpis]


def test_kpis_with_the_trend_equal_the_kpis_without_it(period_data):  # noqa: F811
    for start, end in [(START, END), (dt.date(2026, 8, 1), END), (START, dt.date(2026, 9, 12))]:
        with_trend = compute_kpis(start=start, end=end, trend=True)
        without = compute_kpis(start=start, end=end, trend=False)
        assert with_trend.trend
        assert without.trend == []
        assert _figures(with_trend) == _figures(without)


def test_kpis_up_to_today_read_the_running_balances_with_the_same_figures(period_data):  # noqa: F811
    today = timezone.localdate()
    with_trend = compute_kpis(start=START, end=today, trend=True)
    without = compute_kpis(start=START, end=today, trend=False)
    assert _figures(with_trend) == _figures(without)
    days_in_ar = with_trend.kpis[0]
    assert days_in_ar.numerator > 0
