"""A/R aging and KPI queries over 1,000,000 charge lines (target: p95 <= 300 ms on PostgreSQL).

`run(claims=250_000, full=True, repeats=15)` seeds `claims` claims x 4 charge lines through
billing's demo bulk path (`billing.demo.seed_billing(claims=N)`; it needs the demo patients,
so `bench/run.py` calls it after the patient seed, and standalone it seeds 2,000 demo patients
first), then posts the ledger those claims imply (not timed): one charge transaction per charge
line (INSURANCE_AR / GROSS_CHARGES, as billing.posting does), and for paid and partially paid
claims an 835-like remittance tagged with the claim's control number (payment, contractual
adjustment, transfer of the rest to the patient) and, for a third of them, the patient's
payment. On PostgreSQL the ledger is written with INSERT ... SELECT (a million transactions in
seconds); elsewhere with journal_post_many. The running A/R balances (receivables.balances) are
then rebuilt from that ledger, not timed (the SQL seed bypasses patientaccounts.ledger, which
keeps them in step for every other posting). Then it times, each `repeats` times after a warm-up:
aging by payer and by patient on both bases (as the pages run them: the by-patient page asks
for the 100 largest balances plus the totals), the KPIs of the last 90 days, and the KPI
page with its monthly trend; unscoped, and as the pages run them for a user, scoped to the
user's locations (every location, as a manager; one, as a front office). It prints p50/p95
per query, EXPLAIN ANALYZE of the aging's statements (PostgreSQL) and PASS/FAIL against
300 ms (the worst p95 of every query but the monthly trends).

`seed="sql"` (standalone: `--seed sql`) writes the claims with PostgreSQL INSERT ... SELECT
in the same shape instead (about 4 minutes for 250,000 claims here, against about half an
hour through billing's bulk path on this loaded 2-core machine).

Standalone (inside scripts/with_postgres.sh):
`python bench/billing_ar.py [--claims N] [--repeats N] [--patients N] [--seed billing|sql]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Section, Target, say, summarize_ms, timed

TARGET_MS = 300.0
LINES_PER_CLAIM = 4
PAGE_ROWS = 100


# --- seeding --------------------------------------------------------------------------------


def seed_claims(claims: int) -> float:
    """Claims x 4 lines through billing's bulk path; returns seconds taken."""
    from billing.demo import seed_billing
    from billing.models import Claim

    missing = claims - Claim.objects.count()
    if missing <= 0:
        return 0.0
    start = time.perf_counter()
    seed_billing(claims=missing, progress=True)
    return time.perf_counter() - start


# The same shape as billing.demo.seed_claims_bulk (4 lines: 99214 185.00, 80053 38.00,
# 36415 2 x 12.00, 85025 25.00; every status but resubmitted; services over the last year),
# written by PostgreSQL itself: rows are tied together by deterministic public ids.
_STATUSES = (
    "ARRAY['draft','ready','submitted','accepted','rejected','paid','paid','partially_paid',"
    "'denied','appealed','void','closed']"
)
_GEN_SQL = """
CREATE TEMP TABLE bench_gen AS
WITH cand AS (
    SELECT row_number() OVER (ORDER BY cv.id) AS n, cv.patient_id, p.home_location_id,
        cv.id AS coverage_id
    FROM {coverage} cv JOIN {patient} p ON p.id = cv.patient_id
    WHERE cv.is_active AND cv."order" = 1
), payers AS (SELECT row_number() OVER (ORDER BY id) AS n, id FROM {payer}),
sizes AS (SELECT (SELECT count(*) FROM cand) AS cands, (SELECT count(*) FROM payers) AS payers)
SELECT g.g + %s AS g, c.patient_id, c.home_location_id, c.coverage_id, py.id AS payer_id,
    current_date - (1 + (g.g * 7919) %% 365)::int AS dos,
    ({statuses})[(1 + g.g %% 12)::int] AS status
FROM generate_series(1::bigint, %s) AS g(g)
CROSS JOIN sizes
JOIN cand c ON c.n = 1 + (g.g * 104729) %% sizes.cands
JOIN payers py ON py.n = 1 + g.g %% sizes.payers
"""
_GEN_STEPS = [
    (
        "encounters",
        """
INSERT INTO {encounter} (public_id, created_at, updated_at, patient_id, location_id,
    date_of_service, rendering_practitioner_id, billing_provider_id, place_of_service, status)
SELECT md5('enc' || b.g)::uuid, now(), now(), b.patient_id, b.home_location_id, b.dos,
    (SELECT min(id) FROM {practitioner}), (SELECT min(id) FROM {provider}), '11', 'billed'
FROM bench_gen b
""",
    ),
    (
        "charge lines",
        """
INSERT INTO {line} (public_id, created_at, updated_at, encounter_id, line_number, code,
    modifier1, modifier2, modifier3, modifier4, units, pointer1, service_date, fee_amount,
    amount, override_reason, posted_at)
SELECT md5('line' || b.g || ':' || l.n)::uuid, now(), now(), e.id, l.n, l.code, '', '', '', '',
    l.units, 1, b.dos, l.fee, l.fee * l.units, '', now()
FROM bench_gen b JOIN {encounter} e ON e.public_id = md5('enc' || b.g)::uuid
CROSS JOIN (VALUES (1, '99214', 185.00, 1), (2, '80053', 38.00, 1), (3, '36415', 12.00, 2),
    (4, '85025', 25.00, 1)) AS l(n, code, fee, units)
""",
    ),
    (
        "claims",
        """
INSERT INTO {claim} (public_id, created_at, updated_at, patient_id, encounter_id, coverage_id,
    payer_id, billing_provider_id, rendering_practitioner_id, patient_control_number,
    payer_claim_number, frequency_code, sequence, status, status_changed_at, place_of_service,
    date_of_service, total_charge, paid_amount, patient_responsibility, submitted_at)
SELECT md5('claim' || b.g)::uuid, now(), now(), b.patient_id, e.id, b.coverage_id, b.payer_id,
    e.billing_provider_id, e.rendering_practitioner_id, 'BR' || lpad(b.g::text, 10, '0'), '',
    '1', 'P', b.status, now(), '11', b.dos, 272.00, 0, 0,
    CASE WHEN b.status IN ('draft', 'ready') THEN NULL
         ELSE (b.dos + 2 + time '09:00') AT TIME ZONE %s END
FROM bench_gen b JOIN {encounter} e ON e.public_id = md5('enc' || b.g)::uuid
""",
    ),
    (
        "claim lines",
        """
INSERT INTO {claimline} (public_id, created_at, updated_at, claim_id, charge_line_id,
    line_number, code, modifier1, modifier2, modifier3, modifier4, units, pointer1,
    service_date, charge, place_of_service)
SELECT md5('cl' || b.g || ':' || cl.line_number)::uuid, now(), now(), c.id, cl.id,
    cl.line_number, cl.code, '', '', '', '', cl.units, 1, cl.service_date, cl.amount, ''
FROM bench_gen b
JOIN {claim} c ON c.public_id = md5('claim' || b.g)::uuid
JOIN {line} cl ON cl.encounter_id = c.encounter_id
""",
    ),
    (
        "claim events",
        """
INSERT INTO {event} (public_id, created_at, updated_at, claim_id, at, from_status, to_status,
    note)
SELECT md5('ev' || b.g || ':' || ev.n)::uuid, now(), now(), c.id,
    LEAST(c.submitted_at + ev.after, now()), ev.from_status, ev.to_status, ''
FROM bench_gen b
JOIN {claim} c ON c.public_id = md5('claim' || b.g)::uuid
CROSS JOIN LATERAL (VALUES
    (1, interval '0 days', 'ready', 'submitted'),
    (2, interval '20 days', 'submitted', CASE WHEN b.status = 'void' THEN 'void'
        WHEN b.status = 'closed' THEN 'paid' ELSE b.status END)
) AS ev(n, after, from_status, to_status)
WHERE c.submitted_at IS NOT NULL AND (ev.n = 1 OR b.status <> 'submitted')
""",
    ),
]


def seed_claims_sql(claims: int) -> float:
    """Claims x 4 lines written by PostgreSQL (INSERT ... SELECT), for when billing's bulk
    path is too slow for the machine at hand; returns seconds taken."""
    from django.conf import settings
    from django.db import connection, transaction

    from billing.demo import seed_billing
    from billing.models import BillingProvider, ClaimEvent, ClaimLine, Payer
    from patients.models import Coverage, Patient
    from scheduling.models import Practitioner

    seed_billing(claims=0)  # reference data: payers, fee schedules, the billing provider
    names = {
        **_names(),
        **{
            key: connection.ops.quote_name(model._meta.db_table)
            for key, model in (
                ("coverage", Coverage),
                ("patient", Patient),
                ("payer", Payer),
                ("practitioner", Practitioner),
                ("provider", BillingProvider),
                ("claimline", ClaimLine),
                ("event", ClaimEvent),
            )
        },
        "statuses": _STATUSES,
    }
    from billing.models import Claim

    start = time.perf_counter()
    offset = Claim.objects.filter(patient_control_number__startswith="BR").count()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_GEN_SQL.format(**names), [offset, claims])
        for label, sql in _GEN_STEPS:
            step = time.perf_counter()
            params = [settings.TIME_ZONE] if "%s" in sql else []
            cursor.execute(sql.format(**names), params)
            say(
                f"  claims: {label}: {cursor.rowcount:,} rows in {time.perf_counter() - step:.1f} s"
            )
        cursor.execute("DROP TABLE bench_gen")
    return time.perf_counter() - start


_CHARGES_SQL = """
INSERT INTO {txn} (public_id, created_at, updated_at, patient_id, kind, posted_at, memo,
    service_date, claim_reference, payer_reference, source, idempotency_key)
SELECT gen_random_uuid(), now(), now(), e.patient_id, 'charge',
    (cl.service_date + time '10:00') AT TIME ZONE %s, 'charge ' || cl.code, cl.service_date,
    '', '', 'charge', 'charge:' || cl.public_id::text
FROM {line} cl JOIN {encounter} e ON e.id = cl.encounter_id
WHERE cl.amount <> 0 AND NOT EXISTS (
    SELECT 1 FROM {txn} x WHERE x.idempotency_key = 'charge:' || cl.public_id::text)
"""

_CHARGE_ENTRIES_SQL = """
INSERT INTO {entry} (transaction_id, account, amount, patient_id, service_date)
SELECT t.id, side.account, side.sign * cl.amount, t.patient_id, t.service_date
FROM {txn} t
JOIN {line} cl ON t.idempotency_key = 'charge:' || cl.public_id::text
CROSS JOIN (VALUES ('insurance_ar', 1), ('gross_charges', -1)) AS side(account, sign)
WHERE t.kind = 'charge' AND t.source = 'charge'
  AND NOT EXISTS (SELECT 1 FROM {entry} x WHERE x.transaction_id = t.id)
"""

# Remittance-like postings: paid claims 60 % paid, 30 % contractual, the rest to the patient;
# partially paid claims 30 % paid and 20 % contractual (the rest still owed by the payer).
_REMIT_SQL = """
WITH share AS (
    SELECT c.id, c.patient_id, c.patient_control_number AS pcn, c.date_of_service,
        LEAST(COALESCE(c.submitted_at, now()) + interval '20 days', now()) AS at,
        CASE WHEN c.status = 'paid' THEN round(c.total_charge * 0.6, 2)
             ELSE round(c.total_charge * 0.3, 2) END AS paid,
        CASE WHEN c.status = 'paid' THEN round(c.total_charge * 0.3, 2)
             ELSE round(c.total_charge * 0.2, 2) END AS contractual,
        CASE WHEN c.status = 'paid' THEN c.total_charge - round(c.total_charge * 0.6, 2)
             - round(c.total_charge * 0.3, 2) ELSE 0 END AS to_patient
    FROM {claim} c WHERE c.status IN ('paid', 'partially_paid')
)
INSERT INTO {txn} (public_id, created_at, updated_at, patient_id, kind, posted_at, memo,
    service_date, claim_reference, payer_reference, source, idempotency_key)
SELECT gen_random_uuid(), now(), now(), s.patient_id, m.kind, s.at, '',
    CASE WHEN m.kind = 'transfer_to_patient' THEN s.date_of_service END, s.pcn, '',
    'bench-835', 'bench:' || s.pcn || ':' || m.kind
FROM share s CROSS JOIN (VALUES ('insurance_payment'), ('contractual_adjustment'),
    ('transfer_to_patient')) AS m(kind)
WHERE (m.kind = 'insurance_payment' AND s.paid > 0)
   OR (m.kind = 'contractual_adjustment' AND s.contractual > 0)
   OR (m.kind = 'transfer_to_patient' AND s.to_patient > 0)
ON CONFLICT (idempotency_key) DO NOTHING
"""

_REMIT_ENTRIES_SQL = """
WITH share AS (
    SELECT c.patient_control_number AS pcn,
        CASE WHEN c.status = 'paid' THEN round(c.total_charge * 0.6, 2)
             ELSE round(c.total_charge * 0.3, 2) END AS paid,
        CASE WHEN c.status = 'paid' THEN round(c.total_charge * 0.3, 2)
             ELSE round(c.total_charge * 0.2, 2) END AS contractual,
        CASE WHEN c.status = 'paid' THEN c.total_charge - round(c.total_charge * 0.6, 2)
             - round(c.total_charge * 0.3, 2) ELSE 0 END AS to_patient
    FROM {claim} c WHERE c.status IN ('paid', 'partially_paid')
), moves AS (
    SELECT t.id, t.patient_id, t.service_date, t.kind,
        CASE t.kind WHEN 'insurance_payment' THEN s.paid
            WHEN 'contractual_adjustment' THEN s.contractual ELSE s.to_patient END AS amount,
        CASE t.kind WHEN 'insurance_payment' THEN 'cash'
            WHEN 'contractual_adjustment' THEN 'contractual' ELSE 'patient_ar' END AS debit
    FROM {txn} t JOIN share s ON t.claim_reference = s.pcn
    WHERE t.source = 'bench-835'
      AND NOT EXISTS (SELECT 1 FROM {entry} x WHERE x.transaction_id = t.id)
)
INSERT INTO {entry} (transaction_id, account, amount, patient_id, service_date)
SELECT m.id, side.account, CASE WHEN side.debit THEN m.amount ELSE -m.amount END,
    m.patient_id, m.service_date
FROM moves m CROSS JOIN LATERAL (VALUES (m.debit, true), ('insurance_ar', false))
    AS side(account, debit)
"""

_PATIENT_PAYMENTS_SQL = """
INSERT INTO {txn} (public_id, created_at, updated_at, patient_id, kind, posted_at, memo,
    service_date, claim_reference, payer_reference, source, idempotency_key)
SELECT gen_random_uuid(), now(), now(), t.patient_id, 'patient_payment',
    LEAST(t.posted_at + interval '15 days', now()), '', NULL, '', '', 'bench-front-desk',
    'bench-pay:' || t.claim_reference
FROM {txn} t WHERE t.kind = 'transfer_to_patient' AND t.source = 'bench-835' AND mod(t.id, 3) = 0
ON CONFLICT (idempotency_key) DO NOTHING
"""

_PATIENT_PAYMENT_ENTRIES_SQL = """
INSERT INTO {entry} (transaction_id, account, amount, patient_id, service_date)
SELECT p.id, side.account, side.sign * e.amount, p.patient_id, NULL
FROM {txn} p
JOIN {txn} t ON t.kind = 'transfer_to_patient'
    AND p.idempotency_key = 'bench-pay:' || t.claim_reference
JOIN {entry} e ON e.transaction_id = t.id AND e.account = 'patient_ar'
CROSS JOIN (VALUES ('cash', 1), ('patient_ar', -1)) AS side(account, sign)
WHERE p.source = 'bench-front-desk'
  AND NOT EXISTS (SELECT 1 FROM {entry} x WHERE x.transaction_id = p.id)
"""


def _names() -> dict[str, str]:
    from django.db import connection

    from billing.models import ChargeLine, Claim, Encounter
    from patientaccounts.models import JournalEntry, JournalTransaction

    qn = connection.ops.quote_name
    return {
        "txn": qn(JournalTransaction._meta.db_table),
        "entry": qn(JournalEntry._meta.db_table),
        "line": qn(ChargeLine._meta.db_table),
        "encounter": qn(Encounter._meta.db_table),
        "claim": qn(Claim._meta.db_table),
    }


def seed_ledger() -> float:
    """Post the ledger the seeded claims imply (see the module docstring); returns seconds."""
    from django.conf import settings
    from django.db import connection, transaction

    start = time.perf_counter()
    if connection.vendor != "postgresql":
        _seed_ledger_orm()
        return time.perf_counter() - start
    names = _names()
    steps = [
        ("charges", _CHARGES_SQL, [settings.TIME_ZONE]),
        ("charge entries", _CHARGE_ENTRIES_SQL, []),
        ("remittances", _REMIT_SQL, []),
        ("remittance entries", _REMIT_ENTRIES_SQL, []),
        ("patient payments", _PATIENT_PAYMENTS_SQL, []),
        ("patient payment entries", _PATIENT_PAYMENT_ENTRIES_SQL, []),
    ]
    for label, sql, params in steps:
        step = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql.format(**names), params)
            count = cursor.rowcount
        say(f"  ledger: {label}: {count:,} rows in {time.perf_counter() - step:.1f} s")
    return time.perf_counter() - start


def seed_balances() -> float:
    """Rebuild the running A/R balances from the ledger written above (not timed): the SQL
    seed writes ledger rows around patientaccounts.ledger, which keeps them otherwise."""
    from receivables.balances import rebuild

    start = time.perf_counter()
    rebuild()
    return time.perf_counter() - start


def _seed_ledger_orm() -> None:
    """The same postings through patientaccounts.ledger.journal_post_many (small runs)."""
    from decimal import Decimal

    from billing.models import ChargeLine, Claim
    from billing.posting import charge_posting
    from patientaccounts.ledger import Line, Posting, journal_post_many
    from patientaccounts.models import JournalTransaction, LedgerAccount, TransactionKind

    if JournalTransaction.objects.filter(source="bench-835").exists():
        return
    lines = ChargeLine.objects.select_related("encounter__patient").exclude(amount=0)
    postings = [charge_posting(line, insured=True) for line in lines.iterator(chunk_size=2000)]
    cent = Decimal("0.01")
    for claim in Claim.objects.filter(status__in=["paid", "partially_paid"]).select_related(
        "patient"
    ):
        full = claim.status == "paid"
        paid = (claim.total_charge * Decimal("0.6" if full else "0.3")).quantize(cent)
        contractual = (claim.total_charge * Decimal("0.3" if full else "0.2")).quantize(cent)
        rest = claim.total_charge - paid - contractual if full else Decimal(0)
        moves = [
            (TransactionKind.INSURANCE_PAYMENT, LedgerAccount.CASH, paid),
            (TransactionKind.CONTRACTUAL_ADJUSTMENT, LedgerAccount.CONTRACTUAL, contractual),
            (TransactionKind.TRANSFER_TO_PATIENT, LedgerAccount.PATIENT_AR, rest),
        ]
        postings += [
            Posting(
                patient=claim.patient,
                kind=kind,
                lines=[Line(account, amount), Line(LedgerAccount.INSURANCE_AR, -amount)],
                service_date=(
                    claim.date_of_service if kind == TransactionKind.TRANSFER_TO_PATIENT else None
                ),
                claim_reference=claim.patient_control_number,
                source="bench-835",
            )
            for kind, account, amount in moves
            if amount
        ]
    for first in range(0, len(postings), 5000):
        journal_post_many(actor=None, postings=postings[first : first + 5000])


# --- measuring ------------------------------------------------------------------------------


@contextmanager
def captured_sql() -> Iterator[list[tuple[str, Any]]]:
    from django.db import connection

    statements: list[tuple[str, Any]] = []

    def wrapper(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield statements


def explain(fn: Callable[[], object], label: str) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement `fn` runs (PostgreSQL only)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    with captured_sql() as statements:
        fn()
    out = []
    for number, (sql, params) in enumerate(statements, start=1):
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plan = [row[0] for row in cursor.fetchall()]
        out.append(f"{label}, statement {number}:")
        out += [f"    {line}" for line in plan]
    return out


def run(
    *, claims: int = 250_000, full: bool = True, repeats: int = 15, seed: str = "billing"
) -> Section:
    """`seed`: "billing" (billing.demo's bulk path) or "sql" (PostgreSQL INSERT ... SELECT)."""
    from django.db import connection
    from django.utils import timezone

    from billing.models import ChargeLine, Claim
    from core.models import Location
    from patientaccounts.models import JournalEntry
    from receivables.aging import Basis, GroupBy, compute_aging
    from receivables.kpis import compute_kpis

    section = Section("A/R aging and KPIs")
    how = "billing demo bulk path" if seed == "billing" else "SQL"
    say(f"A/R: seeding {claims:,} claims x {LINES_PER_CLAIM} lines ({how}) ...")
    use_sql = seed == "sql" and connection.vendor == "postgresql"
    seed_seconds = seed_claims_sql(claims) if use_sql else seed_claims(claims)
    say(f"A/R: claims seeded in {seed_seconds:.0f} s; posting their ledger ...")
    ledger_seconds = seed_ledger()
    balances_seconds = seed_balances()
    say(f"A/R: running balances rebuilt in {balances_seconds:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    # As a web worker after loading (config/wsgi.py): what exists now is out of the GC's way.
    import gc

    gc.collect()
    gc.freeze()
    counts = {
        "claims": Claim.objects.count(),
        "charge lines": ChargeLine.objects.count(),
        "ledger entries": JournalEntry.objects.count(),
    }
    say("A/R: " + ", ".join(f"{n:,} {name}" for name, n in counts.items()))
    today = timezone.localdate()
    queries: dict[str, Callable[[], object]] = {}
    for by in GroupBy.values:
        for basis in Basis.values:
            limit = PAGE_ROWS if by == GroupBy.PATIENT else None
            queries[f"aging by {by}, {basis} basis"] = lambda by=by, basis=basis, limit=limit: (
                compute_aging(by=by, basis=basis, as_of=today, limit=limit)
            )
    start = today - dt.timedelta(days=89)
    queries["KPIs, last 90 days"] = lambda: compute_kpis(start=start, end=today, trend=False)
    # The pages pass the user's locations (receivables.selectors): a manager's every location,
    # a front office's one. Those scoped statements join patients and encounters.
    every = set(Location.objects.values_list("id", flat=True))
    one = {
        Claim.objects.values_list("encounter__location_id", flat=True).order_by("id").first() or -1
    }
    for label, scope in (("every location", every), ("one location", one)):
        queries[f"aging by patient, submission basis, {label}"] = lambda scope=scope: compute_aging(
            by=GroupBy.PATIENT,
            basis=Basis.SUBMISSION,
            as_of=today,
            location_ids=scope,
            limit=PAGE_ROWS,
        )
        queries[f"aging by payer, service basis, {label}"] = lambda scope=scope: compute_aging(
            by=GroupBy.PAYER, basis=Basis.SERVICE, as_of=today, location_ids=scope
        )
        queries[f"KPIs, last 90 days, {label}"] = lambda scope=scope: compute_kpis(
            start=start, end=today, location_ids=scope, trend=False
        )
    queries["KPIs with monthly trend"] = lambda: compute_kpis(start=start, end=today, trend=True)
    queries["KPIs with monthly trend, every location"] = lambda: compute_kpis(
        start=start, end=today, location_ids=every, trend=True
    )
    section.lines += [
        f"Data: {', '.join(f'{n:,} {name}' for name, n in counts.items())}; seeding "
        f"{seed_seconds:.0f} s (claims) + {ledger_seconds:.0f} s (ledger).",
        "",
        "| query | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|",
    ]
    worst = 0.0
    for name, fn in queries.items():
        fn()  # warm-up
        samples = [timed(fn) for _ in range(repeats)]
        stats = summarize_ms(samples)
        say(
            f"A/R: {name}: p50 {stats['p50']:.0f} ms, p95 {stats['p95']:.0f} ms, "
            f"max {stats['max']:.0f} ms (n={repeats})"
        )
        section.lines.append(
            f"| {name} | {stats['p50']:.0f} | {stats['p95']:.0f} | {stats['max']:.0f} |"
        )
        if not name.startswith("KPIs with monthly trend"):
            worst = max(worst, stats["p95"])
    plans = explain(queries["aging by payer, service basis"], "aging by payer")
    plans += explain(queries["aging by patient, submission basis"], "aging by patient")
    for line in plans:
        say(line)
    lines = counts["charge lines"]
    section.targets.append(
        Target(
            name=f"A/R aging and KPI queries, {lines:,} charge lines (worst p95)",
            goal=f"<= {TARGET_MS:.0f} ms",
            measured=f"{worst:.0f} ms",
            passed=(worst <= TARGET_MS) if full else None,
        )
    )
    return section


_WHAT_IF_SETUP = [
    "ALTER TABLE {entry} ADD COLUMN bench_claim_reference varchar(64) NOT NULL DEFAULT ''",
    "UPDATE {entry} e SET bench_claim_reference = t.claim_reference FROM {txn} t "
    "WHERE t.id = e.transaction_id AND t.claim_reference <> '' AND t.kind <> 'charge'",
    "CREATE INDEX bench_entry_claim_ref ON {entry} (account, bench_claim_reference) "
    "INCLUDE (amount) WHERE bench_claim_reference <> ''",
    "VACUUM ANALYZE {entry}",
]
_WHAT_IF_QUERY = """
SELECT c.payer_id,
    SUM(CASE WHEN c.date_of_service >= %s THEN o ELSE 0 END),
    SUM(CASE WHEN c.date_of_service < %s THEN o ELSE 0 END)
FROM (SELECT c.payer_id, c.date_of_service, c.total_charge + COALESCE(cr.amount, 0) AS o
      FROM {claim} c LEFT JOIN (
          SELECT e.bench_claim_reference AS ref, SUM(e.amount) AS amount FROM {entry} e
          WHERE e.account = 'insurance_ar' AND e.bench_claim_reference > ''
          GROUP BY e.bench_claim_reference) cr ON cr.ref = c.patient_control_number
      WHERE c.status NOT IN ('void', 'resubmitted', 'closed')) c
GROUP BY c.payer_id
"""


def what_if_entry_claim_reference(repeats: int) -> list[str]:
    """PostgreSQL only, on the throwaway bench database: add the claim reference to the ledger
    entries (the field this report asks the ledger for) with a partial covering index, and time
    the payer aging's insurance part written against it."""
    from django.db import connection
    from django.utils import timezone

    if connection.vendor != "postgresql":
        return []
    from django.db import transaction

    names = _names()
    with transaction.atomic(), connection.cursor() as cursor:
        # the ledger's append-only trigger refuses UPDATE: off for this throwaway copy only
        cursor.execute("SET LOCAL session_replication_role = replica")
        for sql in _WHAT_IF_SETUP[:-1]:
            cursor.execute(sql.format(**names))
    with connection.cursor() as cursor:
        cursor.execute(_WHAT_IF_SETUP[-1].format(**names))
    cutoff = timezone.localdate() - dt.timedelta(days=30)

    def query() -> None:
        with connection.cursor() as cursor:
            cursor.execute(_WHAT_IF_QUERY.format(**names), [cutoff, cutoff])
            cursor.fetchall()

    query()
    stats = summarize_ms([timed(query) for _ in range(repeats)])
    line = (
        f"what-if (claim reference on the ledger entry, partial covering index): insurance "
        f"aging by payer p50 {stats['p50']:.0f} ms, p95 {stats['p95']:.0f} ms"
    )
    say(f"A/R: {line}")
    return [line, *explain(query, "what-if insurance aging")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A/R aging and KPI benchmark")
    parser.add_argument("--claims", type=int, default=250_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--seed", choices=("billing", "sql"), default="billing")
    parser.add_argument(
        "--what-if", action="store_true", help="also time the query with the field it asks for"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PATIENTDESK_TESTING", "1")
    from bench.common import fresh_database

    kind = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    with fresh_database(kind):
        import django

        django.setup()
        from django.core.management import call_command

        from core import demo

        call_command("migrate", verbosity=0)
        demo.seed_demo(patients=args.patients, bulk_above=0, progress=False)
        section = run(claims=args.claims, full=True, repeats=args.repeats, seed=args.seed)
        if args.what_if:
            for line in what_if_entry_claim_reference(args.repeats):
                say(line)
    for target in section.targets:
        say(f"{target.verdict:<4}  {target.name}: {target.measured}  (target {target.goal})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
