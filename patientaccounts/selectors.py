"""Reads of the patient ledger and the patient-account documents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability
from patientaccounts.aging import Aging, age_balance
from patientaccounts.models import (
    BillingDispute,
    DisputeStatus,
    JournalEntry,
    JournalTransaction,
    LedgerAccount,
    PatientPayment,
    PaymentPlan,
    PlanStatus,
    RefundRequest,
    RefundStatus,
    Statement,
    StatementRun,
    TransactionKind,
)
from patients.selectors import has_break_glass, in_scope, patient_get_for_user

if TYPE_CHECKING:
    import uuid

    from accounts.models import User
    from core.models import Location
    from patients.models import Patient

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Balances:
    patient_due: Decimal  # PATIENT_AR: what the patient/guarantor owes (negative = a credit)
    insurance_pending: Decimal  # INSURANCE_AR: what payers owe
    total: Decimal  # patient_due + insurance_pending

    @property
    def credit(self) -> Decimal:
        """The patient's credit balance (refundable), or zero."""
        return -self.patient_due if self.patient_due < 0 else ZERO


def account_balances(*, patient: Patient) -> Balances:
    """The patient's balances, as sums of ledger entries (one query)."""
    sums = dict(
        JournalEntry.objects.filter(
            patient=patient,
            account__in=[LedgerAccount.PATIENT_AR, LedgerAccount.INSURANCE_AR],
        )
        .values("account")
        .annotate(total=Sum("amount"))
        .values_list("account", "total")
    )
    patient_due = (sums.get(LedgerAccount.PATIENT_AR) or ZERO).quantize(Decimal("0.01"))
    insurance = (sums.get(LedgerAccount.INSURANCE_AR) or ZERO).quantize(Decimal("0.01"))
    return Balances(
        patient_due=patient_due, insurance_pending=insurance, total=patient_due + insurance
    )


def patient_aging(*, patient: Patient, as_of: dt.date | None = None) -> Aging:
    """The patient-responsibility balance in aging buckets by service date."""
    as_of = as_of or timezone.localdate()
    rows = JournalEntry.objects.filter(
        patient=patient, account=LedgerAccount.PATIENT_AR
    ).values_list("service_date", "amount")
    return age_balance(((d, Decimal(a)) for d, a in rows), as_of=as_of)


@dataclass(frozen=True)
class LedgerLine:
    transaction: JournalTransaction
    patient_amount: Decimal  # the PATIENT_AR movement
    insurance_amount: Decimal  # the INSURANCE_AR movement
    running_balance: Decimal  # patient + insurance balance after this transaction


def ledger_lines(*, patient: Patient) -> list[LedgerLine]:
    """The patient's transactions, oldest first, with the running account balance (2 queries)."""
    txns = list(
        JournalTransaction.objects.filter(patient=patient)
        .select_related("posted_by", "reverses")
        .prefetch_related("entries")
        .order_by("posted_at", "id")
    )
    running = ZERO
    lines = []
    for txn in txns:
        patient_amount = sum(
            (e.amount for e in txn.entries.all() if e.account == LedgerAccount.PATIENT_AR), ZERO
        )
        insurance_amount = sum(
            (e.amount for e in txn.entries.all() if e.account == LedgerAccount.INSURANCE_AR), ZERO
        )
        running += patient_amount + insurance_amount
        lines.append(LedgerLine(txn, patient_amount, insurance_amount, running))
    return lines


# --- Access-checked reads (missing and forbidden: 404, both audited) -------------------------


def _denied(
    *, user: User, event: str, object_type: str, object_id: object, patient_id: object = None
) -> None:
    record(
        actor=user,
        action=Action.READ,
        event=event,
        category=Category.PAYMENTS,
        patient_public_id=str(patient_id) if patient_id else None,
        object_type=object_type,
        object_id=str(object_id),
        outcome=Outcome.DENIED,
    )


def account_patient_for_user(
    *,
    user: User,
    public_id: uuid.UUID | str,
    event: str = "patient_account.view",
    capability: Capability = Capability.VIEW_BILLING,
    audit: bool = True,
) -> Patient:
    """The patient whose account the user may see (VIEW_BILLING + patient access), audited."""
    if not user.can(capability):
        _denied(user=user, event=event, object_type="patients.Patient", object_id=public_id)
        raise Http404("No such patient.")
    return patient_get_for_user(
        user=user, public_id=public_id, event=event, category=Category.PAYMENTS, audit=audit
    )


def _may_see_patient(user: User, patient: Patient, capability: Capability) -> bool:
    return (
        user.can(capability)
        and user.can(Capability.VIEW_PATIENTS)
        and (in_scope(user=user, patient=patient) or has_break_glass(user=user, patient=patient))
    )


def _document_for_user(
    *,
    user: User,
    queryset: QuerySet[Any],
    public_id: uuid.UUID | str,
    event: str,
    capability: Capability,
    action: Action = Action.READ,
) -> Any:
    """A document of a patient's account (payment, statement, refund, dispute), or 404."""
    obj = (
        queryset.select_related("patient", "patient__home_location")
        .filter(public_id=public_id)
        .first()
    )
    label = queryset.model._meta.label
    if obj is None or not _may_see_patient(user, obj.patient, capability):
        _denied(
            user=user,
            event=event,
            object_type=label,
            object_id=public_id,
            patient_id=obj.patient.public_id if obj is not None else None,
        )
        raise Http404("Not found.")
    obj.patient.via_break_glass = not in_scope(user=user, patient=obj.patient)
    record(
        actor=user,
        action=action,
        event=event,
        category=Category.PAYMENTS,
        patient=obj.patient,
        obj=obj,
        reason="break-glass" if obj.patient.via_break_glass else "",
    )
    return obj


def payment_get_for_user(
    *, user: User, public_id: uuid.UUID | str, action: Action = Action.READ
) -> PatientPayment:
    return _document_for_user(
        user=user,
        queryset=PatientPayment.objects.select_related("received_by", "location", "plan"),
        public_id=public_id,
        event="payment.receipt" if action == Action.PRINT else "payment.view",
        capability=Capability.VIEW_BILLING,
        action=action,
    )


def statement_get_for_user(
    *, user: User, public_id: uuid.UUID | str, action: Action = Action.PRINT
) -> Statement:
    return _document_for_user(
        user=user,
        queryset=Statement.objects.all(),
        public_id=public_id,
        event="statement.print",
        capability=Capability.VIEW_BILLING,
        action=action,
    )


def refund_get_for_user(*, user: User, public_id: uuid.UUID | str) -> RefundRequest:
    return _document_for_user(
        user=user,
        queryset=RefundRequest.objects.select_related("requested_by"),
        public_id=public_id,
        event="refund.view",
        capability=Capability.APPROVE_REFUNDS,
    )


def dispute_get_for_user(
    *,
    user: User,
    public_id: uuid.UUID | str,
    action: Action = Action.READ,
    event: str = "dispute.view",
) -> BillingDispute:
    return _document_for_user(
        user=user,
        queryset=BillingDispute.objects.select_related("owner", "opened_by"),
        public_id=public_id,
        event=event,
        capability=Capability.MANAGE_DISPUTES,
        action=action,
    )


def dispute_timeline(*, dispute: BillingDispute) -> list[Any]:
    return list(dispute.events.select_related("author").order_by("created_at", "id"))


def plans_for(*, patient: Patient) -> list[PaymentPlan]:
    """The patient's plans with `paid` and `remaining` (one query)."""
    plans: list[PaymentPlan] = list(
        PaymentPlan.objects.filter(patient=patient).annotate(paid_sum=Sum("payments__amount"))
    )
    for plan in plans:
        plan.paid = plan.paid_sum or ZERO  # type: ignore[attr-defined]
        plan.remaining = max(ZERO, plan.total - plan.paid)  # type: ignore[attr-defined]
    return plans


def active_plan(*, patient: Patient) -> PaymentPlan | None:
    return PaymentPlan.objects.filter(patient=patient, status=PlanStatus.ACTIVE).first()


@dataclass(frozen=True)
class AccountSummary:
    balances: Balances
    aging: Aging
    lines: list[LedgerLine]
    payments: list[PatientPayment]
    plans: list[PaymentPlan]
    statements: list[Statement]
    refunds: list[RefundRequest]
    disputes: list[BillingDispute]


def account_summary(*, patient: Patient) -> AccountSummary:
    """Everything the account page shows (a fixed number of queries)."""
    return AccountSummary(
        balances=account_balances(patient=patient),
        aging=patient_aging(patient=patient),
        lines=ledger_lines(patient=patient),
        payments=list(
            PatientPayment.objects.filter(patient=patient).select_related("received_by", "plan")
        ),
        plans=plans_for(patient=patient),
        statements=list(Statement.objects.filter(patient=patient)),
        refunds=list(
            RefundRequest.objects.filter(patient=patient).select_related(
                "requested_by", "decided_by"
            )
        ),
        disputes=list(BillingDispute.objects.filter(patient=patient).select_related("owner")),
    )


def statement_lines(*, statement: Statement) -> list[LedgerLine]:
    """The ledger lines of the statement's period that moved the patient's balance."""
    lines = ledger_lines(patient=statement.patient)
    return [
        line
        for line in lines
        if line.patient_amount
        and (statement.period_start is None or line.transaction.posted_at > statement.period_start)
        and line.transaction.posted_at <= statement.period_end
    ]


# --- Work lists ------------------------------------------------------------------------------


def _list_audit(user: User, event: str, count: int) -> None:
    record(
        actor=user,
        action=Action.QUERY,
        event=event,
        category=Category.PAYMENTS,
        reason=f"{count} row(s)",
    )


def refunds_awaiting_approval(*, user: User) -> list[RefundRequest]:
    """Refunds awaiting approval for patients at the user's locations (audited as a query)."""
    rows = list(
        RefundRequest.objects.filter(
            status=RefundStatus.REQUESTED, patient__home_location_id__in=user.location_ids
        )
        .select_related("patient", "requested_by", "location")
        .order_by("created_at")
    )
    _list_audit(user, "refund.list", len(rows))
    return rows


def disputes_for_user(*, user: User, status: str = "") -> list[BillingDispute]:
    rows = BillingDispute.objects.filter(
        patient__home_location_id__in=user.location_ids
    ).select_related("patient", "owner")
    if status == "active":
        rows = rows.filter(status__in=[DisputeStatus.OPEN, DisputeStatus.INVESTIGATING])
    elif status in DisputeStatus.values:
        rows = rows.filter(status=status)
    result = list(rows[:500])
    _list_audit(user, "dispute.list", len(result))
    return result


def statement_runs_for_user(*, user: User) -> list[StatementRun]:
    return list(
        StatementRun.objects.filter(
            Q(location_id__in=user.location_ids) | Q(started_by=user)
        ).select_related("location", "started_by")[:20]
    )


def statement_run_get_for_user(*, user: User, public_id: uuid.UUID | str) -> StatementRun:
    run = StatementRun.objects.select_related("location").filter(public_id=public_id).first()
    if (
        run is None
        or not user.can(Capability.RUN_STATEMENTS)
        or (run.location_id is not None and run.location_id not in user.location_ids)
    ):
        _denied(
            user=user,
            event="statement_run.view",
            object_type="patientaccounts.StatementRun",
            object_id=public_id,
        )
        raise Http404("No such statement run.")
    return run


# --- Payment reports -------------------------------------------------------------------------


@dataclass(frozen=True)
class DepositRow:
    user: str
    method: str
    count: int
    total: Decimal


@dataclass(frozen=True)
class DepositReport:
    location: Location
    day: dt.date
    rows: list[DepositRow]
    payments_total: Decimal
    refunds_count: int
    refunds_total: Decimal
    net_total: Decimal
    ledger_total: Decimal  # CASH debits of those payments minus REFUNDS credits, from entries

    @property
    def reconciles(self) -> bool:
        return self.net_total == self.ledger_total


def _day_bounds(location: Location, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    import zoneinfo

    zone = zoneinfo.ZoneInfo(location.time_zone)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    return start, start + dt.timedelta(days=1)


def deposit_report(*, user: User, location: Location, day: dt.date) -> DepositReport:
    """The day's close-out at a location: payments by user and method, refunds, and the ledger
    total they must reconcile to. The location must be one of the user's (else 404)."""
    from patientaccounts.models import PaymentMethod

    if not user.can(Capability.VIEW_REVENUE_REPORTS) or location.pk not in user.location_ids:
        _denied(
            user=user,
            event="report.deposit",
            object_type="core.Location",
            object_id=location.public_id,
        )
        raise Http404("No such location.")
    start, end = _day_bounds(location, day)
    payments = PatientPayment.objects.filter(
        location=location, received_at__gte=start, received_at__lt=end
    )
    grouped = (
        payments.values("received_by__username", "method")
        .annotate(count=Count("id"), total=Sum("amount"))
        .order_by("received_by__username", "method")
    )
    labels = dict(PaymentMethod.choices)
    rows = [
        DepositRow(
            user=row["received_by__username"],
            method=str(labels.get(row["method"], row["method"])),
            count=row["count"],
            total=(row["total"] or ZERO).quantize(CENT),
        )
        for row in grouped
    ]
    refunds = RefundRequest.objects.filter(
        location=location,
        status=RefundStatus.POSTED,
        transaction__posted_at__gte=start,
        transaction__posted_at__lt=end,
    ).aggregate(count=Count("id"), total=Sum("amount"))
    cash = (
        JournalEntry.objects.filter(
            account=LedgerAccount.CASH,
            transaction__kind=TransactionKind.PATIENT_PAYMENT,
            transaction__patient_payment__in=payments,
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    refunded = (
        JournalEntry.objects.filter(
            account=LedgerAccount.REFUNDS,
            transaction__kind=TransactionKind.REFUND,
            transaction__refund_request__location=location,
            transaction__posted_at__gte=start,
            transaction__posted_at__lt=end,
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    payments_total = sum((row.total for row in rows), ZERO)
    refunds_total = (refunds["total"] or ZERO).quantize(CENT)
    record(
        actor=user,
        action=Action.QUERY,
        event="report.deposit",
        category=Category.PAYMENTS,
        object_type="core.Location",
        object_id=str(location.public_id),
        fields=["day", "location"],
    )
    return DepositReport(
        location=location,
        day=day,
        rows=rows,
        payments_total=payments_total,
        refunds_count=refunds["count"] or 0,
        refunds_total=refunds_total,
        net_total=payments_total - refunds_total,
        ledger_total=(cash + refunded).quantize(CENT),
    )
