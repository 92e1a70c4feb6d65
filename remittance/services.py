"""835 ingest: parse, match, post. `remittance_ingest` is the one entry point.

Order of the checks (the issue's idempotency rules):

1. the file's SHA-256 was posted before → "already posted", nothing changes;
2. the parser refuses it (`X835Error`) → a `refused` file row with the message naming the segment;
3. a payment's payer + trace (TRN03 + TRN02) was posted before (from another file) →
   `quarantined`, with a message naming the trace and the earlier file; the content is kept;
4. otherwise everything is posted in ONE database transaction (a crash leaves nothing).

Matching a CLP to our claims, first hit wins: patient control number (CLP01 = our CLM01);
payer claim number (CLP07, stored on the claim by an earlier remittance); patient + dates +
lines (member id of NM1*QC/IL on one of the patient's coverages, the first service date, and the
same procedure codes and charges line for line, modifiers ignored: payers drop them). A CLP that
matches nothing, or several claims, goes to the unmatched queue (never dropped).

Posting a matched claim to the ledger (patientaccounts.ledger, bulk path): ONE balanced
transaction per claim payment (kind insurance_payment; contractual_adjustment /
transfer_to_patient / other_adjustment when nothing was paid; the memo lists the CARCs), whose
lines go by CAS group: paid Dr cash; CO Dr contractual; OA, PI, CR Dr other adjustment; PR Dr
patient A/R (transfer to patient responsibility); their sum Cr insurance A/R. Every CAS triplet
is also stored (RemittanceAdjustment, claim or line level) with its CARC. Decision (the OpenEMR
bug the issue names): the non-PR adjustments of a DENIED claim or of a denied line (nothing paid,
non-PR reasons) are NOT written off: they stay in insurance A/R and a `Denial` is queued (due
date = payment date + the payer's appeal days) for someone to appeal, resubmit or write off.
A reversal (CLP02 = 22) reverses the earlier 835 postings of that claim (linked reversals); if
none are found, it posts the negative amounts with the same mapping, kind `reversal`.
PLB pairs post as provider adjustments (no patient): Dr provider adjustment / Cr cash.
Unmatched claim payments wait in the unmatched queue, but their cash is in the ledger at once,
so the deposit reconciles to the 835's BPR: one transaction per unmatched claim payment with
paid != 0, kind insurance_payment WITHOUT a patient, Dr cash / Cr unapplied (memo: trace, payer
and CLP01; claim_reference = CLP01; idempotency key per file and CLP; cash and unapplied lines
only, the one shape the ledger allows without a patient). An unmatched reversal posts the same
with its negative amounts (the cash goes back out of unapplied). `unmatched_resolve` posts the
claim payment as a matched one would be, but from unapplied instead of cash (Dr unapplied, the
adjustment lines, Cr insurance A/R, for the chosen claim's patient; a reversal: the negative
amounts against unapplied): cash is never counted twice.

Writing: the CLP/SVC/CAS rows, timeline events and denials go in with `remittance.bulk`'s raw
INSERTs (executemany on SQLite, COPY on PostgreSQL), the claims' adjudication fields with
one `update_rows` (an UPDATE from arrays on PostgreSQL, from a binary COPY into a temporary
table for large files); matching reads lean claim rows with one patient and payer instance per
distinct person (`_with_people`). On PostgreSQL the CLP/SVC/CAS rows take their ids from their
sequences up front and are written by `remittance.bulk.Writes` in a helper thread, with their
foreign-key checks run early, while this thread works out the postings, statuses, timeline
events, denials and audit events of the claims (`_Poster._plan_claims`): the server's work
and the Python work overlap on the two cores. The ledger, claim, timeline, denial and audit
writes follow in the same order as before, all in the file's one transaction.

Claim statuses follow billing.models.ALLOWED: submitted → accepted → paid / partially paid /
denied; a claim in a status that cannot take the new one keeps it (the report says so).
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import signals
from django.db.models.base import ModelState
from django.utils import timezone

from audit.models import Action, Category
from audit.services import record, record_many
from billing.models import (
    ALLOWED,
    AdjustmentReason,
    Claim,
    ClaimEvent,
    ClaimStatus,
    DenialCause,
    Payer,
    PayerSequence,
)
from billing.x12.edi835 import (
    Adjustment,
    ClaimPayment835,
    Payment835,
    Remittance835,
    X835Error,
    parse_835,
)
from core.text import fold
from patientaccounts.ledger import (
    LedgerError,
    Line,
    Posting,
    journal_post_many,
    journal_reverse,
)
from patientaccounts.models import (
    JournalEntry,
    JournalTransaction,
    LedgerAccount,
    TransactionKind,
)
from patients.models import Coverage, Patient
from remittance.bulk import (
    Writes,
    allocate_ids,
    ids_by_public_id,
    insert_rows,
    update_rows,
    uuid4_many,
)
from remittance.models import (
    AdjustmentLevel,
    ClaimRemittance,
    Denial,
    DenialStatus,
    FileStatus,
    IngestJob,
    JobStatus,
    LineRemittance,
    MatchMethod,
    ProviderAdjustment,
    RemittanceAdjustment,
    RemittanceFile,
    RemittancePayment,
    UnmatchedRemittance,
    UnmatchedStatus,
)

if TYPE_CHECKING:
    from accounts.models import User

ZERO = Decimal("0")
CHUNK = 500
ALREADY_POSTED = "already_posted"
Progress = Callable[[int, int], None]

_GROUP_KIND = {
    "CO": (TransactionKind.CONTRACTUAL_ADJUSTMENT, LedgerAccount.CONTRACTUAL),
    "OA": (TransactionKind.OTHER_ADJUSTMENT, LedgerAccount.OTHER_ADJUSTMENT),
    "PI": (TransactionKind.OTHER_ADJUSTMENT, LedgerAccount.OTHER_ADJUSTMENT),
    "CR": (TransactionKind.OTHER_ADJUSTMENT, LedgerAccount.OTHER_ADJUSTMENT),
    "PR": (TransactionKind.TRANSFER_TO_PATIENT, LedgerAccount.PATIENT_AR),
}
_POSTED_KINDS = (
    TransactionKind.INSURANCE_PAYMENT,
    TransactionKind.CONTRACTUAL_ADJUSTMENT,
    TransactionKind.OTHER_ADJUSTMENT,
    TransactionKind.TRANSFER_TO_PATIENT,
)


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimDetail:
    patient_control_number: str
    status_code: str
    charge: Decimal
    paid: Decimal
    patient_responsibility: Decimal
    match_method: str = MatchMethod.UNMATCHED

    def as_json(self) -> dict[str, str]:
        return {
            "patient_control_number": self.patient_control_number,
            "status_code": self.status_code,
            "charge": str(self.charge),
            "paid": str(self.paid),
            "patient_responsibility": str(self.patient_responsibility),
        }


@dataclass
class IngestReport:
    file_name: str
    sha256: str
    status: str  # FileStatus value or "already_posted"
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    payments: list[dict[str, str]] = field(default_factory=list)
    claims: int = 0
    matched: int = 0
    unmatched: int = 0
    denied: int = 0
    total_paid: Decimal = ZERO
    total_adjusted: Decimal = ZERO
    total_provider_adjustments: Decimal = ZERO
    claim_details: list[ClaimDetail] = field(default_factory=list)
    file: RemittanceFile | None = None

    @property
    def ok(self) -> bool:
        return self.status in {FileStatus.POSTED, FileStatus.DRY_RUN, ALREADY_POSTED}


# --- matching (read only) -----------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    claim: Claim | None
    method: str


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_CLAIM_FIELDS = (
    "public_id",
    "patient_id",
    "payer_id",
    "encounter_id",
    "patient_control_number",
    "payer_claim_number",
    "date_of_service",
    "status",
    "status_changed_at",
    "adjudicated_at",
    "paid_amount",
    "patient_responsibility",
)


def _claims() -> Any:
    """Claims with what matching and posting read (lean rows; `_with_people` adds their
    patient and payer)."""
    return Claim.objects.only(*_CLAIM_FIELDS)


_CLAIM_COLUMNS_READ = ("id", *_CLAIM_FIELDS)


def _lean_claims(**filters: Any) -> list[Claim]:
    """`list(_claims().filter(**filters))`, the instances assembled from a values_list (the
    values converted as the ORM converts them) as `Model.from_db` leaves them: the fields
    read in `__dict__`, the others deferred, saved state. Tens of thousands of claims cost a
    third of that through the ORM's per-row `from_db` and `__init__`. Through the ORM when
    pre/post_init receivers want `__init__`."""
    if signals.pre_init.has_listeners(Claim) or signals.post_init.has_listeners(Claim):
        return list(_claims().filter(**filters))
    queryset = Claim.objects.filter(**filters)
    rows = queryset.values_list(*_CLAIM_COLUMNS_READ)
    claims = []
    new = Claim.__new__
    for values in rows:
        claim = new(Claim)
        claim.__dict__.update(zip(_CLAIM_COLUMNS_READ, values, strict=True))
        state = claim._state = ModelState()
        state.adding = False
        state.db = queryset.db
        claims.append(claim)
    return claims


def _with_people(claims: Sequence[Claim]) -> Sequence[Claim]:
    """Give `claims` their patient (public id) and payer (appeal days), one instance per
    distinct patient and payer: a file pays many claims of the same people, and building a
    joined patient and payer per claim cost more than reading them once."""
    for name, model, fields in (
        ("patient", Patient, ("public_id",)),
        ("payer", Payer, ("appeal_days",)),
    ):
        field = Claim._meta.get_field(name)
        attname = f"{name}_id"
        ids = sorted({getattr(claim, attname) for claim in claims})
        found: dict[int, Any] = {}
        for chunk in _chunks(ids):
            rows = model._base_manager.only(*fields).filter(pk__in=chunk)
            found.update((row.pk, row) for row in rows)
        for claim in claims:
            field.set_cached_value(claim, found[getattr(claim, attname)])  # type: ignore[union-attr]
    return claims


def _claims_by(field_name: str, values: Iterable[str]) -> dict[str, list[Claim]]:
    found: dict[str, list[Claim]] = defaultdict(list)
    wanted = sorted({v for v in values if v})
    claims: list[Claim] = []
    for chunk in _chunks(wanted):
        claims += _lean_claims(**{f"{field_name}__in": chunk})
    for claim in _with_people(claims):
        found[getattr(claim, field_name)].append(claim)
    return found


def _line_key(code: str, charge: Decimal | None) -> tuple[str, Decimal | None]:
    return code.upper(), charge


def _match_by_patient(clps: Sequence[ClaimPayment835]) -> dict[int, Claim]:
    """Index in `clps` -> the one claim with the same patient, first date and lines."""
    members: dict[int, set[str]] = {}
    for index, clp in enumerate(clps):
        ids = {fold(p.identifier) for p in (clp.patient, clp.subscriber) if p and p.identifier}
        if ids:
            members[index] = ids
    wanted = sorted({m for ids in members.values() for m in ids})
    patients_by_member: dict[str, set[int]] = defaultdict(set)
    for chunk in _chunks(wanted):
        for member, patient_id in Coverage.objects.filter(member_id_fold__in=chunk).values_list(
            "member_id_fold", "patient_id"
        ):
            patients_by_member[member].add(patient_id)
    patient_ids = sorted({p for ps in patients_by_member.values() for p in ps})
    candidates: dict[tuple[int, dt.date], list[Claim]] = defaultdict(list)
    claims: list[Claim] = []
    for chunk in _chunks(patient_ids):
        claims += _claims().filter(patient_id__in=chunk).prefetch_related("lines")
    for claim in _with_people(claims):
        candidates[(claim.patient_id, claim.date_of_service)].append(claim)
    matched: dict[int, Claim] = {}
    for index, ids in members.items():
        clp = clps[index]
        first = clp.service_start or min(
            (line.service_date for line in clp.lines if line.service_date), default=None
        )
        if first is None:
            continue
        wanted_lines = Counter(_line_key(line.procedure.code, line.charge) for line in clp.lines)
        hits = [
            claim
            for patient_id in {p for m in ids for p in patients_by_member.get(m, ())}
            for claim in candidates.get((patient_id, first), [])
            if Counter(_line_key(line.code, line.charge) for line in claim.lines.all())
            == wanted_lines
        ]
        if len(hits) == 1:
            matched[index] = hits[0]
    return matched


def match_claims(clps: Sequence[ClaimPayment835]) -> list[Match]:
    """Our claim for each CLP (in order), and how it was found. Reads only."""
    by_pcn = _claims_by("patient_control_number", (c.patient_control_number for c in clps))
    # The payer claim number decides only where the control number found no single claim.
    by_icn = _claims_by(
        "payer_claim_number",
        (c.payer_claim_number for c in clps if len(by_pcn.get(c.patient_control_number, ())) != 1),
    )
    result: list[Match | None] = []
    for clp in clps:
        pcn_hits = by_pcn.get(clp.patient_control_number, [])
        icn_hits = by_icn.get(clp.payer_claim_number, []) if clp.payer_claim_number else []
        if len(pcn_hits) == 1:
            result.append(Match(pcn_hits[0], MatchMethod.PCN))
        elif len(icn_hits) == 1:
            result.append(Match(icn_hits[0], MatchMethod.PAYER_CLAIM_NUMBER))
        else:
            result.append(None)
    missing = [i for i, m in enumerate(result) if m is None]
    if missing:
        found = _match_by_patient([clps[i] for i in missing])
        for position, index in enumerate(missing):
            claim = found.get(position)
            result[index] = (
                Match(claim, MatchMethod.PATIENT_DATES_LINES)
                if claim is not None
                else Match(None, MatchMethod.UNMATCHED)
            )
    return [m for m in result if m is not None]


# --- what a claim payment means --------------------------------------------------------------


def _denied_line_positions(clp: ClaimPayment835) -> set[int]:
    return {
        position
        for position, line in enumerate(clp.lines)
        if line.paid == ZERO
        and (line.charge or ZERO) > ZERO
        and any(a.group != "PR" for a in line.adjustments)
    }


def _held(clp: ClaimPayment835, denied: set[int] | None = None) -> list[Adjustment]:
    """Non-PR adjustments not written off because the claim or the line was denied.
    `denied`: `_denied_line_positions(clp)` when the caller has it already."""
    if clp.is_denied:
        return [a for a in clp.all_adjustments if a.group != "PR"]
    if denied is None:
        denied = _denied_line_positions(clp)
    return [
        a for position in sorted(denied) for a in clp.lines[position].adjustments if a.group != "PR"
    ]


def _posted_adjustments(clp: ClaimPayment835, denied: set[int] | None = None) -> list[Adjustment]:
    if clp.is_denied:
        return [a for a in clp.all_adjustments if a.group == "PR"]
    if denied is None:
        denied = _denied_line_positions(clp)
    kept = list(clp.adjustments)
    if not denied:
        for line in clp.lines:
            kept += line.adjustments
        return kept
    for position, line in enumerate(clp.lines):
        kept += [a for a in line.adjustments if position not in denied or a.group == "PR"]
    return kept


def _target_status(clp: ClaimPayment835, denied: set[int] | None = None) -> str:
    if clp.is_denied:
        return ClaimStatus.DENIED
    if _denied_line_positions(clp) if denied is None else denied:
        return ClaimStatus.PARTIALLY_PAID
    return ClaimStatus.PAID


def _status_path(current: str, target: str) -> list[str]:
    if current == target:
        return []
    if current == ClaimStatus.SUBMITTED and target in ALLOWED[ClaimStatus.ACCEPTED]:
        return [ClaimStatus.ACCEPTED, target]
    if target in ALLOWED.get(current, frozenset()):
        return [target]
    raise ValueError(current)


def _posting(
    *,
    clp: ClaimPayment835,
    claim: Claim,
    payment: Payment835,
    kind_override: str | None,
    key: str,
    source: str,
    cash_account: str = LedgerAccount.CASH,
    denied: set[int] | None = None,
) -> Posting | None:
    """The ledger transaction of one claim payment: Dr cash (paid), Dr contractual (CO),
    Dr other adjustment (OA/PI/CR), Dr patient A/R (PR), Cr insurance A/R (their sum). One
    transaction per claim payment keeps the bulk path fast; the accounts tell the amounts
    apart. A reversal's amounts are negative, so the same mapping negates the original.
    `cash_account` UNAPPLIED: the paid amount comes out of unapplied insurance cash (an
    unmatched claim payment's cash, already deposited, resolved by hand)."""
    amounts: dict[str, Decimal] = {cash_account: clp.paid}
    codes: dict[str, None] = {}  # in order, once each
    for adjustment in _posted_adjustments(clp, denied):
        account = _GROUP_KIND[adjustment.group][1]
        amounts[account] = amounts.get(account, ZERO) + adjustment.amount
        codes[f"{adjustment.group}-{adjustment.reason}"] = None
    receivable = -sum(amounts.values(), ZERO)
    lines = [Line(account, amount) for account, amount in amounts.items() if amount]
    if receivable:
        lines.append(Line(LedgerAccount.INSURANCE_AR, receivable))
    if len(lines) < 2:
        return None
    if kind_override:
        kind: str = kind_override
    elif clp.paid:
        kind = TransactionKind.INSURANCE_PAYMENT
    else:
        largest = max((a for a in amounts if amounts[a]), key=lambda a: abs(amounts[a]))
        kind = next(k for k, account in _GROUP_KIND.values() if account == largest)
    memo = f"835 trace {payment.trace_number}: paid {clp.paid}; {', '.join(codes)}"
    return Posting(
        patient=claim.patient,
        kind=kind,
        lines=lines,
        memo=memo[:200],
        service_date=claim.date_of_service,
        claim_reference=claim.patient_control_number,
        payer_reference=payment.payer_identifier[:80],
        source=source,
        idempotency_key=key,
    )


_UNAPPLIED_ACCOUNTS = frozenset({LedgerAccount.CASH.value, LedgerAccount.UNAPPLIED.value})


def _unapplied_key(sha: str, claim_remittance_id: int) -> str:
    return f"835:{sha[:40]}:{claim_remittance_id}:unapplied"


def _unapplied_posting(
    *, clp: ClaimPayment835, payment: Payment835, claim_remittance_id: int, sha: str
) -> Posting | None:
    """The cash of an unmatched claim payment, deposited with the rest of the 835 and held as
    unapplied insurance cash until someone applies it (no patient yet): Dr cash / Cr
    unapplied, kind insurance_payment. None when nothing was paid."""
    if not clp.paid:
        return None
    payer = payment.payer_name or _payer_key(payment)
    memo = (
        f"835 trace {payment.trace_number}, {payer}: unmatched claim payment "
        f"{clp.patient_control_number} paid {clp.paid}, held unapplied"
    )
    posting = Posting(
        patient=None,
        kind=TransactionKind.INSURANCE_PAYMENT,
        lines=[Line(LedgerAccount.CASH, clp.paid), Line(LedgerAccount.UNAPPLIED, -clp.paid)],
        memo=memo[:200],
        service_date=clp.service_start,
        claim_reference=clp.patient_control_number[:64],
        payer_reference=payment.payer_identifier[:80],
        source=f"835:{sha}",
        idempotency_key=_unapplied_key(sha, claim_remittance_id),
    )
    _check_without_patient(posting)
    return posting


def _check_without_patient(posting: Posting) -> None:
    """The ledger's rule for an insurance payment without a patient: cash and unapplied lines
    only (the database constraint sees the transaction row, not its lines)."""
    if posting.patient is None and posting.kind == TransactionKind.INSURANCE_PAYMENT:
        accounts = {str(line.account) for line in posting.lines}
        if not accounts <= _UNAPPLIED_ACCOUNTS:
            raise LedgerError(
                "lines", "an insurance payment without a patient moves cash and unapplied only."
            )


# --- the ingest --------------------------------------------------------------------------------


def _payer_key(payment: Payment835) -> str:
    return (payment.payer_identifier or payment.payer_id or payment.payer_name)[:80]


def _base_report(file_name: str, sha: str, remittance: Remittance835 | None) -> IngestReport:
    report = IngestReport(file_name=file_name, sha256=sha, status=FileStatus.DRY_RUN)
    if remittance is None:
        return report
    report.warnings = list(remittance.all_warnings)
    for payment in remittance.payments:
        report.payments.append(
            {
                "trace": payment.trace_number,
                "payer": payment.payer_name,
                "paid": str(payment.signed_total),
            }
        )
        report.total_provider_adjustments += payment.provider_adjustment_total
        for clp in payment.claims:
            report.claims += 1
            report.total_paid += clp.paid
            report.total_adjusted += clp.adjusted_total
            report.denied += clp.is_denied
    return report


def _details(remittance: Remittance835, matches: Sequence[Match]) -> list[ClaimDetail]:
    return [
        ClaimDetail(
            patient_control_number=clp.patient_control_number,
            status_code=clp.status_code,
            charge=clp.charge,
            paid=clp.paid,
            patient_responsibility=clp.patient_responsibility,
            match_method=match.method,
        )
        for clp, match in zip(remittance.claims, matches, strict=True)
    ]


def _file_row(
    *, actor: User | None, sha: str, file_name: str, status: str, message: str = ""
) -> RemittanceFile:
    return RemittanceFile(
        sha256=sha,
        file_name=file_name[:255],
        received_at=timezone.now(),
        received_by=actor if actor is not None and actor.is_authenticated else None,
        status=status,
        message=message[:500],
    )


def _audit_file(actor: User | None, row: RemittanceFile, reason: str = "") -> None:
    record(
        actor=actor,
        action=Action.CREATE,
        event=f"remittance.{row.status}",
        category=Category.PAYMENTS,
        obj=row,
        fields=["sha256", "status", "counts"],
        reason=reason[:200],
        username="" if actor is not None else "system",
    )


def remittance_ingest(
    *,
    actor: User | None,
    data: bytes,
    file_name: str,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest one 835 file (see the module docstring). Returns what happened; never raises for
    a bad file (refused and quarantined files are reported, and recorded unless dry_run).

    The cyclic garbage collector is paused meanwhile: a large file keeps hundreds of thousands
    of acyclic objects alive (parsed segments, model rows), and full collections passing over
    them again and again made the ingest grow faster than the file did."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _ingest(
            actor=actor, data=data, file_name=file_name, dry_run=dry_run, progress=progress
        )
    finally:
        if collecting:
            gc.enable()


def _ingest(
    *,
    actor: User | None,
    data: bytes,
    file_name: str,
    dry_run: bool,
    progress: Progress | None,
) -> IngestReport:
    sha = hashlib.sha256(data).hexdigest()
    earlier = RemittanceFile.objects.filter(sha256=sha, status=FileStatus.POSTED).first()
    if earlier is not None:
        report = IngestReport(file_name=file_name, sha256=sha, status=ALREADY_POSTED)
        report.message = (
            f"already posted: the same file ({earlier.file_name}) was posted on "
            f"{earlier.received_at:%Y-%m-%d %H:%M} UTC; nothing changed"
        )
        report.file = earlier
        return report
    held = (
        RemittanceFile.objects.filter(sha256=sha, status=FileStatus.QUARANTINED)
        .defer("content")
        .first()
    )
    if held is not None and not dry_run:
        report = IngestReport(file_name=file_name, sha256=sha, status=FileStatus.QUARANTINED)
        report.message = (
            f"already quarantined on {held.received_at:%Y-%m-%d %H:%M} UTC ({held.file_name}): "
            f"{held.message}"
        )[:500]
        report.file = held
        return report
    try:
        remittance = parse_835(data)
    except X835Error as error:
        report = _base_report(file_name, sha, None)
        report.status = FileStatus.REFUSED
        report.message = str(error)
        if not dry_run:
            with transaction.atomic():
                row = _file_row(
                    actor=actor,
                    sha=sha,
                    file_name=file_name,
                    status=FileStatus.REFUSED,
                    message=str(error),
                )
                row.save(force_insert=True)
                _audit_file(actor, row, reason="refused")
            report.file = row
        return report
    report = _base_report(file_name, sha, remittance)
    duplicate = _duplicate_trace_in_file(remittance)
    if duplicate:
        report.status = FileStatus.REFUSED
        report.message = duplicate
        if not dry_run:
            report.file = _record_refusal(actor, sha, file_name, duplicate)
        return report
    clps = remittance.claims
    matches = match_claims(clps)
    report.claim_details = _details(remittance, matches)
    report.matched = sum(1 for m in matches if m.claim is not None)
    report.unmatched = len(matches) - report.matched
    if dry_run:
        report.status = FileStatus.DRY_RUN
        report.message = "dry run: parsed and matched; nothing posted"
        return report
    try:
        with transaction.atomic():
            return _post(
                actor=actor,
                data=data,
                sha=sha,
                file_name=file_name,
                remittance=remittance,
                matches=matches,
                report=report,
                progress=progress,
            )
    except IntegrityError:
        # A concurrent ingest of the same file or trace won the race: report what is there now.
        earlier = RemittanceFile.objects.filter(sha256=sha, status=FileStatus.POSTED).first()
        if earlier is None:
            raise
        report.status = ALREADY_POSTED
        report.message = f"already posted: the same file ({earlier.file_name}); nothing changed"
        report.file = earlier
        return report


def _duplicate_trace_in_file(remittance: Remittance835) -> str:
    seen: set[tuple[str, str]] = set()
    for payment in remittance.payments:
        key = (_payer_key(payment), payment.trace_number)
        if key in seen:
            return (
                f"segment {payment.segment_index} (ST): trace {payment.trace_number} of payer "
                f"{key[0]} appears twice in the file"
            )
        seen.add(key)
    return ""


def _record_refusal(actor: User | None, sha: str, file_name: str, message: str) -> RemittanceFile:
    with transaction.atomic():
        row = _file_row(
            actor=actor, sha=sha, file_name=file_name, status=FileStatus.REFUSED, message=message
        )
        row.save(force_insert=True)
        _audit_file(actor, row, reason="refused")
    return row


def _payment_rows(
    row: RemittanceFile, remittance: Remittance835, *, quarantined: bool
) -> list[RemittancePayment]:
    payer_ids = {p.payer_identifier for p in remittance.payments} | {
        p.payer_id for p in remittance.payments
    }
    payers = {p.payer_id: p for p in Payer.objects.filter(payer_id__in=payer_ids - {""})}
    rows = [
        RemittancePayment(
            file=row,
            payer=payers.get(payment.payer_id) or payers.get(payment.payer_identifier),
            payer_reference=_payer_key(payment),
            payer_name=payment.payer_name[:120],
            trace_number=payment.trace_number[:80],
            handling_code=payment.handling_code,
            credit_debit=payment.credit_debit,
            method=payment.method,
            payment_date=payment.payment_date,
            paid_total=payment.signed_total,
            payee_name=payment.payee_name[:120],
            payee_npi=payment.payee_id[:80],
            quarantined=quarantined,
        )
        for payment in remittance.payments
    ]
    return RemittancePayment.objects.bulk_create(rows)


def _quarantine(
    *,
    actor: User | None,
    data: bytes,
    sha: str,
    file_name: str,
    remittance: Remittance835,
    report: IngestReport,
    clash: RemittancePayment,
) -> IngestReport:
    message = (
        f"quarantined: trace {clash.trace_number} of payer {clash.payer_reference} was already "
        f"posted from {clash.file.file_name} (received {clash.file.received_at:%Y-%m-%d}) "
        "with different content; nothing posted"
    )
    row = _file_row(
        actor=actor, sha=sha, file_name=file_name, status=FileStatus.QUARANTINED, message=message
    )
    row.content = data.decode("utf-8", errors="replace")
    row.warnings = report.warnings
    row.payment_count = len(remittance.payments)
    row.claim_count = report.claims
    row.save(force_insert=True)
    _payment_rows(row, remittance, quarantined=True)
    _audit_file(actor, row, reason="quarantined")
    report.status = FileStatus.QUARANTINED
    report.message = message
    report.file = row
    return report


def _post(
    *,
    actor: User | None,
    data: bytes,
    sha: str,
    file_name: str,
    remittance: Remittance835,
    matches: Sequence[Match],
    report: IngestReport,
    progress: Progress | None,
) -> IngestReport:
    for payment in remittance.payments:
        clash = (
            RemittancePayment.objects.filter(
                payer_reference=_payer_key(payment),
                trace_number=payment.trace_number,
                quarantined=False,
            )
            .select_related("file")
            .first()
        )
        if clash is not None:
            return _quarantine(
                actor=actor,
                data=data,
                sha=sha,
                file_name=file_name,
                remittance=remittance,
                report=report,
                clash=clash,
            )
    row = _file_row(actor=actor, sha=sha, file_name=file_name, status=FileStatus.POSTED)
    row.interchange_control_number = remittance.interchange_control_number[:9]
    row.warnings = report.warnings
    row.payment_count = len(remittance.payments)
    row.claim_count = report.claims
    row.matched_count = report.matched
    row.unmatched_count = report.unmatched
    row.denied_count = report.denied
    row.total_paid = report.total_paid
    row.total_adjusted = report.total_adjusted
    row.total_provider_adjustments = report.total_provider_adjustments
    row.save(force_insert=True)
    payment_rows = _payment_rows(row, remittance, quarantined=False)
    poster = _Poster(actor=actor, sha=sha, file_row=row, report=report, progress=progress)
    position = 0
    for payment, payment_row in zip(remittance.payments, payment_rows, strict=True):
        count = len(payment.claims)
        poster.add_payment(payment, payment_row, matches[position : position + count])
        position += count
    poster.flush()
    _audit_file(actor, row, reason=f"{report.claims} claim payments")
    report.status = FileStatus.POSTED
    report.message = (
        f"posted: {report.claims} claim payments ({report.matched} matched, "
        f"{report.unmatched} unmatched, {report.denied} denied)"
    )
    report.file = row
    return report


_LOCKED_FIELDS = (
    "status",
    "status_changed_at",
    "adjudicated_at",
    "paid_amount",
    "patient_responsibility",
    "payer_claim_number",
)


def _lock_claims(claims: Iterable[Claim]) -> dict[int, Claim]:
    """Lock the matched claims (in id order) and refresh what posting changes: matching read
    them before the transaction, and someone may have changed them since."""
    by_id = {claim.pk: claim for claim in claims}
    for chunk in _chunks(sorted(by_id)):
        rows = (
            Claim.objects.select_for_update()
            .filter(pk__in=chunk)
            .order_by("pk")
            .values_list("pk", *_LOCKED_FIELDS)
        )
        for pk, *values in rows:
            # plain (not related) fields: setattr would store each in __dict__ all the same
            by_id[pk].__dict__.update(zip(_LOCKED_FIELDS, values, strict=True))
    return by_id


_CLAIM_COLUMNS = (
    "status",
    "status_changed_at",
    "adjudicated_at",
    "paid_amount",
    "patient_responsibility",
    "payer_claim_number",
    "updated_at",
)


def _update_claims(claims: Sequence[Claim], now: dt.datetime) -> None:
    """Write the adjudication fields of many claims in one go (`remittance.bulk.update_rows`:
    no per-field preparation through the model; Django's bulk_update builds a CASE per column
    and row, far slower for thousands of claims)."""
    rows = []
    for claim in claims:
        claim.updated_at = now
        rows.append(
            (
                claim.pk,
                claim.status,
                claim.status_changed_at,
                claim.adjudicated_at,
                claim.paid_amount,
                claim.patient_responsibility,
                claim.payer_claim_number,
                now,
            )
        )
    update_rows(Claim, _CLAIM_COLUMNS, rows)


_CLAIM_REMITTANCE_COLUMNS = (
    "public_id",
    "created_at",
    "updated_at",
    "payment_id",
    "position",
    "claim_id",
    "patient_id",
    "match_method",
    "patient_control_number",
    "status_code",
    "charge",
    "paid",
    "patient_responsibility",
    "filing_indicator",
    "payer_claim_number",
    "service_start",
    "service_end",
    "patient_last_name",
    "patient_first_name",
    "member_id",
    "is_reversal",
    "is_denied",
)
_LINE_COLUMNS = (
    "public_id",
    "created_at",
    "updated_at",
    "claim_remittance_id",
    "position",
    "claim_line_id",
    "qualifier",
    "code",
    "modifiers",
    "original_code",
    "charge",
    "paid",
    "units",
    "service_date",
    "control_number",
    "allowed",
    "remark_codes",
)
_ADJUSTMENT_COLUMNS = (
    "public_id",
    "created_at",
    "updated_at",
    "claim_remittance_id",
    "line_id",
    "level",
    "group_code",
    "reason_code",
    "amount",
    "quantity",
)
_DENIAL_COLUMNS = (
    "public_id",
    "created_at",
    "updated_at",
    "claim_id",
    "claim_remittance_id",
    "carc",
    "rarc",
    "group_code",
    "amount",
    "cause",
    "due_date",
    "owner_id",
    "status",
    "notes",
    "replacement_claim_id",
    "write_off_id",
)
_EVENT_COLUMNS = (
    "public_id",
    "created_at",
    "updated_at",
    "claim_id",
    "at",
    "actor_id",
    "from_status",
    "to_status",
    "note",
)


def _denial_causes() -> dict[str, str]:
    """CARC -> denial cause (our reason table)."""
    return dict(AdjustmentReason.objects.values_list("code", "denial_cause"))


@dataclass
class _ClaimPlan:
    """What `_Poster._plan_claims` worked out for `_Poster._write_claims` to write."""

    locked: dict[int, Claim]
    now: dt.datetime
    postings: list[Posting] = field(default_factory=list)
    reversals: list[tuple[ClaimPayment835, Claim, Payment835, str]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    denials: list[tuple[Claim, tuple[Any, ...]]] = field(default_factory=list)
    changed: dict[int, Claim] = field(default_factory=dict)


class _Poster:
    """Collects the rows of one file and writes them in bulk (inside the caller's atomic)."""

    def __init__(
        self,
        *,
        actor: User | None,
        sha: str,
        file_row: RemittanceFile,
        report: IngestReport,
        progress: Progress | None,
    ) -> None:
        self.actor = actor
        self.sha = sha
        self.source = f"835:{sha}"
        self.file_row = file_row
        self.report = report
        self.progress = progress
        self.now = timezone.now()
        self.public_ids: list[uuid.UUID] = []
        self.claim_ids: list[int] = []
        self.payment_ids: list[int] = []
        self.clps: list[ClaimPayment835] = []
        self.payments: list[Payment835] = []
        self.matches: list[Match] = []
        self.plb_rows: list[ProviderAdjustment] = []
        self.plb_postings: list[Posting] = []
        # UNAPPLIED when the paid amounts were deposited as unapplied cash (`unmatched_resolve`)
        self.cash_account: str = LedgerAccount.CASH

    def add_payment(
        self, payment: Payment835, payment_row: RemittancePayment, matches: Sequence[Match]
    ) -> None:
        public_ids = uuid4_many(len(payment.claims))
        for public_id, clp, match in zip(public_ids, payment.claims, matches, strict=True):
            self.public_ids.append(public_id)
            self.payment_ids.append(payment_row.pk)
            self.clps.append(clp)
            self.payments.append(payment)
            self.matches.append(match)
        for number, plb in enumerate(payment.provider_adjustments, start=1):
            self.plb_rows.append(
                ProviderAdjustment(
                    payment=payment_row,
                    provider_identifier=plb.provider_id[:80],
                    fiscal_period_date=plb.fiscal_period_date,
                    reason_code=plb.reason[:2],
                    reference=plb.reference[:80],
                    amount=plb.amount,
                )
            )
            self.plb_postings.append(
                Posting(
                    patient=None,
                    kind=TransactionKind.PROVIDER_ADJUSTMENT,
                    lines=[
                        Line(LedgerAccount.PROVIDER_ADJUSTMENT, plb.amount),
                        Line(LedgerAccount.CASH, -plb.amount),
                    ],
                    memo=f"835 PLB {plb.reason}, trace {payment.trace_number}"[:200],
                    payer_reference=payment.payer_identifier[:80],
                    source=self.source,
                    idempotency_key=f"835:{self.sha[:40]}:plb:{payment_row.pk}:{number}",
                )
            )

    def flush(self) -> None:
        """Write everything. The claims are locked first; then, while the CLP/SVC/CAS rows
        are written (and their foreign keys checked) by `remittance.bulk.Writes` in the
        background on PostgreSQL, this thread works out the claims' postings, statuses and
        denials (`_plan_claims`) and writes the ledger, claim, timeline, denial and audit
        rows, none of which reads the CLP/SVC/CAS rows (their foreign keys to them are
        checked at COMMIT); the connection runs one statement at a time, so the two threads'
        statements interleave while each one's Python work overlaps the other's server work.
        Filling secondary claims reads the CLP rows: it waits for the writes."""
        locked = _lock_claims([m.claim for m in self.matches if m.claim is not None])
        reasons = _denial_causes()
        # ids for the rows others point to, taken before the writes start (PostgreSQL)
        claim_ids = allocate_ids(ClaimRemittance, len(self.clps))
        line_ids = allocate_ids(LineRemittance, sum(len(clp.lines) for clp in self.clps))
        with Writes() as writes:
            self._claim_remittances(writes, claim_ids)
            self._lines_and_adjustments(writes, line_ids)
            writes.check_constraints(ClaimRemittance, LineRemittance, RemittanceAdjustment)
            plan = self._plan_claims(locked, reasons)
            self._provider_adjustments()
            self._unmatched()
            self._write_claims(plan, writes)
        self._finish(plan)

    def _claim_remittances(self, writes: Writes, allocated: list[int] | None) -> None:
        """The CLP rows; `allocated`: their ids (PostgreSQL), else read back after the
        INSERT."""
        now = self.now
        counters: dict[int, int] = defaultdict(int)
        rows = []
        for public_id, payment_id, clp, match in zip(
            self.public_ids, self.payment_ids, self.clps, self.matches, strict=True
        ):
            counters[payment_id] += 1
            claim = match.claim
            person = clp.patient
            rows.append(
                (
                    public_id,
                    now,
                    now,
                    payment_id,
                    counters[payment_id],
                    claim.pk if claim is not None else None,
                    claim.patient_id if claim is not None else None,
                    str(match.method),
                    clp.patient_control_number[:38],
                    clp.status_code,
                    clp.charge,
                    clp.paid,
                    clp.patient_responsibility,
                    clp.filing_indicator[:2],
                    clp.payer_claim_number[:50],
                    clp.service_start,
                    clp.service_end,
                    (person.last_name if person else "")[:60],
                    (person.first_name if person else "")[:35],
                    (person.identifier if person else "")[:80],
                    clp.is_reversal,
                    clp.is_denied,
                )
            )
        if allocated is not None:
            writes.insert(
                ClaimRemittance,
                ("id", *_CLAIM_REMITTANCE_COLUMNS),
                [(pk, *row) for pk, row in zip(allocated, rows, strict=True)],
                via=insert_rows,
            )
            self.claim_ids = allocated
            return
        writes.insert(ClaimRemittance, _CLAIM_REMITTANCE_COLUMNS, rows, via=insert_rows)
        ids = ids_by_public_id(ClaimRemittance, payment__file=self.file_row)
        self.claim_ids = [ids[public_id] for public_id in self.public_ids]

    def _lines_and_adjustments(self, writes: Writes, allocated: list[int] | None) -> None:
        """The SVC rows and the CAS rows (claim and line level); `allocated`: the SVC rows'
        ids (PostgreSQL), else read back after their INSERT."""
        now = self.now
        line_ids = uuid4_many(sum(len(clp.lines) for clp in self.clps))
        fresh_line_id = iter(line_ids)
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        for claim_id, clp in zip(self.claim_ids, self.clps, strict=True):
            for position, line in enumerate(clp.lines, start=1):
                procedure = line.procedure
                original = line.original_procedure
                modifiers = procedure.modifiers
                remarks = line.remark_codes
                allowed = None  # line.allowed, without its generator
                for info in line.amounts:
                    if info.qualifier == "B6":
                        allowed = info.amount
                        break
                append(
                    (
                        next(fresh_line_id),
                        now,
                        now,
                        claim_id,
                        position,
                        None,
                        procedure.qualifier,
                        procedure.code[:48],
                        ":".join(modifiers)[:11] if modifiers else "",
                        str(original)[:48] if original else "",
                        line.charge,
                        line.paid,
                        line.units,
                        line.service_date,
                        line.control_number[:50],
                        allowed,
                        ",".join(remarks)[:100] if remarks else "",
                    )
                )
        if allocated is not None:
            writes.insert(
                LineRemittance,
                ("id", *_LINE_COLUMNS),
                [(pk, *row) for pk, row in zip(allocated, rows, strict=True)],
                via=insert_rows,
            )
            line_pk = iter(allocated)
        else:
            writes.insert(LineRemittance, _LINE_COLUMNS, rows, via=insert_rows)
            ids = ids_by_public_id(LineRemittance, claim_remittance__payment__file=self.file_row)
            line_pk = iter([ids[public_id] for public_id in line_ids])
        adjustments: list[tuple[Any, ...]] = []
        claim_level, line_level = AdjustmentLevel.CLAIM.value, AdjustmentLevel.LINE.value
        fresh = iter(
            uuid4_many(
                sum(
                    len(clp.adjustments) + sum(len(line.adjustments) for line in clp.lines)
                    for clp in self.clps
                )
            )
        )
        append = adjustments.append
        # group, reason (CARC, 5 characters at most), amount, quantity of each CAS triplet
        for claim_id, clp in zip(self.claim_ids, self.clps, strict=True):
            for a in clp.adjustments:
                append(
                    (
                        next(fresh),
                        now,
                        now,
                        claim_id,
                        None,
                        claim_level,
                        a.group,
                        a.reason[:5],
                        a.amount,
                        a.quantity,
                    )
                )
            for line in clp.lines:
                line_id = next(line_pk)
                for a in line.adjustments:
                    append(
                        (
                            next(fresh),
                            now,
                            now,
                            claim_id,
                            line_id,
                            line_level,
                            a.group,
                            a.reason[:5],
                            a.amount,
                            a.quantity,
                        )
                    )
        writes.insert(RemittanceAdjustment, _ADJUSTMENT_COLUMNS, adjustments, via=insert_rows)

    def _provider_adjustments(self) -> None:
        if not self.plb_rows:
            return
        transactions = journal_post_many(actor=self.actor, postings=self.plb_postings)
        for plb_row, txn in zip(self.plb_rows, transactions, strict=True):
            plb_row.transaction = txn
        ProviderAdjustment.objects.bulk_create(self.plb_rows, batch_size=CHUNK)

    def _unmatched(self) -> None:
        rows = []
        postings = []
        for claim_id, clp, payment, match in zip(
            self.claim_ids, self.clps, self.payments, self.matches, strict=True
        ):
            if match.claim is not None:
                continue
            rows.append(UnmatchedRemittance(claim_remittance_id=claim_id))
            posting = _unapplied_posting(
                clp=clp, payment=payment, claim_remittance_id=claim_id, sha=self.sha
            )
            if posting is not None:
                postings.append(posting)
        UnmatchedRemittance.objects.bulk_create(rows, batch_size=CHUNK)
        if postings:
            journal_post_many(actor=self.actor, postings=postings)

    def _post_claims(self) -> None:
        """Post the matched claim payments (`unmatched_resolve`'s way in; `flush` runs the
        same steps around the background writes)."""
        locked = _lock_claims([m.claim for m in self.matches if m.claim is not None])
        plan = self._plan_claims(locked, _denial_causes())
        self._write_claims(plan)
        self._finish(plan)

    def _plan_claims(self, locked: dict[int, Claim], reasons: dict[str, str]) -> _ClaimPlan:
        """What posting the matched claim payments writes, worked out in Python (no query):
        ledger postings, reversals, the claims' new figures and statuses, timeline events,
        denials and the claims' audit events."""
        plan = _ClaimPlan(locked=locked, now=timezone.now())
        now = plan.now
        total = len(self.claim_ids)
        key_prefix = f"835:{self.sha[:40]}:"
        user = self._user
        user_id = user.pk if user is not None else None
        for number, (claim_id, clp, payment, match) in enumerate(
            zip(self.claim_ids, self.clps, self.payments, self.matches, strict=True), start=1
        ):
            if match.claim is None:
                continue
            claim = locked[match.claim.pk]
            key = f"{key_prefix}{claim_id}"
            denied = _denied_line_positions(clp)
            if clp.is_reversal:
                plan.reversals.append((clp, claim, payment, key))
            else:
                posting = _posting(
                    clp=clp,
                    claim=claim,
                    payment=payment,
                    kind_override=None,
                    key=key,
                    source=self.source,
                    cash_account=self.cash_account,
                    denied=denied,
                )
                if posting is not None:
                    plan.postings.append(posting)
            claim.paid_amount += clp.paid
            claim.patient_responsibility += clp.patient_responsibility
            if clp.payer_claim_number and not claim.payer_claim_number:
                claim.payer_claim_number = clp.payer_claim_number[:50]
            plan.changed[claim.pk] = claim
            plan.events += self._status(claim, clp, payment, now, plan.audits, denied, user_id)
            denial = self._denial(claim, claim_id, clp, payment, reasons, denied)
            if denial is not None:
                plan.denials.append((claim, denial))
            if self.progress is not None and number % 1000 == 0:
                self.progress(number, total)
        return plan

    def _write_claims(self, plan: _ClaimPlan, writes: Writes | None = None) -> None:
        """Write what `_plan_claims` worked out. With `writes` (the file's background writes),
        the ledger rows' foreign keys are checked there as soon as they are written, while
        this thread goes on."""
        now = plan.now
        journal_post_many(actor=self.actor, postings=plan.postings)
        if writes is not None:
            writes.check_constraints(JournalTransaction, JournalEntry)
        for clp, claim, payment, key in plan.reversals:
            self._reverse(clp, claim, payment, key)
        _update_claims(list(plan.changed.values()), now)
        events = plan.events
        insert_rows(
            ClaimEvent,
            _EVENT_COLUMNS,
            [
                (public_id, *event)
                for public_id, event in zip(uuid4_many(len(events)), events, strict=True)
            ],
        )
        denials = plan.denials
        denial_ids = uuid4_many(len(denials))
        insert_rows(
            Denial,
            _DENIAL_COLUMNS,
            [
                (public_id, now, now, *values, None, DenialStatus.OPEN.value, "", None, None)
                for public_id, (_, values) in zip(denial_ids, denials, strict=True)
            ],
        )
        label = Denial._meta.label
        audits = plan.audits
        audits += [
            {
                "actor": self.actor,
                "action": Action.CREATE,
                "event": "denial.create",
                "category": Category.BILLING,
                "patient": claim.patient,
                "object_type": label,
                "object_id": str(public_id),
                "fields": ["carc", "status"],
                "username": "" if self.actor is not None else "system",
            }
            for public_id, (claim, _) in zip(denial_ids, denials, strict=True)
        ]
        record_many(audits)

    def _finish(self, plan: _ClaimPlan) -> None:
        self._secondary_claims(plan.locked.values())
        if self.progress is not None:
            total = len(self.claim_ids)
            self.progress(total, total)

    def _secondary_claims(self, claims: Iterable[Claim]) -> None:
        """Fill prior-payer rows of secondary claims already waiting (draft/ready) for these
        visits; claims created later get them from `claim_prior_payer_fill` when billed."""
        encounters = sorted({c.encounter_id for c in claims})
        for chunk in _chunks(encounters):
            waiting = Claim.objects.filter(
                encounter_id__in=chunk, status__in=[ClaimStatus.DRAFT, ClaimStatus.READY]
            ).exclude(sequence=PayerSequence.PRIMARY)
            for claim in waiting:
                claim_prior_payer_fill(actor=self.actor, claim=claim)

    def _status(
        self,
        claim: Claim,
        clp: ClaimPayment835,
        payment: Payment835,
        now: dt.datetime,
        audits: list[dict[str, Any]],
        denied: set[int],
        user_id: int | None,
    ) -> list[tuple[Any, ...]]:
        """The claim's timeline events (and its audit event in `audits`); `user_id`: the
        acting user's id (`self._user`), None for the system."""
        claim_id = claim.pk
        if clp.is_reversal:
            note = f"Payer reversed its payment (835 trace {payment.trace_number})."
            return [(now, now, claim_id, now, user_id, "", "", note[:200])]
        target = _target_status(clp, denied)
        try:
            path = _status_path(claim.status, target)
        except ValueError:
            self.report.warnings.append(
                f"claim {claim.patient_control_number} is {claim.status}: it cannot become "
                f"{target}, status left unchanged"
            )
            return []
        events = []
        steps = [claim.status, *path]
        note = f"835 trace {payment.trace_number}"[:200]
        for to_status in path:
            events.append((now, now, claim_id, now, user_id, claim.status, to_status, note))
            claim.status = to_status
            claim.status_changed_at = now
        if path:
            audits.append(
                {
                    "actor": self.actor,
                    "action": Action.UPDATE,
                    "event": "claim.status",
                    "category": Category.BILLING,
                    "patient": claim.patient,
                    "obj": claim,
                    "fields": ["status", "paid_amount", "patient_responsibility"],
                    "reason": " -> ".join(steps),
                    "username": "" if self.actor is not None else "system",
                }
            )
        if path and claim.adjudicated_at is None:
            claim.adjudicated_at = now
        return events

    @property
    def _user(self) -> User | None:
        actor = self.actor
        return actor if actor is not None and actor.is_authenticated else None

    def _denial(
        self,
        claim: Claim,
        claim_remittance_id: int,
        clp: ClaimPayment835,
        payment: Payment835,
        reasons: dict[str, str],
        denied: set[int],
    ) -> tuple[Any, ...] | None:
        """The new denial's values in `_DENIAL_COLUMNS` order from claim_id to due_date, or
        None when nothing was denied."""
        if clp.is_reversal:
            return None
        held = _held(clp, denied)
        if not held and not clp.is_denied:
            return None
        first = held[0] if held else (clp.all_adjustments or (None,))[0]
        remarks = [code for line in clp.lines for code in line.remark_codes]
        day = payment.payment_date or timezone.localdate()
        return (
            claim.pk,
            claim_remittance_id,
            first.reason[:5] if first else "",
            remarks[0][:7] if remarks else "",
            first.group if first else "CO",
            sum((a.amount for a in held), ZERO),
            str(reasons.get(first.reason, DenialCause.OTHER) if first else DenialCause.OTHER),
            day + dt.timedelta(days=claim.payer.appeal_days),
        )

    def _reverse(self, clp: ClaimPayment835, claim: Claim, payment: Payment835, key: str) -> None:
        """Reverse the claim's earlier 835 postings (linked reversals) when their cash is what
        the payer takes back; otherwise post the negative amounts (kind reversal). A reversal
        resolved from the unmatched queue took its cash out as unapplied already: it posts the
        negative amounts against unapplied instead of cash."""
        if self.cash_account != LedgerAccount.CASH:
            originals = []
        else:
            originals = list(
                JournalTransaction.objects.filter(
                    claim_reference=claim.patient_control_number,
                    source__startswith="835:",
                    kind__in=_POSTED_KINDS,
                    reversed_by__isnull=True,
                    patient__isnull=False,  # not unapplied cash: that has no claim yet
                )
                .exclude(source=self.source)
                .prefetch_related("entries")
            )
        cash = sum(
            (
                e.amount
                for txn in originals
                for e in txn.entries.all()
                if e.account == LedgerAccount.CASH
            ),
            ZERO,
        )
        reason = f"payer reversal, 835 trace {payment.trace_number}"[:200]
        if originals and self.actor is not None and cash == -clp.paid:
            for txn in originals:
                journal_reverse(actor=self.actor, transaction=txn, reason=reason)
            return
        posting = _posting(
            clp=clp,
            claim=claim,
            payment=payment,
            kind_override=TransactionKind.REVERSAL,
            key=key,
            source=self.source,
            cash_account=self.cash_account,
        )
        if posting is not None:
            journal_post_many(actor=self.actor, postings=[posting])


# --- secondary claims -----------------------------------------------------------------------

_PREVIOUS_SEQUENCE = {PayerSequence.SECONDARY: PayerSequence.PRIMARY, "T": PayerSequence.SECONDARY}


def _line_numbers(remit_lines: Sequence[LineRemittance], claim: Claim) -> list[int | None]:
    """The claim line each remittance line adjudicated: same code (modifiers ignored, payers
    drop them), same charge when possible, each claim line used once, in order."""
    free = list(claim.lines.order_by("line_number"))
    numbers: list[int | None] = []
    for remit in remit_lines:
        same_code = [line for line in free if line.code.upper() == remit.code.upper()]
        exact = [line for line in same_code if line.charge == remit.charge]
        candidates = exact or same_code
        chosen = candidates[0] if candidates else None
        if chosen is not None:
            free.remove(chosen)
        numbers.append(chosen.line_number if chosen is not None else None)
    return numbers


def claim_prior_payer_fill(*, actor: User | None, claim: Claim) -> bool:
    """Record on a secondary (tertiary) draft or ready claim what the previous payer paid and
    adjusted, from that payer's latest posted remittance for the same visit (837P loops
    2320/2430 via billing.services.claim_prior_payer_record). False when there is none yet."""
    from billing.services import PriorAdjustment, PriorPayment, claim_prior_payer_record

    previous = _PREVIOUS_SEQUENCE.get(claim.sequence)
    if previous is None or claim.status not in (ClaimStatus.DRAFT, ClaimStatus.READY):
        return False
    remit = (
        ClaimRemittance.objects.filter(
            claim__encounter_id=claim.encounter_id,
            claim__sequence=previous,
            is_reversal=False,
            payment__file__status=FileStatus.POSTED,
        )
        .select_related("claim", "payment")
        .order_by("-payment__file__received_at", "-id")
        .first()
    )
    if remit is None or remit.claim is None:
        return False
    lines = list(remit.lines.order_by("position"))
    numbers = dict(zip((line.pk for line in lines), _line_numbers(lines, claim), strict=True))
    paid_date = remit.payment.payment_date
    payments = [PriorPayment(amount=remit.paid, paid_date=paid_date)]
    payments += [
        PriorPayment(
            amount=line.paid or ZERO,
            paid_date=paid_date,
            line_number=numbers[line.pk],
            paid_units=line.units,
        )
        for line in lines
        if numbers[line.pk] is not None
    ]
    adjustments = [
        PriorAdjustment(
            group_code=a.group_code,
            reason_code=a.reason_code,
            amount=a.amount,
            line_number=numbers.get(a.line_id) if a.line_id is not None else None,
            quantity=a.quantity,
        )
        for a in remit.adjustments.order_by("id")
    ]
    claim_prior_payer_record(
        actor=actor,
        claim=claim,
        source_claim=remit.claim,
        payments=payments,
        adjustments=adjustments,
    )
    return True


def ingest_summary(reports: Sequence[IngestReport], files: int) -> dict[str, Any]:
    """The issue's JSON shape over several files (amounts as decimal strings). Files already
    posted, refused or quarantined add nothing to the figures."""
    counted = [r for r in reports if r.status != ALREADY_POSTED and r.ok]
    return {
        "files": files,
        "payments": [p for r in counted for p in r.payments],
        "claims": sum(r.claims for r in counted),
        "matched": sum(r.matched for r in counted),
        "unmatched": sum(r.unmatched for r in counted),
        "total_paid": str(sum((r.total_paid for r in counted), ZERO)),
        "total_adjusted": str(sum((r.total_adjusted for r in counted), ZERO)),
        "denied": sum(r.denied for r in counted),
        "claim_details": [d.as_json() for r in counted for d in r.claim_details],
    }


# --- uploads run in the background ------------------------------------------------------------

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


def ingest_job_create(
    *, actor: User, file_name: str, data: bytes, dry_run: bool = False, enqueue: bool = True
) -> IngestJob:
    """Keep an uploaded 835 and (after commit) enqueue its ingest (`remittance.tasks`)."""
    if not data:
        raise ValueError("The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    with transaction.atomic():
        job = IngestJob.objects.create(
            file_name=file_name[:255],
            content=data,
            dry_run=dry_run,
            uploaded_by=actor,
            stage="waiting for a worker",
        )
        record(
            actor=actor,
            action=Action.CREATE,
            event="remittance.upload",
            category=Category.PAYMENTS,
            obj=job,
            fields=["file_name", "dry_run"],
        )
        if enqueue:
            from remittance.tasks import ingest_remittance

            job_id = job.pk
            transaction.on_commit(lambda: ingest_remittance.enqueue(job_id))
    return job


def ingest_job_execute(*, job_id: int) -> IngestJob:
    """Run a queued job once (a second run of a started job does nothing). The report is the
    command's JSON summary plus the file's status and message."""
    with transaction.atomic():
        job = IngestJob.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.QUEUED:
            return job
        job.status = JobStatus.RUNNING
        job.stage = "parsing, matching and posting"
        job.save(update_fields=["status", "stage", "updated_at"])
    try:
        report = remittance_ingest(
            actor=job.uploaded_by,
            data=bytes(job.content),
            file_name=job.file_name,
            dry_run=job.dry_run,
        )
    except Exception:
        job.status = JobStatus.FAILED
        job.stage = "failed: an internal error (see the server log); nothing was posted"
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "stage", "finished_at", "updated_at"])
        raise
    job.status = JobStatus.DONE
    job.stage = report.message[:60]
    job.report = {
        **ingest_summary([report], 1),
        "status": str(report.status),
        "message": report.message,
        "warnings": report.warnings,
    }
    job.file = report.file
    job.content = b""
    job.finished_at = timezone.now()
    job.save()
    return job


# --- the unmatched queue ------------------------------------------------------------------------


class UnmatchedError(ValueError):
    """A resolution the queue refuses; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _stored_claim_payment(row: ClaimRemittance) -> ClaimPayment835:
    """The parsed CLP again, from its stored rows (lines, CAS triplets)."""
    from billing.x12.edi835 import ProcedureCode, ServiceLine835

    adjustments = list(row.adjustments.order_by("id"))

    def triplets(line_id: int | None) -> tuple[Adjustment, ...]:
        return tuple(
            Adjustment(a.group_code, a.reason_code, a.amount, a.quantity)
            for a in adjustments
            if a.line_id == line_id
        )

    lines = tuple(
        ServiceLine835(
            procedure=ProcedureCode(
                line.qualifier, line.code, tuple(m for m in line.modifiers.split(":") if m)
            ),
            charge=line.charge,
            paid=line.paid,
            revenue_code="",
            units=line.units,
            original_procedure=None,
            original_units=None,
            service_date=line.service_date,
            service_end_date=None,
            adjustments=triplets(line.pk),
            control_number=line.control_number,
            references=(),
            amounts=(),
            remark_codes=tuple(c for c in line.remark_codes.split(",") if c),
            segment_index=0,
        )
        for line in row.lines.order_by("position")
    )
    return ClaimPayment835(
        patient_control_number=row.patient_control_number,
        status_code=row.status_code,
        charge=row.charge,
        paid=row.paid,
        patient_responsibility=row.patient_responsibility,
        filing_indicator=row.filing_indicator,
        payer_claim_number=row.payer_claim_number,
        facility_type="",
        frequency_code="",
        adjustments=triplets(None),
        patient=None,
        subscriber=None,
        corrected_patient=None,
        rendering_provider=None,
        service_start=row.service_start,
        service_end=row.service_end,
        received_date=None,
        references=(),
        amounts=(),
        lines=lines,
        segment_index=0,
    )


def _stored_payment(row: RemittancePayment) -> Payment835:
    return Payment835(
        control_number="",
        handling_code=row.handling_code,
        total_paid=abs(row.paid_total),
        credit_debit=row.credit_debit,
        method=row.method,
        payment_format="",
        payment_date=row.payment_date,
        trace_number=row.trace_number,
        payer_identifier=row.payer_reference,
        payer_name=row.payer_name,
        payer_id=row.payer_reference,
        payee_name=row.payee_name,
        payee_id_qualifier="",
        payee_id=row.payee_npi,
        production_date=None,
        claims=(),
        provider_adjustments=(),
        warnings=(),
        segment_index=0,
    )


@transaction.atomic
def unmatched_resolve(
    *, actor: User, unmatched: UnmatchedRemittance, claim: Claim
) -> UnmatchedRemittance:
    """Apply an unmatched claim payment to `claim`, found by hand: post it as a matched one
    would have been (ledger, status, denial), and close the queue entry. When its cash was
    deposited as unapplied at ingest, the posting takes it from unapplied instead of cash."""
    entry = (
        UnmatchedRemittance.objects.select_for_update()
        .select_related("claim_remittance__payment__file")
        .get(pk=unmatched.pk)
    )
    if entry.status != UnmatchedStatus.OPEN:
        raise UnmatchedError("status", "This claim payment was already resolved.")
    row = entry.claim_remittance
    claim = _with_people([_claims().get(pk=claim.pk)])[0]
    file_row = row.payment.file
    report = IngestReport(file_name=file_row.file_name, sha256=file_row.sha256, status="manual")
    poster = _Poster(
        actor=actor, sha=file_row.sha256, file_row=file_row, report=report, progress=None
    )
    poster.claim_ids = [row.pk]
    poster.clps = [_stored_claim_payment(row)]
    poster.payments = [_stored_payment(row.payment)]
    poster.matches = [Match(claim, MatchMethod.MANUAL)]
    if JournalTransaction.objects.filter(
        idempotency_key=_unapplied_key(file_row.sha256, row.pk)
    ).exists():
        poster.cash_account = LedgerAccount.UNAPPLIED
    poster._post_claims()
    row.claim = claim
    row.patient_id = claim.patient_id
    row.match_method = MatchMethod.MANUAL
    row.save(update_fields=["claim", "patient", "match_method", "updated_at"])
    entry.status = UnmatchedStatus.RESOLVED
    entry.resolved_by = actor
    entry.resolved_at = timezone.now()
    entry.resolved_claim = claim
    entry.save(
        update_fields=["status", "resolved_by", "resolved_at", "resolved_claim", "updated_at"]
    )
    record(
        actor=actor,
        action=Action.UPDATE,
        event="remittance.unmatched_resolve",
        category=Category.PAYMENTS,
        patient=claim.patient,
        obj=entry,
        fields=["status", "resolved_claim"],
        reason="; ".join(report.warnings)[:200],
    )
    return entry
