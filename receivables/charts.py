"""Chart data for static/js/receivables.js (Chart.js), handed over with `json_script`."""

from __future__ import annotations

from typing import Any

from receivables.aging import BUCKETS, AgingReport, GroupBy
from receivables.kpis import KpiReport

MAX_BARS = 15


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def aging_chart(report: AgingReport) -> dict[str, Any]:
    """A stacked bar per payer (the patient-responsibility row included), or one bar for all
    patients: names stay in the table, not in the chart."""
    if report.by == GroupBy.PATIENT:
        rows = [report.totals]
        labels = ["All patients"]
    else:
        rows = report.rows[:MAX_BARS]
        labels = [row.name for row in rows]
    return {
        "type": "aging",
        "labels": labels,
        "datasets": [
            {"label": bucket, "data": [float(row.buckets[index]) for row in rows]}
            for index, bucket in enumerate(BUCKETS)
        ],
    }


def trend_chart(report: KpiReport) -> dict[str, Any]:
    return {
        "type": "trend",
        "labels": [point.month.strftime("%b %Y") for point in report.trend],
        "datasets": [
            {
                "label": "Denial rate (%)",
                "data": [_number(p.denial_rate) for p in report.trend],
            },
            {
                "label": "Clean-claim rate (%)",
                "data": [_number(p.clean_claim_rate) for p in report.trend],
            },
            {
                "label": "Net collection rate (%)",
                "data": [_number(p.net_collection_rate) for p in report.trend],
            },
        ],
    }
