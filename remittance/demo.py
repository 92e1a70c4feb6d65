"""Demo remittances: the billing demo's submitted (and accepted) claims answered by 835s, rendered
with billing.x12.edi835_samples and posted through remittance_ingest like a real file, so the
demo has remittances, denials in the queue (one assigned, one past its appeal deadline) and
patient balances. Idempotent: claims that already have a remittance are left alone."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.utils import timezone

from accounts.models import User
from billing.demo import LOADER_USERNAME
from billing.models import Claim, ClaimStatus
from billing.x12.edi835_samples import SampleClaim, SampleLine, SampleRemittance, render_835
from core.capabilities import Capability
from remittance.denials import denial_assign
from remittance.models import Denial, DenialStatus
from remittance.services import remittance_ingest

CENT = Decimal("0.01")
# The answer each claim gets, in turn: paid, denied (authorization), partially paid.
OUTCOMES = ("paid", "denied", "partial")


def _paid_line(line: object, charge: Decimal) -> SampleLine:
    paid = (charge * Decimal("0.7")).quantize(CENT)
    contractual = (charge * Decimal("0.1")).quantize(CENT)
    return SampleLine(
        line.code,  # type: ignore[attr-defined]
        charge,
        paid,
        (("CO", "45", contractual), ("PR", "2", charge - paid - contractual)),
        service_date=line.service_date,  # type: ignore[attr-defined]
    )


def _denied_line(line: object, charge: Decimal, carc: str, rarc: str) -> SampleLine:
    return SampleLine(
        line.code,  # type: ignore[attr-defined]
        charge,
        Decimal("0"),
        (("CO", carc, charge),),
        service_date=line.service_date,  # type: ignore[attr-defined]
        remark_codes=(rarc,),
    )


def _sample(claim: Claim, outcome: str) -> SampleClaim:
    lines = list(claim.lines.order_by("line_number"))
    samples = []
    for position, line in enumerate(lines):
        charge = Decimal(line.charge)
        if outcome == "denied":
            samples.append(_denied_line(line, charge, "197", "N54"))
        elif outcome == "partial" and position == len(lines) - 1 and len(lines) > 1:
            samples.append(_denied_line(line, charge, "16", "M51"))
        else:
            samples.append(_paid_line(line, charge))
    return SampleClaim(
        claim.patient_control_number,
        tuple(samples),
        status="4" if outcome == "denied" else "1",
        payer_claim_number=claim.payer_claim_number or f"DEMO{claim.patient_control_number}",
        patient_last=claim.patient.family_name.upper()[:35],
        patient_first=claim.patient.given_name.upper()[:25],
        member_id=claim.coverage.member_id,
        service_date=claim.date_of_service,
    )


def seed_remittances(*, progress: bool) -> dict[str, int]:
    """Answer the demo's submitted and accepted claims with 835s (one per payer and day); the
    first denied claim's remittance is dated past the payer's appeal window (overdue)."""
    actor = User.objects.filter(username=LOADER_USERNAME).first()
    claims = list(
        Claim.objects.filter(
            status__in=[ClaimStatus.SUBMITTED, ClaimStatus.ACCEPTED], remittances__isnull=True
        )
        .select_related("patient", "payer", "coverage")
        .order_by("id")[:30]
    )
    today = timezone.localdate()
    files: dict[tuple[str, dt.date], list[SampleClaim]] = defaultdict(list)
    payers: dict[str, str] = {}
    overdue_done = False
    for index, claim in enumerate(claims):
        outcome = OUTCOMES[index % len(OUTCOMES)]
        day = today - dt.timedelta(days=3)
        if outcome == "denied" and not overdue_done:
            day = today - dt.timedelta(days=claim.payer.appeal_days + 5)
            overdue_done = True
        files[(claim.payer.payer_id, day)].append(_sample(claim, outcome))
        payers[claim.payer.payer_id] = claim.payer.name
    report = {"remittance_files": 0, "claim_payments": 0, "denials": 0}
    denials_before = Denial.objects.count()
    for number, ((payer_id, day), samples) in enumerate(sorted(files.items()), start=1):
        trace = f"DEMO{day:%Y%m%d}{number:03d}"
        remittance = SampleRemittance(
            claims=samples,
            trace=trace,
            payer_name=payers[payer_id].upper()[:60],
            payer_id=payer_id,
            payee_name="MAIN STREET MEDICAL GROUP",
            payment_date=day,
            control_number=f"{number:04d}",
            interchange_number=number,
        )
        result = remittance_ingest(
            actor=actor, data=render_835(remittance).encode(), file_name=f"demo-{trace}.835"
        )
        report["remittance_files"] += int(result.ok)
        report["claim_payments"] += result.claims
        if progress:
            print(f"  835 {trace}: {result.message}")  # noqa: T201
    report["denials"] = Denial.objects.count() - denials_before
    _assign_one(actor)
    return report


def _assign_one(actor: User | None) -> None:
    """Give the first open denial to a billing specialist, so the queue shows an owner (once)."""
    if Denial.objects.filter(owner__isnull=False).exists():
        return
    workers = [
        u
        for u in User.objects.filter(is_active=True).prefetch_related("roles")
        if u.can(Capability.WORK_DENIALS)
    ]
    denial = Denial.objects.filter(status=DenialStatus.OPEN, owner__isnull=True).first()
    if not workers or denial is None:
        return
    worker = next((u for u in workers if "billing" in u.username), workers[0])
    by = actor if actor is not None and actor.can(Capability.WORK_DENIALS) else worker
    denial_assign(actor=by, denials=[denial], owner=worker)
