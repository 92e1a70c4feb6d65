"""835 remittance benchmark: our parser's speed, and edi-835-parser's on the same file.

A synthetic, balanced 835 (`billing.x12.edi835_samples`: N claims x 3 service lines, each line
with CAS CO-45 and PR-2/PR-3, every 10th claim denied, a PLB) is written to a temporary file;
`billing.x12.edi835.parse_835` reads it (claim payments per second, best of a few runs), and so
does edi-835-parser's `parse()` (parse only, a reference ratio; it reads less: no claim-level
CAS, only the first CAS triplet, no PLB). The issue's target (>= 2,000 claim payments/s) is for
ingest AND post end to end (`remittance.services.remittance_ingest`).

`run(quick=..., full=...) -> Section` is what bench/run.py calls (after migrating a fresh
database); it also seeds the submitted claims the file pays, in bulk, and times
`remittance_ingest` end to end, with the CPU time this process spent per claim payment (the
steadier figure on a loaded machine). Standalone: `.venv/bin/python bench/billing_835.py
[--claims N]` prints the parse figures only (no database); add `--database sqlite|postgresql`
for the whole run on a fresh database (PostgreSQL inside scripts/with_postgres.sh), and
`--profile FILE` to cProfile the ingest (`python -m pstats FILE`, sort by cumulative/tottime).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import tempfile
import time
import warnings
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Section, Target, say

TARGET_PER_SECOND = 2000.0
FULL_CLAIMS = 20_000
QUICK_CLAIMS = 1_000
LINES_PER_CLAIM = 3


def write_sample(claims: int, directory: Path, *, prefix: str = "PCN") -> Path:
    from billing.x12.edi835_samples import (
        SamplePlb,
        SampleRemittance,
        render_835,
        synthetic_claims,
    )

    sample = SampleRemittance(
        claims=synthetic_claims(claims, lines_per_claim=LINES_PER_CLAIM, seed=7, prefix=prefix),
        trace=f"BENCH{claims}",
        plb=(SamplePlb("WO", Decimal("25.00"), "BENCH"), SamplePlb("L6", Decimal("-3.10"))),
    )
    path = directory / f"bench_{claims}.835"
    path.write_text(render_835(sample))
    return path


def parse_rate(path: Path, claims: int, *, repeats: int = 3) -> tuple[float, float]:
    """(claims/s of the best run, seconds of the best run) for billing.x12.edi835."""
    from billing.x12.edi835 import parse_835

    data = path.read_bytes()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        remittance = parse_835(data)
        best = min(best, time.perf_counter() - start)
        if len(remittance.claims) != claims:
            raise AssertionError(f"parsed {len(remittance.claims)} claims of {claims}")
    return claims / best, best


def reference_rate(path: Path, claims: int) -> tuple[float, float] | None:
    """(claims/s, seconds) for edi-835-parser's parse(), or None when it is not installed."""
    try:
        import edi_835_parser
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        edi_835_parser.parse(str(path))
        elapsed = time.perf_counter() - start
    return claims / elapsed, elapsed


def seed_claims(claims: int, *, prefix: str, patients: int = 200) -> None:
    """`claims` submitted claims (3 lines each, PCN = prefix + number, as the synthetic file
    names them) spread over `patients` patients, inserted in bulk."""
    import datetime as dt

    from django.utils import timezone

    from billing.models import Claim, ClaimLine, ClaimStatus, Payer
    from billing.tests.factories import EncounterFactory
    from billing.x12.edi835_samples import synthetic_claims
    from patients.tests.factories import CoverageFactory

    payer, _ = Payer.objects.get_or_create(
        payer_id="1999999999", defaults={"name": "SAMPLE HEALTH PLAN", "appeal_days": 90}
    )
    day = dt.date(2024, 1, 2)
    encounters = [EncounterFactory(date_of_service=day) for _ in range(patients)]
    coverages = [CoverageFactory(patient=e.patient, payer_name=payer.name) for e in encounters]
    specs = synthetic_claims(claims, lines_per_claim=LINES_PER_CLAIM, seed=7, prefix=prefix)
    now = timezone.now()
    rows = []
    for number, spec in enumerate(specs):
        encounter = encounters[number % patients]
        rows.append(
            Claim(
                patient=encounter.patient,
                encounter=encounter,
                coverage=coverages[number % patients],
                payer=payer,
                billing_provider=encounter.billing_provider,
                rendering_practitioner=encounter.rendering_practitioner,
                patient_control_number=spec.patient_control_number,
                status=ClaimStatus.SUBMITTED,
                submitted_at=now,
                date_of_service=day,
                total_charge=spec.charge,
            )
        )
    Claim.objects.bulk_create(rows, batch_size=1000)
    lines = [
        ClaimLine(
            claim=claim,
            line_number=position,
            code=line.code,
            modifier1=line.modifiers[0] if line.modifiers else "",
            units=line.units,
            pointer1=1,
            charge=line.charge,
            service_date=day,
        )
        for claim, spec in zip(rows, specs, strict=True)
        for position, line in enumerate(spec.lines, start=1)
    ]
    ClaimLine.objects.bulk_create(lines, batch_size=2000)


def server_cpu_seconds() -> float | None:
    """CPU seconds the PostgreSQL backend serving this connection has used (read from
    /proc/<pid>/stat: the server must run on this machine), or None (SQLite, or no /proc)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ingest_rate(
    path: Path, claims: int, *, profile: Path | None = None
) -> tuple[float, float, str, float]:
    """(claims/s, seconds, status, CPU microseconds per claim payment) of remittance_ingest:
    parse, match, post, end to end. The CPU time (this process; the database server's is not
    in it on PostgreSQL, and is printed beside it when it can be read) is the steadier figure
    on a loaded machine. With `profile`, the run is profiled (cProfile; slower) and the
    statistics are written there."""
    from remittance.services import remittance_ingest

    data = path.read_bytes()
    profiler = cProfile.Profile() if profile is not None else None
    server = server_cpu_seconds()
    cpu = time.process_time()
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    report = remittance_ingest(actor=None, data=data, file_name=path.name)
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    server_after = server_cpu_seconds()
    if server is not None and server_after is not None:
        say(
            f"835 ingest: PostgreSQL server CPU {(server_after - server) / claims * 1e6:,.0f} us "
            f"per claim payment (this process {cpu / claims * 1e6:,.0f} us)"
        )
    if profiler is not None and profile is not None:
        profiler.dump_stats(str(profile))
    if report.matched != claims:
        raise AssertionError(f"matched {report.matched} of {claims}: {report.message}")
    return claims / elapsed, elapsed, str(report.status), cpu / claims * 1e6


def settle() -> None:
    """Before timing: on PostgreSQL, statistics for the tables the seed (and, in bench/run.py's
    suite, the 837 benchmarks before it) just filled, as autovacuum would have taken by the
    time a file arrives; and this process's long-lived objects frozen out of the garbage
    collector's full collections, as a server or background worker does after loading
    (config/wsgi.py)."""
    import gc

    from django.db import connection

    if connection.vendor == "postgresql":
        # (SQLite: ANALYZE's statistics led its planner to slower plans for the poster's
        # lookups: 482 -> 515 us of CPU per claim payment; without it, as before)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    gc.collect()
    gc.freeze()


def run_in_fresh_process(*, quick: bool, full: bool) -> Section:
    """`run()` in a new interpreter on the same database (bench.common.in_fresh_process), as
    a background worker process ingests a file in the deployed system: bench/run.py's suite
    runs the 837 benchmarks first, and their process state (pyx12's maps, hundreds of
    thousands of objects) made the same ingest cost a third more CPU in that process."""
    from bench.common import in_fresh_process

    return in_fresh_process("bench.billing_835", "run", quick=quick, full=full)


def ingest_available() -> bool:
    try:
        from remittance.services import remittance_ingest  # noqa: F401
    except ImportError:
        return False
    return True


def run(
    *, quick: bool, full: bool, claims: int | None = None, profile: Path | None = None
) -> Section:
    """Needs a migrated database (bench/run.py provides one)."""
    if claims is None:
        claims = QUICK_CLAIMS if quick else FULL_CLAIMS
    section = Section("835 remittance ingest")
    end_to_end: tuple[float, float, str, float] | None = None
    with tempfile.TemporaryDirectory(prefix="patientdesk-bench-835-") as tmp:
        prefix = f"B{int(time.time()) % 100000:05d}"
        path = write_sample(claims, Path(tmp), prefix=prefix)
        size_mb = path.stat().st_size / 1e6
        say(f"835: {claims:,} claim payments x {LINES_PER_CLAIM} lines, {size_mb:.1f} MB")
        ours, ours_seconds = parse_rate(path, claims)
        say(f"835 parse (billing.x12.edi835): {ours:,.0f} claim payments/s ({ours_seconds:.2f} s)")
        reference = reference_rate(path, claims)
        if reference is None:
            say("835 parse (edi-835-parser): not installed")
        else:
            say(
                f"835 parse (edi-835-parser, reference): {reference[0]:,.0f} claim payments/s "
                f"({reference[1]:.2f} s); ours is {ours / reference[0]:.1f}x"
            )
        if ingest_available():
            say(f"835: seeding {claims:,} submitted claims to match ...")
            seed_claims(claims, prefix=prefix)
            settle()
            end_to_end = ingest_rate(path, claims, profile=profile)
            say(
                f"835 ingest + post end to end: {end_to_end[0]:,.0f} claim payments/s "
                f"({end_to_end[1]:.2f} s, {end_to_end[2]}; CPU {end_to_end[3]:,.0f} us "
                "per claim payment)"
            )
    section.lines += [
        f"Synthetic balanced 835: {claims:,} claim payments x {LINES_PER_CLAIM} service lines "
        f"with CAS, every 10th claim denied, a PLB; {size_mb:.1f} MB "
        "(`billing.x12.edi835_samples`). End to end = `remittance_ingest` on a database holding "
        "the matching submitted claims: parse, match by control number, store every CLP/SVC/CAS, "
        "post to the ledger (bulk), claim statuses and timeline, denials, audit rows, one "
        "transaction.",
        "",
        "| reader | claim payments/s | seconds | CPU per claim payment |",
        "|---|---|---|---|",
        f"| billing.x12.edi835 (parse only, best of 3) | {ours:,.0f} | {ours_seconds:.2f} "
        f"| {ours_seconds / claims * 1e6:,.0f} us |",
    ]
    if reference is not None:
        section.lines.append(
            f"| edi-835-parser 1.8 (parse only, reference) | {reference[0]:,.0f} "
            f"| {reference[1]:.2f} | |"
        )
    if end_to_end is not None:
        section.lines.append(
            f"| remittance_ingest (parse + match + post) | {end_to_end[0]:,.0f} "
            f"| {end_to_end[1]:.2f} | {end_to_end[3]:,.0f} us (this process) |"
        )
    if reference is not None:
        section.lines += [
            "",
            f"Ratio: our parser / edi-835-parser = {ours / reference[0]:.1f}x (edi-835-parser "
            "reads less: no claim-level CAS, one triplet per CAS, no PLB).",
        ]
    if end_to_end is None:
        target = Target(
            "835 ingest + post end to end",
            f">= {TARGET_PER_SECOND:,.0f} claim payments/s",
            "not available (remittance posting not built)",
            None,
        )
    else:
        target = Target(
            "835 ingest + post end to end",
            f">= {TARGET_PER_SECOND:,.0f} claim payments/s",
            f"{end_to_end[0]:,.0f} claim payments/s",
            (end_to_end[0] >= TARGET_PER_SECOND) if full else None,
        )
    section.targets.append(target)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="835 parse speed (no database); with --database, ingest + post end to end"
    )
    parser.add_argument("--claims", type=int, default=FULL_CLAIMS)
    parser.add_argument("--database", choices=("sqlite", "postgresql"))
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="with --database: cProfile the ingest and write the statistics to FILE "
        "(read them with `python -m pstats FILE`)",
    )
    args = parser.parse_args(argv)
    if args.database:
        return run_on_fresh_database(args.database, args.claims, profile=args.profile)
    with tempfile.TemporaryDirectory(prefix="patientdesk-bench-835-") as tmp:
        path = write_sample(args.claims, Path(tmp))
        ours, seconds = parse_rate(path, args.claims)
        say(f"billing.x12.edi835: {ours:,.0f} claim payments/s ({seconds:.2f} s)")
        reference = reference_rate(path, args.claims)
        if reference is not None:
            say(f"edi-835-parser: {reference[0]:,.0f} claim payments/s ({reference[1]:.2f} s)")
    return 0


def run_on_fresh_database(kind: str, claims: int, *, profile: Path | None = None) -> int:
    from bench.common import fresh_database

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PATIENTDESK_TESTING", "1")
    with fresh_database(kind):
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        section = run(quick=False, full=True, claims=claims, profile=profile)
    for target in section.targets:
        say(f"{target.verdict:<4}  {target.name}: {target.measured}  (target {target.goal})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
