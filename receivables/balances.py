"""Running A/R balances (receivables.models): kept in step with the ledger, rebuilt, checked.

* `apply_postings` is called by `patientaccounts.ledger` inside the transaction of every posting
  (journal_post, journal_post_many, journal_reverse) with the transactions just written: it
  aggregates their lines in Python and applies them with one UPSERT per table and batch
  (`INSERT ... ON CONFLICT DO UPDATE SET amount = amount + excluded.amount`; on PostgreSQL one
  statement over unnest()ed arrays, on SQLite one executemany). Keys are applied in sorted order
  so that two concurrent batches lock shared balance rows in the same order (no deadlock).
* `rebuild` recomputes both tables from the ledger (and the claim rows' attributes from the
  claims, as the triggers of receivables.triggers keep them, and on PostgreSQL the KPI rollups of
  receivables.rollups) in one transaction. On PostgreSQL it first locks, in one statement, the
  ledger entries, the charge lines and the claim tables against writers and the derived tables
  outright: postings in progress finish first, new ones wait for the rebuild, none is lost, and
  when it cannot have every lock at once it lets go and tries again (no deadlock with a posting
  holding some of them). `differences` compares them with the ledger and the claims.
* `rekey_patient_balances` serves a patient merge (see receivables.models).

What counts is exactly what the ledger-scan SQL of receivables.aging sums (see there):
INSURANCE_AR entries of non-charge transactions with a claim reference, by claim reference;
PATIENT_AR entries of transactions with a patient, by (patient, service date). PATIENT_AR
entries without a patient (no posting path writes them) are not kept here: the report reads them
from the ledger (an index lookup that finds nothing).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import OperationalError, connection
from django.db import transaction as db_transaction
from django.db.models import QuerySet

from receivables import rollups, triggers
from receivables.models import ClaimArBalance, PatientArBalance

INSURANCE_AR = "insurance_ar"
PATIENT_AR = "patient_ar"
CHARGE = "charge"
ZERO = Decimal("0.00")
CENT = Decimal("0.01")
_SQLITE_CHUNK = 2000

ClaimKey = str
PatientKey = tuple[int, dt.date | None]


@dataclass(frozen=True)
class PostedLines:
    """What the balances need of one posted transaction."""

    kind: str
    claim_reference: str
    patient_id: int | None
    service_date: dt.date | None
    lines: Sequence[tuple[str, Decimal]]


def _tables() -> dict[str, str]:
    from patientaccounts.models import JournalEntry, JournalTransaction

    qn = connection.ops.quote_name
    return {
        "claim_bal": qn(ClaimArBalance._meta.db_table),
        "patient_bal": qn(PatientArBalance._meta.db_table),
        "entry": qn(JournalEntry._meta.db_table),
        "txn": qn(JournalTransaction._meta.db_table),
    }


def deltas(
    postings: Iterable[PostedLines],
) -> tuple[dict[ClaimKey, Decimal], dict[PatientKey, Decimal]]:
    """The change each posting makes to the claim and patient balances (summed per key)."""
    claims: dict[ClaimKey, Decimal] = defaultdict(lambda: ZERO)
    patients: dict[PatientKey, Decimal] = defaultdict(lambda: ZERO)
    for posted in postings:
        by_claim = posted.kind != CHARGE and posted.claim_reference > ""
        by_patient = posted.patient_id is not None
        if not (by_claim or by_patient):
            continue
        for account, amount in posted.lines:
            if account == INSURANCE_AR and by_claim:
                claims[posted.claim_reference] += amount
            elif account == PATIENT_AR and by_patient:
                patients[(posted.patient_id, posted.service_date)] += amount  # type: ignore[index]
    return dict(claims), dict(patients)


def apply_postings(postings: Iterable[PostedLines]) -> None:
    """Add the postings' amounts to the running balances (inside the posting's transaction)."""
    claims, patients = deltas(postings)
    _upsert_claims(claims)
    _upsert_patients(patients)


def _sort_key(item: tuple[PatientKey, Decimal]) -> tuple[int, bool, dt.date]:
    (patient_id, service_date), _ = item
    return (patient_id, service_date is not None, service_date or dt.date.min)


def _upsert_claims(claims: dict[ClaimKey, Decimal]) -> None:
    if not claims:
        return
    table = _tables()["claim_bal"]
    items = sorted(claims.items())
    update = f"DO UPDATE SET amount = {table}.amount + excluded.amount"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} (claim_reference, amount) "  # noqa: S608 (identifiers only)
                f"SELECT * FROM unnest(%s::varchar[], %s::numeric[]) "
                f"ON CONFLICT (claim_reference) {update}",
                [[key for key, _ in items], [amount for _, amount in items]],
            )
            return
        sql = (
            f"INSERT INTO {table} (claim_reference, amount) VALUES (%s, %s) "  # noqa: S608
            f"ON CONFLICT (claim_reference) {update}"
        )
        params = [(key, str(amount)) for key, amount in items]
        for start in range(0, len(params), _SQLITE_CHUNK):
            cursor.executemany(sql, params[start : start + _SQLITE_CHUNK])


def _upsert_patients(patients: dict[PatientKey, Decimal]) -> None:
    if not patients:
        return
    table = _tables()["patient_bal"]
    items = sorted(patients.items(), key=_sort_key)
    dated = [(pid, day, amount) for (pid, day), amount in items if day is not None]
    undated = [(pid, amount) for (pid, day), amount in items if day is None]
    update = f"DO UPDATE SET amount = {table}.amount + excluded.amount"
    dated_target = "ON CONFLICT (patient_id, service_date)"
    undated_target = "ON CONFLICT (patient_id) WHERE service_date IS NULL"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if dated:
                cursor.execute(
                    f"INSERT INTO {table} (patient_id, service_date, amount) "  # noqa: S608
                    f"SELECT * FROM unnest(%s::bigint[], %s::date[], %s::numeric[]) "
                    f"{dated_target} {update}",
                    [[row[0] for row in dated], [row[1] for row in dated], [r[2] for r in dated]],
                )
            if undated:
                cursor.execute(
                    f"INSERT INTO {table} (patient_id, service_date, amount) "  # noqa: S608
                    f"SELECT p, NULL, a FROM unnest(%s::bigint[], %s::numeric[]) AS u(p, a) "
                    f"{undated_target} {update}",
                    [[row[0] for row in undated], [row[1] for row in undated]],
                )
            return
        ops = connection.ops
        for rows, target in ((dated, dated_target), (undated, undated_target)):
            if not rows:
                continue
            if target == dated_target:
                params = [(pid, ops.adapt_datefield_value(day), str(a)) for pid, day, a in dated]
            else:
                params = [(pid, None, str(a)) for pid, a in undated]
            sql = (
                f"INSERT INTO {table} (patient_id, service_date, amount) "  # noqa: S608
                f"VALUES (%s, %s, %s) {target} {update}"
            )
            for start in range(0, len(params), _SQLITE_CHUNK):
                cursor.executemany(sql, params[start : start + _SQLITE_CHUNK])


def rekey_patient_balances(rows: QuerySet[PatientArBalance], *, patient_id: int) -> int:
    """Move the balances in `rows` to `patient_id`, adding into its rows; the rows moved."""
    moved = list(rows.exclude(patient_id=patient_id).values_list("pk", "service_date", "amount"))
    if not moved:
        return 0
    with db_transaction.atomic():
        PatientArBalance.objects.filter(pk__in=[pk for pk, _, _ in moved]).delete()
        amounts: dict[PatientKey, Decimal] = defaultdict(lambda: ZERO)
        for _, service_date, amount in moved:
            amounts[(patient_id, service_date)] += amount
        _upsert_patients(dict(amounts))
    return len(moved)


# --- rebuild and check ----------------------------------------------------------------------


def _claim_sums_sql(t: dict[str, str]) -> str:
    return (
        f"SELECT t.claim_reference AS ref, SUM(e.amount) AS amount FROM {t['entry']} e "  # noqa: S608 (identifiers only)
        f"JOIN {t['txn']} t ON t.id = e.transaction_id "
        f"WHERE e.account = '{INSURANCE_AR}' AND t.kind <> '{CHARGE}' AND t.claim_reference > '' "
        f"GROUP BY t.claim_reference"
    )


def _patient_sums_sql(t: dict[str, str]) -> str:
    return (
        f"SELECT e.patient_id, e.service_date, SUM(e.amount) FROM {t['entry']} e "  # noqa: S608 (identifiers only)
        f"WHERE e.account = '{PATIENT_AR}' AND e.patient_id IS NOT NULL "
        f"GROUP BY e.patient_id, e.service_date"
    )


@dataclass(frozen=True)
class RebuildResult:
    claims: int
    patients: int


# On PostgreSQL a rebuild first locks every table it reads, rewrites or re-triggers, in one
# statement, waiting at most this long; if it cannot get them (writers hold some), it lets go
# of everything and tries again, up to REBUILD_LOCK_ATTEMPTS times, so it never sits holding
# some tables while a posting that holds the others waits for it (a deadlock).
REBUILD_LOCK_TIMEOUT = "500ms"
REBUILD_LOCK_ATTEMPTS = 40
_LOCK_NOT_AVAILABLE = "55P03"


def rebuild(*, on_step: Callable[[str], None] | None = None) -> RebuildResult:
    """Recompute both balance tables (and, on PostgreSQL, the KPI rollups) from the ledger and
    the claims: one transaction, idempotent. On PostgreSQL it holds postings, charge entry and
    claim writes off while it runs (see REBUILD_LOCK_TIMEOUT)."""
    step = on_step or (lambda _label: None)
    for attempt in range(1, REBUILD_LOCK_ATTEMPTS + 1):
        try:
            return _rebuild(step)
        except OperationalError as exc:
            busy = getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE
            if not busy or attempt == REBUILD_LOCK_ATTEMPTS:
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _lock_everything(cursor: Any, t: dict[str, str]) -> None:
    """PostgreSQL: the sources against writers, then the derived tables, each lock waited for
    at most REBUILD_LOCK_TIMEOUT (LockNotAvailable otherwise: the caller retries)."""
    sources = [*rollups.SOURCE_TABLES, *triggers.WATCHED_TABLES]
    derived = [t["claim_bal"], t["patient_bal"], *rollups.TABLES]
    cursor.execute(
        "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
        [REBUILD_LOCK_TIMEOUT],
    )
    (before, _) = cursor.fetchone()
    cursor.execute(f"LOCK TABLE {', '.join(sources)} IN SHARE ROW EXCLUSIVE MODE")
    cursor.execute(f"LOCK TABLE {', '.join(derived)} IN ACCESS EXCLUSIVE MODE")
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])


def _rebuild(step: Callable[[str], None]) -> RebuildResult:
    t = _tables()
    names = ", ".join(triggers.ATTRIBUTES + triggers.FLAGS)
    with db_transaction.atomic(), connection.cursor() as cursor:
        step("clearing the balances")
        if connection.vendor == "postgresql":
            _lock_everything(cursor, t)
            # TRUNCATE (a new, compact file; it also holds off concurrent postings until COMMIT):
            # every row written below exists in one version, so the report's scans stay short.
            # (pending deferred foreign-key checks of this transaction would refuse TRUNCATE:
            # run them now, then defer again, as Django's foreign keys are)
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {t['claim_bal']}, {t['patient_bal']}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            cursor.execute(f"DELETE FROM {t['claim_bal']}")  # noqa: S608 (identifiers only)
            cursor.execute(f"DELETE FROM {t['patient_bal']}")  # noqa: S608 (identifiers only)
        step("summing insurance A/R per claim, with each claim's A/R attributes")
        # each claim with its ledger sum, then the references without a claim: one row version
        cursor.execute(
            f"INSERT INTO {t['claim_bal']} (claim_reference, {names}, amount) "  # noqa: S608 (identifiers only)
            f"SELECT d.*, COALESCE(l.amount, 0) FROM ({triggers.derived_rows_sql()}) d "
            f"LEFT JOIN ({_claim_sums_sql(t)}) l ON l.ref = d.claim_reference"
        )
        claims = cursor.rowcount
        cursor.execute(
            f"INSERT INTO {t['claim_bal']} (claim_reference, amount) "  # noqa: S608 (identifiers only)
            f"SELECT l.ref, l.amount FROM ({_claim_sums_sql(t)}) l "
            f"WHERE NOT EXISTS (SELECT 1 FROM {t['claim_bal']} b WHERE b.claim_reference = l.ref)"
        )
        claims += cursor.rowcount
        step("restoring the claims' triggers")
        triggers.install(connection, backfill=False)
        step("summing patient A/R per patient and service date")
        cursor.execute(
            f"INSERT INTO {t['patient_bal']} (patient_id, service_date, amount) "
            f"{_patient_sums_sql(t)}"
        )
        patients = cursor.rowcount
        if rollups.available(connection):
            step("summing the KPI rollups (cash, contractual, gross charges)")
            rollups.rebuild(connection)
        if connection.vendor == "postgresql":
            step("analyzing")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in (t["claim_bal"], t["patient_bal"], rollups.MONEY, rollups.CHARGES):
                cursor.execute(f"ANALYZE {table}")
    return RebuildResult(claims=claims, patients=patients)


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT) if value is not None else ZERO


def _nonzero(rows: Iterable[tuple[Any, ...]]) -> dict[Any, Decimal]:
    out: dict[Any, Decimal] = {}
    for *key, amount in rows:
        value = _money(amount)
        if value:
            out[tuple(key) if len(key) > 1 else key[0]] = value
    return out


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def differences(*, limit: int = 20) -> list[str]:
    """Where the running balances differ from the ledger's sums (empty: they agree); at most
    `limit` lines, each naming the balance, the running amount and the ledger's."""
    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(_claim_sums_sql(t))
        ledger_claims = _nonzero(cursor.fetchall())
        cursor.execute(f"SELECT claim_reference, amount FROM {t['claim_bal']}")  # noqa: S608
        running_claims = _nonzero(cursor.fetchall())
        cursor.execute(_patient_sums_sql(t))
        ledger_patients = _nonzero((p, _date(d), a) for p, d, a in cursor.fetchall())
        cursor.execute(f"SELECT patient_id, service_date, amount FROM {t['patient_bal']}")  # noqa: S608
        running_patients = _nonzero((p, _date(d), a) for p, d, a in cursor.fetchall())
    lost = triggers.missing(connection) + rollups.missing(connection)
    problems = [f"trigger {name} is missing" for name in lost]
    problems += _attribute_differences(t)
    problems += rollups.differences(connection)
    for label, ledger, running in (
        ("claim", ledger_claims, running_claims),
        ("patient", ledger_patients, running_patients),
    ):
        for key in sorted(set(ledger) | set(running), key=str):
            want, have = ledger.get(key, ZERO), running.get(key, ZERO)
            if want != have:
                problems.append(f"{label} {key}: running balance {have}, ledger {want}")
    return problems[:limit] if limit else problems


def _attributes(row: Sequence[Any]) -> tuple[Any, ...]:
    """receivables.triggers' ATTRIBUTES + FLAGS in one form on both databases (SQLite answers
    text, integers and floats)."""
    (claim_id, patient_id, payer_id, location_id, service, submitted, receivable, original, base,
     ever_paid, ever_not_clean) = row  # fmt: skip
    return (
        claim_id,
        patient_id,
        payer_id,
        location_id,
        _date(service),
        submitted if submitted is None or isinstance(submitted, dt.datetime) else str(submitted),
        bool(receivable),
        bool(original),
        _money(base),
        bool(ever_paid),
        bool(ever_not_clean),
    )


def _attribute_differences(t: dict[str, str]) -> list[str]:
    """Claim balance rows whose claim attributes differ from the claims' (the triggers' work,
    receivables.triggers), and claims without a row."""
    with connection.cursor() as cursor:
        cursor.execute(triggers.derived_rows_sql())
        want = {row[0]: _attributes(row[1:]) for row in cursor.fetchall()}
        columns = ", ".join(triggers.ATTRIBUTES + triggers.FLAGS)
        cursor.execute(
            f"SELECT claim_reference, {columns} FROM {t['claim_bal']} "  # noqa: S608 (identifiers only)
            f"WHERE claim_id IS NOT NULL OR receivable"
        )
        have = {row[0]: _attributes(row[1:]) for row in cursor.fetchall()}
    problems = []
    for reference in sorted(set(want) | set(have)):
        if want.get(reference) != have.get(reference):
            problems.append(
                f"claim {reference} attributes: running {have.get(reference)}, "
                f"claims {want.get(reference)}"
            )
    return problems
