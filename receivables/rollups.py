"""Rollups of the KPIs' two largest sums, kept by database triggers on PostgreSQL.

The KPI page (receivables.kpis) needs, over a period and the user's locations, the cash and
contractual adjustments posted (a scan of every such ledger entry, joined to its transaction for
the posting time and to its patient for the home location) and the gross charges (a scan of the
charge lines, joined to their encounters for the location). At a million charge lines and 2.5
million ledger entries those two scans were half of the page's time. Two small tables hold the
same sums, so the page reads a few thousand rows instead:

* `MoneyRollup`: cash and contractual cents per 15-minute UTC bucket of the transaction's
  posting time and per location (the home location, now, of the entry's patient; NULL when the
  entry has no patient), over the entries the KPI counts (accounts cash and contractual of the
  money-moving transaction kinds, `MONEY_KINDS`). Every zone's local midnight is on a
  15-minute boundary of UTC (offsets are whole quarter hours), so a period of local days is a
  range of whole buckets; `aligned()` checks it and the KPI scans the ledger when it is not.
* `ChargeRollup`: gross charge cents per date of service and location (the charge line's
  encounter's).

Both tables are insert-only "delta" rows: a trigger adds a row per (bucket or date, location)
that a statement changed, with the signed change; the figure is the sum of the rows. No row is
ever updated, so concurrent postings never wait on each other here (an UPSERT would make every
835 and every front-desk payment at a location queue on the same row). `rebuild` (called by
`rebuild_ar_balances`) rewrites them compact; `compact` merges the rows of older periods while
postings go on (one statement: DELETE ... RETURNING into INSERT, which removes only rows its
snapshot sees).

Triggers (PostgreSQL only; SQLite, the single-machine `make run` database, reads the scans,
which are fast at its sizes):

* ledger entries: INSERT (statement-level, transition table: one grouped INSERT per statement,
  COPY included) and UPDATE (a patient merge re-keys entries to the surviving record: minus at
  the old patient's location, plus at the new one); the ledger refuses every other change
  (patientaccounts' append-only trigger). DELETE (none happen) subtracts.
* patients: a row-level trigger when the home location changes moves that patient's sums from
  the old location to the new. It first takes a SHARE lock on the ledger entries' table, which
  waits for ledger writers in progress to commit and holds new ones off until this transaction
  ends, so no entry is counted at a location its patient has just left (home location changes
  are rare and short; an 835 in progress makes that edit wait for it).
* charge lines: INSERT, UPDATE, DELETE (statement-level); encounters: a row-level trigger when
  the location changes, with the same SHARE lock on the charge lines.

The statement-level functions run their grouped INSERT through plpgsql's EXECUTE, so each is
planned for the rows its statement wrote: a plan cached by the first call (a two-row posting,
say) would scan the transactions table once per entry for a 100,000-entry 835 (measured: 11.6 s
instead of a few milliseconds, and 835 ingest at 1,100 instead of 3,000 claim payments/s).

A statement whose rows cannot be placed (an entry inserted before its transaction, a charge line
before its encounter: the foreign keys are deferred) is refused with an error rather than
counted wrong. `differences` compares both tables with the scans (`rebuild_ar_balances --check`).
"""

# DDL and SQL built from this module's constant identifiers only; no value is ever formatted in.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

MONEY = "receivables_moneyrollup"
CHARGES = "receivables_chargerollup"
ENTRY = "patientaccounts_journalentry"
TXN = "patientaccounts_journaltransaction"
PATIENT = "patients_patient"
CHARGE_LINE = "billing_chargeline"
ENCOUNTER = "billing_encounter"

# The ledger entries the KPIs count (receivables.kpis.ledger_rows): these accounts, posted by
# transactions of these kinds.
MONEY_ACCOUNTS = ("cash", "contractual")
MONEY_KINDS = (
    "insurance_payment",
    "patient_payment",
    "contractual_adjustment",
    "refund",
    "reversal",
)
BUCKET_SECONDS = 15 * 60
# How long a home-location (or encounter-location) move waits for ledger (charge) writers in
# progress before it gives up with an error: while it waits, new postings queue behind it.
MOVE_LOCK_TIMEOUT = "5s"
_BUCKET = "date_bin('15 minutes', {t}.posted_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')"

_TRIGGERS = (
    # (name, table)
    ("recv_money_entry_ins", ENTRY),
    ("recv_money_entry_upd", ENTRY),
    ("recv_money_entry_del", ENTRY),
    ("recv_money_patient_moved", PATIENT),
    ("recv_charge_line_ins", CHARGE_LINE),
    ("recv_charge_line_upd", CHARGE_LINE),
    ("recv_charge_line_del", CHARGE_LINE),
    ("recv_charge_encounter_moved", ENCOUNTER),
)
_FUNCTIONS = (
    "recv_money_entry_sync",
    "recv_money_patient_moved",
    "recv_charge_line_sync",
    "recv_charge_encounter_moved",
)


def available(connection: Any) -> bool:
    """Whether the rollups are kept on `connection`'s database (PostgreSQL)."""
    return bool(connection.vendor == "postgresql")


def aligned(moment: dt.datetime) -> bool:
    """Whether `moment` is a bucket boundary (every real zone's local midnight is)."""
    return int(moment.timestamp()) % BUCKET_SECONDS == 0 and moment.microsecond == 0


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _cents(expression: str) -> str:
    return f"CAST(COALESCE({expression}, 0) * 100 AS BIGINT)"


def _money_sums(source: str, *, where: str = "", location: str = "p.home_location_id") -> str:
    """(bucket, location, cash cents, contractual cents) of the counted entries in `source`
    (aliased e), grouped; a bucket of NULL marks entries whose transaction or patient is not
    there."""
    cash, contractual = (
        _cents(f"SUM(e.amount) FILTER (WHERE e.account = '{account}')")
        for account in MONEY_ACCOUNTS
    )
    # NULL bucket: the entry's transaction, or its patient, is not there (deferred foreign keys)
    bucket = (
        f"CASE WHEN t.id IS NULL OR (e.patient_id IS NOT NULL AND p.id IS NULL) THEN NULL "
        f"ELSE {_BUCKET.format(t='t')} END"
    )
    return (
        f"SELECT {bucket} AS bucket, {location} AS location_id, "
        f"{cash} AS cash, {contractual} AS contr "
        f"FROM {source} LEFT JOIN {TXN} t ON t.id = e.transaction_id "
        f"LEFT JOIN {PATIENT} p ON p.id = e.patient_id "
        f"WHERE e.account IN ({_in(MONEY_ACCOUNTS)}) "
        f"AND (t.id IS NULL OR t.kind IN ({_in(MONEY_KINDS)})){where} "
        f"GROUP BY 1, 2"
    )


def _charge_sums(source: str, *, where: str = "") -> str:
    """(service date, location, gross cents) of the charge lines in `source` (aliased l),
    grouped; a location of NULL marks lines whose encounter is not there."""
    return (
        f"SELECT l.service_date, enc.location_id, {_cents('SUM(l.amount)')} AS gross "
        f"FROM {source} LEFT JOIN {ENCOUNTER} enc ON enc.id = l.encounter_id{where} "
        f"GROUP BY 1, 2"
    )


def _apply_money(source: str, sign: str, *, where: str = "") -> str:
    # EXECUTE: planned for this statement's rows, never with a plan cached for another call
    return f"""
    EXECUTE $q$WITH g AS ({_money_sums(source, where=where)}),
    added AS (
        INSERT INTO {MONEY} (bucket, location_id, cash_cents, contractual_cents)
        SELECT bucket, location_id, {sign}cash, {sign}contr FROM g
        WHERE bucket IS NOT NULL AND (cash <> 0 OR contr <> 0))
    SELECT EXISTS (SELECT 1 FROM g WHERE bucket IS NULL)$q$ INTO orphans;
    IF orphans THEN
        RAISE EXCEPTION 'receivables rollups: a ledger entry was written before its %',
            'transaction or its patient';
    END IF;"""


def _apply_charges(source: str, sign: str, *, where: str = "") -> str:
    return f"""
    EXECUTE $q$WITH g AS ({_charge_sums(source, where=where)}),
    added AS (
        INSERT INTO {CHARGES} (service_date, location_id, gross_cents)
        SELECT service_date, location_id, {sign}gross FROM g
        WHERE location_id IS NOT NULL AND gross <> 0)
    SELECT EXISTS (SELECT 1 FROM g WHERE location_id IS NULL)$q$ INTO orphans;
    IF orphans THEN
        RAISE EXCEPTION 'receivables rollups: a charge line was written before its encounter';
    END IF;"""


def _changed(other: str) -> str:
    """A charge line whose counted columns differ from its other version `other`."""
    return (
        f" WHERE (l.amount, l.service_date, l.encounter_id) IS DISTINCT FROM "
        f"({other}.amount, {other}.service_date, {other}.encounter_id)"
    )


def _statement_sync(
    function: str, apply: Callable[..., str], alias: str, changed: Callable[[str], str]
) -> str:
    """A statement-level trigger function: an INSERT adds its rows, a DELETE subtracts them, an
    UPDATE subtracts the old versions and adds the new ones of the rows `changed` (given the
    other version's alias) picks."""
    old_rows = apply(
        f"old_rows {alias} JOIN new_rows n2 ON n2.id = {alias}.id", "-", where=changed("n2")
    )
    new_rows = apply(
        f"new_rows {alias} JOIN old_rows o2 ON o2.id = {alias}.id", "", where=changed("o2")
    )
    return f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    orphans boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        {apply(f"new_rows {alias}", "")}
    ELSIF TG_OP = 'DELETE' THEN
        {apply(f"old_rows {alias}", "-")}
    ELSE
        {old_rows}
        {new_rows}
    END IF;
    RETURN NULL;
END $$"""


def _functions() -> list[str]:
    # an entry update: only rows whose patient changed move (the ledger allows no other change)
    money_sync = _statement_sync(
        "recv_money_entry_sync",
        _apply_money,
        "e",
        lambda other: f" AND e.patient_id IS DISTINCT FROM {other}.patient_id",
    )
    patient_moved = f"""
CREATE OR REPLACE FUNCTION recv_money_patient_moved() RETURNS trigger
LANGUAGE plpgsql SET jit = off SET lock_timeout = '{MOVE_LOCK_TIMEOUT}' AS $$
BEGIN
    LOCK TABLE {ENTRY} IN SHARE MODE;
    INSERT INTO {MONEY} (bucket, location_id, cash_cents, contractual_cents)
    SELECT x.bucket, m.location_id, m.sign * x.cash, m.sign * x.contr
    FROM ({_money_sums(f"{ENTRY} e", where=" AND e.patient_id = NEW.id", location="NULL")}) x
    CROSS JOIN (VALUES (OLD.home_location_id, -1), (NEW.home_location_id, 1))
        AS m (location_id, sign)
    WHERE x.bucket IS NOT NULL AND (x.cash <> 0 OR x.contr <> 0);
    RETURN NULL;
END $$"""
    charge_sync = _statement_sync("recv_charge_line_sync", _apply_charges, "l", _changed)
    encounter_moved = f"""
CREATE OR REPLACE FUNCTION recv_charge_encounter_moved() RETURNS trigger
LANGUAGE plpgsql SET jit = off SET lock_timeout = '{MOVE_LOCK_TIMEOUT}' AS $$
BEGIN
    LOCK TABLE {CHARGE_LINE} IN SHARE MODE;
    INSERT INTO {CHARGES} (service_date, location_id, gross_cents)
    SELECT x.service_date, m.location_id, m.sign * x.gross
    FROM (SELECT l.service_date, {_cents("SUM(l.amount)")} AS gross FROM {CHARGE_LINE} l
          WHERE l.encounter_id = NEW.id GROUP BY 1) x
    CROSS JOIN (VALUES (OLD.location_id, -1), (NEW.location_id, 1)) AS m (location_id, sign)
    WHERE x.gross <> 0;
    RETURN NULL;
END $$"""
    return [money_sync, patient_moved, charge_sync, encounter_moved]


def _install_statements() -> list[str]:
    statements = [
        f"CREATE INDEX IF NOT EXISTS recv_money_rollup_bucket_idx ON {MONEY} (bucket) "
        f"INCLUDE (location_id, cash_cents, contractual_cents)",
        f"CREATE INDEX IF NOT EXISTS recv_charge_rollup_date_idx ON {CHARGES} (service_date) "
        f"INCLUDE (location_id, gross_cents)",
        *_functions(),
    ]
    for name, table in _TRIGGERS:
        statements.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    statements += [
        f"CREATE TRIGGER recv_money_entry_ins AFTER INSERT ON {ENTRY} "
        f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION recv_money_entry_sync()",
        f"CREATE TRIGGER recv_money_entry_upd AFTER UPDATE ON {ENTRY} "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION recv_money_entry_sync()",
        f"CREATE TRIGGER recv_money_entry_del AFTER DELETE ON {ENTRY} "
        f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION recv_money_entry_sync()",
        f"CREATE TRIGGER recv_money_patient_moved AFTER UPDATE OF home_location_id ON {PATIENT} "
        f"FOR EACH ROW WHEN (OLD.home_location_id IS DISTINCT FROM NEW.home_location_id) "
        f"EXECUTE FUNCTION recv_money_patient_moved()",
        f"CREATE TRIGGER recv_charge_line_ins AFTER INSERT ON {CHARGE_LINE} "
        f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION recv_charge_line_sync()",
        f"CREATE TRIGGER recv_charge_line_upd AFTER UPDATE ON {CHARGE_LINE} "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION recv_charge_line_sync()",
        f"CREATE TRIGGER recv_charge_line_del AFTER DELETE ON {CHARGE_LINE} "
        f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION recv_charge_line_sync()",
        f"CREATE TRIGGER recv_charge_encounter_moved AFTER UPDATE OF location_id ON {ENCOUNTER} "
        f"FOR EACH ROW WHEN (OLD.location_id IS DISTINCT FROM NEW.location_id) "
        f"EXECUTE FUNCTION recv_charge_encounter_moved()",
    ]
    return statements


def _fill(cursor: Any) -> None:
    """Write both tables from the scans (one row per bucket or date and location)."""
    cursor.execute(
        f"INSERT INTO {MONEY} (bucket, location_id, cash_cents, contractual_cents) "
        f"SELECT bucket, location_id, cash, contr FROM ({_money_sums(f'{ENTRY} e')}) g "
        f"WHERE bucket IS NOT NULL AND (cash <> 0 OR contr <> 0)"
    )
    cursor.execute(
        f"INSERT INTO {CHARGES} (service_date, location_id, gross_cents) "
        f"SELECT service_date, location_id, gross FROM ({_charge_sums(f'{CHARGE_LINE} l')}) g "
        f"WHERE location_id IS NOT NULL AND gross <> 0"
    )


def install(connection: Any, *, backfill: bool = True) -> None:
    """Create (or replace) the triggers and (`backfill`) fill both tables from the scans, on
    PostgreSQL (nothing on SQLite)."""
    if not available(connection):
        return
    with connection.cursor() as cursor:
        for sql in _install_statements():
            cursor.execute(sql)
        if backfill:
            cursor.execute(f"DELETE FROM {MONEY}")
            cursor.execute(f"DELETE FROM {CHARGES}")
            _fill(cursor)


def uninstall(connection: Any) -> None:
    if not available(connection):
        return
    with connection.cursor() as cursor:
        for name, table in _TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for function in _FUNCTIONS:
            cursor.execute(f"DROP FUNCTION IF EXISTS {function}()")


def missing(connection: Any) -> list[str]:
    """The rollup triggers that should exist and do not (PostgreSQL; none on SQLite)."""
    if not available(connection):
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        present = {row[0] for row in cursor.fetchall()}
    return [name for name, _ in _TRIGGERS if name not in present]


def rebuild(connection: Any) -> None:
    """Rewrite both tables compact from the scans, inside the caller's transaction:
    `receivables.balances.rebuild`, which first locks the ledger entries, the charge lines and
    these tables (`SOURCE_TABLES`, `TABLES`), so no posting runs or is lost meanwhile. The
    triggers are put back first when one is missing (a repair), then the tables are filled."""
    lost = missing(connection)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {MONEY}, {CHARGES}")
        if lost:
            for sql in _install_statements():
                cursor.execute(sql)
        _fill(cursor)


# What `receivables.balances.rebuild` locks for the rollups before anything else: their source
# tables against writers (SHARE ROW EXCLUSIVE: in-flight postings finish, new ones wait) and the
# tables themselves.
SOURCE_TABLES = (ENTRY, CHARGE_LINE)
TABLES = (MONEY, CHARGES)


def compact(connection: Any) -> tuple[int, int]:
    """Merge each table's delta rows into one row per key, while postings go on: one statement
    per table deletes the rows its snapshot sees and inserts their sums (rows added meanwhile by
    other transactions are neither deleted nor counted twice). Returns the rows left in each."""
    if not available(connection):
        return (0, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH gone AS (DELETE FROM {MONEY} RETURNING bucket, location_id, cash_cents, "
            f"contractual_cents) "
            f"INSERT INTO {MONEY} (bucket, location_id, cash_cents, contractual_cents) "
            f"SELECT bucket, location_id, SUM(cash_cents), SUM(contractual_cents) FROM gone "
            f"GROUP BY bucket, location_id "
            f"HAVING SUM(cash_cents) <> 0 OR SUM(contractual_cents) <> 0"
        )
        money_rows = cursor.rowcount
        cursor.execute(
            f"WITH gone AS (DELETE FROM {CHARGES} RETURNING service_date, location_id, "
            f"gross_cents) "
            f"INSERT INTO {CHARGES} (service_date, location_id, gross_cents) "
            f"SELECT service_date, location_id, SUM(gross_cents) FROM gone "
            f"GROUP BY service_date, location_id HAVING SUM(gross_cents) <> 0"
        )
        return money_rows, cursor.rowcount


def differences(connection: Any) -> list[str]:
    """Where the rollups differ from the scans (PostgreSQL; empty when they agree), per bucket
    or date and location, each line naming the rollup's figure and the scan's."""
    if not available(connection):
        return []
    problems = []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE(r.bucket, s.bucket), COALESCE(r.location_id, s.location_id), "
            f"r.cash, r.contr, s.cash, s.contr FROM ("
            f"SELECT bucket, location_id, SUM(cash_cents) AS cash, SUM(contractual_cents) AS contr "
            f"FROM {MONEY} GROUP BY 1, 2) r FULL JOIN ("
            f"{_money_sums(f'{ENTRY} e')}) s "
            f"ON r.bucket = s.bucket AND r.location_id IS NOT DISTINCT FROM s.location_id "
            f"WHERE (COALESCE(r.cash, 0), COALESCE(r.contr, 0)) "
            f"<> (COALESCE(s.cash, 0), COALESCE(s.contr, 0)) ORDER BY 1, 2"
        )
        for bucket, location, cash, contr, want_cash, want_contr in cursor.fetchall():
            problems.append(
                f"money rollup {bucket.isoformat() if bucket else None} location {location}: "
                f"cash/contractual cents {cash or 0}/{contr or 0}, "
                f"ledger {want_cash or 0}/{want_contr or 0}"
            )
        cursor.execute(
            f"SELECT COALESCE(r.service_date, s.service_date), "
            f"COALESCE(r.location_id, s.location_id), r.gross, s.gross FROM ("
            f"SELECT service_date, location_id, SUM(gross_cents) AS gross FROM {CHARGES} "
            f"GROUP BY 1, 2) r FULL JOIN ({_charge_sums(f'{CHARGE_LINE} l')}) s "
            f"ON r.service_date = s.service_date AND r.location_id IS NOT DISTINCT FROM "
            f"s.location_id WHERE COALESCE(r.gross, 0) <> COALESCE(s.gross, 0) ORDER BY 1, 2"
        )
        for day, location, gross, want in cursor.fetchall():
            problems.append(
                f"charge rollup {day} location {location}: gross cents {gross or 0}, "
                f"charge lines {want or 0}"
            )
    return problems


def _cents_to_money(value: Any) -> Decimal | None:
    return None if value is None else (Decimal(int(value)) / 100).quantize(Decimal("0.01"))


def money_sums(
    *,
    since: dt.datetime,
    until: dt.datetime,
    location_ids: Collection[int] | None,
    by_month: bool,
) -> list[dict[str, Any]]:
    """receivables.kpis.ledger_rows from the rollup: rows of month (None unless `by_month`),
    cash, contractual (money, None when nothing was posted)."""
    from django.db.models import Sum
    from django.db.models.functions import TruncMonth

    from receivables.models import MoneyRollup

    rows = MoneyRollup.objects.filter(bucket__gte=since, bucket__lt=until)
    if location_ids is not None:
        rows = rows.filter(location_id__in=sorted(location_ids))
    sums = {"cash": Sum("cash_cents"), "contractual": Sum("contractual_cents")}
    if not by_month:
        found = [{"month": None, **rows.aggregate(**sums)}]
    else:
        months = rows.annotate(month=TruncMonth("bucket")).values("month")
        found = [dict(row) for row in months.annotate(**sums).order_by("month")]
    return [
        {
            "month": row["month"],
            "cash": _cents_to_money(row["cash"]),
            "contractual": _cents_to_money(row["contractual"]),
        }
        for row in found
    ]


def charge_sums(
    *, start: dt.date, end: dt.date, location_ids: Collection[int] | None
) -> list[tuple[dt.date, Decimal]]:
    """Gross charges per date of service in [start, end] from the rollup (dates with none
    left out)."""
    from django.db.models import Sum

    from receivables.models import ChargeRollup

    rows = ChargeRollup.objects.filter(service_date__gte=start, service_date__lte=end)
    if location_ids is not None:
        rows = rows.filter(location_id__in=sorted(location_ids))
    days = rows.order_by().values_list("service_date").annotate(gross=Sum("gross_cents"))
    return [(day, _cents_to_money(gross) or Decimal("0.00")) for day, gross in days]
