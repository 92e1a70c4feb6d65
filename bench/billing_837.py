"""837P generation throughput: `billing.x12.edi837.render_837p` over dataclass claims.

`run(claims=10_000, lines=4, full=True)` builds the claims (not timed), renders them into one
837P file (timed: best of three runs), reports claims/s against the issue's 5,000/s target, then
times pyx12's validation of the same file (reported beside it, not part of the target).
Standalone: `python bench/billing_837.py [--claims N] [--lines N] [--no-validate]`.
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
    passed = rate >= TARGET_PER_SECOND if full else None
    section.targets.append(
        Target("837P generation", f">= {TARGET_PER_SECOND:,.0f} claims/s", f"{rate:,.0f}", passed)
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


def run_export(*, claims: int = 10_000, lines: int = 4, full: bool = True) -> Section:
    """End to end on the current database: seed ready claims, then `claims_export_837`.

    Needs a migrated database (bench/run.py provides a fresh one)."""
    import tempfile

    from billing.export import claims_export_837

    section = Section("837P export")
    say(f"837P export: seeding {claims:,} ready claims x {lines} lines ...")
    seed_ready_claims(claims, lines)
    with tempfile.TemporaryDirectory(prefix="patientdesk-bench-837-") as tmp:
        start = time.perf_counter()
        result = claims_export_837(actor=None, out_dir=tmp)
        elapsed = time.perf_counter() - start
    split = dict(result.seconds)
    validate_seconds = split.get("validate", 0.0)
    without = elapsed - validate_seconds
    rate = result.claims / without if without else 0.0
    overall = result.claims / elapsed if elapsed else 0.0
    parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in split.items())
    say(
        f"837P export: {result.claims:,} claims released in {elapsed:.1f} s ({parts}); "
        f"without pyx12: {rate:,.0f} claims/s; with it: {overall:,.0f} claims/s"
    )
    passed = (rate >= TARGET_PER_SECOND and result.claims == claims) if full else None
    section.targets.append(
        Target(
            "837P export end to end (without pyx12)",
            f">= {TARGET_PER_SECOND:,.0f} claims/s",
            f"{rate:,.0f}",
            passed,
        )
    )
    section.lines.append(
        f"`claims_export_837` over {claims:,} ready claims of {lines} lines: {result.claims:,} "
        f"released in {elapsed:.1f} s ({parts}). Read, map, render, write and mark submitted "
        f"(timeline and audit rows): **{rate:,.0f} claims/s**; with the pyx12 validation that "
        f"gates the release: {overall:,.0f} claims/s."
    )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=4)
    parser.add_argument("--no-validate", action="store_true")
    args = parser.parse_args(argv)
    section = run(claims=args.claims, lines=args.lines, validate=not args.no_validate)
    for target in section.targets:
        say(f"{target.verdict:<4}  {target.name}: {target.measured}  (target {target.goal})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
