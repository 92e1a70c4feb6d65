"""Demo billing data: payers, fee schedules, the billing provider, and encounters with claims
in every status (some ready to batch), for the demo clinic seeded by core.demo and
core.demo_schedule.

    seed_billing(claims=0, progress=False)        # the demo: through the services, audited
    seed_billing(claims=10_000, progress=True)    # benchmarks: bulk rows, no per-row audit

Idempotent for the reference data; the demo encounters are added once (when none exist); the
bulk path adds `claims` claims (4 lines each) on every call.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.models import User
from billing import services
from billing.models import (
    BillingProvider,
    ChargeLine,
    Claim,
    ClaimEvent,
    ClaimLine,
    ClaimStatus,
    Encounter,
    EncounterDiagnosis,
    EncounterStatus,
    FeeSchedule,
    FeeScheduleEntry,
    Payer,
    RenderingProviderProfile,
)
from billing.services import BillingError, LineInput
from patients.models import Coverage, Patient
from scheduling.models import Appointment, AppointmentStatus, Practitioner

LOADER_USERNAME = "demo-loader"
SEED = 4242
BULK_BATCH = 2_000

# Real payer ids of the payers the demo coverages name (core.demo._payer).
_PAYER_FIELDS = ("payer_id", "name", "claim_filing_indicator", "address_line1", "city", "state",
                 "postal_code", "timely_filing_days", "appeal_days")  # fmt: skip
_PAYER_ROWS = [
    ("13102", "Medicare Part B (Connecticut)", "MB", "PO Box 6507", "Indianapolis", "IN",
     "462066507", 365, 120),
    ("CTMCD", "Connecticut Medicaid (HUSKY Health)", "MC", "PO Box 2991", "Hartford", "CT",
     "061042991", 365, 90),
    ("60054", "Aetna", "CI", "PO Box 981106", "El Paso", "TX", "799981106", 90, 180),
    ("00060", "Anthem Blue Cross Blue Shield", "BL", "PO Box 533", "North Haven", "CT",
     "064730533", 180, 180),
    ("87726", "UnitedHealthcare", "CI", "PO Box 30555", "Salt Lake City", "UT", "841300555",
     90, 180),
    ("36273", "AARP Medicare Supplement (UnitedHealthcare)", "CI", "PO Box 740819", "Atlanta",
     "GA", "303740819", 365, 180),
    ("62308", "Cigna", "CI", "PO Box 188061", "Chattanooga", "TN", "374228061", 90, 180),
    ("61101", "Humana", "16", "PO Box 14601", "Lexington", "KY", "405124601", 180, 60),
]  # fmt: skip
PAYERS: list[dict[str, Any]] = [dict(zip(_PAYER_FIELDS, row, strict=True)) for row in _PAYER_ROWS]

# Codes and prices only (CPT descriptors are licensed); HCPCS Level II may carry a description.
FEES: list[tuple[str, str, str]] = [
    ("99202", "110.00", ""), ("99203", "165.00", ""), ("99204", "245.00", ""),
    ("99205", "320.00", ""), ("99211", "35.00", ""), ("99212", "80.00", ""),
    ("99213", "125.00", ""), ("99214", "185.00", ""), ("99215", "255.00", ""),
    ("99385", "220.00", ""), ("99386", "245.00", ""), ("99395", "200.00", ""),
    ("99396", "215.00", ""), ("99397", "230.00", ""), ("36415", "12.00", ""),
    ("80053", "38.00", ""), ("80061", "42.00", ""), ("81002", "9.00", ""),
    ("82947", "11.00", ""), ("83036", "28.00", ""), ("84443", "45.00", ""),
    ("85025", "25.00", ""), ("87880", "30.00", ""), ("90471", "28.00", ""),
    ("90472", "18.00", ""), ("90686", "32.00", ""), ("90715", "55.00", ""),
    ("93000", "60.00", ""), ("94010", "70.00", ""), ("96372", "40.00", ""),
    ("97110", "48.00", ""), ("97140", "45.00", ""), ("20610", "180.00", ""),
    ("11102", "140.00", ""), ("17110", "150.00", ""), ("69210", "85.00", ""),
    ("G0008", "30.00", "Administration of influenza virus vaccine"),
    ("G0439", "175.00", "Annual wellness visit, subsequent"),
    ("J1100", "4.50", "Injection, dexamethasone sodium phosphate, 1 mg"),
    ("J3301", "6.00", "Injection, triamcinolone acetonide, not otherwise specified, 10 mg"),
    ("Q0091", "45.00", "Screening Papanicolaou smear; obtaining, preparing and conveyance"),
]  # fmt: skip

# Visits: (lines as (code, units, pointer positions), diagnoses)
VISITS: list[tuple[list[tuple[str, int, list[int]]], list[str]]] = [
    ([("99213", 1, [1, 2]), ("83036", 1, [2]), ("36415", 1, [2])], ["I10", "E119"]),
    ([("99214", 1, [1]), ("93000", 1, [2]), ("80053", 1, [1])], ["E785", "R079"]),
    ([("99213", 1, [1]), ("87880", 1, [1])], ["J029"]),
    ([("99396", 1, [1]), ("80061", 1, [2]), ("36415", 1, [2])], ["Z0000", "E785"]),
    ([("99212", 1, [1]), ("90686", 1, [2]), ("90471", 1, [2])], ["J069", "Z23"]),
    ([("99214", 1, [1, 2]), ("20610", 1, [1]), ("J3301", 4, [1])], ["M1711", "M25561"]),
    ([("99213", 1, [1]), ("94010", 1, [1])], ["J45909"]),
    ([("99203", 1, [1]), ("85025", 1, [1]), ("81002", 1, [2])], ["R5383", "R300"]),
]

# Final status of the demo claims, in order; each walks the allowed arrows to get there.
DEMO_STATUSES = [
    "draft", "draft", "ready", "ready", "ready", "ready", "submitted", "submitted",
    "accepted", "rejected", "paid", "paid", "paid", "partially_paid", "denied", "denied",
    "appealed", "resubmitted", "void", "closed",
]  # fmt: skip
PATHS: dict[str, list[str]] = {
    "draft": [],
    "ready": ["ready"],
    "submitted": ["ready", "submitted"],
    "accepted": ["ready", "submitted", "accepted"],
    "rejected": ["ready", "submitted", "rejected"],
    "paid": ["ready", "submitted", "accepted", "paid"],
    "partially_paid": ["ready", "submitted", "accepted", "partially_paid"],
    "denied": ["ready", "submitted", "accepted", "denied"],
    "appealed": ["ready", "submitted", "accepted", "denied", "appealed"],
    "resubmitted": ["ready", "submitted", "accepted", "denied", "resubmitted"],
    "void": ["ready", "submitted", "accepted", "void"],
    "closed": ["ready", "submitted", "accepted", "paid", "closed"],
}


def _progress(total: int, enabled: bool, desc: str) -> tqdm[Any]:
    return tqdm(total=total, unit="claim", desc=desc, file=sys.stderr, disable=not enabled)


def seed_reference(*, actor: User | None) -> dict[str, int]:
    """Payers, the default and Medicare fee schedules, the billing provider, rendering profiles."""
    created = {"payers": 0, "fee_entries": 0}
    with transaction.atomic():
        for row in PAYERS:
            _, was_created = Payer.objects.get_or_create(payer_id=row["payer_id"], defaults=row)
            created["payers"] += int(was_created)
        default, _ = FeeSchedule.objects.get_or_create(
            payer=None,
            name="Standard charges 2024",
            defaults={"effective_start": dt.date(2024, 1, 1)},
        )
        medicare = Payer.objects.get(payer_id="13102")
        allowed, _ = FeeSchedule.objects.get_or_create(
            payer=medicare,
            name="Medicare allowed (CT) 2024",
            defaults={"effective_start": dt.date(2024, 1, 1)},
        )
        for schedule, factor in ((default, Decimal("1")), (allowed, Decimal("0.62"))):
            for code, amount, description in FEES:
                _, was_created = FeeScheduleEntry.objects.get_or_create(
                    schedule=schedule,
                    code=code,
                    modifier="",
                    defaults={
                        "amount": (Decimal(amount) * factor).quantize(Decimal("0.01")),
                        "description": description,
                    },
                )
                created["fee_entries"] += int(was_created)
        if not BillingProvider.objects.exists():
            BillingProvider.objects.create(
                name="Main Street Medical Group",
                npi="1234567893",
                taxonomy_code="207Q00000X",
                tax_id="061234567",
                address_line1="120 Main Street",
                city="Hartford",
                state="CT",
                postal_code="061031234",
                phone="8605550100",
                contact_name="Billing office",
                is_default=True,
            )
        for practitioner in Practitioner.objects.filter(billing_profile__isnull=True):
            RenderingProviderProfile.objects.create(
                practitioner=practitioner, taxonomy_code="207Q00000X"
            )
    return created


def _billable_visits(limit: int) -> list[Appointment]:
    """Completed visits of demo patients whose primary coverage has a known payer."""
    payer_ids = set(Payer.objects.values_list("payer_id", flat=True))
    visits = []
    query = (
        Appointment.objects.filter(status=AppointmentStatus.COMPLETED, start__lte=timezone.now())
        .exclude(patient__address_line1="")
        .select_related("patient", "location")
        .prefetch_related("practitioners", "patient__coverages")
        .order_by("-start")
    )
    for appointment in query[: limit * 5]:
        coverages = [c for c in appointment.patient.coverages.all() if c.is_active]
        primary = min(coverages, key=lambda c: c.order, default=None)
        if primary is not None and primary.payer_identifier in payer_ids:
            visits.append(appointment)
        if len(visits) >= limit:
            break
    return visits


def _walk(actor: User, claim: Claim, path: Sequence[str]) -> None:
    for status in path:
        if status == ClaimStatus.SUBMITTED:
            services.claims_mark_submitted(actor=actor, claims=[claim])
        elif status == ClaimStatus.RESUBMITTED:
            services.claim_replace(actor=actor, claim=claim, note="Corrected diagnosis pointer.")
        elif status == ClaimStatus.VOID:
            services.claim_void(actor=actor, claim=claim, note="Billed to the wrong payer.")
        else:
            if status == ClaimStatus.ACCEPTED:
                Claim.objects.filter(pk=claim.pk).update(
                    payer_claim_number=f"22{claim.patient_control_number[2:]}01"
                )
            services.claim_transition(actor=actor, claim=claim, to_status=status)
        claim.refresh_from_db()


def seed_demo_claims(*, actor: User, progress: bool) -> dict[str, int]:
    """Encounters with charges and claims in every status, through the services (audited).
    Leaves a few completed visits uncoded and a few encounters without a claim."""
    visits = _billable_visits(len(DEMO_STATUSES) + 6)
    report = {"encounters": 0, "claims": 0, "skipped": 0}
    bar = _progress(len(visits), progress, "Seeding demo claims")
    for index, visit in enumerate(visits):
        bar.update(1)
        if index >= len(DEMO_STATUSES) + 3:
            break  # the rest stay as completed visits to code
        lines, diagnoses = VISITS[index % len(VISITS)]
        practitioner = visit.practitioners.first()
        if practitioner is None:
            continue
        try:
            with transaction.atomic():
                encounter = services.encounter_create(
                    actor=actor,
                    patient=visit.patient,
                    date_of_service=timezone.localtime(visit.start).date(),
                    rendering_practitioner=practitioner,
                    appointment=visit,
                    diagnoses=diagnoses,
                )
                for code, units, pointers in lines:
                    services.charge_line_add(
                        actor=actor,
                        encounter=encounter,
                        line=LineInput(code=code, units=units, pointers=pointers),
                    )
                report["encounters"] += 1
                if index >= len(DEMO_STATUSES):
                    continue  # an encounter waiting for its claim
                claim = services.claim_create_from_encounter(actor=actor, encounter=encounter)
                report["claims"] += 1
            _walk(actor, claim, PATHS[DEMO_STATUSES[index]])
        except BillingError:
            report["skipped"] += 1
    bar.close()
    return report


# ---- the bulk path (benchmarks) -------------------------------------------------------------


def _bulk_candidates() -> list[tuple[int, int, int, int]]:
    """(patient id, location id, coverage id, payer id) for patients with a known primary payer."""
    payers = dict(Payer.objects.values_list("payer_id", "id"))
    rows = (
        Coverage.objects.filter(is_active=True, order=1, payer_identifier__in=list(payers))
        .values_list("patient_id", "patient__home_location_id", "id", "payer_identifier")
        .order_by("patient_id")[:50_000]
    )
    return [(p, loc, c, payers[code]) for p, loc, c, code in rows]


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(size, total - start)


BULK_LINES = [
    ("99214", "185.00", 1),
    ("80053", "38.00", 1),
    ("36415", "12.00", 2),
    ("85025", "25.00", 1),
]
BULK_STATUSES = [s.value for s in ClaimStatus if s != ClaimStatus.RESUBMITTED]


def seed_claims_bulk(*, count: int, progress: bool, batch_size: int = BULK_BATCH) -> int:
    """`count` claims with 4 lines each (and their encounters and charge lines) in bulk, spread
    over the last 180 days and every status. No per-row audit and no ledger postings: this is
    the benchmark path (`seed_demo --claims N`)."""
    candidates = _bulk_candidates()
    practitioners = list(Practitioner.objects.filter(is_active=True).values_list("id", flat=True))
    provider = BillingProvider.objects.filter(is_default=True).first()
    if not candidates or not practitioners or provider is None:
        return 0
    rng = random.Random(SEED + Claim.objects.count())  # noqa: S311 (demo data)
    today = timezone.localdate()
    now = timezone.now()
    bar = _progress(count, progress, "Seeding claims in bulk")
    made = 0
    for _, size in _chunks(count, batch_size):
        with transaction.atomic():
            first = services.control_number_next(services.PCN_COUNTER, count=size)
            picks = [rng.choice(candidates) for _ in range(size)]
            dates = [today - dt.timedelta(days=rng.randrange(1, 180)) for _ in range(size)]
            statuses = [rng.choice(BULK_STATUSES) for _ in range(size)]
            encounters = Encounter.objects.bulk_create(
                [
                    Encounter(
                        patient_id=patient_id,
                        location_id=location_id,
                        date_of_service=day,
                        rendering_practitioner_id=rng.choice(practitioners),
                        billing_provider=provider,
                        status=EncounterStatus.BILLED,
                    )
                    for (patient_id, location_id, _, _), day in zip(picks, dates, strict=True)
                ],
                batch_size=1000,
            )
            EncounterDiagnosis.objects.bulk_create(
                [
                    EncounterDiagnosis(encounter=e, position=position, code=code)
                    for e in encounters
                    for position, code in ((1, "I10"), (2, "E119"))
                ],
                batch_size=2000,
            )
            charges = ChargeLine.objects.bulk_create(
                [
                    ChargeLine(
                        encounter=e,
                        line_number=n,
                        code=code,
                        units=Decimal(units),
                        pointer1=1 + (n % 2),
                        fee_amount=Decimal(fee),
                        amount=Decimal(fee) * units,
                        service_date=e.date_of_service,
                        posted_at=now,
                    )
                    for e in encounters
                    for n, (code, fee, units) in enumerate(BULK_LINES, start=1)
                ],
                batch_size=2000,
            )
            total = sum((Decimal(fee) * units for _, fee, units in BULK_LINES), Decimal("0"))
            claims = Claim.objects.bulk_create(
                [
                    Claim(
                        patient_id=patient_id,
                        encounter=e,
                        coverage_id=coverage_id,
                        payer_id=payer_id,
                        billing_provider=provider,
                        rendering_practitioner_id=e.rendering_practitioner_id,
                        patient_control_number=services.format_pcn(first + i),
                        status=status,
                        status_changed_at=now,
                        date_of_service=e.date_of_service,
                        total_charge=total,
                        submitted_at=(
                            None
                            if status in ("draft", "ready")
                            else timezone.make_aware(
                                dt.datetime.combine(
                                    e.date_of_service + dt.timedelta(days=2), dt.time(9)
                                )
                            )
                        ),
                        payer_claim_number=(
                            ""
                            if status in ("draft", "ready", "submitted")
                            else f"B{first + i:011d}"
                        ),
                    )
                    for i, ((patient_id, _, coverage_id, payer_id), e, status) in enumerate(
                        zip(picks, encounters, statuses, strict=True)
                    )
                ],
                batch_size=1000,
            )
            ClaimLine.objects.bulk_create(
                [
                    ClaimLine(
                        claim=claim,
                        charge_line=charge,
                        line_number=charge.line_number,
                        code=charge.code,
                        units=charge.units,
                        pointer1=charge.pointer1,
                        charge=charge.amount,
                        service_date=charge.service_date,
                    )
                    for claim, group in zip(claims, _groups(charges, len(BULK_LINES)), strict=True)
                    for charge in group
                ],
                batch_size=2000,
            )
            ClaimEvent.objects.bulk_create(
                [
                    ClaimEvent(
                        claim=c, at=now, from_status="", to_status=c.status, note="Bulk seed."
                    )
                    for c in claims
                ],
                batch_size=2000,
            )
        made += size
        bar.update(size)
    bar.close()
    return made


def _groups(items: Sequence[ChargeLine], size: int) -> Iterator[Sequence[ChargeLine]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def seed_billing(*, claims: int = 0, progress: bool = False) -> dict[str, int]:
    """Reference data, the demo encounters and claims (once), and `claims` bulk claims."""
    actor = User.objects.filter(username=LOADER_USERNAME).first()
    report = seed_reference(actor=actor)
    if actor is not None and not Encounter.objects.exists():
        report |= seed_demo_claims(actor=actor, progress=progress)
    if claims:
        report["bulk_claims"] = seed_claims_bulk(count=claims, progress=progress)
    report["claims_total"] = Claim.objects.count()
    report["patients_with_claims"] = (
        Patient.objects.filter(claims__isnull=False).distinct().count() if claims < 10_000 else -1
    )
    return report
