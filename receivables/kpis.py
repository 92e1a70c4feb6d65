"""Revenue-cycle KPIs over a period, each with its definition in plain words and its formula.

* Days in A/R = total A/R at the end of the period (insurance + patient, as the aging report
  counts it) ÷ average daily gross charges (gross charges ÷ days in the period). Gross charges
  are the charge lines with a date of service in the period, corrections included.
* Denial rate = claims denied in the period ÷ claims adjudicated (paid, partially paid or
  denied) in the period, from the claims' timelines.
* Clean-claim (first-pass) rate = original claims submitted in the period that were paid or
  partially paid without ever being rejected, denied, appealed or replaced ÷ original claims
  submitted in the period.
* Net collection rate = payments (cash posted in the period, net of refunds and reversals) ÷
  (gross charges - contractual adjustments posted in the period), from the ledger.

A ratio whose denominator is zero has no value (shown as "n/a"), never a division error.
Each figure is one aggregate query. With the monthly trend, the four sources are read grouped by
month once, and the period's payments, adjustments, charges and first-pass counts are the sums of
the months (exact: each row falls in one month); the adjudicated and denied claims are counted
over the period by their own query (a claim adjudicated in two months counts once).

Performance (bench/billing_ar.py, PostgreSQL, 1 M charge lines): days in A/R needs only the
aging's total, read from the running balances (receivables.aging.total_outstanding); the
first-pass counts read the claims' narrow A/R rows, whose timeline flags (ever paid, ever
rejected/denied/appealed/replaced) database triggers keep from the claim events
(receivables.triggers) instead of two EXISTS probes per claim; the statements run with JIT
compilation off (receivables.aging.without_jit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.db.models.functions import TruncMonth

from receivables.aging import (
    covers_every_posting,
    local_day_start,
    money,
    outstanding_and_first_pass,
    total_outstanding,
    without_jit,
)
from receivables.rollups import MONEY_KINDS

ADJUDICATED = ("paid", "partially_paid", "denied")
MAX_PERIOD_DAYS = 731


@dataclass(frozen=True)
class Kpi:
    key: str
    name: str
    value: Decimal | None
    unit: str  # "days" or "%"
    numerator: Decimal
    denominator: Decimal
    numerator_label: str
    denominator_label: str
    definition: str
    formula: str

    @property
    def display(self) -> str:
        if self.value is None:
            return "n/a"
        return f"{self.value} days" if self.unit == "days" else f"{self.value}%"


@dataclass(frozen=True)
class TrendPoint:
    month: dt.date
    denial_rate: Decimal | None
    clean_claim_rate: Decimal | None
    net_collection_rate: Decimal | None


@dataclass(frozen=True)
class KpiReport:
    start: dt.date
    end: dt.date
    kpis: list[Kpi]
    trend: list[TrendPoint] = field(default_factory=list)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def as_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "kpis": {
                k.key: {
                    "value": None if k.value is None else str(k.value),
                    "unit": k.unit,
                    "numerator": str(k.numerator),
                    "denominator": str(k.denominator),
                }
                for k in self.kpis
            },
        }


def ratio(numerator: Decimal, denominator: Decimal, *, percent: bool = True) -> Decimal | None:
    """numerator ÷ denominator rounded to one decimal (as a percentage when `percent`)."""
    if not denominator:
        return None
    value = numerator / denominator * (100 if percent else 1)
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return local_day_start(start), local_day_start(end + dt.timedelta(days=1))


def ledger_rows(
    *,
    start: dt.date,
    end: dt.date,
    location_ids: Collection[int] | None,
    by_month: bool,
    scan: bool = False,
) -> list[dict[str, Any]]:
    """Cash and contractual adjustments posted in the period (one query). On PostgreSQL from
    the rollup the triggers keep (receivables.rollups: a few rows per 15 minutes and location);
    on SQLite, or with `scan`, from the ledger: only the kinds of transaction that move cash or
    contractual adjustments are read, so the index on the transactions' (kind, posted_at) serves
    it, never the million charge postings."""
    from patientaccounts.models import JournalEntry, LedgerAccount
    from receivables import rollups

    since, until = _bounds(start, end)
    if (
        not scan
        and rollups.available(connection)
        and rollups.aligned(since)
        and rollups.aligned(until)
    ):
        return rollups.money_sums(
            since=since, until=until, location_ids=location_ids, by_month=by_month
        )
    entries = JournalEntry.objects.filter(
        account__in=[LedgerAccount.CASH, LedgerAccount.CONTRACTUAL],
        transaction__kind__in=MONEY_KINDS,
        transaction__posted_at__gte=since,
        transaction__posted_at__lt=until,
    )
    if location_ids is not None:
        entries = entries.filter(patient__home_location_id__in=sorted(location_ids))
    account_sum = {
        "cash": Sum("amount", filter=Q(account=LedgerAccount.CASH)),
        "contractual": Sum("amount", filter=Q(account=LedgerAccount.CONTRACTUAL)),
    }
    if not by_month:
        return [{"month": None, **entries.aggregate(**account_sum)}]
    months = entries.annotate(month=TruncMonth("transaction__posted_at")).values("month")
    return [dict(row) for row in months.annotate(**account_sum).order_by("month")]


def charge_rows(
    *,
    start: dt.date,
    end: dt.date,
    location_ids: Collection[int] | None,
    by_month: bool,
    scan: bool = False,
) -> list[dict[str, Any]]:
    """Gross charges: charge lines with a date of service in the period, corrections (negative
    lines) included (one query). On PostgreSQL from the rollup the triggers keep
    (receivables.rollups: a few rows per date and location); on SQLite, or with `scan`, an
    index-only scan of receivables migration 0002's index on the charge lines."""
    from billing.models import ChargeLine
    from receivables import rollups

    if not scan and rollups.available(connection):
        per_day = rollups.charge_sums(start=start, end=end, location_ids=location_ids)
        if not by_month:
            total = sum((gross for _, gross in per_day), Decimal("0.00")) if per_day else None
            return [{"month": None, "gross": total}]
    else:
        lines = ChargeLine.objects.filter(service_date__gte=start, service_date__lte=end)
        if location_ids is not None:
            lines = lines.filter(encounter__location_id__in=sorted(location_ids))
        if not by_month:
            return [{"month": None, **lines.aggregate(gross=Sum("amount"))}]
        # Summed per day in SQL (a date groups cheaply; truncating a million dates to months
        # does not), then per month here.
        per_day = list(lines.order_by().values_list("service_date").annotate(gross=Sum("amount")))
    months: dict[dt.date, Decimal] = {}
    for day, gross in per_day:
        month = day.replace(day=1)
        months[month] = months.get(month, Decimal("0")) + Decimal(str(gross))
    return [{"month": month, "gross": months[month]} for month in sorted(months)]


def _every_location(location_ids: Collection[int]) -> bool:
    """Whether a scope holds every location: every claim's encounter has one, so for the claims
    (not for ledger entries, some of which have no patient) it is no filter at all."""
    from core.models import Location

    return set(Location.objects.values_list("id", flat=True)) <= set(location_ids)


def adjudication_rows(
    *, start: dt.date, end: dt.date, location_ids: Collection[int] | None, by_month: bool
) -> list[dict[str, Any]]:
    """Claims adjudicated and claims denied in the period, from the timelines (one query)."""
    from billing.models import ClaimEvent
    from receivables.models import ClaimArBalance

    since, until = _bounds(start, end)
    events = ClaimEvent.objects.filter(to_status__in=ADJUDICATED, at__gte=since, at__lt=until)
    if location_ids is not None and not _every_location(location_ids):
        # the claims' locations from their narrow A/R rows (receivables.triggers keeps them equal
        # to the encounters'), not from the claims joined to the encounters
        located = ClaimArBalance.objects.filter(
            location_id__in=sorted(location_ids), claim_id__isnull=False
        )
        events = events.filter(claim_id__in=located.values("claim_id"))
    counts = {
        "adjudicated": Count("claim_id", distinct=True),
        "denied": Count("claim_id", distinct=True, filter=Q(to_status="denied")),
    }
    if not by_month:
        return [{"month": None, **events.aggregate(**counts)}]
    months = events.annotate(month=TruncMonth("at")).values("month")
    return [dict(row) for row in months.annotate(**counts).order_by("month")]


def first_pass_rows(
    *, start: dt.date, end: dt.date, location_ids: Collection[int] | None, by_month: bool
) -> list[dict[str, Any]]:
    """Original claims submitted in the period, and those of them paid on first submission
    (a paid or partially paid event, and no rejection, denial, appeal or replacement). One scan
    of the claims' narrow A/R rows (receivables.models.ClaimArBalance), whose submission time,
    location, frequency and timeline flags the triggers of receivables.triggers keep equal to
    the claims' and their timelines' (`rebuild_ar_balances --check` compares them)."""
    from receivables.models import ClaimArBalance

    since, until = _bounds(start, end)
    claims = ClaimArBalance.objects.filter(
        original=True, submitted_at__gte=since, submitted_at__lt=until
    )
    if location_ids is not None:
        claims = claims.filter(location_id__in=sorted(location_ids))
    counts = {
        "submitted": Count("id"),
        "clean": Sum(
            Case(
                When(ever_paid=True, ever_not_clean=False, then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            )
        ),
    }
    if not by_month:
        return [{"month": None, **claims.aggregate(**counts)}]
    months = claims.annotate(month=TruncMonth("submitted_at")).values("month")
    return [dict(row) for row in months.annotate(**counts).order_by("month")]


def compute_kpis(
    *,
    start: dt.date,
    end: dt.date,
    location_ids: Collection[int] | None = None,
    trend: bool = True,
) -> KpiReport:
    """The four KPIs over [start, end] (inclusive), and their monthly trend when asked."""
    if end < start:
        raise ValueError("end: the period must end on or after its start.")
    days = Decimal((end - start).days + 1)
    scope = {"start": start, "end": end, "location_ids": location_ids, "by_month": False}
    with without_jit():
        monthly = _monthly_rows(start=start, end=end, location_ids=location_ids) if trend else None
        if monthly is not None:
            # Sums and counts over the months are the period's (each row falls in one month).
            ledger = _summed(monthly["ledger"], ("cash", "contractual"))
            gross_sum = _summed(monthly["charges"], ("gross",))["gross"]
            first_pass = _summed(monthly["first_pass"], ("submitted", "clean"))
        else:
            ledger = ledger_rows(**scope)[0]  # type: ignore[arg-type]
            gross_sum = charge_rows(**scope)[0]["gross"]  # type: ignore[arg-type]
        # A claim adjudicated in two months counts once in the period: its own query.
        adjudication = adjudication_rows(**scope)[0]  # type: ignore[arg-type]
        if monthly is None and covers_every_posting(end):
            # the total A/R and the first-pass counts from one scan of the claims' rows
            since, until = _bounds(start, end)
            total_ar, first_submitted, first_clean = outstanding_and_first_pass(
                as_of=end, since=since, until=until, location_ids=location_ids
            )
            first_pass = {"submitted": first_submitted, "clean": first_clean}
        else:
            if monthly is None:
                first_pass = first_pass_rows(**scope)[0]  # type: ignore[arg-type]
            total_ar = total_outstanding(as_of=end, location_ids=location_ids)
    gross = money(gross_sum)
    cash = money(ledger["cash"])
    contractual = money(ledger["contractual"])
    daily = (gross / days).quantize(Decimal("0.01"))
    adjudicated = Decimal(adjudication["adjudicated"] or 0)
    denied = Decimal(adjudication["denied"] or 0)
    submitted = Decimal(first_pass["submitted"] or 0)
    clean = Decimal(first_pass["clean"] or 0)
    net_base = gross - contractual
    kpis = [
        Kpi(
            key="days_in_ar",
            name="Days in A/R",
            value=ratio(total_ar, daily, percent=False),
            unit="days",
            numerator=total_ar,
            denominator=daily,
            numerator_label=f"Total A/R at the end of {end.isoformat()}",
            denominator_label=f"Average daily gross charges ({gross} over {days} days)",
            definition=(
                "How many days of charges are still unpaid: the money owed to the practice at "
                "the end of the period (by payers and by patients), divided by what it charged "
                "on an average day of the period."
            ),
            formula="total A/R ÷ (gross charges in the period ÷ days in the period)",
        ),
        Kpi(
            key="denial_rate",
            name="Denial rate",
            value=ratio(denied, adjudicated),
            unit="%",
            numerator=denied,
            denominator=adjudicated,
            numerator_label="Claims denied in the period",
            denominator_label="Claims adjudicated (paid, partially paid or denied) in the period",
            definition=(
                "The share of the claims payers decided on in the period that they denied."
            ),
            formula="claims denied ÷ claims adjudicated, as a percentage",
        ),
        Kpi(
            key="clean_claim_rate",
            name="Clean-claim (first-pass) rate",
            value=ratio(clean, submitted),
            unit="%",
            numerator=clean,
            denominator=submitted,
            numerator_label=(
                "Claims paid on first submission (never rejected, denied, appealed or replaced)"
            ),
            denominator_label="Original claims submitted in the period",
            definition=(
                "The share of the claims sent in the period that the payer accepted and paid "
                "the first time, with no rejection, denial, appeal or resubmission."
            ),
            formula="claims paid on first submission ÷ claims submitted, as a percentage",
        ),
        Kpi(
            key="net_collection_rate",
            name="Net collection rate",
            value=ratio(cash, net_base),
            unit="%",
            numerator=cash,
            denominator=net_base,
            numerator_label="Payments received in the period (net of refunds and reversals)",
            denominator_label=(
                f"Gross charges ({gross}) minus contractual adjustments ({contractual})"
            ),
            definition=(
                "How much of what the practice could collect it did collect: payments divided "
                "by the charges left after the payers' contractual write-downs."
            ),
            formula="payments ÷ (gross charges - contractual adjustments), as a percentage",
        ),
    ]
    points = _trend(start=start, end=end, monthly=monthly) if monthly is not None else []
    return KpiReport(start=start, end=end, kpis=kpis, trend=points)


def _summed(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """The monthly rows' columns added up (None when there is no row, as an empty aggregate)."""
    out: dict[str, Any] = dict.fromkeys(keys)
    for row in rows:
        for key in keys:
            if row.get(key) is not None:
                value = row[key]
                if not isinstance(value, int):
                    value = Decimal(str(value))
                out[key] = value if out[key] is None else out[key] + value
    return out


def _monthly_rows(
    *, start: dt.date, end: dt.date, location_ids: Collection[int] | None
) -> dict[str, list[dict[str, Any]]]:
    """The four sources grouped by calendar month (four queries)."""
    scope = {"start": start, "end": end, "location_ids": location_ids, "by_month": True}
    return {
        "ledger": ledger_rows(**scope),  # type: ignore[arg-type]
        "charges": charge_rows(**scope),  # type: ignore[arg-type]
        "adjudication": adjudication_rows(**scope),  # type: ignore[arg-type]
        "first_pass": first_pass_rows(**scope),  # type: ignore[arg-type]
    }


def _month_key(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date().replace(day=1)
    return dt.date.fromisoformat(str(value)[:10]).replace(day=1)


def _trend(
    *, start: dt.date, end: dt.date, monthly: dict[str, list[dict[str, Any]]]
) -> list[TrendPoint]:
    """The three rates per calendar month of the period, from `_monthly_rows`."""
    ledger = {_month_key(r["month"]): r for r in monthly["ledger"]}
    charges = {_month_key(r["month"]): r for r in monthly["charges"]}
    adjudication = {_month_key(r["month"]): r for r in monthly["adjudication"]}
    first_pass = {_month_key(r["month"]): r for r in monthly["first_pass"]}
    points = []
    month = start.replace(day=1)
    while month <= end:
        money_row = ledger.get(month, {})
        gross = money(charges.get(month, {}).get("gross"))
        adj = adjudication.get(month, {})
        sub = first_pass.get(month, {})
        points.append(
            TrendPoint(
                month=month,
                denial_rate=ratio(
                    Decimal(adj.get("denied") or 0), Decimal(adj.get("adjudicated") or 0)
                ),
                clean_claim_rate=ratio(
                    Decimal(sub.get("clean") or 0), Decimal(sub.get("submitted") or 0)
                ),
                net_collection_rate=ratio(
                    money(money_row.get("cash")), gross - money(money_row.get("contractual"))
                ),
            )
        )
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return points
