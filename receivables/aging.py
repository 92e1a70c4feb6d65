"""A/R aging by payer or by patient: two SQL aggregate queries, no Python loop over claims.

What is outstanding
-------------------
* Insurance A/R, per claim: the claim's total charge, plus every ledger movement on the
  INSURANCE_AR account posted against the claim (`JournalTransaction.claim_reference` = the
  claim's patient control number; payments, adjustments and transfers to the patient are
  credits, their reversals debits). Charge postings are left out of that sum: the claim's total
  charge already counts them. A secondary or tertiary claim starts from what the earlier payers
  left: total charge minus their payments and their non-patient (CO/OA/PI/CR) adjustments.
  Claims counted: every status but void, resubmitted (its replacement counts) and closed, and
  never a frequency-8 void claim.
* Patient A/R, per patient: the PATIENT_AR ledger balance (patient responsibility), aged by the
  service date each amount carries; credits without one (payments, refunds) and net credits
  are applied to the oldest amounts first, a credit left over sits in 0-30, exactly as
  `patientaccounts.aging.age_balance` does for one patient.

Aging basis
-----------
* service: days from the claim's date of service to the as-of date.
* submission: days from the (local) date the claim was submitted; a claim not submitted by the
  as-of date ages from its date of service. Patient A/R always ages by service date.

Buckets are 0-30, 31-60, 61-90, 91-120 and 120+ days; an amount dated after the as-of date sits
in 0-30. Each amount lands in exactly one bucket, so the buckets always sum to the total.
The as-of date counts ledger postings made up to the end of that day (local time) and claims
with a date of service up to it; a claim's status is today's. For today (or later) every
posting counts and neither part reads the transactions' times (the ledger is never
post-dated: postings carry now, or an earlier time for back-dated imports).

Where the figures come from
---------------------------
* As of today (or later), every posting counts (the ledger is never post-dated), and the report
  reads the running balances that every posting keeps in the same database transaction
  (receivables.models, receivables.balances). The insurance part is one scan of the narrow
  per-claim rows (`ClaimArBalance`): each carries the ledger's INSURANCE_AR movements for the
  claim (`amount`) and, kept by database triggers on billing's tables (receivables.triggers),
  the claim's patient, payer, location, dates, whether it is receivable, and its `base` (total
  charge less the earlier payers' amounts), so a claim's outstanding balance is
  `base + amount` without reading the wide claims table. The patient part's (patient, service
  date) sums come from `PatientArBalance`. `from_ledger=True` forces the ledger scan (tests and
  checks compare the two).
* As of an earlier date the report scans the ledger (postings up to the end of that day) and
  the claims: correct, and as slow as the ledger is large (about 1.1-1.3 s at 2.5 M entries).
* The patient part applies credits oldest first per bucket rather than per item: an older
  bucket's items are all older than a newer bucket's, so what FIFO leaves in bucket k is
  min(owed in k, max(owed in k and older - credit, 0)); one aggregate over the patient
  balances, no window function or sort.
* The statements count in whole cents: the balance tables carry generated bigint columns
  (`outstanding_cents` = base + amount, `amount_cents`), summed as integers (exact, and several
  times cheaper than numerics on PostgreSQL); claims with nothing outstanding are skipped; the
  results are turned back into Decimal money (`from_cents`). The ledger-scan path multiplies
  its numerics by 100 so both paths answer in the same unit.
* By payer, each part is summed per payer and bucket before the UNION, so a few rows, not one
  per claim, reach the final grouping. By patient, both parts give one row per patient with
  the buckets as columns: cumulative sums ("in bucket k or newer") need one comparison per
  bound and no CASE chain per row, and bucket k is the difference of two of them.
* On PostgreSQL the statements run with JIT off and a larger work_mem (`without_jit`). Days in
  A/R needs only the total (`total_outstanding`).

Performance: see docs/performance.md (bench/billing_ar.py, PostgreSQL, 250,000 claims x 4
lines, 2.5 M ledger entries).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection, models
from django.utils import timezone

BUCKETS: tuple[str, ...] = ("0-30", "31-60", "61-90", "91-120", "120+")
UPPER_DAYS: tuple[int, ...] = (30, 60, 90, 120)
ZERO = Decimal("0.00")
CENT = Decimal("0.01")
PATIENT_ROW_KEY = "patient-responsibility"


class Basis(models.TextChoices):
    SERVICE = "service", "Date of service"
    SUBMISSION = "submission", "Date of submission"


class GroupBy(models.TextChoices):
    PAYER = "payer", "Payer"
    PATIENT = "patient", "Patient"


# Claim statuses whose balance is still receivable (see the module docstring).
EXCLUDED_STATUSES = ("void", "resubmitted", "closed")


def bucket_index(days: int) -> int:
    """0..4: the bucket of an amount `days` old (negative: dated after the as-of date)."""
    for index, upper in enumerate(UPPER_DAYS):
        if days <= upper:
            return index
    return len(UPPER_DAYS)


def bucket_start_dates(as_of: dt.date) -> list[dt.date]:
    """The earliest date of buckets 0..3: an amount dated on/after starts[i] is in bucket <= i."""
    return [as_of - dt.timedelta(days=upper) for upper in UPPER_DAYS]


def local_day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of `day` in the clinic's time zone (aware)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def covers_every_posting(as_of: dt.date) -> bool:
    """True when the as-of date is today or later: the ledger is never post-dated (postings
    carry now, or an earlier time for back-dated imports), so every posting counts and the
    patient part of the report need not read the transactions' times."""
    return as_of >= timezone.localdate()


def money(value: Any) -> Decimal:
    """A database sum as cents (SQLite answers floats, PostgreSQL Decimals, NULL for none)."""
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(CENT)


def from_cents(value: Any) -> Decimal:
    """A database sum of whole cents (the report statements count in cents) as money."""
    if value is None:
        return ZERO
    return (Decimal(str(value)) / 100).quantize(CENT)


@dataclass(frozen=True)
class AgingRow:
    key: str
    name: str
    buckets: tuple[Decimal, ...]
    insurance: Decimal = ZERO
    patient: Decimal = ZERO
    mrn: str = ""
    public_id: str = ""

    @property
    def total(self) -> Decimal:
        return sum(self.buckets, ZERO)

    def as_pairs(self) -> list[tuple[str, Decimal]]:
        return list(zip(BUCKETS, self.buckets, strict=True))

    def as_dict(self) -> dict[str, str]:
        out = {"key": self.key, "name": self.name}
        if self.mrn:
            out["mrn"] = self.mrn
        out.update({label: str(amount) for label, amount in self.as_pairs()})
        out["insurance"] = str(self.insurance)
        out["patient"] = str(self.patient)
        out["total"] = str(self.total)
        return out


@dataclass(frozen=True)
class AgingReport:
    as_of: dt.date
    basis: str
    by: str
    rows: list[AgingRow]
    totals: AgingRow
    row_count: int  # rows in the whole report (rows may be the first `limit` of them)
    buckets: tuple[str, ...] = field(default=BUCKETS)

    @property
    def by_patient(self) -> bool:
        return self.by == GroupBy.PATIENT

    @property
    def truncated(self) -> bool:
        return self.row_count > len(self.rows)

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON shape of `manage.py ar_aging --json` (amounts as strings)."""
        totals = self.totals.as_dict()
        totals.pop("key", None)
        totals.pop("name", None)
        return {
            "as_of": self.as_of.isoformat(),
            "basis": self.basis,
            "by": self.by,
            "buckets": list(self.buckets),
            "rows": [row.as_dict() for row in self.rows],
            "totals": totals,
        }


# --- SQL --------------------------------------------------------------------------------------


def _tables() -> dict[str, str]:
    from billing.models import Claim, ClaimPriorAdjustment, ClaimPriorPayment, Encounter, Payer
    from patientaccounts.models import JournalEntry, JournalTransaction
    from patients.models import Patient
    from receivables.models import ClaimArBalance, PatientArBalance

    qn = connection.ops.quote_name
    return {
        "claim_bal": qn(ClaimArBalance._meta.db_table),
        "patient_bal": qn(PatientArBalance._meta.db_table),
        "claim": qn(Claim._meta.db_table),
        "encounter": qn(Encounter._meta.db_table),
        "payer": qn(Payer._meta.db_table),
        "prior_payment": qn(ClaimPriorPayment._meta.db_table),
        "prior_adjustment": qn(ClaimPriorAdjustment._meta.db_table),
        "entry": qn(JournalEntry._meta.db_table),
        "txn": qn(JournalTransaction._meta.db_table),
        "patient": qn(Patient._meta.db_table),
    }


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _bucket_case(column: str, starts: Sequence[Any], params: list[Any]) -> str:
    """CASE giving 0..4 for `column` against bucket start bounds (dates or datetimes)."""
    parts = []
    for index, start in enumerate(starts):
        parts.append(f"WHEN {column} >= %s THEN {index}")
        params.append(start)
    return f"CASE {' '.join(parts)} ELSE {len(starts)} END"


def _cumulative_columns(
    amount: str, newer_than: Sequence[str], counted: str, *, integral: bool, prefix: str = "b"
) -> tuple[str, str]:
    """Bucket sums as columns without a bucket CASE per row: `newer_than[k]` says an amount
    is in bucket k or a newer one, so SUM over it is the cumulative c_k, and bucket k is
    c_k - c_(k-1) (the oldest: everything counted minus c_3). Each row costs one comparison
    per bound and integer sums. Returns (the aggregate list c0..c3 and t, the outer list of
    {prefix}0..{prefix}4 computed from them). `integral`: the amounts are whole cents in
    integer columns, so the sums are cast back to integers (PostgreSQL's SUM of a bigint is a
    numeric, and the arithmetic after it would be numeric too)."""

    def total(expression: str) -> str:
        return f"CAST(SUM({expression}) AS BIGINT)" if integral else f"SUM({expression})"

    sums = [
        f"{total(f'CASE WHEN {condition} THEN {amount} END')} AS c{k}"
        for k, condition in enumerate(newer_than)
    ]
    sums.append(f"{total(f'CASE WHEN {counted} THEN {amount} END')} AS t")
    cumulative = [f"COALESCE(c{k}, 0)" for k in range(len(newer_than))] + ["COALESCE(t, 0)"]
    columns = [f"{cumulative[0]} AS {prefix}0"]
    for k in range(1, len(cumulative)):
        columns.append(f"{cumulative[k]} - {cumulative[k - 1]} AS {prefix}{k}")
    return ", ".join(sums), ", ".join(columns)


def _prior_sql(t: dict[str, str]) -> str:
    """Per claim, what earlier payers paid and adjusted (not patient responsibility)."""
    return (
        f"SELECT claim_id, SUM(amount) AS amount FROM ("  # noqa: S608 (identifiers only)
        f"SELECT claim_id, amount FROM {t['prior_payment']} "
        f"UNION ALL SELECT claim_id, amount FROM {t['prior_adjustment']} WHERE group_code <> 'PR'"
        f") pr GROUP BY claim_id"
    )


def _insurance_sql(
    *,
    basis: str,
    as_of: dt.date,
    location_ids: Collection[int] | None,
    params: list[Any],
    balances: bool,
    by: str,
    columns: bool = False,
) -> str:
    """Receivable claims summed per payer (or per patient) and bucket: rows of payer_id,
    patient_id (one of them NULL), bucket (0..4), amount, 'ins'; with `columns`, one row per
    payer (or patient): key, b0..b4 (the buckets' sums), ins (their total)."""
    t = _tables()
    end = local_day_start(as_of + dt.timedelta(days=1))
    dates = bucket_start_dates(as_of)
    # `c` is the claim: the balance row itself when reading the running balances (it carries
    # the claim's attributes, receivables.triggers), the claims table when scanning the ledger.
    bucket_params: list[Any] = []
    by_service = _bucket_case("c.date_of_service", dates, bucket_params)
    # With `columns`: "in bucket k or newer" per bound, each with its parameters.
    newer: list[str] = []
    newer_params: list[Any] = []
    for day in dates:
        if basis == Basis.SUBMISSION:
            newer.append(
                "(CASE WHEN c.submitted_at IS NOT NULL AND c.submitted_at < %s "
                "THEN c.submitted_at >= %s ELSE c.date_of_service >= %s END)"
            )
            newer_params += [end, local_day_start(day), day]
        else:
            newer.append("c.date_of_service >= %s")
            newer_params.append(day)
    if basis == Basis.SUBMISSION:
        sub_params: list[Any] = [end]
        by_submission = _bucket_case(
            "c.submitted_at", [local_day_start(d) for d in dates], sub_params
        )
        bucket = (
            f"CASE WHEN c.submitted_at IS NOT NULL AND c.submitted_at < %s "
            f"THEN {by_submission} ELSE {by_service} END"
        )
        bucket_params = sub_params + bucket_params
    else:
        bucket = by_service
    keys = (
        "c.payer_id, CAST(NULL AS BIGINT)"
        if by == GroupBy.PAYER
        else "CAST(NULL AS BIGINT), c.patient_id"
    )
    group = "c.payer_id" if by == GroupBy.PAYER else "c.patient_id"
    if balances:
        # Every posting counts: one scan of the narrow balance rows, outstanding = base + amount.
        location = ""
        location_params: list[Any] = []
        if location_ids is not None:
            ids = sorted(location_ids) or [-1]
            location = f"AND c.location_id IN ({_placeholders(ids)}) "
            location_params = list(ids)
        params += [*(newer_params if columns else bucket_params), as_of, *location_params]
        source = (
            f"FROM {t['claim_bal']} c WHERE c.receivable AND c.date_of_service <= %s "
            f"AND c.outstanding_cents <> 0 {location}"
        )
        if columns:
            return _bucket_columns(group, "c.outstanding_cents", newer, source, integral=True)
        return (
            f"SELECT {keys}, {bucket}, SUM(c.outstanding_cents), 'ins' {source}GROUP BY {group}, 3"
        )
    credits = (
        f"SELECT t.claim_reference AS ref, SUM(e.amount) AS amount "  # noqa: S608 (identifiers and fragments built here; values are parameters)
        f"FROM {t['entry']} e JOIN {t['txn']} t ON t.id = e.transaction_id "
        f"WHERE e.account = 'insurance_ar' AND t.kind <> 'charge' "
        f"AND t.claim_reference > '' AND t.posted_at < %s GROUP BY t.claim_reference"
    )
    prior = _prior_sql(t)
    location_join = ""
    location_params = []
    if location_ids is not None:
        ids = sorted(location_ids) or [-1]
        location_join = (
            f"JOIN {t['encounter']} enc ON enc.id = c.encounter_id "
            f"AND enc.location_id IN ({_placeholders(ids)}) "
        )
        location_params = list(ids)
    excluded = list(EXCLUDED_STATUSES)
    params += [
        *(newer_params if columns else bucket_params),
        end,
        *location_params,
        *excluded,
        as_of,
    ]
    amount = "(c.total_charge - COALESCE(pr.amount, 0) + COALESCE(cr.amount, 0)) * 100"
    source = (
        f"FROM {t['claim']} c "
        f"LEFT JOIN ({credits}) cr ON cr.ref = c.patient_control_number "
        f"LEFT JOIN ({prior}) pr ON pr.claim_id = c.id "
        f"{location_join}"
        f"WHERE c.status NOT IN ({_placeholders(excluded)}) AND c.frequency_code <> '8' "
        f"AND c.date_of_service <= %s "
    )
    if columns:
        return _bucket_columns(group, amount, newer, source, integral=False)
    # Summed per group and bucket here, before the UNION: a few rows leave this scan, not one
    # per claim (GROUP BY 3: the bucket expression, whose parameters are in the SELECT list).
    return f"SELECT {keys}, {bucket}, SUM({amount}), 'ins' {source}GROUP BY {group}, 3"


def _bucket_columns(
    group: str, amount: str, newer: Sequence[str], source: str, *, integral: bool
) -> str:
    """One row per `group` value with the buckets' sums as columns b0..b4 and their total
    (`ins`), in one aggregate (see _cumulative_columns)."""
    sums, columns = _cumulative_columns(amount, newer, "true", integral=integral)
    return (
        f"SELECT x.k AS pid, {columns}, COALESCE(x.t, 0) AS ins FROM ("  # noqa: S608 (identifiers and fragments built here; values are parameters)
        f"SELECT {group} AS k, {sums} {source}GROUP BY {group}) x"
    )


def _patient_sql(
    *, as_of: dt.date, location_ids: Collection[int] | None, balances: bool, by: str
) -> tuple[str, list[Any], str, list[Any]]:
    """Patient A/R per bucket (and per patient when `by` is patient), credits applied oldest
    first (FIFO) in SQL: a WITH clause and a SELECT of (payer_id NULL, patient_id or NULL,
    bucket, amount, 'pat'), each with its parameters."""
    t = _tables()
    end = local_day_start(as_of + dt.timedelta(days=1))
    with_params: list[Any] = []
    ids = sorted(location_ids or []) or [-1]

    def location_join(alias: str) -> str:
        if location_ids is None:
            return ""
        with_params.extend(ids)
        return (
            f"JOIN {t['patient']} p ON p.id = {alias}.patient_id "
            f"AND p.home_location_id IN ({_placeholders(ids)}) "
        )

    if balances:
        # Every posting counts: the running balances hold the sums per (patient, service
        # date); PATIENT_AR lines without a patient (none are posted) come from the ledger.
        net = (
            f"SELECT b.patient_id AS pid, b.service_date AS sd, b.amount_cents AS amt "  # noqa: S608 (identifiers and fragments built here; values are parameters)
            f"FROM {t['patient_bal']} b "
            f"{location_join('b')}"
        )
        if location_ids is None:
            net += (
                f"UNION ALL SELECT e.patient_id, e.service_date, "  # noqa: S608 (identifiers only)
                f"CAST(ROUND(SUM(e.amount) * 100) AS BIGINT) "
                f"FROM {t['entry']} e WHERE e.patient_id IS NULL AND e.account = 'patient_ar' "
                f"GROUP BY e.patient_id, e.service_date"
            )
    else:
        with_params.append(end)
        net = (
            f"SELECT e.patient_id AS pid, e.service_date AS sd, SUM(e.amount) * 100 AS amt "  # noqa: S608 (identifiers and fragments built here; values are parameters)
            f"FROM {t['entry']} e "
            f"JOIN {t['txn']} t ON t.id = e.transaction_id AND t.posted_at < %s "
            f"{location_join('e')}"
            f"WHERE e.account = 'patient_ar' "
            f"GROUP BY e.patient_id, e.service_date"
        )
    # FIFO per patient over buckets instead of items: items of an older bucket are older than
    # every item of a newer one, so the credit pool applied to the oldest amounts first leaves
    # bucket k exactly min(o_k, max(cum_k - credit, 0)), cum_k being what is owed in bucket k
    # and every older bucket (the item-by-item sum telescopes to that). One aggregate over the
    # balances and arithmetic on five sums per patient: no window, no sort.
    starts = bucket_start_dates(as_of)
    with_params += starts
    sums, owed = _cumulative_columns(
        "amt",
        ["sd >= %s AND amt > 0"] * len(starts),
        "sd IS NOT NULL AND amt > 0",
        integral=balances,
        prefix="o",
    )
    pool = "SUM(CASE WHEN sd IS NULL OR amt < 0 THEN amt END)"
    if balances:
        pool = f"CAST({pool} AS BIGINT)"
    oldest_first = list(range(len(BUCKETS) - 1, -1, -1))
    remaining = []
    for position, k in enumerate(oldest_first):
        cum = " + ".join(f"o{j}" for j in oldest_first[: position + 1])
        remaining.append(f"{_least(f'o{k}', _greatest(f'({cum}) - c', '0'))} AS r{k}")
    total_owed = " + ".join(f"o{k}" for k in range(len(BUCKETS)))
    with_clause = (
        f"WITH net AS ({net}), "  # noqa: S608 (identifiers and fragments built here; values are parameters)
        # one aggregate per patient: what is owed per bucket (cumulative sums), and the pool
        f"owed AS (SELECT pid, COALESCE(p, 0) AS p, {owed} FROM ("
        f"SELECT pid, {sums}, {pool} AS p "
        f"FROM net GROUP BY pid) n), "
        f"fifo AS (SELECT pid, {', '.join(remaining)}, "
        f"p + {_least('c', total_owed)} AS leftover "
        f"FROM (SELECT owed.*, CASE WHEN p < 0 THEN -p ELSE 0 END AS c FROM owed) w)"
    )
    select_params: list[Any] = []
    # Summed per bucket (and patient) before the UNION; grouping by the constant NULL
    # column gives no row at all when there is nothing to sum, as the ungrouped rows did.
    who = "pid" if by == GroupBy.PATIENT else "CAST(NULL AS BIGINT)"
    parts = [
        f"SELECT CAST(NULL AS BIGINT) AS payer_id, {who} AS patient_id, {k} AS bucket, "  # noqa: S608 (identifiers only)
        f"SUM(r{k}) AS amount, 'pat' AS source FROM fifo GROUP BY 2"
        for k in range(len(BUCKETS))
    ]
    # A credit left over (or an undated amount owed) sits in 0-30.
    parts.append(
        f"SELECT CAST(NULL AS BIGINT), {who}, 0, SUM(leftover), 'pat' FROM fifo GROUP BY 2"  # noqa: S608 (identifiers only)
    )
    select = " UNION ALL ".join(parts)
    return with_clause, with_params, select, select_params


def _greatest(a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if connection.vendor == "postgresql" else f"MAX({a}, {b})"


def _least(a: str, b: str) -> str:
    return f"LEAST({a}, {b})" if connection.vendor == "postgresql" else f"MIN({a}, {b})"


def _bucket_sums(prefix: str = "") -> str:
    sums = [
        f"SUM(CASE WHEN {prefix}bucket = {index} THEN {prefix}amount ELSE 0 END) AS b{index}"
        for index in range(len(BUCKETS))
    ]
    sums.append(
        f"SUM(CASE WHEN {prefix}source = 'ins' THEN {prefix}amount ELSE 0 END) AS insurance"
    )
    sums.append(f"SUM(CASE WHEN {prefix}source = 'pat' THEN {prefix}amount ELSE 0 END) AS patient")
    return ", ".join(sums)


def _detail(
    *,
    by: str,
    basis: str,
    as_of: dt.date,
    location_ids: Collection[int] | None,
    from_ledger: bool,
) -> tuple[str, str, list[Any]]:
    """Both kinds of A/R as (payer_id, patient_id, bucket, amount, source) rows: the WITH
    clause, the SELECT, and the parameters of both in order."""
    balances = covers_every_posting(as_of) and not from_ledger
    with_clause, with_params, patient, patient_params = _patient_sql(
        as_of=as_of, location_ids=location_ids, balances=balances, by=by
    )
    insurance_params: list[Any] = []
    insurance = _insurance_sql(
        basis=basis,
        as_of=as_of,
        location_ids=location_ids,
        params=insurance_params,
        balances=balances,
        by=by,
    )
    params = [*with_params, *patient_params, *insurance_params]
    return with_clause, f"{patient} UNION ALL {insurance}", params


def _row(
    values: Sequence[Any], *, key: str, name: str, mrn: str = "", public_id: str = ""
) -> AgingRow:
    buckets = tuple(from_cents(v) for v in values[: len(BUCKETS)])
    insurance = from_cents(values[len(BUCKETS)])
    patient = from_cents(values[len(BUCKETS) + 1])
    return AgingRow(
        key=key,
        name=name,
        buckets=buckets,
        insurance=insurance,
        patient=patient,
        mrn=mrn,
        public_id=public_id,
    )


def _adapt(value: Any) -> Any:
    """Parameters as the backend stores them (SQLite keeps datetimes as naive UTC text)."""
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, dt.date):
        return connection.ops.adapt_datefield_value(value)
    return value


_JIT_OFF = "_receivables_jit_off"
# The by-patient aging groups tens of thousands of (patient, bucket) sums of numerics: with the
# default 4 MB PostgreSQL spills the hash aggregates to disk.
REPORT_WORK_MEM = "64MB"


@contextmanager
def without_jit() -> Iterator[None]:
    """On PostgreSQL, run the enclosed report statements with JIT compilation off and a larger
    work_mem, then put the session's settings back. The planner's cost estimates for these
    reports (CASE-heavy aggregates over 100,000s of rows) pass the JIT thresholds, and compiling
    took 300-460 ms of each 250-450 ms query: never worth it for statements this short."""
    if connection.vendor != "postgresql" or getattr(connection, _JIT_OFF, False):
        yield  # SQLite, or inside another without_jit() on this connection
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('jit'), current_setting('work_mem'), "
            "set_config('jit', 'off', false), set_config('work_mem', %s, false)",
            [REPORT_WORK_MEM],
        )
        (jit, work_mem, _, _) = cursor.fetchone()
    setattr(connection, _JIT_OFF, True)
    try:
        yield
    except BaseException:
        # An error may have aborted the transaction (its rollback restores the settings).
        with suppress(DatabaseError):
            _restore(jit, work_mem)
        raise
    else:
        _restore(jit, work_mem)
    finally:
        setattr(connection, _JIT_OFF, False)


def _restore(jit: str, work_mem: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('jit', %s, false), set_config('work_mem', %s, false)",
            [jit, work_mem],
        )


def _fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with without_jit(), connection.cursor() as cursor:
        cursor.execute(sql, [_adapt(value) for value in params])
        return list(cursor.fetchall())


def _nonzero(alias: str) -> str:
    return " OR ".join(f"{alias}.b{index} <> 0" for index in range(len(BUCKETS)))


def compute_aging(
    *,
    by: str,
    basis: str,
    as_of: dt.date,
    location_ids: Collection[int] | None = None,
    limit: int | None = None,
    from_ledger: bool = False,
) -> AgingReport:
    """The aging report (no access check: see receivables.selectors). `location_ids` limits it
    to claims of encounters at, and patients whose home is at, those locations (None: all).
    For today (or later) it reads the running balances; `from_ledger` makes it scan the ledger
    instead, as it does for earlier dates (the same figures: tests and checks compare them).
    By payer there is one row per payer plus one for patient responsibility (one query); by
    patient one row per patient with a balance, the largest first, the first `limit` of them
    (one query: the totals and the row count come along as window aggregates)."""
    if by not in GroupBy.values:
        raise ValueError(f"by: '{by}' is not one of {', '.join(GroupBy.values)}.")
    if basis not in Basis.values:
        raise ValueError(f"basis: '{basis}' is not one of {', '.join(Basis.values)}.")
    t = _tables()
    if by == GroupBy.PAYER:
        with_clause, select, params = _detail(
            by=by, basis=basis, as_of=as_of, location_ids=location_ids, from_ledger=from_ledger
        )
        sql = (
            f"{with_clause} SELECT d.payer_id, py.name, {_bucket_sums('d.')} "  # noqa: S608 (identifiers and fragments built here; values are parameters)
            f"FROM ({select}) d LEFT JOIN {t['payer']} py ON py.id = d.payer_id "
            f"GROUP BY d.payer_id, py.name"
        )
        rows = []
        for values in _fetch(sql, params):
            payer_id, payer_name = values[0], values[1]
            row = _row(
                values[2:],
                key=PATIENT_ROW_KEY if payer_id is None else str(payer_id),
                name="Patient responsibility" if payer_id is None else str(payer_name),
            )
            if any(row.buckets):
                rows.append(row)
        rows.sort(key=lambda r: (r.key == PATIENT_ROW_KEY, r.name.lower(), r.key))
        return AgingReport(
            as_of=as_of,
            basis=basis,
            by=by,
            rows=rows,
            totals=_sum_rows(rows),
            row_count=len(rows),
        )
    # By patient: both parts as one row per patient with the buckets as columns (the patient
    # part's FIFO gives them directly), added up per patient: no (patient, bucket) rows.
    balances = covers_every_posting(as_of) and not from_ledger
    with_clause, params, _, _ = _patient_sql(
        as_of=as_of, location_ids=location_ids, balances=balances, by=by
    )
    insurance = _insurance_sql(
        basis=basis,
        as_of=as_of,
        location_ids=location_ids,
        params=params,
        balances=balances,
        by=by,
        columns=True,
    )
    width = len(BUCKETS)
    fifo_columns = ", ".join(f"r{k}{' + leftover' if k == 0 else ''} AS b{k}" for k in range(width))
    fifo_total = " + ".join([*(f"r{k}" for k in range(width)), "leftover"])
    sums = ", ".join(f"SUM(u.b{k}) AS b{k}" for k in range(width))
    bucket_total = " + ".join(f"u.b{k}" for k in range(width))
    # the total is rounded to whole cents, as every figure is: the ledger scan's sums of
    # SQLite's floating-point amounts would otherwise break ties in the ordering by noise
    grouped = (
        f"SELECT u.pid AS patient_id, {sums}, SUM(u.ins) AS insurance, "  # noqa: S608 (identifiers and fragments built here; values are parameters)
        f"SUM(u.pat) AS patient, ROUND(SUM({bucket_total})) AS total FROM ("
        f"SELECT pid, {fifo_columns}, 0 AS ins, {fifo_total} AS pat FROM fifo "
        f"UNION ALL SELECT i.pid, {', '.join(f'i.b{k}' for k in range(width))}, i.ins, 0 "
        f"FROM ({insurance}) i) u GROUP BY u.pid"
    )
    columns = [*(f"g.b{index}" for index in range(len(BUCKETS))), "g.insurance", "g.patient"]
    # The totals and the row count ride along as window aggregates, computed over every row
    # before LIMIT: one pass over the data for the page.
    windows = ", ".join(f"SUM({column}) OVER ()" for column in columns)
    limit_sql = " LIMIT %s" if limit is not None else ""
    rows_sql = (
        f"{with_clause} SELECT g.patient_id, p.mrn, p.family_name, p.given_name, "  # noqa: S608 (identifiers and fragments built here; values are parameters)
        f"p.public_id, {', '.join(columns)}, COUNT(*) OVER (), {windows} "
        f"FROM ({grouped}) g JOIN {t['patient']} p ON p.id = g.patient_id "
        f"WHERE {_nonzero('g')} ORDER BY g.total DESC, p.mrn{limit_sql}"
    )
    rows = []
    width = len(columns)
    totals = _row([None] * width, key="total", name="Total")
    row_count = 0
    for values in _fetch(rows_sql, [*params, *([limit] if limit is not None else [])]):
        public_id = _uuid_text(values[4])
        rows.append(
            _row(
                values[5 : 5 + width],
                key=public_id,
                name=f"{values[2]}, {values[3]}",
                mrn=str(values[1]),
                public_id=public_id,
            )
        )
        row_count = int(values[5 + width])
        totals = _row(values[6 + width :], key="total", name="Total")
    return AgingReport(
        as_of=as_of, basis=basis, by=by, rows=rows, totals=totals, row_count=row_count
    )


def _uuid_text(value: Any) -> str:
    import uuid

    if isinstance(value, uuid.UUID):
        return str(value)
    return str(uuid.UUID(str(value)))


def _sum_rows(rows: Sequence[AgingRow]) -> AgingRow:
    width = len(BUCKETS)
    buckets = tuple(sum((row.buckets[i] for row in rows), ZERO) for i in range(width))
    return AgingRow(
        key="total",
        name="Total",
        buckets=buckets,
        insurance=sum((row.insurance for row in rows), ZERO),
        patient=sum((row.patient for row in rows), ZERO),
    )


def total_outstanding(
    *, as_of: dt.date, location_ids: Collection[int] | None = None, from_ledger: bool = False
) -> Decimal:
    """The aging report's total (insurance + patient A/R) without its buckets: what days in
    A/R needs. For today it is one statement over the claims and the running balances (the
    patient part's buckets always sum to the patients' PATIENT_AR balances, so it is their
    sum); for an earlier date (or `from_ledger`) it is the report's own total."""
    if not covers_every_posting(as_of) or from_ledger:
        report = compute_aging(
            by=GroupBy.PAYER,
            basis=Basis.SERVICE,
            as_of=as_of,
            location_ids=location_ids,
            from_ledger=from_ledger,
        )
        return report.totals.total
    t = _tables()
    patients, params = _patient_total_sql(t, location_ids)
    ids = _location_ids(location_ids)
    claim_location = f"AND c.location_id IN ({_placeholders(ids)}) " if ids else ""
    params += [as_of, *ids]
    sql = (
        f"SELECT SUM(part) FROM ({patients} "  # noqa: S608 (identifiers and fragments built here; values are parameters)
        f"UNION ALL SELECT SUM(c.outstanding_cents) FROM {t['claim_bal']} c "
        f"WHERE c.receivable AND c.date_of_service <= %s {claim_location}) parts"
    )
    return from_cents(_fetch(sql, params)[0][0])


def _location_ids(location_ids: Collection[int] | None) -> list[int]:
    """A location scope as SQL parameters ([] for none; -1 for an empty scope: no match)."""
    return [] if location_ids is None else (sorted(location_ids) or [-1])


def _patient_total_sql(
    t: dict[str, str], location_ids: Collection[int] | None
) -> tuple[str, list[Any]]:
    """SELECTs of the patients' A/R in cents, one row each part (the running balances and,
    unscoped, PATIENT_AR lines without a patient), and their parameters."""
    ids = _location_ids(location_ids)
    if ids:
        return (
            f"SELECT SUM(b.amount_cents) AS part FROM {t['patient_bal']} b "  # noqa: S608 (identifiers and fragments built here; values are parameters)
            f"JOIN {t['patient']} p ON p.id = b.patient_id "
            f"AND p.home_location_id IN ({_placeholders(ids)})",
            list(ids),
        )
    return (
        f"SELECT SUM(b.amount_cents) AS part FROM {t['patient_bal']} b "  # noqa: S608 (identifiers only)
        f"UNION ALL SELECT SUM(e.amount) * 100 FROM {t['entry']} e "
        f"WHERE e.patient_id IS NULL AND e.account = 'patient_ar'",
        [],
    )


def outstanding_and_first_pass(
    *, as_of: dt.date, since: dt.datetime, until: dt.datetime, location_ids: Collection[int] | None
) -> tuple[Decimal, int, int]:
    """For today (or later): the aging's total (as `total_outstanding`) and the first-pass
    counts of original claims submitted in [since, until) (as receivables.kpis.first_pass_rows),
    from one scan of the claims' balance rows: what the KPI page needs of the claims."""
    if not covers_every_posting(as_of):
        raise ValueError("as_of: the running balances serve today or later only.")
    t = _tables()
    patients_sql, params = _patient_total_sql(t, location_ids)
    ids = _location_ids(location_ids)
    claim_location = f"WHERE c.location_id IN ({_placeholders(ids)}) " if ids else ""
    params += [as_of, since, until, since, until, *ids]
    in_period = "c.original AND c.submitted_at >= %s AND c.submitted_at < %s"
    sql = (
        f"SELECT (SELECT SUM(part) FROM ({patients_sql}) parts), "  # noqa: S608 (identifiers and fragments built here; values are parameters)
        f"x.ins, x.submitted, x.clean FROM ("
        f"SELECT SUM(CASE WHEN c.receivable AND c.date_of_service <= %s "
        f"THEN c.outstanding_cents END) AS ins, "
        f"SUM(CASE WHEN {in_period} THEN 1 ELSE 0 END) AS submitted, "
        f"SUM(CASE WHEN {in_period} AND c.ever_paid AND NOT c.ever_not_clean "
        f"THEN 1 ELSE 0 END) AS clean "
        f"FROM {t['claim_bal']} c {claim_location}) x"
    )
    patients, insurance, submitted, clean = _fetch(sql, params)[0]
    total = from_cents(patients) + from_cents(insurance)
    return total, int(submitted or 0), int(clean or 0)


def ledger_balance(
    *, account: str, as_of: dt.date, location_ids: Collection[int] | None = None
) -> Decimal:
    """The ledger balance of `account` at the end of `as_of` (for the reconciliation line)."""
    from patientaccounts.models import JournalEntry

    entries = JournalEntry.objects.filter(
        account=account, transaction__posted_at__lt=local_day_start(as_of + dt.timedelta(days=1))
    )
    if location_ids is not None:
        entries = entries.filter(patient__home_location_id__in=list(location_ids))
    return money(entries.aggregate(total=models.Sum("amount"))["total"])
