"""Patient-account screens: thin views over patientaccounts.selectors (reads, access, audit) and
patientaccounts.services (writes). Records the user may not see answer 404 (audited); a user
whose roles lack a write capability gets 403 (audited). PHI never travels in a query string."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import capability_required
from audit.models import Action
from core.capabilities import Capability
from patientaccounts import selectors, services
from patientaccounts.forms import (
    DepositReportForm,
    DisputeForm,
    DisputeNoteForm,
    DisputeUpdateForm,
    PaymentForm,
    PaymentPlanForm,
    RefundDecisionForm,
    RefundRequestForm,
    StatementRunForm,
)
from patientaccounts.models import PaymentPlan, PlanStatus
from patientaccounts.pdf import PdfUnavailableError, render_pdf

if TYPE_CHECKING:
    from accounts.models import User
    from patients.models import Patient

View = Callable[..., HttpResponse]

DISPUTE_FILTERS = [
    ("active", "Open and investigating"),
    ("open", "Open"),
    ("investigating", "Investigating"),
    ("resolved", "Resolved"),
    ("rejected", "Rejected"),
    ("all", "All"),
]
LETTERS = {"acknowledgement": "Acknowledgement", "resolution": "Resolution"}


def _user(request: HttpRequest) -> User:
    return cast("User", request.user)


def _account_url(patient: Patient, anchor: str = "") -> str:
    url = reverse("patientaccounts:account", args=[patient.public_id])
    return f"{url}#{anchor}" if anchor else url


def _pdf_response(
    request: HttpRequest, template: str, context: dict[str, Any], name: str
) -> HttpResponse:
    try:
        pdf = render_pdf(template, context)
    except PdfUnavailableError as exc:
        return render(
            request, "patientaccounts/pdf_unavailable.html", {"error": str(exc)}, status=503
        )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{name}.pdf"'
    response["Cache-Control"] = "no-store"
    return response


# --- Account page ----------------------------------------------------------------------------


@login_required
@require_GET
def account(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = selectors.account_patient_for_user(user=_user(request), public_id=public_id)
    summary = selectors.account_summary(patient=patient)
    return render(request, "patientaccounts/account.html", {"patient": patient, "s": summary})


# --- Payments --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.POST_PAYMENTS, patient_kwarg="public_id")
def payment_take(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = selectors.account_patient_for_user(
        user=_user(request), public_id=public_id, event="payment.form"
    )
    plans = PaymentPlan.objects.filter(patient=patient, status=PlanStatus.ACTIVE)
    form = PaymentForm(request.POST or None, plans=plans)
    if request.method == "POST" and form.is_valid():
        try:
            payment = services.payment_take(
                actor=_user(request), patient=patient, **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request, f"Payment of {payment.amount} recorded: receipt {payment.receipt_number}."
            )
            return redirect(_account_url(patient, "payments"))
    balances = selectors.account_balances(patient=patient)
    return render(
        request,
        "patientaccounts/payment_form.html",
        {"patient": patient, "form": form, "balances": balances},
    )


@login_required
@require_GET
def receipt_pdf(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    payment = selectors.payment_get_for_user(
        user=_user(request), public_id=public_id, action=Action.PRINT
    )
    context = {"payment": payment, "patient": payment.patient, "printed_at": timezone.now()}
    return _pdf_response(
        request, "patientaccounts/receipt_pdf.html", context, f"receipt-{payment.receipt_number}"
    )


# --- Refunds ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.POST_PAYMENTS, patient_kwarg="public_id")
def refund_request(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = selectors.account_patient_for_user(
        user=_user(request), public_id=public_id, event="refund.form"
    )
    form = RefundRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.refund_request(actor=_user(request), patient=patient, **form.cleaned_data)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request, "Refund requested: it is posted once someone else approves it."
            )
            return redirect(_account_url(patient, "refunds"))
    balances = selectors.account_balances(patient=patient)
    return render(
        request,
        "patientaccounts/refund_form.html",
        {"patient": patient, "form": form, "balances": balances},
    )


@login_required
@require_GET
@capability_required(Capability.APPROVE_REFUNDS)
def refund_list(request: HttpRequest) -> HttpResponse:
    refunds = selectors.refunds_awaiting_approval(user=_user(request))
    return render(
        request,
        "patientaccounts/refund_list.html",
        {"refunds": refunds, "form": RefundDecisionForm()},
    )


@login_required
@require_POST
@capability_required(Capability.APPROVE_REFUNDS)
def refund_decide(request: HttpRequest, public_id: uuid.UUID, decision: str) -> HttpResponse:
    refund = selectors.refund_get_for_user(user=_user(request), public_id=public_id)
    form = RefundDecisionForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    decide = services.refund_approve if decision == "approve" else services.refund_reject
    try:
        decide(actor=_user(request), refund=refund, note=note)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        done = "approved and posted" if decision == "approve" else "rejected"
        messages.success(request, f"Refund of {refund.amount} {done}.")
    return redirect("patientaccounts:refund_list")


# --- Payment plans ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.POST_PAYMENTS, patient_kwarg="public_id")
def plan_create(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = selectors.account_patient_for_user(
        user=_user(request), public_id=public_id, event="payment_plan.form"
    )
    form = PaymentPlanForm(request.POST or None, initial={"start_date": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            services.payment_plan_create(actor=_user(request), patient=patient, **form.cleaned_data)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Payment plan set up.")
            return redirect(_account_url(patient, "plans"))
    balances = selectors.account_balances(patient=patient)
    return render(
        request,
        "patientaccounts/plan_form.html",
        {"patient": patient, "form": form, "balances": balances},
    )


# --- Statements ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.RUN_STATEMENTS)
def statement_runs(request: HttpRequest) -> HttpResponse:
    form = StatementRunForm(request.POST or None, user=_user(request))
    if request.method == "POST" and form.is_valid():
        try:
            run = services.statement_run_start(actor=_user(request), **form.cleaned_data)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return redirect("patientaccounts:statement_run", public_id=run.public_id)
    runs = selectors.statement_runs_for_user(user=_user(request))
    return render(request, "patientaccounts/statement_runs.html", {"form": form, "runs": runs})


@login_required
@require_GET
def statement_run(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The run's progress; htmx polls the same URL for the progress partial."""
    run = selectors.statement_run_get_for_user(user=_user(request), public_id=public_id)
    is_htmx = bool(getattr(request, "htmx", False))
    template = (
        "patientaccounts/_run_progress.html" if is_htmx else "patientaccounts/statement_run.html"
    )
    return render(request, template, {"run": run})


@login_required
@require_POST
@capability_required(Capability.RUN_STATEMENTS, patient_kwarg="public_id")
def statement_create(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = selectors.account_patient_for_user(
        user=_user(request), public_id=public_id, event="statement.form"
    )
    statement = services.statement_generate(actor=_user(request), patient=patient)
    messages.success(request, f"Statement {statement.number} is ready.")
    return redirect(_account_url(patient, "statements"))


@login_required
@require_GET
def statement_pdf(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    statement = selectors.statement_get_for_user(user=_user(request), public_id=public_id)
    context = {
        "statement": statement,
        "patient": statement.patient,
        "lines": selectors.statement_lines(statement=statement),
    }
    return _pdf_response(
        request, "patientaccounts/statement_pdf.html", context, f"statement-{statement.number}"
    )


# --- Disputes --------------------------------------------------------------------------------


@login_required
@require_GET
@capability_required(Capability.MANAGE_DISPUTES)
def dispute_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "active")  # a status name, never PHI
    disputes = selectors.disputes_for_user(user=_user(request), status=status)
    context = {"disputes": disputes, "status": status, "filters": DISPUTE_FILTERS}
    return render(request, "patientaccounts/dispute_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.MANAGE_DISPUTES, patient_kwarg="public_id")
def dispute_open(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = selectors.account_patient_for_user(
        user=_user(request), public_id=public_id, event="dispute.form"
    )
    form = DisputeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dispute = services.dispute_open(
                actor=_user(request), patient=patient, **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Dispute opened.")
            return redirect("patientaccounts:dispute_detail", public_id=dispute.public_id)
    return render(request, "patientaccounts/dispute_form.html", {"patient": patient, "form": form})


def _dispute_page(request: HttpRequest, dispute: Any, form: Any, note_form: Any) -> HttpResponse:
    timeline = selectors.dispute_timeline(dispute=dispute)
    context = {"dispute": dispute, "patient": dispute.patient, "timeline": timeline}
    context |= {"form": form, "note_form": note_form}
    return render(request, "patientaccounts/dispute_detail.html", context)


def _dispute_update_form(request: HttpRequest, dispute: Any, data: Any = None) -> DisputeUpdateForm:
    initial = {
        "status": dispute.status,
        "owner": dispute.owner_id,
        "resolution": dispute.resolution,
    }
    return DisputeUpdateForm(data, initial=initial, user=_user(request))


@login_required
@require_http_methods(["GET", "POST"])
def dispute_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """GET: the case and its timeline. POST: change its status, owner or resolution."""
    dispute = selectors.dispute_get_for_user(user=_user(request), public_id=public_id)
    form = _dispute_update_form(request, dispute, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.dispute_update(
                actor=_user(request),
                dispute=dispute,
                status=form.cleaned_data["status"],
                owner=form.owner_user(),
                resolution=form.cleaned_data["resolution"],
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Dispute updated.")
            return redirect("patientaccounts:dispute_detail", public_id=dispute.public_id)
    return _dispute_page(request, dispute, form, DisputeNoteForm())


@login_required
@require_POST
def dispute_note(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    dispute = selectors.dispute_get_for_user(user=_user(request), public_id=public_id)
    note_form = DisputeNoteForm(request.POST)
    if note_form.is_valid():
        try:
            services.dispute_add_note(
                actor=_user(request), dispute=dispute, **note_form.cleaned_data
            )
        except ValidationError as exc:
            note_form.add_service_errors(exc)
        else:
            messages.success(request, "Note added.")
            return redirect("patientaccounts:dispute_detail", public_id=dispute.public_id)
    return _dispute_page(request, dispute, _dispute_update_form(request, dispute), note_form)


@login_required
@require_GET
def dispute_letter(request: HttpRequest, public_id: uuid.UUID, letter: str) -> HttpResponse:
    if letter not in LETTERS:
        raise Http404("No such letter.")
    dispute = selectors.dispute_get_for_user(
        user=_user(request), public_id=public_id, action=Action.PRINT, event="dispute.letter_form"
    )
    services.dispute_letter_printed(actor=_user(request), dispute=dispute, letter=LETTERS[letter])
    context = {
        "dispute": dispute,
        "patient": dispute.patient,
        "letter": letter,
        "today": timezone.localdate(),
    }
    return _pdf_response(
        request, "patientaccounts/dispute_letter_pdf.html", context, f"dispute-{letter}"
    )


# --- Reports ---------------------------------------------------------------------------------


@login_required
@require_GET
@capability_required(Capability.VIEW_REVENUE_REPORTS)
def deposit_report(request: HttpRequest) -> HttpResponse:
    """The day's close-out (day and location are not PHI, so a GET form is fine)."""
    form = DepositReportForm(request.GET or None, user=_user(request))
    report = None
    if form.is_bound and form.is_valid():
        report = selectors.deposit_report(user=_user(request), **form.cleaned_data)
    return render(request, "patientaccounts/deposit_report.html", {"form": form, "report": report})
