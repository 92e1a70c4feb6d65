"""Working the denial queue: assign, move along the allowed statuses, note, appeal, resubmit,
write off. Every service is keyword-only, takes the acting user, runs in one transaction and
writes its audit rows (Category.BILLING, with the patient) in that transaction.

Statuses: open -> in_progress -> appealed | resubmitted | written_off -> closed (an appeal the
payer turned down goes back to in_progress). Appealing, resubmitting or writing off an open
denial passes through in_progress on the way (both steps are on the timeline).

A write-off leaves insurance A/R: kind write_off, Dr other adjustment / Cr insurance A/R for the
amount denied (the 835 posting kept it in insurance A/R on purpose, see remittance.services).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from audit.models import Action, Category
from audit.services import record, record_many
from billing.models import ALLOWED, AdjustmentReason, Claim, ClaimStatus, RemarkCode
from billing.services import BillingError, claim_replace, claim_transition
from core.capabilities import Capability
from patientaccounts.ledger import Line, Posting, journal_post
from patientaccounts.models import LedgerAccount, TransactionKind
from patientaccounts.pdf import render_pdf
from remittance.models import AppealLetter, Denial, DenialNote, DenialStatus

if TYPE_CHECKING:
    from accounts.models import User

S = DenialStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.OPEN: frozenset({S.IN_PROGRESS}),
    S.IN_PROGRESS: frozenset({S.APPEALED, S.RESUBMITTED, S.WRITTEN_OFF}),
    S.APPEALED: frozenset({S.IN_PROGRESS, S.CLOSED}),
    S.RESUBMITTED: frozenset({S.CLOSED}),
    S.WRITTEN_OFF: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}
# Reached only through their own service (they do more than change the status).
_BY_SERVICE = {S.APPEALED: "denial_appeal", S.RESUBMITTED: "denial_resubmit"}
NOTE_LIMIT = 2000
REASON_LIMIT = 200
ARGUMENT_LIMIT = 6000
APPEAL_TEMPLATE = "remittance/appeal_letter_pdf.html"


class DenialError(ValueError):
    """A change the queue refuses; `field` names what to fix, `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _require(actor: User) -> None:
    if not actor.can(Capability.WORK_DENIALS):
        raise DenialError("actor", "Your roles do not allow working denials.")


def _lock(denial: Denial) -> Denial:
    return (
        Denial.objects.select_for_update(of=("self",))
        .select_related("claim__patient", "claim__payer", "owner")
        .get(pk=denial.pk)
    )


def _audit(
    actor: User, denial: Denial, event: str, fields: Sequence[str], reason: str = ""
) -> None:
    record(
        actor=actor,
        action=Action.UPDATE,
        event=event,
        category=Category.BILLING,
        patient=denial.claim.patient,
        obj=denial,
        fields=fields,
        reason=reason,
    )


def _note(denial: Denial, *, actor: User | None, kind: str, text: str) -> DenialNote:
    return DenialNote.objects.create(denial=denial, author=actor, kind=kind, text=text)


def _move(denial: Denial, *, actor: User, to_status: str) -> None:
    """One arrow, checked; the caller saves and audits."""
    if to_status not in TRANSITIONS.get(denial.status, frozenset()):
        raise DenialError(
            "status",
            f"This denial is {S(denial.status).label.lower()}: "
            f"it cannot become {S(to_status).label.lower()}.",
        )
    _note(
        denial,
        actor=actor,
        kind="status",
        text=f"{S(denial.status).label} -> {S(to_status).label}",
    )
    denial.status = to_status


def _start(denial: Denial, *, actor: User) -> None:
    """An open denial being acted on is in progress first."""
    if denial.status == S.OPEN:
        _move(denial, actor=actor, to_status=S.IN_PROGRESS)


# ---- assign ---------------------------------------------------------------------------------


@transaction.atomic
def denial_assign(*, actor: User, denials: Sequence[Denial], owner: User | None) -> int:
    """Give one or many denials to `owner` (None: nobody), who must be able to work denials.
    Closed denials are refused. Returns how many changed owner."""
    _require(actor)
    if owner is not None and not (owner.is_active and owner.can(Capability.WORK_DENIALS)):
        name = owner.get_full_name() or owner.username
        raise DenialError("owner", f"{name} cannot work denials: choose someone who can.")
    if not denials:
        raise DenialError("denials", "Choose at least one denial to assign.")
    locked = list(
        Denial.objects.select_for_update(of=("self",))
        .select_related("claim__patient")
        .filter(pk__in=[d.pk for d in denials])
        .order_by("pk")
    )
    closed = [d for d in locked if d.status == S.CLOSED]
    if closed:
        raise DenialError(
            "denials", f"{len(closed)} of the chosen denials are closed and cannot be assigned."
        )
    changed = [d for d in locked if d.owner_id != (owner.pk if owner else None)]
    text = f"Assigned to {owner.get_full_name() or owner.username}." if owner else "Unassigned."
    now = timezone.now()
    for denial in changed:
        denial.owner = owner
        denial.updated_at = now
    Denial.objects.bulk_update(changed, ["owner", "updated_at"])
    DenialNote.objects.bulk_create(
        DenialNote(denial=d, author=actor, kind="assign", text=text) for d in changed
    )
    record_many(
        {
            "actor": actor,
            "action": Action.UPDATE,
            "event": "denial.assign",
            "category": Category.BILLING,
            "patient": d.claim.patient,
            "obj": d,
            "fields": ["owner"],
            "reason": "changed" if d in changed else "unchanged",
        }
        for d in locked
    )
    return len(changed)


# ---- status, notes ----------------------------------------------------------------------------


def _write_off(denial: Denial, *, actor: User, reason: str) -> None:
    claim = denial.claim
    if denial.amount > 0:
        txn = journal_post(
            actor=actor,
            posting=Posting(
                patient=claim.patient,
                kind=TransactionKind.WRITE_OFF,
                lines=[
                    Line(LedgerAccount.OTHER_ADJUSTMENT, denial.amount),
                    Line(LedgerAccount.INSURANCE_AR, -denial.amount),
                ],
                memo=f"Denial {denial.group_code}-{denial.carc} written off: {reason}"[:200],
                service_date=claim.date_of_service,
                claim_reference=claim.patient_control_number,
                payer_reference=claim.payer.payer_id[:80],
                source=f"denial:{denial.public_id}",
                idempotency_key=f"denial-write-off:{denial.public_id}",
            ),
        )
        denial.write_off = txn
    if ClaimStatus.CLOSED in ALLOWED.get(claim.status, frozenset()):
        claim_transition(
            actor=actor, claim=claim, to_status=ClaimStatus.CLOSED, note="Denial written off."
        )


@transaction.atomic
def denial_set_status(*, actor: User, denial: Denial, to_status: str, reason: str = "") -> Denial:
    """Move a denial along TRANSITIONS. Written off needs a reason and posts the write-off;
    appealed and resubmitted have their own services (letter, corrected claim)."""
    _require(actor)
    if to_status not in S.values:
        raise DenialError("status", f"'{to_status}' is not a denial status.")
    if to_status in _BY_SERVICE:
        raise DenialError(
            "status",
            "Use the appeal letter to appeal."
            if to_status == S.APPEALED
            else "Use resubmit to send a corrected claim.",
        )
    reason = (reason or "").strip()
    if to_status == S.WRITTEN_OFF and not reason:
        raise DenialError("reason", "Say why the denial is written off.")
    if len(reason) > REASON_LIMIT:
        raise DenialError("reason", f"Keep the reason under {REASON_LIMIT} characters.")
    denial = _lock(denial)
    before = denial.status
    if to_status == S.WRITTEN_OFF:
        _start(denial, actor=actor)
    _move(denial, actor=actor, to_status=to_status)
    fields = ["status"]
    if to_status == S.WRITTEN_OFF:
        _write_off(denial, actor=actor, reason=reason)
        fields.append("write_off")
    if reason:
        _note(denial, actor=actor, kind="reason", text=reason)
    denial.save(update_fields=[*fields, "updated_at"])
    _audit(actor, denial, "denial.status", fields, reason=f"{before} -> {to_status}")
    return denial


@transaction.atomic
def denial_add_note(*, actor: User, denial: Denial, text: str) -> DenialNote:
    """Append a note (notes are never edited or removed)."""
    _require(actor)
    text = (text or "").strip()
    if not text:
        raise DenialError("text", "Write the note first.")
    if len(text) > NOTE_LIMIT:
        raise DenialError("text", f"Keep the note under {NOTE_LIMIT} characters.")
    denial = _lock(denial)
    if denial.status == S.CLOSED:
        raise DenialError("text", "The denial is closed: notes can no longer be added.")
    note = _note(denial, actor=actor, kind="note", text=text)
    denial.save(update_fields=["updated_at"])
    # The note's text is free text: its field name goes to the trail, never its words.
    _audit(actor, denial, "denial.note", ["text"])
    return note


# ---- appeal -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeWording:
    code: str
    description: str


def code_wording(denial: Denial) -> tuple[CodeWording | None, CodeWording | None]:
    """The CARC and RARC of a denial with our own short descriptions (reference tables)."""
    carc = AdjustmentReason.objects.filter(code=denial.carc).first() if denial.carc else None
    rarc = RemarkCode.objects.filter(code=denial.rarc).first() if denial.rarc else None
    return (
        CodeWording(denial.carc, carc.description if carc else "") if denial.carc else None,
        CodeWording(denial.rarc, rarc.description if rarc else "") if denial.rarc else None,
    )


def appeal_context(*, denial: Denial, argument: str, author: User) -> dict[str, Any]:
    claim = (
        Claim.objects.select_related("patient__home_location", "payer", "billing_provider")
        .prefetch_related("lines")
        .get(pk=denial.claim_id)
    )
    carc, rarc = code_wording(denial)
    remittance = denial.claim_remittance
    return {
        "denial": denial,
        "claim": claim,
        "patient": claim.patient,
        "payer": claim.payer,
        "provider": claim.billing_provider,
        "remittance": remittance,
        "payment": remittance.payment,
        "carc": carc,
        "rarc": rarc,
        "argument": argument,
        "author": author.get_full_name() or author.username,
        "today": timezone.localdate(),
    }


@transaction.atomic
def denial_appeal(*, actor: User, denial: Denial, argument: str) -> AppealLetter:
    """Render the appeal letter (PDF), keep it, and move the claim and the denial to appealed.
    Raises PdfUnavailableError (nothing changes) when WeasyPrint cannot run."""
    _require(actor)
    argument = (argument or "").strip()
    if not argument:
        raise DenialError("argument", "Write why the claim should be paid.")
    if len(argument) > ARGUMENT_LIMIT:
        raise DenialError("argument", f"Keep the argument under {ARGUMENT_LIMIT} characters.")
    denial = _lock(denial)
    if denial.status not in (S.OPEN, S.IN_PROGRESS):
        raise DenialError(
            "status", f"A {S(denial.status).label.lower()} denial cannot be appealed."
        )
    claim = denial.claim
    if claim.status != ClaimStatus.APPEALED:
        if ClaimStatus.APPEALED not in ALLOWED.get(claim.status, frozenset()):
            raise DenialError(
                "status",
                f"The claim is {claim.get_status_display().lower()}: it cannot be appealed.",
            )
        claim_transition(
            actor=actor, claim=claim, to_status=ClaimStatus.APPEALED, note="Appeal letter sent."
        )
    pdf = render_pdf(
        APPEAL_TEMPLATE, appeal_context(denial=denial, argument=argument, author=actor)
    )
    letter = AppealLetter.objects.create(
        denial=denial, created_by=actor, sha256=hashlib.sha256(pdf).hexdigest(), pdf=pdf
    )
    _start(denial, actor=actor)
    _move(denial, actor=actor, to_status=S.APPEALED)
    _note(denial, actor=actor, kind="appeal", text=f"Appeal letter {letter.sha256[:12]} printed.")
    denial.save(update_fields=["status", "updated_at"])
    _audit(actor, denial, "denial.appeal", ["status", "appeal_letter"])
    record(
        actor=actor,
        action=Action.PRINT,
        event="denial.appeal_letter",
        category=Category.BILLING,
        patient=claim.patient,
        obj=letter,
        fields=["argument"],
    )
    return letter


# ---- resubmit ---------------------------------------------------------------------------------


@transaction.atomic
def denial_resubmit(*, actor: User, denial: Denial, note: str = "") -> Claim:
    """A corrected claim (frequency 7, billing's claim_replace) for the denied one; the denial
    becomes resubmitted and points at the replacement."""
    _require(actor)
    note = (note or "").strip()
    if len(note) > REASON_LIMIT:
        raise DenialError("note", f"Keep the note under {REASON_LIMIT} characters.")
    denial = _lock(denial)
    if denial.status not in (S.OPEN, S.IN_PROGRESS):
        raise DenialError(
            "status", f"A {S(denial.status).label.lower()} denial cannot be resubmitted."
        )
    try:
        replacement = claim_replace(actor=actor, claim=denial.claim, note=note)
    except BillingError as exc:
        raise DenialError("status", exc.message) from exc
    _start(denial, actor=actor)
    _move(denial, actor=actor, to_status=S.RESUBMITTED)
    denial.replacement_claim = replacement
    _note(
        denial,
        actor=actor,
        kind="resubmit",
        text=f"Corrected claim {replacement.patient_control_number} created.",
    )
    denial.save(update_fields=["status", "replacement_claim", "updated_at"])
    _audit(actor, denial, "denial.resubmit", ["status", "replacement_claim"])
    return replacement
