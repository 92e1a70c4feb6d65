"""Database triggers that keep each claim's A/R attributes on its running balance row.

`ClaimArBalance` (receivables.models) holds, per claim reference, the INSURANCE_AR movements the
ledger posted against it (`amount`, written by receivables.balances in every posting's
transaction) and, beside them, what the aging report needs of the claim itself: its id, patient,
payer, location (the encounter's), date of service, submission time, whether it is still
receivable (any status but void, resubmitted and closed, and not a frequency-8 void) and its
`base` (total charge minus what earlier payers paid and adjusted other than patient
responsibility). The claim's outstanding insurance balance is then `base + amount`, and the
current-date aging report is one scan of this narrow table instead of the wide claims table
joined to the balances.

Why triggers: a claim's status, total, submission time, payer or patient are written by many
paths (ORM saves in billing.services, set-based UPDATEs in the 837 export and the 835 poster,
bulk seeds, patient merges re-pointing claims). A trigger sees every one of them, in the same
transaction, whatever wrote it; a Python hook would have to be remembered in each. The triggers
are written for both databases:

* PostgreSQL: statement-level triggers with transition tables (one set-based UPSERT per
  statement, however many claims it touched), rows applied in claim-reference order like
  receivables.balances applies postings, so concurrent writers lock balance rows in one order.
  The one exception is the claims' UPDATE trigger: row-level, `AFTER UPDATE OF` the source
  columns with a WHEN clause comparing them (and the receivable flag) old with new, so the
  835 poster's status changes, which change none of them, cost a comparison in C and no
  function call, and no transition tables of wide claim rows are kept.
* SQLite: row-level triggers (`AFTER UPDATE OF` the columns that matter).

Sources watched: billing_claim (insert, update, delete), billing_encounter (insert, update:
the location), billing_claimpriorpayment and billing_claimprioradjustment (insert, update,
delete: the base). A claim deleted, or one whose control number changes, leaves its old row
with the ledger's amount and no claim (not receivable), as a posting against an unknown
reference does.

`install(connection)` (re)creates everything and backfills from the claims; receivables
migration 0003 calls it. Changing the SQL here needs a new migration that calls `install` again.
On SQLite, a later migration that makes Django rebuild one of the watched tables or the balance
table (most AlterFields do: copy, drop, rename) should call `uninstall` before and `install`
after, since SQLite checks every trigger's body when a table is renamed.
`derived_rows_sql()` is the same derivation as a plain SELECT over every claim, which
receivables.balances uses to rebuild and to check the table.
"""

# DDL and SQL built from this module's constant identifiers only; no value is ever formatted in.
# ruff: noqa: S608

from __future__ import annotations

from typing import Any

BAL = "receivables_claimarbalance"
CLAIM = "billing_claim"
ENCOUNTER = "billing_encounter"
PRIOR_PAYMENT = "billing_claimpriorpayment"
PRIOR_ADJUSTMENT = "billing_claimprioradjustment"
EVENT = "billing_claimevent"
EXCLUDED_STATUSES = ("void", "resubmitted", "closed")
# The first-pass (clean-claim) KPI's statuses (receivables.kpis): a claim is clean when its
# timeline has a paid or partially paid event and none of the others.
PAID_STATUSES = ("paid", "partially_paid")
NOT_CLEAN_STATUSES = ("rejected", "denied", "appealed", "resubmitted")

# The tables whose triggers `install` (re)creates: receivables.balances.rebuild locks them first.
WATCHED_TABLES = (CLAIM, ENCOUNTER, EVENT, PRIOR_PAYMENT, PRIOR_ADJUSTMENT)

ATTRIBUTES = (
    "claim_id",
    "patient_id",
    "payer_id",
    "location_id",
    "date_of_service",
    "submitted_at",
    "receivable",
    "original",
    "base",
)
# From the claim's timeline (billing_claimevent), kept by the event triggers.
FLAGS = ("ever_paid", "ever_not_clean")

_PG_TRIGGERS = (
    # (trigger, table, event, transition tables, function); all statement-level but one
    ("recv_claim_ins", CLAIM, "INSERT", "NEW TABLE AS new_rows", "recv_claim_sync"),
    # row-level, see _pg_install: most claim updates (an 835's status changes) touch no
    # source column, and its WHEN clause lets PostgreSQL skip them without calling anything
    ("recv_claim_upd", CLAIM, "UPDATE", "", "recv_claim_row_sync"),
    ("recv_claim_del", CLAIM, "DELETE", "OLD TABLE AS old_rows", "recv_claim_sync"),
    ("recv_encounter_ins", ENCOUNTER, "INSERT", "NEW TABLE AS new_rows", "recv_encounter_sync"),
    ("recv_event_ins", EVENT, "INSERT", "NEW TABLE AS new_rows", "recv_event_sync"),
    (
        "recv_event_upd",
        EVENT,
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "recv_event_sync",
    ),
    ("recv_event_del", EVENT, "DELETE", "OLD TABLE AS old_rows", "recv_event_sync"),
    ("recv_encounter_upd", ENCOUNTER, "UPDATE", "NEW TABLE AS new_rows", "recv_encounter_sync"),
    *(
        (f"recv_{short}_{event[:3].lower()}", table, event, referencing, "recv_prior_sync")
        for short, table in (("priorpay", PRIOR_PAYMENT), ("prioradj", PRIOR_ADJUSTMENT))
        for event, referencing in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        )
    ),
)

_SQLITE_TRIGGERS = (
    "recv_claim_ins",
    "recv_claim_upd",
    "recv_claim_del",
    "recv_encounter_ins",
    "recv_encounter_upd",
    "recv_event_ins",
    "recv_event_upd",
    "recv_event_del",
    "recv_priorpay_ins",
    "recv_priorpay_upd",
    "recv_priorpay_del",
    "recv_prioradj_ins",
    "recv_prioradj_upd",
    "recv_prioradj_del",
)


def _excluded() -> str:
    return ", ".join(f"'{status}'" for status in EXCLUDED_STATUSES)


def _base(claim: str) -> str:
    """The claim's base: total charge minus earlier payers' payments and their non-patient
    adjustments (the `c.total_charge - pr.amount` of receivables.aging's ledger query)."""
    return (
        f"{claim}.total_charge "
        f"- COALESCE((SELECT SUM(pp.amount) FROM {PRIOR_PAYMENT} pp "
        f"WHERE pp.claim_id = {claim}.id), 0) "
        f"- COALESCE((SELECT SUM(pa.amount) FROM {PRIOR_ADJUSTMENT} pa "
        f"WHERE pa.claim_id = {claim}.id AND pa.group_code <> 'PR'), 0)"
    )


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _ever(claim: str, statuses: tuple[str, ...]) -> str:
    """Whether the claim's timeline has an event to one of `statuses`."""
    return (
        f"EXISTS (SELECT 1 FROM {EVENT} ev WHERE ev.claim_id = {claim}.id "
        f"AND ev.to_status IN ({_in(statuses)}))"
    )


def _flags(claim: str) -> str:
    return f"{_ever(claim, PAID_STATUSES)}, {_ever(claim, NOT_CLEAN_STATUSES)}"


def _receivable(claim: str) -> str:
    return f"({claim}.status NOT IN ({_excluded()}) AND {claim}.frequency_code <> '8')"


# The claim columns the attributes are derived from (the receivable flag from status and
# frequency code): an update that changes none of them changes nothing here (an 835 moving a
# claim from submitted to paid, say).
SOURCE_COLUMNS = (
    "patient_control_number",
    "patient_id",
    "payer_id",
    "date_of_service",
    "submitted_at",
    "total_charge",
    "encounter_id",
    "frequency_code",
)


# An UPDATE that sets none of these columns cannot change a claim's row.
_WATCHED = (*SOURCE_COLUMNS, "status")


def _pg_changed(old: str, new: str) -> str:
    mine = ", ".join(f"{old}.{name}" for name in SOURCE_COLUMNS)
    theirs = ", ".join(f"{new}.{name}" for name in SOURCE_COLUMNS)
    return f"({mine}, {_receivable(old)}) IS DISTINCT FROM ({theirs}, {_receivable(new)})"


def _sqlite_changed() -> str:
    columns = " OR ".join(f"OLD.{name} IS NOT NEW.{name}" for name in SOURCE_COLUMNS)
    return f"{columns} OR {_receivable('OLD')} IS NOT {_receivable('NEW')}"


def _select(claim: str, source: str, *, flags: bool, where: str = "") -> str:
    """(claim_reference, amount 0, the attributes[, the flags]) of the claims `claim` in
    `source` (PostgreSQL: `where` filters them)."""
    return (
        f"SELECT {claim}.patient_control_number, 0, {claim}.id, {claim}.patient_id, "
        f"{claim}.payer_id, enc.location_id, {claim}.date_of_service, {claim}.submitted_at, "
        f"{_receivable(claim)}, ({claim}.frequency_code = '1'), {_base(claim)}"
        f"{', ' + _flags(claim) if flags else ''} "
        f"FROM {source} LEFT JOIN {ENCOUNTER} enc ON enc.id = {claim}.encounter_id"
        f"{' WHERE ' + where if where else ''}"
    )


def derived_rows_sql() -> str:
    """Every claim's (claim_reference, claim_id, ..., base, ever_paid, ever_not_clean): what
    the table must hold."""
    return (
        f"SELECT c.patient_control_number AS claim_reference, c.id, c.patient_id, c.payer_id, "
        f"enc.location_id, c.date_of_service, c.submitted_at, {_receivable('c')}, "
        f"(c.frequency_code = '1'), {_base('c')}, {_flags('c')} "
        f"FROM {CLAIM} c LEFT JOIN {ENCOUNTER} enc ON enc.id = c.encounter_id"
    )


def _upsert(select: str, *, vendor: str, flags: bool) -> str:
    """Insert or update the claims' rows; with `flags`, the timeline flags too (a new claim,
    the backfill), without them an update leaves the flags to the event triggers."""
    names = ATTRIBUTES + FLAGS if flags else ATTRIBUTES
    columns = ", ".join(names)
    sets = ", ".join(f"{name} = excluded.{name}" for name in names)
    if vendor == "postgresql":
        mine = ", ".join(f"b.{name}" for name in names)
        theirs = ", ".join(f"excluded.{name}" for name in names)
        return (
            f"INSERT INTO {BAL} AS b (claim_reference, amount, {columns}) {select} "
            f"ON CONFLICT (claim_reference) DO UPDATE SET {sets} "
            f"WHERE ({mine}) IS DISTINCT FROM ({theirs})"
        )
    # SQLite: "WHERE true" resolves the INSERT ... SELECT ... ON CONFLICT parsing ambiguity.
    return (
        f"INSERT INTO {BAL} (claim_reference, amount, {columns}) {select} WHERE true "
        f"ON CONFLICT (claim_reference) DO UPDATE SET {sets}"
    )


_DETACH = (
    "claim_id = NULL, patient_id = NULL, payer_id = NULL, location_id = NULL, "
    "date_of_service = NULL, submitted_at = NULL, receivable = {false}, original = {false}, "
    "base = 0, ever_paid = {false}, ever_not_clean = {false}"
)


def _pg_functions() -> list[str]:
    detach = _DETACH.format(false="false")
    pg_flags: dict[str, Any] = {"vendor": "postgresql", "flags": True}
    pg_plain: dict[str, Any] = {"vendor": "postgresql", "flags": False}
    claim_sync = f"""
CREATE OR REPLACE FUNCTION recv_claim_sync() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE {BAL} b SET {detach} WHERE b.claim_id IN (SELECT id FROM old_rows);
        RETURN NULL;
    END IF;
    {_upsert(_select("n", "new_rows n", flags=True) + " ORDER BY 1", **pg_flags)};
    RETURN NULL;
END $$"""
    # One updated claim whose source columns changed (the trigger's WHEN clause): its row
    # follows; a claim whose control number changed leaves the old row to the ledger's amount.
    claim_row_sync = f"""
CREATE OR REPLACE FUNCTION recv_claim_row_sync() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    IF OLD.patient_control_number <> NEW.patient_control_number THEN
        UPDATE {BAL} b SET {detach} WHERE b.claim_reference = OLD.patient_control_number;
        {_upsert(_select("NEW", "(SELECT 1) one", flags=True), **pg_flags)};
    ELSE
        {_upsert(_select("NEW", "(SELECT 1) one", flags=False), **pg_plain)};
    END IF;
    RETURN NULL;
END $$"""
    encounter_sync = f"""
CREATE OR REPLACE FUNCTION recv_encounter_sync() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    UPDATE {BAL} b SET location_id = n.location_id
    FROM new_rows n JOIN {CLAIM} c ON c.encounter_id = n.id
    WHERE b.claim_id = c.id AND b.location_id IS DISTINCT FROM n.location_id;
    RETURN NULL;
END $$"""
    prior_sync = f"""
CREATE OR REPLACE FUNCTION recv_prior_sync() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT DISTINCT claim_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY(SELECT DISTINCT claim_id FROM old_rows);
    ELSE
        ids := ARRAY(SELECT claim_id FROM new_rows UNION SELECT claim_id FROM old_rows);
    END IF;
    UPDATE {BAL} b SET base = {_base("c")}
    FROM {CLAIM} c WHERE c.id = ANY(ids) AND b.claim_id = c.id;
    RETURN NULL;
END $$"""
    event_sync = f"""
CREATE OR REPLACE FUNCTION recv_event_sync() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE {BAL} b SET ever_paid = b.ever_paid OR x.paid,
            ever_not_clean = b.ever_not_clean OR x.not_clean
        FROM (SELECT claim_id, bool_or(to_status IN ({_in(PAID_STATUSES)})) AS paid,
                bool_or(to_status IN ({_in(NOT_CLEAN_STATUSES)})) AS not_clean
            FROM new_rows WHERE to_status IN ({_in(PAID_STATUSES + NOT_CLEAN_STATUSES)})
            GROUP BY claim_id) x
        WHERE b.claim_id = x.claim_id
            AND ((x.paid AND NOT b.ever_paid) OR (x.not_clean AND NOT b.ever_not_clean));
        RETURN NULL;
    END IF;
    UPDATE {BAL} b SET ever_paid = {_ever("c", PAID_STATUSES)},
        ever_not_clean = {_ever("c", NOT_CLEAN_STATUSES)}
    FROM {CLAIM} c
    WHERE c.id IN (SELECT claim_id FROM old_rows) AND b.claim_id = c.id;
    RETURN NULL;
END $$"""
    return [claim_sync, claim_row_sync, encounter_sync, prior_sync, event_sync]


def _pg_install() -> list[str]:
    statements = _pg_functions()
    for name, table, event, referencing, function in _PG_TRIGGERS:
        statements.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        if referencing:
            statements.append(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
        else:  # the claims' update trigger
            statements.append(
                f"CREATE TRIGGER {name} AFTER UPDATE OF {', '.join(_WATCHED)} ON {table} "
                f"FOR EACH ROW WHEN ({_pg_changed('OLD', 'NEW')}) "
                f"EXECUTE FUNCTION {function}()"
            )
    return statements


def _sqlite_install() -> list[str]:
    detach = _DETACH.format(false="0")
    claim_columns = (
        "patient_control_number, patient_id, payer_id, date_of_service, submitted_at, "
        "status, frequency_code, total_charge, encounter_id"
    )
    upsert_new = _upsert(_select("NEW", "(SELECT 1) one", flags=True), vendor="sqlite", flags=True)
    upsert_changed = _upsert(
        _select("NEW", "(SELECT 1) one", flags=False), vendor="sqlite", flags=False
    )
    # A claim whose control number changed gets a new row: with its timeline flags.
    upsert_renumbered = _upsert(
        _select(
            "NEW",
            "(SELECT 1 WHERE OLD.patient_control_number <> NEW.patient_control_number) one",
            flags=True,
        ),
        vendor="sqlite",
        flags=True,
    )
    reflag = (
        f"UPDATE {BAL} SET ever_paid = (SELECT {_ever('c', PAID_STATUSES)} FROM {CLAIM} c "
        f"WHERE c.id = OLD.claim_id), ever_not_clean = (SELECT "
        f"{_ever('c', NOT_CLEAN_STATUSES)} FROM {CLAIM} c WHERE c.id = OLD.claim_id) "
        f"WHERE claim_id = OLD.claim_id"
    )
    refresh_base = (
        "UPDATE {bal} SET base = (SELECT {base} FROM {claim} c WHERE c.id = {who}.claim_id) "
        "WHERE claim_id = {who}.claim_id"
    )
    statements = [f"DROP TRIGGER IF EXISTS {name}" for name in _SQLITE_TRIGGERS]
    statements += [
        f"CREATE TRIGGER recv_claim_ins AFTER INSERT ON {CLAIM} BEGIN {upsert_new}; END",
        f"CREATE TRIGGER recv_claim_upd AFTER UPDATE OF {claim_columns} ON {CLAIM} "
        f"WHEN {_sqlite_changed()} BEGIN "
        f"UPDATE {BAL} SET {detach} WHERE OLD.patient_control_number <> "
        f"NEW.patient_control_number AND claim_reference = OLD.patient_control_number; "
        f"{upsert_renumbered}; {upsert_changed}; END",
        f"CREATE TRIGGER recv_claim_del AFTER DELETE ON {CLAIM} BEGIN "
        f"UPDATE {BAL} SET {detach} WHERE claim_id = OLD.id; END",
        f"CREATE TRIGGER recv_encounter_ins AFTER INSERT ON {ENCOUNTER} BEGIN "
        f"UPDATE {BAL} SET location_id = NEW.location_id WHERE claim_id IN "
        f"(SELECT id FROM {CLAIM} WHERE encounter_id = NEW.id); END",
        f"CREATE TRIGGER recv_encounter_upd AFTER UPDATE OF location_id ON {ENCOUNTER} BEGIN "
        f"UPDATE {BAL} SET location_id = NEW.location_id WHERE claim_id IN "
        f"(SELECT id FROM {CLAIM} WHERE encounter_id = NEW.id); END",
        f"CREATE TRIGGER recv_event_ins AFTER INSERT ON {EVENT} "
        f"WHEN NEW.to_status IN ({_in(PAID_STATUSES + NOT_CLEAN_STATUSES)}) BEGIN "
        f"UPDATE {BAL} SET ever_paid = ever_paid OR NEW.to_status IN ({_in(PAID_STATUSES)}), "
        f"ever_not_clean = ever_not_clean OR NEW.to_status IN ({_in(NOT_CLEAN_STATUSES)}) "
        f"WHERE claim_id = NEW.claim_id; END",
        f"CREATE TRIGGER recv_event_upd AFTER UPDATE ON {EVENT} BEGIN {reflag}; "
        f"{reflag.replace('OLD.', 'NEW.')}; END",
        f"CREATE TRIGGER recv_event_del AFTER DELETE ON {EVENT} BEGIN {reflag}; END",
    ]
    for short, table in (("priorpay", PRIOR_PAYMENT), ("prioradj", PRIOR_ADJUSTMENT)):
        for event, whos in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
            body = "; ".join(
                refresh_base.format(bal=BAL, base=_base("c"), claim=CLAIM, who=who) for who in whos
            )
            statements.append(
                f"CREATE TRIGGER recv_{short}_{event[:3].lower()} AFTER {event} ON {table} "
                f"BEGIN {body}; END"
            )
    return statements


def _backfill(vendor: str) -> str:
    return _upsert(_select("c", f"{CLAIM} c", flags=True), vendor=vendor, flags=True)


def install(connection: Any, *, backfill: bool = True) -> None:
    """Create (or replace) the triggers on `connection`'s database and (`backfill`) fill the
    attributes of every existing claim's balance row."""
    vendor = connection.vendor
    statements = _pg_install() if vendor == "postgresql" else _sqlite_install()
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
        if backfill:
            cursor.execute(_backfill(vendor))


def uninstall(connection: Any) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name, table, *_ in _PG_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            for function in (
                "recv_claim_sync",
                "recv_claim_row_sync",
                "recv_encounter_sync",
                "recv_prior_sync",
                "recv_event_sync",
            ):
                cursor.execute(f"DROP FUNCTION IF EXISTS {function}()")
        else:
            for name in _SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def missing(connection: Any) -> list[str]:
    """The names of the triggers that should exist and do not (a table rebuilt by a later
    migration drops its triggers on SQLite): receivables.balances.differences reports them,
    and `rebuild_ar_balances` puts them back."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
            wanted = [name for name, *_ in _PG_TRIGGERS]
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            wanted = list(_SQLITE_TRIGGERS)
        present = {row[0] for row in cursor.fetchall()}
    return [name for name in wanted if name not in present]
