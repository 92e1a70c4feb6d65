"""Billing writes: encounters, charges, claims and their life cycle.

Every service is keyword-only, takes the acting user, runs in one transaction and writes its
audit row (Category.BILLING, with the patient) in that transaction. Claim statuses change only
here, along `billing.models.ALLOWED`; each change also lands on the claim's timeline.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.db import connections, transaction
from django.db.models import F, Max, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.models import Action, Category
from audit.services import record, record_many
from billing import icd10
from billing.models import (
    ALLOWED,
    SEQUENCE_BY_ORDER,
    BillingProvider,
    ChargeLine,
    Claim,
    ClaimBatch,
    ClaimEvent,
    ClaimFrequency,
    ClaimLine,
    ClaimProblem,
    ClaimStatus,
    ControlNumberCounter,
    Encounter,
    EncounterDiagnosis,
    EncounterStatus,
    FeeSchedule,
    FeeScheduleEntry,
    Payer,
    PlaceOfService,
    ProblemSeverity,
)
from billing.posting import post_charge
from billing.scrub_rules import ERROR, PROCEDURE_CODE, Problem

if TYPE_CHECKING:
    from accounts.models import User
    from patients.models import Coverage, Patient
    from scheduling.models import Appointment, Practitioner

CENT = Decimal("0.01")
MAX_DIAGNOSES = 12
MAX_MODIFIERS = 4
MAX_POINTERS = 4
PCN_COUNTER = "patient_control_number"
PCN_PREFIX = "PD"
ADJUDICATED = frozenset({ClaimStatus.PAID, ClaimStatus.PARTIALLY_PAID, ClaimStatus.DENIED})
MODIFIER_FORMAT = re.compile(r"^[A-Z0-9]{2}$")


class BillingError(ValueError):
    """A write the rules refuse; `field` names what to fix, `message` says why in plain words."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ClaimNotCleanError(BillingError):
    """The scrubber found errors: every problem is in `problems`."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        errors = [p for p in problems if p.severity == ERROR]
        super().__init__("claim", f"{len(errors)} problem(s) must be fixed before it is ready.")
        self.problems = list(problems)


def _audit(
    *,
    actor: User | None,
    event: str,
    obj: Any,
    patient: Patient,
    action: Action = Action.UPDATE,
    fields: Iterable[str] = (),
    reason: str = "",
) -> None:
    record(
        actor=actor,
        action=action,
        event=event,
        category=Category.BILLING,
        patient=patient,
        obj=obj,
        fields=fields,
        reason=reason,
    )


def _today() -> dt.date:
    return timezone.localdate()


# ---- counters ---------------------------------------------------------------------------------


def control_number_next(name: str, *, count: int = 1) -> int:
    """Reserve `count` numbers from the named counter (row locked); returns the first one.
    Call inside a transaction: the lock is held until it commits, so numbers never repeat."""
    ControlNumberCounter.objects.get_or_create(name=name)
    counter = ControlNumberCounter.objects.select_for_update().get(name=name)
    first = counter.last_value + 1
    counter.last_value += count
    counter.save(update_fields=["last_value"])
    return first


def format_pcn(number: int) -> str:
    return f"{PCN_PREFIX}{number:08d}"


# ---- fees ---------------------------------------------------------------------------------------


def fee_lookup(
    *, payer: Payer | None, code: str, modifier: str = "", on: dt.date
) -> Decimal | None:
    """The fee for a code (and modifier) on a date of service: the payer's schedule effective on
    that date first, then the default schedule; an entry for the exact modifier wins over the
    code's plain entry. None when no schedule prices the code."""
    code = code.strip().upper()
    modifier = modifier.strip().upper()
    effective = Q(effective_start__lte=on) & (
        Q(effective_end__isnull=True) | Q(effective_end__gte=on)
    )
    payers: list[Payer | None] = [payer, None] if payer is not None else [None]
    for candidate in payers:
        schedule = (
            FeeSchedule.objects.filter(effective, payer=candidate)
            .order_by("-effective_start", "-id")
            .first()
        )
        if schedule is None:
            continue
        entries = {
            entry.modifier: entry.amount
            for entry in FeeScheduleEntry.objects.filter(
                schedule=schedule, code=code, modifier__in={"", modifier}
            )
        }
        if modifier in entries:
            return entries[modifier]
        if "" in entries:
            return entries[""]
    return None


def payer_for_coverage(coverage: Coverage) -> Payer | None:
    payer_id = (coverage.payer_identifier or "").strip()
    return Payer.objects.filter(payer_id=payer_id).first() if payer_id else None


def primary_payer(patient: Patient, on: dt.date) -> Payer | None:
    coverage = active_coverages(patient, on)[:1]
    return payer_for_coverage(coverage[0]) if coverage else None


def active_coverages(patient: Patient, on: dt.date) -> list[Coverage]:
    return list(
        patient.coverages.filter(is_active=True)
        .filter(Q(effective_start__isnull=True) | Q(effective_start__lte=on))
        .filter(Q(effective_end__isnull=True) | Q(effective_end__gte=on))
        .order_by("order", "id")
    )


# ---- encounters ---------------------------------------------------------------------------------


def clean_diagnoses(codes: Sequence[str]) -> list[str]:
    """Stored forms of the codes, in order; BillingError naming the first bad one."""
    cleaned: list[str] = []
    for position, raw in enumerate(codes, start=1):
        code = icd10.normalise(raw)
        if not code:
            continue
        reason = icd10.why_not_billable(raw)
        if reason:
            raise BillingError(f"diagnoses.{position}", reason)
        if code in cleaned:
            raise BillingError(
                f"diagnoses.{position}", f"{icd10.display_code(code)} is listed twice."
            )
        cleaned.append(code)
    if len(cleaned) > MAX_DIAGNOSES:
        raise BillingError("diagnoses", f"At most {MAX_DIAGNOSES} diagnoses fit on a claim.")
    return cleaned


def _check_place(code: str) -> str:
    code = (code or "").strip()
    if not PlaceOfService.objects.filter(code=code, is_active=True).exists():
        raise BillingError(
            "place_of_service", f"{code or '(blank)'} is not a place-of-service code."
        )
    return code


@transaction.atomic
def encounter_create(
    *,
    actor: User,
    patient: Patient,
    date_of_service: dt.date,
    rendering_practitioner: Practitioner,
    billing_provider: BillingProvider | None = None,
    appointment: Appointment | None = None,
    place_of_service: str = "11",
    diagnoses: Sequence[str] = (),
) -> Encounter:
    """Open an encounter for charge entry (with or without an appointment)."""
    if date_of_service > _today():
        raise BillingError("date_of_service", "The date of service cannot be in the future.")
    if appointment is not None and appointment.patient_id != patient.pk:
        raise BillingError("appointment", "The appointment belongs to another patient.")
    if billing_provider is None:
        billing_provider = BillingProvider.objects.filter(is_default=True, is_active=True).first()
        if billing_provider is None:
            raise BillingError("billing_provider", "Choose a billing provider (none is default).")
    codes = clean_diagnoses(diagnoses)
    encounter = Encounter.objects.create(
        patient=patient,
        location=appointment.location if appointment is not None else patient.home_location,
        date_of_service=date_of_service,
        appointment=appointment,
        rendering_practitioner=rendering_practitioner,
        billing_provider=billing_provider,
        place_of_service=_check_place(place_of_service),
        created_by=actor,
    )
    EncounterDiagnosis.objects.bulk_create(
        EncounterDiagnosis(encounter=encounter, position=n, code=code)
        for n, code in enumerate(codes, start=1)
    )
    _audit(
        actor=actor,
        event="encounter.create",
        obj=encounter,
        patient=patient,
        action=Action.CREATE,
        fields=["date_of_service", "rendering_practitioner", "place_of_service", "diagnoses"],
    )
    return encounter


def _has_submitted_claim(encounter: Encounter) -> bool:
    return encounter.claims.exclude(status__in=[ClaimStatus.DRAFT, ClaimStatus.READY]).exists()


@transaction.atomic
def encounter_set_diagnoses(
    *, actor: User, encounter: Encounter, codes: Sequence[str]
) -> Encounter:
    """Replace the diagnosis list (only before any claim of the encounter is submitted)."""
    encounter = Encounter.objects.select_for_update().get(pk=encounter.pk)
    if _has_submitted_claim(encounter):
        raise BillingError("diagnoses", "A claim was submitted: correct it with a replacement.")
    cleaned = clean_diagnoses(codes)
    encounter.diagnoses.all().delete()
    EncounterDiagnosis.objects.bulk_create(
        EncounterDiagnosis(encounter=encounter, position=n, code=code)
        for n, code in enumerate(cleaned, start=1)
    )
    _audit(
        actor=actor,
        event="encounter.diagnoses",
        obj=encounter,
        patient=encounter.patient,
        fields=["diagnoses"],
    )
    return encounter


# ---- charge lines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    code: str
    modifiers: Sequence[str] = ()
    units: Decimal | int | str = 1
    pointers: Sequence[int] = (1,)
    amount: Decimal | str | None = None  # None: from the fee schedule
    override_reason: str = ""
    service_date: dt.date | None = None


def _units(value: Decimal | int | str, *, field: str = "units") -> Decimal:
    try:
        units = Decimal(str(value)).quantize(Decimal("0.001"))
    except (InvalidOperation, ValueError) as exc:
        raise BillingError(field, f"{value} is not a number of units.") from exc
    if not units.is_finite() or units <= 0 or units >= Decimal("1000000"):
        raise BillingError(field, "Units must be more than zero.")
    return units


def _money(value: Decimal | str, *, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise BillingError(field, f"{value} is not an amount.") from exc
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(CENT):
        raise BillingError(field, "Enter an amount in dollars and cents, not negative.")
    if amount >= Decimal("10000000000"):
        raise BillingError(field, "The amount is too large.")
    return amount


def _clean_line(encounter: Encounter, data: LineInput, diagnosis_count: int) -> dict[str, Any]:
    code = (data.code or "").strip().upper()
    if not PROCEDURE_CODE.match(code):
        raise BillingError("code", f"{code or '(blank)'} is not a CPT/HCPCS code (e.g. 99213).")
    modifiers = [m.strip().upper() for m in data.modifiers if m and m.strip()]
    if len(modifiers) > MAX_MODIFIERS:
        raise BillingError("modifiers", f"At most {MAX_MODIFIERS} modifiers per line.")
    for modifier in modifiers:
        if not MODIFIER_FORMAT.match(modifier):
            raise BillingError("modifiers", f"{modifier} is not a modifier (two characters).")
    pointers = [int(p) for p in data.pointers if p]
    if not pointers:
        raise BillingError("pointers", "Point the line to at least one diagnosis.")
    if len(pointers) > MAX_POINTERS:
        raise BillingError("pointers", f"At most {MAX_POINTERS} diagnosis pointers per line.")
    for pointer in pointers:
        if not 1 <= pointer <= diagnosis_count:
            raise BillingError(
                "pointers",
                f"Pointer {pointer} has no diagnosis (the encounter has {diagnosis_count}).",
            )
    service_date = data.service_date or encounter.date_of_service
    if service_date > _today():
        raise BillingError("service_date", "The service date cannot be in the future.")
    units = _units(data.units)
    fee = fee_lookup(
        payer=primary_payer(encounter.patient, service_date),
        code=code,
        modifier=modifiers[0] if modifiers else "",
        on=service_date,
    )
    reason = (data.override_reason or "").strip()[:200]
    if data.amount is None or str(data.amount).strip() == "":
        if fee is None:
            raise BillingError("amount", f"No fee schedule prices {code}: enter the charge.")
        amount = (fee * units).quantize(CENT)
    else:
        amount = _money(data.amount, field="amount")
        if fee is not None and amount != (fee * units).quantize(CENT) and not reason:
            raise BillingError(
                "override_reason", "Say why the charge differs from the fee schedule."
            )
    padded = [*modifiers, "", "", "", ""][:4]
    pointer_cols = [*pointers, None, None, None, None][:4]
    return {
        "code": code,
        "modifier1": padded[0],
        "modifier2": padded[1],
        "modifier3": padded[2],
        "modifier4": padded[3],
        "units": units,
        "pointer1": pointer_cols[0],
        "pointer2": pointer_cols[1],
        "pointer3": pointer_cols[2],
        "pointer4": pointer_cols[3],
        "fee_amount": fee,
        "amount": amount,
        "override_reason": reason,
        "service_date": service_date,
    }


def _lock_encounter(encounter: Encounter) -> Encounter:
    locked = Encounter.objects.select_for_update().select_related("patient").get(pk=encounter.pk)
    if locked.status == EncounterStatus.VOID:
        raise BillingError("encounter", "This encounter is void.")
    return locked


def _next_line_number(encounter: Encounter) -> int:
    return (encounter.lines.aggregate(top=Max("line_number"))["top"] or 0) + 1


@transaction.atomic
def charge_line_add(*, actor: User, encounter: Encounter, line: LineInput) -> ChargeLine:
    """Add a charge (fee from the schedule unless overridden with a reason); posts it to the
    patient ledger (billing.posting)."""
    encounter = _lock_encounter(encounter)
    values = _clean_line(encounter, line, encounter.diagnoses.count())
    charge = ChargeLine.objects.create(
        encounter=encounter,
        line_number=_next_line_number(encounter),
        created_by=actor,
        **values,
    )
    post_charge(actor=actor, line=charge)
    _audit(
        actor=actor,
        event="charge.create",
        obj=charge,
        patient=encounter.patient,
        action=Action.CREATE,
        fields=sorted(values),
    )
    return charge


@transaction.atomic
def charge_line_correct(
    *, actor: User, line: ChargeLine, reason: str, replacement: LineInput | None = None
) -> tuple[ChargeLine, ChargeLine | None]:
    """Correct a posted charge: a reversing line (negative units and amount, `corrects` the
    original), then the replacement line if given. Never an edit."""
    reason = (reason or "").strip()
    if not reason:
        raise BillingError("reason", "Say why the charge is corrected.")
    encounter = _lock_encounter(line.encounter)
    original = ChargeLine.objects.select_for_update().get(pk=line.pk)
    if original.corrects_id is not None:
        raise BillingError("line", "A reversing line cannot be corrected.")
    if ChargeLine.objects.filter(corrects=original).exists():
        raise BillingError("line", f"Line {original.line_number} was already corrected.")
    number = _next_line_number(encounter)
    reversal = ChargeLine.objects.create(
        encounter=encounter,
        line_number=number,
        code=original.code,
        modifier1=original.modifier1,
        modifier2=original.modifier2,
        modifier3=original.modifier3,
        modifier4=original.modifier4,
        units=-original.units,
        pointer1=original.pointer1,
        pointer2=original.pointer2,
        pointer3=original.pointer3,
        pointer4=original.pointer4,
        service_date=original.service_date,
        fee_amount=original.fee_amount,
        amount=-original.amount,
        override_reason=reason[:200],
        corrects=original,
        created_by=actor,
    )
    post_charge(actor=actor, line=reversal)
    new_line = None
    if replacement is not None:
        values = _clean_line(encounter, replacement, encounter.diagnoses.count())
        new_line = ChargeLine.objects.create(
            encounter=encounter, line_number=number + 1, created_by=actor, **values
        )
        post_charge(actor=actor, line=new_line)
    _audit(
        actor=actor,
        event="charge.correct",
        obj=original,
        patient=encounter.patient,
        action=Action.CREATE,
        fields=["corrects", "units", "amount"],
    )
    return reversal, new_line


def billable_lines(encounter: Encounter) -> list[ChargeLine]:
    """The encounter's current charges: lines neither reversing nor reversed."""
    reversed_ids = set(
        ChargeLine.objects.filter(encounter=encounter, corrects__isnull=False).values_list(
            "corrects_id", flat=True
        )
    )
    return [
        line
        for line in encounter.lines.order_by("line_number")
        if line.corrects_id is None and line.pk not in reversed_ids
    ]


# ---- claims --------------------------------------------------------------------------------------


def _event(
    claim: Claim, *, actor: User | None, from_status: str, to_status: str, note: str
) -> None:
    ClaimEvent.objects.create(
        claim=claim,
        at=timezone.now(),
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        note=note[:200],
    )


def _copy_lines(claim: Claim, lines: Sequence[ChargeLine | ClaimLine]) -> Decimal:
    rows = []
    for number, line in enumerate(lines, start=1):
        charge = line.amount if isinstance(line, ChargeLine) else line.charge
        rows.append(
            ClaimLine(
                claim=claim,
                charge_line=line if isinstance(line, ChargeLine) else line.charge_line,
                line_number=number,
                code=line.code,
                modifier1=line.modifier1,
                modifier2=line.modifier2,
                modifier3=line.modifier3,
                modifier4=line.modifier4,
                units=line.units,
                pointer1=line.pointer1,
                pointer2=line.pointer2,
                pointer3=line.pointer3,
                pointer4=line.pointer4,
                service_date=line.service_date,
                charge=charge,
            )
        )
    ClaimLine.objects.bulk_create(rows)
    return sum((row.charge for row in rows), Decimal("0.00"))


def _new_claim(
    *,
    actor: User,
    encounter: Encounter,
    coverage: Coverage,
    payer: Payer,
    lines: Sequence[ChargeLine | ClaimLine],
    frequency: str = ClaimFrequency.ORIGINAL,
    replaces: Claim | None = None,
    note: str,
) -> Claim:
    claim = Claim.objects.create(
        patient=encounter.patient,
        encounter=encounter,
        coverage=coverage,
        payer=payer,
        billing_provider=encounter.billing_provider,
        rendering_practitioner=encounter.rendering_practitioner,
        patient_control_number=format_pcn(control_number_next(PCN_COUNTER)),
        frequency_code=frequency,
        replaces=replaces,
        sequence=SEQUENCE_BY_ORDER.get(coverage.order, "P"),
        status=ClaimStatus.DRAFT,
        status_changed_at=timezone.now(),
        place_of_service=encounter.place_of_service,
        date_of_service=min(line.service_date for line in lines),
        created_by=actor,
    )
    claim.total_charge = _copy_lines(claim, lines)
    claim.save(update_fields=["total_charge", "updated_at"])
    _event(claim, actor=actor, from_status="", to_status=ClaimStatus.DRAFT, note=note)
    _audit(
        actor=actor,
        event="claim.create",
        obj=claim,
        patient=encounter.patient,
        action=Action.CREATE,
        fields=["status", "frequency_code", "lines"],
    )
    return claim


@transaction.atomic
def claim_create_from_encounter(
    *, actor: User, encounter: Encounter, coverage: Coverage | None = None
) -> Claim:
    """A draft claim for the encounter's current charges, to the next payer in the order of
    benefits: the primary first; a secondary only once the primary claim is adjudicated (the
    remittance poster records the primary's payment and CAS adjustments on it)."""
    encounter = _lock_encounter(encounter)
    coverages = active_coverages(encounter.patient, encounter.date_of_service)
    if coverage is None:
        billed = set(
            encounter.claims.exclude(status=ClaimStatus.VOID).values_list("coverage_id", flat=True)
        )
        remaining = [c for c in coverages if c.pk not in billed]
        if not remaining:
            raise BillingError("coverage", "No active coverage is left to bill for this visit.")
        coverage = remaining[0]
    elif coverage.patient_id != encounter.patient_id or coverage not in coverages:
        raise BillingError("coverage", "That coverage is not active for this patient and date.")
    if (
        encounter.claims.filter(coverage=coverage)
        .exclude(status__in=[ClaimStatus.VOID, ClaimStatus.RESUBMITTED, ClaimStatus.CLOSED])
        .exists()
    ):
        raise BillingError("coverage", "A claim to this coverage already exists for the visit.")
    earlier = [c for c in coverages if c.order < coverage.order]
    for prior in earlier:
        if not encounter.claims.filter(coverage=prior, status__in=ADJUDICATED).exists():
            raise BillingError(
                "coverage",
                f"Bill the {prior.get_order_display().lower()} coverage first and wait for its "
                "payment or denial.",
            )
    payer = payer_for_coverage(coverage)
    if payer is None:
        raise BillingError(
            "coverage",
            f"No payer has the id '{coverage.payer_identifier}': add it under Payers, or fix the "
            "coverage's payer id.",
        )
    lines = billable_lines(encounter)
    if not lines:
        raise BillingError("lines", "The visit has no charges to bill.")
    claim = _new_claim(
        actor=actor,
        encounter=encounter,
        coverage=coverage,
        payer=payer,
        lines=lines,
        note="Created from the visit's charges.",
    )
    encounter.status = EncounterStatus.BILLED
    encounter.save(update_fields=["status", "updated_at"])
    return claim


def _lock_claim(claim: Claim) -> Claim:
    return Claim.objects.select_for_update().select_related("patient").get(pk=claim.pk)


@transaction.atomic
def claim_scrub(*, actor: User, claim: Claim) -> list[Problem]:
    """Run every scrubber rule; the claim keeps the problems of this last run."""
    from billing.scrubber import scrub

    claim = _lock_claim(claim)
    problems = scrub(claim)
    claim.problems.all().delete()
    ClaimProblem.objects.bulk_create(
        ClaimProblem(
            claim=claim,
            rule_id=p.rule_id,
            severity=p.severity,
            field=p.field[:80],
            message=p.message[:300],
            line_number=p.line_number,
        )
        for p in problems
    )
    claim.scrubbed_at = timezone.now()
    claim.save(update_fields=["scrubbed_at", "updated_at"])
    errors = sum(1 for p in problems if p.severity == ProblemSeverity.ERROR)
    _audit(
        actor=actor,
        event="claim.scrub",
        obj=claim,
        patient=claim.patient,
        action=Action.EXECUTE,
        reason=f"{errors} errors, {len(problems) - errors} warnings",
    )
    return problems


def _set_status(claim: Claim, *, actor: User | None, to_status: str, note: str) -> Claim:
    from_status = claim.status
    if to_status not in ALLOWED.get(from_status, frozenset()):
        raise BillingError(
            "status",
            f"A {ClaimStatus(from_status).label.lower()} claim cannot become "
            f"{ClaimStatus(to_status).label.lower()}.",
        )
    now = timezone.now()
    claim.status = to_status
    claim.status_changed_at = now
    fields = ["status", "status_changed_at", "updated_at"]
    if to_status == ClaimStatus.SUBMITTED and claim.submitted_at is None:
        claim.submitted_at = now
        fields.append("submitted_at")
    if to_status in ADJUDICATED and claim.adjudicated_at is None:
        claim.adjudicated_at = now
        fields.append("adjudicated_at")
    claim.save(update_fields=fields)
    _event(claim, actor=actor, from_status=from_status, to_status=to_status, note=note)
    record(
        actor=actor,
        action=Action.UPDATE,
        event="claim.status",
        category=Category.BILLING,
        patient=claim.patient,
        obj=claim,
        fields=["status"],
        reason=f"{from_status} -> {to_status}",
    )
    return claim


def claim_mark_ready(*, actor: User, claim: Claim, note: str = "") -> Claim:
    """Scrub, then move to ready; refused (ClaimNotCleanError, listing every problem) on errors.
    The scrub commits on its own, so the claim page shows the problems that stopped it."""
    problems = claim_scrub(actor=actor, claim=claim)
    if any(p.severity == ERROR for p in problems):
        raise ClaimNotCleanError(problems)
    with transaction.atomic():
        return _set_status(
            _lock_claim(claim),
            actor=actor,
            to_status=ClaimStatus.READY,
            note=note or "Scrubbed clean.",
        )


def claim_transition(*, actor: User | None, claim: Claim, to_status: str, note: str = "") -> Claim:
    """Move a claim along an allowed arrow (ready goes through the scrubber)."""
    if to_status not in ClaimStatus.values:
        raise BillingError("status", f"'{to_status}' is not a claim status.")
    if to_status == ClaimStatus.READY:
        if actor is None:
            raise BillingError("actor", "Someone must mark a claim ready.")
        return claim_mark_ready(actor=actor, claim=claim, note=note)
    with transaction.atomic():
        return _set_status(_lock_claim(claim), actor=actor, to_status=to_status, note=note.strip())


SUBMIT_CHUNK = 2000  # claim ids per IN (...) list: well under SQLite's variable limit


def _id_chunks(ids: Sequence[int], size: int = SUBMIT_CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _insert_submission_events(
    claim_ids: Sequence[int], *, at: dt.datetime, actor: User | None, note: str
) -> None:
    """The timeline rows (ready -> submitted) of many claims in one multi-row INSERT per
    chunk. Every value but the public id is the same for all rows, so each is adapted for the
    database once, not once per row as `bulk_create` does (a third of the bookkeeping time)."""
    if not claim_ids:
        return
    meta = ClaimEvent._meta
    connection = connections[ClaimEvent.objects.db]
    public_id = meta.get_field("public_id")
    stamp = meta.get_field("at").get_db_prep_save(at, connection)
    constant = {
        "created_at": stamp,
        "updated_at": stamp,
        "at": stamp,
        "actor_id": actor.pk if actor is not None and actor.is_authenticated else None,
        "from_status": str(ClaimStatus.READY),
        "to_status": str(ClaimStatus.SUBMITTED),
        "note": note,
    }
    columns = ["public_id", "claim_id", *constant]
    quote = connection.ops.quote_name
    column_of = {field.attname: str(field.column) for field in meta.concrete_fields}
    names = ", ".join(quote(column_of[name]) for name in columns)
    head = f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES "  # noqa: S608 (from meta)
    fixed = list(constant.values())
    if connection.vendor == "postgresql":
        # One statement, the ids as one array parameter, the UUIDs made by the server.
        values = ", ".join(["%s"] * len(fixed))
        sql = (
            f"{head.removesuffix(' VALUES ')} SELECT gen_random_uuid(), claim_id, {values} "  # noqa: S608
            "FROM unnest(%s::bigint[]) AS claim_id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*fixed, list(claim_ids)])
        return
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    # SQLite (3.32+, as the export's IN lists also assume) takes up to 32,766 variables.
    size = max(1, min(SUBMIT_CHUNK, 30_000 // len(columns)))
    with connection.cursor() as cursor:
        for chunk in _id_chunks(claim_ids, size):
            params: list[Any] = []
            for pk in chunk:
                params += [public_id.get_db_prep_save(uuid.uuid4(), connection), pk, *fixed]
            cursor.execute(head + ", ".join([row] * len(chunk)), params)


@transaction.atomic
def claims_mark_submitted(
    *,
    actor: User | None,
    claims: Sequence[Claim] = (),
    claim_ids: Iterable[int] = (),
    batch: ClaimBatch | None = None,
) -> int:
    """The bulk path for the 837 export: ready -> submitted for many claims, set-based.

    One conditional UPDATE per chunk of ids (`... WHERE id IN (...) AND status = 'ready'`, so a
    claim another user changed meanwhile is never overwritten), one bulk insert of the timeline
    rows and one `record_many` call with an audit event per claim. Refuses the whole set (and
    rolls back) if any claim is not ready. Claims are given as models (`claims`) or primary
    keys (`claim_ids`, the export's way: no model instances for 10,000 rows)."""
    ids = sorted({claim.pk for claim in claims} | set(claim_ids))
    now = timezone.now()
    facts: list[tuple[int, Any, Any, str, str]] = []  # pk, public ids, PCN, status as read
    updated = 0
    for chunk in _id_chunks(ids):
        facts += Claim.objects.filter(pk__in=chunk).values_list(
            "pk", "public_id", "patient__public_id", "patient_control_number", "status"
        )
        updated += Claim.objects.filter(pk__in=chunk, status=ClaimStatus.READY).update(
            status=ClaimStatus.SUBMITTED,
            status_changed_at=now,
            submitted_at=Coalesce(F("submitted_at"), Value(now)),
            batch=batch,
            updated_at=now,
        )
    if updated != len(ids) or len(facts) != len(ids):
        not_ready = sorted(pcn for *_, pcn, status in facts if status != ClaimStatus.READY)
        missing = len(ids) - len(facts)
        raise BillingError(
            "claims",
            "Only ready claims can be submitted: "
            + (", ".join(not_ready) or "a claim changed while they were submitted")
            + (f" ({missing} not found)" if missing else "")
            + ".",
        )
    note = f"In batch {batch.file_name}."[:200] if batch is not None else "Submitted."
    _insert_submission_events([pk for pk, *_ in facts], at=now, actor=actor, note=note)
    record_many(
        {
            "actor": actor,
            "action": Action.UPDATE,
            "event": "claim.status",
            "category": Category.BILLING,
            "patient_public_id": patient_public_id,
            "object_type": Claim._meta.label,
            "object_id": str(public_id),
            "fields": ("status",),
            "reason": "ready -> submitted",
        }
        for _, public_id, patient_public_id, *_ in facts
    )
    return len(ids)


@transaction.atomic
def claim_replace(*, actor: User, claim: Claim, note: str = "") -> Claim:
    """A frequency-7 replacement with the visit's current charges; the original becomes
    `resubmitted`. The replacement starts as a draft with a new patient control number."""
    original = _lock_claim(claim)
    if ClaimStatus.RESUBMITTED not in ALLOWED[original.status]:
        raise BillingError(
            "status", f"A {original.get_status_display().lower()} claim cannot be replaced."
        )
    encounter = _lock_encounter(original.encounter)
    lines = billable_lines(encounter)
    if not lines:
        raise BillingError("lines", "The visit has no charges left to bill: void the claim.")
    replacement = _new_claim(
        actor=actor,
        encounter=encounter,
        coverage=original.coverage,
        payer=original.payer,
        lines=lines,
        frequency=ClaimFrequency.REPLACEMENT,
        replaces=original,
        note=f"Replaces {original.patient_control_number}.",
    )
    _set_status(
        original,
        actor=actor,
        to_status=ClaimStatus.RESUBMITTED,
        note=(note or f"Replaced by {replacement.patient_control_number}.").strip(),
    )
    return replacement


@transaction.atomic
def claim_void(*, actor: User, claim: Claim, note: str = "") -> Claim | None:
    """Void a claim. Never sent (draft/ready): it just becomes void. Sent: a frequency-8 void
    claim (same lines) is created for the payer and returned; the original becomes void."""
    original = _lock_claim(claim)
    if ClaimStatus.VOID not in ALLOWED[original.status]:
        raise BillingError(
            "status", f"A {original.get_status_display().lower()} claim cannot be voided."
        )
    void_claim = None
    if original.status not in (ClaimStatus.DRAFT, ClaimStatus.READY):
        void_claim = _new_claim(
            actor=actor,
            encounter=original.encounter,
            coverage=original.coverage,
            payer=original.payer,
            lines=list(original.lines.select_related("charge_line")),
            frequency=ClaimFrequency.VOID,
            replaces=original,
            note=f"Voids {original.patient_control_number}.",
        )
    _set_status(original, actor=actor, to_status=ClaimStatus.VOID, note=note.strip() or "Voided.")
    return void_claim


# ---- setup: payers and fee schedules -------------------------------------------------------------


def _setup_audit(
    *, actor: User, event: str, obj: Any, created: bool, fields: Iterable[str]
) -> None:
    record(
        actor=actor,
        action=Action.CREATE if created else Action.UPDATE,
        event=event,
        category=Category.BILLING,
        obj=obj,
        fields=sorted(fields),
    )


@transaction.atomic
def payer_save(*, actor: User, payer: Payer, changed: Iterable[str] = ()) -> Payer:
    """Create or update a payer (validated by the caller's form); audited with field names."""
    created = payer.pk is None
    if Payer.objects.filter(payer_id=payer.payer_id).exclude(pk=payer.pk).exists():
        raise BillingError("payer_id", f"Another payer already has the id {payer.payer_id}.")
    payer.save()
    _setup_audit(actor=actor, event="payer.save", obj=payer, created=created, fields=changed)
    return payer


@transaction.atomic
def fee_schedule_save(
    *, actor: User, schedule: FeeSchedule, changed: Iterable[str] = ()
) -> FeeSchedule:
    created = schedule.pk is None
    if schedule.effective_end and schedule.effective_end < schedule.effective_start:
        raise BillingError("effective_end", "The end date is before the start date.")
    schedule.save()
    _setup_audit(
        actor=actor, event="fee_schedule.save", obj=schedule, created=created, fields=changed
    )
    return schedule


@transaction.atomic
def fee_entry_set(
    *,
    actor: User,
    schedule: FeeSchedule,
    code: str,
    amount: Decimal,
    modifier: str = "",
    description: str = "",
) -> FeeScheduleEntry:
    """Set the price of a code (and modifier) in a schedule (adds or updates the entry). CPT
    codes (numeric) keep no description: CPT descriptors are licensed."""
    code = code.strip().upper()
    modifier = modifier.strip().upper()
    if not PROCEDURE_CODE.match(code):
        raise BillingError("code", f"{code or '(blank)'} is not a CPT/HCPCS code.")
    if modifier and not MODIFIER_FORMAT.match(modifier):
        raise BillingError("modifier", f"{modifier} is not a modifier (two characters).")
    amount = _money(amount, field="amount")
    if code[:1].isdigit() and description.strip():
        raise BillingError("description", "CPT descriptions are licensed: leave it blank.")
    entry, created = FeeScheduleEntry.objects.update_or_create(
        schedule=schedule,
        code=code,
        modifier=modifier,
        defaults={"amount": amount, "description": description.strip()[:120]},
    )
    _setup_audit(
        actor=actor,
        event="fee_entry.set",
        obj=entry,
        created=created,
        fields=["amount", "description"],
    )
    return entry


# ---- secondary claims: what the earlier payer paid and adjusted --------------------------------


@dataclass(frozen=True)
class PriorPayment:
    """An earlier payer's payment: claim level (line_number None) or for one claim line."""

    amount: Decimal
    paid_date: dt.date | None = None
    line_number: int | None = None
    paid_units: Decimal | None = None


@dataclass(frozen=True)
class PriorAdjustment:
    """An earlier payer's CAS adjustment: group (CO/PR/OA/PI/CR), CARC, amount (and quantity)."""

    group_code: str
    reason_code: str
    amount: Decimal
    line_number: int | None = None
    quantity: Decimal | None = None


@transaction.atomic
def claim_prior_payer_record(
    *,
    actor: User | None,
    claim: Claim,
    source_claim: Claim,
    payments: Sequence[PriorPayment],
    adjustments: Sequence[PriorAdjustment],
) -> Claim:
    """Record on a secondary/tertiary claim what `source_claim`'s payer paid and adjusted (the
    837P 2320/2430 loops). Replaces what was recorded from that payer before; only while the
    claim is a draft or ready. Called by the remittance poster after the primary's 835."""
    from billing.models import AdjustmentGroup, ClaimPriorAdjustment, ClaimPriorPayment

    claim = _lock_claim(claim)
    if claim.sequence == SEQUENCE_BY_ORDER[1]:
        raise BillingError("claim", "A primary claim has no prior payer.")
    if claim.status not in (ClaimStatus.DRAFT, ClaimStatus.READY):
        raise BillingError("claim", "Prior payments can change only before submission.")
    if source_claim.patient_id != claim.patient_id or source_claim.pk == claim.pk:
        raise BillingError("source_claim", "The prior claim must be another claim of the patient.")
    lines = {line.line_number: line for line in claim.lines.all()}

    def line_for(number: int | None, field: str) -> ClaimLine | None:
        if number is None:
            return None
        if number not in lines:
            raise BillingError(field, f"The claim has no line {number}.")
        return lines[number]

    payer = source_claim.payer
    ClaimPriorPayment.objects.filter(claim=claim, payer=payer).delete()
    ClaimPriorAdjustment.objects.filter(claim=claim, payer=payer).delete()
    for n, pay in enumerate(payments, start=1):
        ClaimPriorPayment.objects.create(
            claim=claim,
            claim_line=line_for(pay.line_number, f"payments.{n}.line_number"),
            source_claim=source_claim,
            payer=payer,
            amount=Decimal(pay.amount).quantize(CENT),
            paid_units=pay.paid_units,
            paid_date=pay.paid_date,
        )
    for n, adj in enumerate(adjustments, start=1):
        if adj.group_code not in AdjustmentGroup.values:
            raise BillingError(f"adjustments.{n}.group_code", f"{adj.group_code} is not a group.")
        if not adj.reason_code.strip():
            raise BillingError(f"adjustments.{n}.reason_code", "The CARC is missing.")
        ClaimPriorAdjustment.objects.create(
            claim=claim,
            claim_line=line_for(adj.line_number, f"adjustments.{n}.line_number"),
            payer=payer,
            group_code=adj.group_code,
            reason_code=adj.reason_code.strip().upper(),
            amount=Decimal(adj.amount).quantize(CENT),
            quantity=adj.quantity,
        )
    _event(
        claim,
        actor=actor,
        from_status="",
        to_status="",
        note=f"Prior payer {payer.name} payment recorded."[:200],
    )
    _audit(
        actor=actor,
        event="claim.prior_payer",
        obj=claim,
        patient=claim.patient,
        fields=["prior_payments", "prior_adjustments"],
    )
    return claim
