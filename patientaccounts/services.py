"""Writes of the patient-account screens: payments, refunds, plans, statements, disputes.

Every service is atomic, checks the actor's capability, posts money through
`patientaccounts.ledger` and writes its audit row (Category.PAYMENTS) in the same transaction.
Input problems raise ValidationError keyed by the form field to fix; nothing is half-saved.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from audit.models import Action, Category
from audit.services import record
from core.capabilities import Capability
from patientaccounts.aging import ZERO
from patientaccounts.ledger import LedgerError, Line, Posting, journal_post, money
from patientaccounts.models import (
    BillingDispute,
    DisputeEvent,
    DisputeEventKind,
    DisputeReason,
    DisputeStatus,
    DocumentCounter,
    JournalEntry,
    LedgerAccount,
    PatientPayment,
    PaymentMethod,
    PaymentPlan,
    PlanStatus,
    RefundRequest,
    RefundStatus,
    RunStatus,
    Statement,
    StatementRun,
    TransactionKind,
)
from patientaccounts.selectors import account_balances, patient_aging

if TYPE_CHECKING:
    from accounts.models import User
    from core.models import Location
    from patients.models import Patient

_CARD_NUMBER = re.compile(r"\d{13,19}")
_UNSET: Any = object()


def _require(actor: User, capability: Capability) -> None:
    if not actor.can(capability):
        raise PermissionDenied(f"Your roles do not allow: {capability.label}.")


def _amount(value: object, field: str = "amount") -> Decimal:
    try:
        amount = money(value, field=field)
    except LedgerError as exc:
        raise ValidationError({field: f"Amount {exc.message}"}) from exc
    if amount <= 0:
        raise ValidationError({field: "Amount must be more than zero."})
    return amount


def _next_number(name: str, prefix: str) -> str:
    """The next number of a document series (call inside a transaction)."""
    DocumentCounter.objects.get_or_create(name=name)
    counter = DocumentCounter.objects.select_for_update().get(name=name)
    counter.value += 1
    counter.save(update_fields=["value"])
    return f"{prefix}{counter.value:07d}"


def add_months(day: dt.date, months: int = 1) -> dt.date:
    """The same day `months` later, clamped to the month's end (Jan 31 + 1 = Feb 28/29)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def check_reference(*, method: str, reference: str) -> str:
    """The payment reference, or ValidationError: never a full card number."""
    reference = (reference or "").strip()
    if _CARD_NUMBER.search(re.sub(r"[\s.-]", "", reference)):
        raise ValidationError(
            {
                "reference": "Never enter a full card number: record only the last 4 digits "
                "and the authorisation code."
            }
        )
    if method == PaymentMethod.CHECK and not reference:
        raise ValidationError({"reference": "Enter the check number."})
    if method == PaymentMethod.CARD and not reference:
        raise ValidationError(
            {"reference": "Enter the card's last 4 digits and the authorisation code."}
        )
    if len(reference) > 60:
        raise ValidationError({"reference": "Reference must be at most 60 characters."})
    return reference


# --- Payments --------------------------------------------------------------------------------


def _same_payment(
    existing: PatientPayment, *, patient: Patient, amount: Decimal, method: str
) -> bool:
    return (
        existing.patient_id == patient.pk
        and existing.amount == amount
        and existing.method == method
    )


def _plan_after_payment(plan: PaymentPlan) -> None:
    paid = plan.payments.aggregate(total=Sum("amount"))["total"] or ZERO
    plan.next_due = add_months(plan.next_due)
    if paid >= plan.total:
        plan.status = PlanStatus.COMPLETED
    plan.save(update_fields=["next_due", "status", "updated_at"])


@transaction.atomic
def payment_take(
    *,
    actor: User,
    patient: Patient,
    amount: Decimal | str,
    method: str,
    idempotency_key: str,
    reference: str = "",
    paid_by: str = "",
    received_at: dt.datetime | None = None,
    location: Location | None = None,
    plan: PaymentPlan | None = None,
) -> PatientPayment:
    """Record a patient payment (DR cash / CR patient A/R) with its receipt number.

    The same idempotency key (the form's hidden field) answers with the payment already taken.
    """
    _require(actor, Capability.POST_PAYMENTS)
    value = _amount(amount)
    if method not in PaymentMethod.values:
        raise ValidationError({"method": "Choose how the patient paid."})
    reference = check_reference(method=method, reference=reference)
    key = (idempotency_key or "").strip()
    if not key or len(key) > 100:
        raise ValidationError({"idempotency_key": "The form expired: open it again."})
    existing = PatientPayment.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if _same_payment(existing, patient=patient, amount=value, method=method):
            return existing
        raise ValidationError(
            {"idempotency_key": "This form was already used for another payment: open it again."}
        )
    if plan is not None and (plan.patient_id != patient.pk or plan.status != PlanStatus.ACTIVE):
        raise ValidationError({"plan": "Choose an active payment plan of this patient."})
    if len(paid_by) > 120:
        raise ValidationError({"paid_by": "Paid by must be at most 120 characters."})
    received_at = received_at or timezone.now()
    txn = journal_post(
        actor=actor,
        posting=Posting(
            patient=patient,
            kind=TransactionKind.PATIENT_PAYMENT,
            lines=[Line(LedgerAccount.CASH, value), Line(LedgerAccount.PATIENT_AR, -value)],
            memo=f"{PaymentMethod(method).label.split(' (')[0]} payment",
            source="front-desk",
            idempotency_key=f"payment:{key}",
            posted_at=received_at,
        ),
    )
    try:
        with transaction.atomic():
            payment = PatientPayment.objects.create(
                patient=patient,
                paid_by=paid_by.strip(),
                amount=value,
                method=method,
                reference=reference,
                received_at=received_at,
                received_by=actor,
                location=location or patient.home_location,
                idempotency_key=key,
                receipt_number=_next_number("receipt", "R"),
                plan=plan,
                transaction=txn,
            )
    except IntegrityError:
        # A concurrent submission of the same form won the race.
        return PatientPayment.objects.get(idempotency_key=key)
    if plan is not None:
        _plan_after_payment(plan)
    record(
        actor=actor,
        action=Action.CREATE,
        event="payment.take",
        category=Category.PAYMENTS,
        patient=patient,
        obj=payment,
        fields=["amount", "method", "reference", "paid_by", "plan"],
    )
    return payment


# --- Refunds ---------------------------------------------------------------------------------


def _pending_refunds(patient: Patient, exclude: RefundRequest | None = None) -> Decimal:
    rows = RefundRequest.objects.filter(patient=patient, status=RefundStatus.REQUESTED)
    if exclude is not None:
        rows = rows.exclude(pk=exclude.pk)
    return rows.aggregate(total=Sum("amount"))["total"] or ZERO


@transaction.atomic
def refund_request(
    *, actor: User, patient: Patient, amount: Decimal | str, method: str, reason: str
) -> RefundRequest:
    """Ask for a refund of (part of) the patient's credit balance; a second person approves."""
    _require(actor, Capability.POST_PAYMENTS)
    value = _amount(amount)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Enter the reason for the refund."})
    if len(reason) > 300:
        raise ValidationError({"reason": "Reason must be at most 300 characters."})
    if method not in PaymentMethod.values:
        raise ValidationError({"method": "Choose how the refund is paid."})
    available = account_balances(patient=patient).credit - _pending_refunds(patient)
    if value > available:
        raise ValidationError(
            {"amount": f"Amount must not exceed the credit balance available ({available:.2f})."}
        )
    refund = RefundRequest.objects.create(
        patient=patient,
        location=patient.home_location,
        amount=value,
        method=method,
        reason=reason,
        requested_by=actor,
    )
    record(
        actor=actor,
        action=Action.CREATE,
        event="refund.request",
        category=Category.PAYMENTS,
        patient=patient,
        obj=refund,
        fields=["amount", "method", "reason"],
    )
    return refund


def _lock_refund(refund: RefundRequest, actor: User) -> RefundRequest:
    _require(actor, Capability.APPROVE_REFUNDS)
    locked = RefundRequest.objects.select_for_update().select_related("patient").get(pk=refund.pk)
    if locked.status != RefundStatus.REQUESTED:
        raise ValidationError(
            {"status": f"This refund is already {locked.get_status_display().lower()}."}
        )
    if locked.requested_by_id == actor.pk:
        raise ValidationError(
            {
                "status": "You requested this refund, so someone else must approve or reject "
                "it (two-person rule)."
            }
        )
    return locked


@transaction.atomic
def refund_approve(*, actor: User, refund: RefundRequest, note: str = "") -> RefundRequest:
    """A second person approves: the refund is posted (DR patient A/R / CR refunds)."""
    locked = _lock_refund(refund, actor)
    credit = account_balances(patient=locked.patient).credit
    if locked.amount > credit:
        raise ValidationError(
            {"amount": f"The credit balance is now {credit:.2f}: the refund cannot be posted."}
        )
    txn = journal_post(
        actor=actor,
        posting=Posting(
            patient=locked.patient,
            kind=TransactionKind.REFUND,
            lines=[
                Line(LedgerAccount.PATIENT_AR, locked.amount),
                Line(LedgerAccount.REFUNDS, -locked.amount),
            ],
            memo="Refund of credit balance",
            source="refund",
            idempotency_key=f"refund:{locked.public_id}",
        ),
    )
    locked.status = RefundStatus.POSTED
    locked.decided_by = actor
    locked.decided_at = timezone.now()
    locked.decision_note = (note or "").strip()[:300]
    locked.transaction = txn
    locked.save()
    record(
        actor=actor,
        action=Action.UPDATE,
        event="refund.approve",
        category=Category.PAYMENTS,
        patient=locked.patient,
        obj=locked,
        fields=["status", "decided_by", "decision_note"],
    )
    return locked


@transaction.atomic
def refund_reject(*, actor: User, refund: RefundRequest, note: str) -> RefundRequest:
    locked = _lock_refund(refund, actor)
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "Enter why the refund is rejected."})
    locked.status = RefundStatus.REJECTED
    locked.decided_by = actor
    locked.decided_at = timezone.now()
    locked.decision_note = note[:300]
    locked.save()
    record(
        actor=actor,
        action=Action.UPDATE,
        event="refund.reject",
        category=Category.PAYMENTS,
        patient=locked.patient,
        obj=locked,
        fields=["status", "decided_by", "decision_note"],
    )
    return locked


# --- Payment plans ---------------------------------------------------------------------------


@transaction.atomic
def payment_plan_create(
    *,
    actor: User,
    patient: Patient,
    total: Decimal | str,
    instalment_amount: Decimal | str,
    start_date: dt.date,
) -> PaymentPlan:
    _require(actor, Capability.POST_PAYMENTS)
    total_value = _amount(total, "total")
    instalment = _amount(instalment_amount, "instalment_amount")
    if instalment > total_value:
        raise ValidationError(
            {"instalment_amount": "Instalment amount must not exceed the plan's total."}
        )
    due = account_balances(patient=patient).patient_due
    if total_value > due:
        raise ValidationError(
            {"total": f"Total must not exceed the patient's balance due ({due:.2f})."}
        )
    if start_date < timezone.localdate() - dt.timedelta(days=31):
        raise ValidationError({"start_date": "Start date must not be more than a month ago."})
    if PaymentPlan.objects.filter(patient=patient, status=PlanStatus.ACTIVE).exists():
        raise ValidationError({"total": "This patient already has an active payment plan."})
    plan = PaymentPlan.objects.create(
        patient=patient,
        total=total_value,
        instalment_amount=instalment,
        start_date=start_date,
        next_due=start_date,
        created_by=actor,
    )
    record(
        actor=actor,
        action=Action.CREATE,
        event="payment_plan.create",
        category=Category.PAYMENTS,
        patient=patient,
        obj=plan,
        fields=["total", "instalment_amount", "frequency", "start_date"],
    )
    return plan


@transaction.atomic
def payment_plan_cancel(*, actor: User, plan: PaymentPlan) -> PaymentPlan:
    _require(actor, Capability.POST_PAYMENTS)
    locked = PaymentPlan.objects.select_for_update().get(pk=plan.pk)
    if locked.status != PlanStatus.ACTIVE:
        raise ValidationError({"status": "Only an active plan can be cancelled."})
    locked.status = PlanStatus.CANCELLED
    locked.save(update_fields=["status", "updated_at"])
    record(
        actor=actor,
        action=Action.UPDATE,
        event="payment_plan.cancel",
        category=Category.PAYMENTS,
        patient_public_id=locked.patient.public_id,
        obj=locked,
        fields=["status"],
    )
    return locked


# --- Statements ------------------------------------------------------------------------------


def _statement_for(
    *,
    actor: User | None,
    patient: Patient,
    statement_date: dt.date,
    message: str,
    run: StatementRun | None,
) -> tuple[Statement, bool]:
    existing = Statement.objects.filter(patient=patient, statement_date=statement_date).first()
    if existing is not None:
        return existing, False
    previous = Statement.objects.filter(patient=patient).order_by("-period_end").first()
    balance = account_balances(patient=patient).patient_due
    aging = patient_aging(patient=patient, as_of=statement_date)
    statement = Statement.objects.create(
        patient=patient,
        number=_next_number("statement", "S"),
        statement_date=statement_date,
        period_start=previous.period_end if previous else None,
        period_end=timezone.now(),
        balance=balance,
        aging_current=aging.current,
        aging_31_60=aging.days_31_60,
        aging_61_90=aging.days_61_90,
        aging_91_120=aging.days_91_120,
        aging_over_120=aging.over_120,
        message=message[:300],
        run=run,
        generated_by=actor if actor is not None and actor.is_authenticated else None,
    )
    return statement, True


@transaction.atomic
def statement_generate(
    *,
    actor: User | None,
    patient: Patient,
    statement_date: dt.date | None = None,
    message: str = "",
    run: StatementRun | None = None,
) -> Statement:
    """One statement for the patient (as guarantor); the same day answers with the existing one."""
    if actor is not None:
        _require(actor, Capability.RUN_STATEMENTS)
    statement, created = _statement_for(
        actor=actor,
        patient=patient,
        statement_date=statement_date or timezone.localdate(),
        message=(message or "").strip(),
        run=run,
    )
    if created:
        record(
            actor=actor,
            action=Action.CREATE,
            event="statement.generate",
            category=Category.PAYMENTS,
            patient=patient,
            obj=statement,
            fields=["balance", "aging", "message"],
            username="" if actor is not None else "system",
        )
    return statement


def patients_with_balance_due(*, location: Location | None) -> list[int]:
    """Ids of patients (of a location, or all) whose patient-responsibility balance is > 0."""
    rows = JournalEntry.objects.filter(account=LedgerAccount.PATIENT_AR, patient__isnull=False)
    if location is not None:
        rows = rows.filter(patient__home_location=location)
    return list(
        rows.values("patient")
        .annotate(due=Sum("amount"))
        .filter(due__gt=0)
        .order_by("patient")
        .values_list("patient", flat=True)
    )


@transaction.atomic
def statement_run_start(
    *,
    actor: User | None,
    location: Location | None,
    statement_date: dt.date,
    message: str = "",
    enqueue: bool = True,
) -> StatementRun:
    """Create a run and (after commit) enqueue its background task.

    `actor=None` is the system (the `run_statements` command run by an administrator).
    """
    if actor is not None:
        _require(actor, Capability.RUN_STATEMENTS)
        if location is not None and location.pk not in actor.location_ids:
            raise ValidationError({"location": "Choose one of your locations."})
    if len(message) > 300:
        raise ValidationError({"message": "Message must be at most 300 characters."})
    run = StatementRun.objects.create(
        location=location,
        statement_date=statement_date,
        message=message.strip(),
        started_by=actor,
        total=len(patients_with_balance_due(location=location)),
    )
    record(
        actor=actor,
        action=Action.EXECUTE,
        event="statement_run.start",
        category=Category.PAYMENTS,
        obj=run,
        fields=["statement_date", "location", "message"],
        username="" if actor is not None else "system",
    )
    if enqueue:
        from patientaccounts.tasks import run_statements

        transaction.on_commit(lambda: run_statements.enqueue(run.pk))
    return run


def statement_run_execute(
    *, run_id: int, progress: Callable[[int, int], object] | None = None
) -> StatementRun:
    """Generate the run's statements one patient at a time (each atomic), counting progress."""
    from patients.models import Patient

    run = StatementRun.objects.select_related("started_by", "location").get(pk=run_id)
    if run.is_finished:
        return run
    ids = patients_with_balance_due(location=run.location)
    StatementRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, total=len(ids), done=0)
    try:
        for number, patient in enumerate(Patient.objects.filter(pk__in=ids).order_by("pk"), 1):
            statement_generate(
                actor=None,
                patient=patient,
                statement_date=run.statement_date,
                message=run.message,
                run=run,
            )
            StatementRun.objects.filter(pk=run.pk).update(done=F("done") + 1)
            if progress is not None:
                progress(number, len(ids))
    except Exception as exc:
        StatementRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, error=type(exc).__name__[:300], finished_at=timezone.now()
        )
        raise
    StatementRun.objects.filter(pk=run.pk).update(status=RunStatus.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    return run


# --- Disputes --------------------------------------------------------------------------------

DISPUTE_TRANSITIONS: dict[str, frozenset[str]] = {
    DisputeStatus.OPEN: frozenset(
        {DisputeStatus.INVESTIGATING, DisputeStatus.RESOLVED, DisputeStatus.REJECTED}
    ),
    DisputeStatus.INVESTIGATING: frozenset(
        {DisputeStatus.OPEN, DisputeStatus.RESOLVED, DisputeStatus.REJECTED}
    ),
    DisputeStatus.RESOLVED: frozenset({DisputeStatus.OPEN}),
    DisputeStatus.REJECTED: frozenset({DisputeStatus.OPEN}),
}


def _dispute_audit(actor: User, dispute: BillingDispute, event: str, fields: list[str]) -> None:
    record(
        actor=actor,
        action=Action.CREATE if event == "dispute.open" else Action.UPDATE,
        event=event,
        category=Category.PAYMENTS,
        patient_public_id=dispute.patient.public_id,
        obj=dispute,
        fields=fields,
    )


@transaction.atomic
def dispute_open(
    *,
    actor: User,
    patient: Patient,
    reason: str,
    disputed_amount: Decimal | str,
    details: str = "",
    owner: User | None = None,
) -> BillingDispute:
    _require(actor, Capability.MANAGE_DISPUTES)
    if reason not in DisputeReason.values:
        raise ValidationError({"reason": "Choose the reason for the dispute."})
    value = _amount(disputed_amount, "disputed_amount")
    if owner is not None and not owner.can(Capability.MANAGE_DISPUTES):
        raise ValidationError({"owner": "The owner must be someone who works disputes."})
    dispute = BillingDispute.objects.create(
        patient=patient,
        reason=reason,
        details=(details or "").strip(),
        disputed_amount=value,
        owner=owner or actor,
        opened_by=actor,
    )
    DisputeEvent.objects.create(dispute=dispute, kind=DisputeEventKind.OPENED, author=actor)
    _dispute_audit(actor, dispute, "dispute.open", ["reason", "details", "disputed_amount"])
    return dispute


@transaction.atomic
def dispute_update(
    *,
    actor: User,
    dispute: BillingDispute,
    status: str | None = None,
    owner: User | None = _UNSET,
    resolution: str | None = None,
) -> BillingDispute:
    """Change status (along DISPUTE_TRANSITIONS), owner or resolution, each on the timeline."""
    _require(actor, Capability.MANAGE_DISPUTES)
    locked = BillingDispute.objects.select_for_update().select_related("patient").get(pk=dispute.pk)
    changed: list[str] = []
    if resolution is not None and resolution.strip() != locked.resolution:
        locked.resolution = resolution.strip()
        changed.append("resolution")
    if status is not None and status != locked.status:
        if status not in DISPUTE_TRANSITIONS.get(locked.status, frozenset()):
            raise ValidationError(
                {
                    "status": f"A {locked.get_status_display().lower()} dispute "
                    f"cannot become {status}."
                }
            )
        if status in {DisputeStatus.RESOLVED, DisputeStatus.REJECTED} and not locked.resolution:
            raise ValidationError(
                {"resolution": "Enter the resolution before closing the dispute."}
            )
        old = locked.get_status_display()
        locked.status = status
        locked.closed_at = timezone.now() if locked.is_closed else None
        changed.append("status")
        DisputeEvent.objects.create(
            dispute=locked,
            kind=DisputeEventKind.STATUS,
            author=actor,
            text=f"{old} → {locked.get_status_display()}",
        )
    if owner is not _UNSET and owner is not None and owner.pk != locked.owner_id:
        if not owner.can(Capability.MANAGE_DISPUTES):
            raise ValidationError({"owner": "The owner must be someone who works disputes."})
        locked.owner = owner
        changed.append("owner")
        DisputeEvent.objects.create(
            dispute=locked,
            kind=DisputeEventKind.ASSIGNED,
            author=actor,
            text=f"Owner: {owner.get_full_name() or owner.get_username()}",
        )
    if changed:
        locked.save()
        _dispute_audit(actor, locked, "dispute.update", changed)
    return locked


@transaction.atomic
def dispute_add_note(*, actor: User, dispute: BillingDispute, text: str) -> DisputeEvent:
    _require(actor, Capability.MANAGE_DISPUTES)
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": "Enter the note."})
    if len(text) > 2000:
        raise ValidationError({"text": "Note must be at most 2000 characters."})
    note = DisputeEvent.objects.create(
        dispute=dispute, kind=DisputeEventKind.NOTE, author=actor, text=text
    )
    _dispute_audit(actor, dispute, "dispute.note", ["note"])
    return note


@transaction.atomic
def dispute_letter_printed(*, actor: User, dispute: BillingDispute, letter: str) -> DisputeEvent:
    """Note on the timeline (and in the trail, as a print) that a letter was produced."""
    _require(actor, Capability.MANAGE_DISPUTES)
    event = DisputeEvent.objects.create(
        dispute=dispute, kind=DisputeEventKind.LETTER, author=actor, text=f"{letter} letter"
    )
    record(
        actor=actor,
        action=Action.PRINT,
        event="dispute.letter",
        category=Category.PAYMENTS,
        patient_public_id=dispute.patient.public_id,
        obj=dispute,
        reason=letter,
    )
    return event
