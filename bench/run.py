#!/usr/bin/env python
"""patientdesk benchmarks: `bench/run.py --database sqlite|postgresql [--quick]`.

Each run creates its own fresh database (SQLite: a temporary file; PostgreSQL: a new database on
the server DATABASE_URL points at, as scripts/with_postgres.sh provides), migrates it, seeds it
with the demo generator's bulk path, then measures patient search, registration and FHIR import
against the issue's targets, then the scheduling targets (slot finder, day view, booking:
bench/bench_scheduling.py and bench/schedule_bench.py), and prints PASS/FAIL for each. A full
run (not --quick) rewrites this database's section of docs/performance.md and its block of the
Scheduling section, keeping everything else. `--suite patients|scheduling` runs one half only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Section,
    fresh_database,
    machine_facts,
    say,
    write_section,
)

FULL = {
    "sqlite": {"patients": 100_000, "queries": 1000, "registrations": 2000, "bundles": 1000},
    "postgresql": {"patients": 1_000_000, "queries": 1000, "registrations": 2000, "bundles": 1000},
}
QUICK = {"patients": 3000, "queries": 140, "registrations": 100, "bundles": 20}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--patients", type=int, help="override the number of seeded patients")
    parser.add_argument(
        "--suite",
        choices=("all", "patients", "scheduling", "billing"),
        default="all",
        help="which benchmarks to run (default: all)",
    )
    parser.add_argument(
        "--docs",
        choices=("auto", "yes", "no"),
        default="auto",
        help="write docs/performance.md (auto: only for full runs)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL[args.database])
    if args.patients is not None:
        sizes["patients"] = args.patients
    full = not args.quick and args.patients is None
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PATIENTDESK_TESTING", "1")

    with fresh_database(args.database) as where:
        import django

        django.setup()
        from django.core.management import call_command

        say(f"bench: {args.database} database {where}; sizes {sizes}")
        call_command("migrate", verbosity=0)
        facts = machine_facts()
        for name, value in facts:
            say(f"  {name}: {value}")

        sections: list[Section] = []
        seed_seconds, seeded = 0.0, 0
        if args.suite in ("all", "patients"):
            sections, seed_seconds, seeded = patient_benchmarks(sizes, full)
        scheduling: Section | None = None
        if args.suite in ("all", "scheduling"):
            from bench import schedule_bench

            scheduling = schedule_bench.run(database=args.database, quick=args.quick, full=full)
        billing: list[Section] = []
        if args.suite in ("all", "billing"):
            billing = billing_benchmarks(args.database, quick=args.quick, full=full)

    say("")
    say(f"== results ({args.database}{', quick: no verdicts' if not full else ''}) ==")
    everything = [*sections, *([scheduling] if scheduling is not None else []), *billing]
    targets = [target for section in everything for target in section.targets]
    for target in targets:
        say(f"{target.verdict:<4}  {target.name}: {target.measured}  (target {target.goal})")

    write_docs = args.docs == "yes" or (args.docs == "auto" and full)
    if write_docs and sections:
        body = render(args.database, facts, sizes, seed_seconds, seeded, sections)
        write_section(args.database, body)
        say("docs/performance.md: section updated")
    if write_docs and scheduling is not None:
        from bench import schedule_bench

        schedule_bench.write_docs(
            args.database, schedule_bench.render(args.database, scheduling, facts)
        )
        say("docs/performance.md: Scheduling section updated")
    if write_docs and billing:
        write_section(f"billing-{args.database}", render_billing(args.database, facts, billing))
        say("docs/performance.md: Billing section updated")
    return 0


def billing_benchmarks(database: str, *, quick: bool, full: bool) -> list[Section]:
    """837P generation (from dataclasses, then end to end from database rows), 835 ingest and
    posting (with edi-835-parser's parse-only speed as a reference), and on PostgreSQL the A/R
    aging and KPI queries over 1,000,000 charge lines (250,000 claims x 4 lines)."""
    from bench import billing_835, billing_837
    from bench.common import in_fresh_process

    claims = 500 if quick else 10_000
    sections = [
        billing_837.run(claims=claims, full=full, validate=not quick),
        billing_837.run_export(claims=claims, full=full, validate=not quick),
        billing_835.run_in_fresh_process(quick=quick, full=full),
    ]
    if database == "postgresql" or quick:
        ar_claims = 2_000 if quick else 250_000
        # INSERT ... SELECT on PostgreSQL (minutes, not the half hour of the ORM bulk path).
        # In a fresh process, as a web worker serves the reports (see bench.common).
        sections.append(
            in_fresh_process("bench.billing_ar", "run", claims=ar_claims, full=full, seed="sql")
        )
    return sections


def render_billing(kind: str, facts: list[tuple[str, str]], sections: list[Section]) -> str:
    title = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[kind]
    lines = [f"### Billing on {title}", "", "Machine and software:", ""]
    lines += [f"- {name}: {value}" for name, value in facts]
    lines += ["", "| target | goal | measured | verdict |", "|---|---|---|---|"]
    for section in sections:
        for target in section.targets:
            lines.append(
                f"| {target.name} | {target.goal} | {target.measured} | {target.verdict} |"
            )
    for section in sections:
        lines += ["", f"#### {section.title} ({title})", "", *section.lines]
    return "\n".join(lines) + "\n"


def patient_benchmarks(sizes: dict[str, int], full: bool) -> tuple[list[Section], float, int]:
    """Seed the patients (bulk path), then measure search, registration and FHIR import."""
    from django.db import connection

    from core import demo

    say(f"seeding {sizes['patients']:,} patients (bulk path) ...")
    start = time.perf_counter()
    report = demo.seed_demo(patients=sizes["patients"], bulk_above=0, progress=True)
    seed_seconds = time.perf_counter() - start
    # As after any bulk load: statistics, and on PostgreSQL the visibility map and hint bits
    # too, so that the measurements below are not taken while autovacuum works through a
    # million freshly inserted rows (and the first reads of each row rewrite its page).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    say(
        f"seeded {report.patients_created:,} patients in {seed_seconds:.1f} s "
        f"({report.patients_created / seed_seconds:.0f} patients/s)"
    )

    from accounts.models import User
    from bench import fhir_import, registration, search
    from core.models import Location

    frontdesk = User.objects.get(username="frontdesk")
    main_clinic = Location.objects.get(code="main")
    sections: list[Section] = [
        search.run(
            queries=sizes["queries"], patients=report.patients_total, user=frontdesk, full=full
        ),
        registration.run(
            count=sizes["registrations"],
            user=User.objects.get(username="frontdesk"),
            location=main_clinic,
            existing=report.patients_total,
            full=full,
        ),
        fhir_import.run(count=sizes["bundles"], full=full),
    ]
    return sections, seed_seconds, report.patients_created


def render(
    kind: str,
    facts: list[tuple[str, str]],
    sizes: dict[str, int],
    seed_seconds: float,
    seeded: int,
    sections: list[Section],
) -> str:
    title = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[kind]
    lines = [f"## {title}", "", "Machine and software:", ""]
    lines += [f"- {name}: {value}" for name, value in facts]
    lines += [
        "",
        f"Seeding {seeded:,} patients with `core.demo` bulk path "
        f"(`seed_demo --patients {sizes['patients']}`): {seed_seconds:.0f} s "
        f"({seeded / seed_seconds:,.0f} patients/s, with MRN identifiers, coverages and alerts).",
        "",
        "| target | goal | measured | verdict |",
        "|---|---|---|---|",
    ]
    for section in sections:
        for target in section.targets:
            lines.append(
                f"| {target.name} | {target.goal} | {target.measured} | {target.verdict} |"
            )
    for section in sections:
        lines += ["", f"### {section.title} ({title})", "", *section.lines]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
