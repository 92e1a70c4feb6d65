"""837P generation throughput, from the database and from dataclasses.

`run_export(claims=10_000, lines=4, full=True, validate=True)` (needs a migrated database)
seeds ready claims and runs one `billing.export.claims_export_837`; it reports (a) generation
= read + map + render from real rows against the issue's 5,000 claims/s target, (b) the whole
export with its submission bookkeeping (status update, timeline, audit) and (c) pyx12's
validation of the file, beside the target.
`run(claims=10_000, lines=4, full=True, validate=True)` renders made-up dataclass claims only
(best of three) and times pyx12 on that file: the rendering share, without a database.
Standalone: `python bench/billing_837.py [--claims N] [--lines N] [--no-validate]
[--database sqlite|postgresql]`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Section, Target, say

TARGET_PER_SECOND = 5000.0


def run(
    *, claims: int = 10_000, lines: int = 4, full: bool = True, validate: bool = True
) -> Section:
    from billing.x12 import claim837_samples as samples
    from billing.x12.edi837 import render_837p
    from billing.x12.validate import validate_837

    section = Section("837P generation")
    batch = samples.sample_claims(claims, lines=lines)
    line_count = sum(len(claim.lines) for claim in batch)

    def render() -> str:
        return render_837p(
            claims_by_billing_provider={samples.BILLING_PROVIDER: batch},
            submitter=samples.SUBMITTER,
            receiver=samples.RECEIVER,
            interchange_control_number=1,
            group_control_number=1,
            transaction_control_number=1,
            sender_id=samples.SUBMITTER.identifier,
            receiver_id=samples.RECEIVER.identifier,
            created_at=samples.CREATED_AT,
        )

    timings = []
    text = ""
    for _ in range(3):
        start = time.perf_counter()
        text = render()
        timings.append(time.perf_counter() - start)
    best = min(timings)
    rate = claims / best if best else 0.0
    segments = text.count("~")
    say(
        f"837P: {claims:,} claims x {lines} lines rendered in {best:.3f} s (best of 3; "
        f"runs {', '.join(f'{t:.3f}' for t in timings)} s) = {rate:,.0f} claims/s, "
        f"{len(text) / 1e6:.1f} MB, {segments:,} segments"
    )
    # Rendering alone, from ready-made dataclasses: the target is measured from the
    # database by `run_export` (read + map + render); this figure is its rendering share.
    section.targets.append(
        Target("837P rendering only (dataclasses, no database)", "reported", f"{rate:,.0f}", None)
    )
    section.lines.append(
        f"`render_837p` over {claims:,} made-up claims ({line_count:,} service lines; every 5th "
        "a dependent with a patient loop, every 10th a secondary claim with claim- and line-level "
        f"CAS, some replacements): one {len(text) / 1e6:.1f} MB file of {segments:,} segments in "
        f"{best:.3f} s (best of 3): **{rate:,.0f} claims/s**."
    )
    if validate:
        start = time.perf_counter()
        result = validate_837(text)
        seconds = time.perf_counter() - start
        verdict = "valid" if result.ok else f"INVALID ({len(result.errors)} errors)"
        say(
            f"837P: pyx12 validation of the same file: {seconds:.1f} s "
            f"({claims / seconds:,.0f} claims/s), {verdict}"
        )
        section.lines.append(
            f"pyx12 4.0 validation of the same file (`validate_837`, not part of the target): "
            f"{seconds:.1f} s ({claims / seconds:,.0f} claims/s), {verdict}."
        )
        if not result.ok:
            section.lines.append(f"First error: `{result.errors[0][:200]}`")
    return section


def seed_ready_claims(count: int, lines: int = 4) -> None:
    """Bulk-insert `count` ready claims (one patient, coverage and encounter each) for one payer."""
    import datetime as dt
    from decimal import Decimal

    from billing.models import (
        BillingProvider,
        Claim,
        ClaimLine,
        ClaimStatus,
        Encounter,
        EncounterDiagnosis,
        Payer,
    )
    from core.models import Location
    from patients.models import Coverage, Patient
    from patients.mrn import make_mrn
    from scheduling.models import Practitioner

    location = Location.objects.order_by("pk").first() or Location.objects.create(
        code="bench837", name="Bench clinic"
    )
    payer, _ = Payer.objects.get_or_create(
        payer_id="BENCH837",
        defaults={"name": "Bench Health Plan", "address_line1": "1 Plaza", "city": "Chicago",
                  "state": "IL", "postal_code": "60601"},
    )  # fmt: skip
    provider = BillingProvider.objects.create(
        name="Bench Medical Group", npi="1245319599", taxonomy_code="207Q00000X",
        tax_id="123456789", address_line1="100 Harbor Way", city="Springfield", state="IL",
        postal_code="627011234",
    )  # fmt: skip
    practitioner = Practitioner.objects.create(
        given_name="Maria", family_name="Lopez", npi="1234567893", specialty="Family Medicine"
    )
    day = dt.date.today() - dt.timedelta(days=5)  # noqa: DTZ011
    base = Patient.objects.count() + 90_000_000
    patients = Patient.objects.bulk_create(
        [
            Patient(
                mrn=make_mrn(base + n),
                home_location=location,
                family_name=f"Benchperson{n}",
                given_name="Alex",
                family_fold=f"benchperson{n}",
                given_fold="alex",
                birth_date=dt.date(1950 + n % 50, 1 + n % 12, 1 + n % 28),
                sex_at_birth="MF"[n % 2],
                address_line1=f"{n} Oak Street",
                city="Springfield",
                state="IL",
                postal_code="62704",
            )
            for n in range(count)
        ],
        batch_size=2000,
    )
    coverages = Coverage.objects.bulk_create(
        [
            Coverage(
                patient=p,
                payer_name=payer.name,
                payer_identifier=payer.payer_id,
                member_id=f"BM{n:09d}",
                member_id_fold=f"bm{n:09d}",
                group_number="G1",
            )
            for n, p in enumerate(patients)
        ],
        batch_size=2000,
    )
    encounters = Encounter.objects.bulk_create(
        [
            Encounter(
                patient=p,
                location=location,
                date_of_service=day,
                rendering_practitioner=practitioner,
                billing_provider=provider,
            )
            for p in patients
        ],
        batch_size=2000,
    )
    EncounterDiagnosis.objects.bulk_create(
        [
            EncounterDiagnosis(encounter=e, position=i + 1, code=code)
            for e in encounters
            for i, code in enumerate(("J449", "E119"))
        ],
        batch_size=5000,
    )
    claims = Claim.objects.bulk_create(
        [
            Claim(
                patient=p,
                encounter=e,
                coverage=c,
                payer=payer,
                billing_provider=provider,
                rendering_practitioner=practitioner,
                patient_control_number=f"BN{n:09d}",
                status=ClaimStatus.READY,
                date_of_service=day,
                total_charge=Decimal(100 * lines),
            )
            for n, (p, c, e) in enumerate(zip(patients, coverages, encounters, strict=True))
        ],
        batch_size=2000,
    )
    codes = ("99213", "36415", "81002", "90471")
    ClaimLine.objects.bulk_create(
        [
            ClaimLine(
                claim=c,
                line_number=i + 1,
                code=codes[i % 4],
                units=Decimal(1),
                pointer1=1,
                service_date=day,
                charge=Decimal(100),
            )
            for c in claims
            for i in range(lines)
        ],
        batch_size=5000,
    )


def run_export(
    *, claims: int = 10_000, lines: int = 4, full: bool = True, validate: bool = True
) -> Section:
    """End to end on the current database: seed ready claims, then one `claims_export_837`.

    Reports, from that one run over real rows: (a) generation = read the ready claims with
    their lines, diagnoses and prior payments + map them + render the file (the issue's
    target, >= 5,000 claims/s); (b) the whole export including the submission bookkeeping (one
    conditional UPDATE per 2,000 claims, a timeline row and an audit event per claim) and the
    file write; (c) pyx12's validation of the file, which gates the release (beside the target,
    not part of it). `validate=False` swaps pyx12 for an always-valid stub (quick runs only:
    the figure is then marked as not measured).
    Needs a migrated database (bench/run.py provides a fresh one)."""
    import tempfile
    from unittest import mock

    from billing import export
    from billing.x12.validate import ValidationResult

    section = Section("837P export")
    say(f"837P export: seeding {claims:,} ready claims x {lines} lines ...")
    start = time.perf_counter()
    seed_ready_claims(claims, lines)
    say(f"837P export: seeded in {time.perf_counter() - start:.1f} s")
    stub = mock.patch.object(export, "validate_837", return_value=ValidationResult(ok=True))
    with tempfile.TemporaryDirectory(prefix="patientdesk-bench-837-") as tmp:
        if not validate:
            stub.start()
        try:
            start = time.perf_counter()
            result = export.claims_export_837(actor=None, out_dir=tmp)
            elapsed = time.perf_counter() - start
        finally:
            if not validate:
                stub.stop()
    split = dict(result.seconds)
    generation = split.get("read_and_map", 0.0) + split.get("render", 0.0)
    validate_seconds = split.get("validate", 0.0)
    bookkeeping = split.get("write_and_submit", 0.0)
    without = elapsed - validate_seconds
    released = result.claims
    gen_rate = released / generation if generation else 0.0
    export_rate = released / without if without else 0.0
    overall = released / elapsed if elapsed else 0.0
    parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in split.items())
    say(
        f"837P export: {released:,} claims released in {elapsed:.1f} s ({parts})\n"
        f"  (a) generation (read + map + render): {generation:.2f} s = {gen_rate:,.0f} claims/s\n"
        f"  (b) export without pyx12 (+ write, submit, timeline, audit): {without:.2f} s = "
        f"{export_rate:,.0f} claims/s\n"
        + (
            f"  (c) pyx12 validation: {validate_seconds:.1f} s "
            f"({released / validate_seconds if validate_seconds else 0:,.0f} claims/s); "
            f"whole export with it: {overall:,.0f} claims/s"
            if validate
            else "  (c) pyx12 validation: not run (--no-validate)"
        )
    )
    complete = released == claims and not result.failed
    section.targets.append(
        Target(
            "837P generation from the database (read + map + render)",
            f">= {TARGET_PER_SECOND:,.0f} claims/s",
            f"{gen_rate:,.0f}",
            (gen_rate >= TARGET_PER_SECOND and complete) if full else None,
        )
    )
    section.targets.append(
        Target(
            "837P export without pyx12 (incl. submission bookkeeping)",
            "reported",
            f"{export_rate:,.0f} claims/s",
            None,
        )
    )
    section.targets.append(
        Target(
            "pyx12 validation of the exported file (beside the target)",
            "reported",
            f"{validate_seconds:.1f} s" if validate else "not run",
            None,
        )
    )
    section.lines.append(
        f"`claims_export_837` over {claims:,} ready claims of {lines} lines (seeded rows: one "
        f"patient, coverage and encounter each): {released:,} released in {elapsed:.1f} s "
        f"({parts}). **Generation** (read from the database, map, render): {generation:.2f} s = "
        f"**{gen_rate:,.0f} claims/s**. Export without pyx12 (adds the file write and the "
        f"submission bookkeeping: status UPDATE, a timeline row and an audit event per claim): "
        f"{export_rate:,.0f} claims/s (bookkeeping {bookkeeping:.2f} s)."
    )
    if validate:
        section.lines.append(
            f"pyx12 4.0 validation of that file (`validate_837`, run before every release, "
            f"not part of the target): {validate_seconds:.1f} s; the whole export with it: "
            f"{overall:,.0f} claims/s."
        )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=4)
    parser.add_argument("--no-validate", action="store_true")
    parser.add_argument(
        "--database",
        choices=("none", "sqlite", "postgresql"),
        default="none",
        help="also run the end-to-end export on a fresh database of this kind "
        "(postgresql: inside scripts/with_postgres.sh)",
    )
    args = parser.parse_args(argv)
    sections = [run(claims=args.claims, lines=args.lines, validate=not args.no_validate)]
    if args.database != "none":
        import os

        from bench.common import fresh_database

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        os.environ.setdefault("PATIENTDESK_TESTING", "1")
        with fresh_database(args.database):
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            sections.append(
                run_export(claims=args.claims, lines=args.lines, validate=not args.no_validate)
            )
    for target in (t for section in sections for t in section.targets):
        say(f"{target.verdict:<4}  {target.name}: {target.measured}  (target {target.goal})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
