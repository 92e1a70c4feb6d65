"""Billing screens: the work list, charge entry per visit, claims (page, list, actions, the
CMS-1500 PDF) and the setup of payers and fee schedules.

Thin views over billing.selectors (reads, scope, audit) and billing.services (writes). Missing and
out-of-scope records answer 404 (audited); a signed-in user whose roles lack the capability gets
403 (audited). Invalid input re-renders the form with 422 and the fields named.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import capability_required
from audit.models import Action
from billing import cms1500, screens, selectors, services
from billing.forms import (
    ChargeLineForm,
    ClaimFilterForm,
    CodeCheckForm,
    CorrectForm,
    FeeEntryForm,
    FeeScheduleForm,
    PayerForm,
    TransitionForm,
)
from billing.models import FeeSchedule, Payer
from billing.services import BillingError, ClaimNotCleanError
from core.capabilities import Capability
from patientaccounts.pdf import PdfUnavailableError

if TYPE_CHECKING:
    from accounts.models import User

View = Callable[..., HttpResponse]
C = Capability


def _user(request: HttpRequest) -> User:
    return cast("User", request.user)


# ---- work list and claims ------------------------------------------------------------------


@login_required
@require_GET
@capability_required(C.VIEW_BILLING)
def home(request: HttpRequest) -> HttpResponse:
    """The billing work list: claims by status, visits to code, encounters to bill."""
    work = selectors.work_list_for_user(user=_user(request))
    return render(request, "billing/home.html", {"work": work})


@login_required
@require_GET
@capability_required(C.VIEW_BILLING)
def claim_list(request: HttpRequest) -> HttpResponse:
    """Claims at the user's locations, filtered by status and payer (GET: no patient data)."""
    form = ClaimFilterForm(request.GET)
    page = selectors.claim_list_for_user(
        user=_user(request),
        status=form.value("status") or "",
        payer=form.value("payer"),
        page=form.value("page") or 1,
    )
    context = {"form": form, "page": page, "query": screens.filter_query(form)}
    return render(request, "billing/claim_list.html", context)


@login_required
@require_GET
@capability_required(C.VIEW_BILLING)
def claim_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """A claim: header, lines, the last scrub's problems, actions and the timeline."""
    claim = selectors.claim_get_for_user(user=_user(request), public_id=public_id)
    return render(request, "billing/claim.html", screens.claim_context(claim))


@login_required
@require_GET
@capability_required(C.VIEW_BILLING)
def claim_cms1500(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The claim on a CMS-1500 (02/12) form, as a PDF (audited as a print of the claim)."""
    claim = selectors.claim_get_for_user(
        user=_user(request), public_id=public_id, event="claim.print_cms1500", action=Action.PRINT
    )
    try:
        pdf = cms1500.render_cms1500(claim, signed_on=timezone.localdate())
    except PdfUnavailableError as exc:
        return render(
            request, "patientaccounts/pdf_unavailable.html", {"error": str(exc)}, status=503
        )
    response = HttpResponse(pdf, content_type="application/pdf")
    name = f"cms1500-{claim.patient_control_number}.pdf"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
@capability_required(C.MANAGE_CLAIMS)
def claim_scrub(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    claim = selectors.claim_get_for_user(
        user=_user(request), public_id=public_id, event="claim.scrub_form"
    )
    problems = services.claim_scrub(actor=_user(request), claim=claim)
    messages.info(request, screens.scrub_summary(problems))
    return redirect("billing:claim", public_id=claim.public_id)


@login_required
@require_POST
@capability_required(C.MANAGE_CLAIMS)
def claim_status(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Move the claim to another status (ready runs the scrubber first)."""
    claim = selectors.claim_get_for_user(
        user=_user(request), public_id=public_id, event="claim.status_form"
    )
    form = TransitionForm(request.POST)
    if form.is_valid():
        try:
            services.claim_transition(actor=_user(request), claim=claim, **form.cleaned_data)
            return redirect("billing:claim", public_id=claim.public_id)
        except ClaimNotCleanError as exc:
            messages.error(request, screens.not_clean_message(exc))
            return redirect("billing:claim", public_id=claim.public_id)
        except BillingError as exc:
            form.add_billing_error(exc)
    claim.refresh_from_db()
    context = screens.claim_context(claim) | {"transition_form": form}
    return render(request, "billing/claim.html", context, status=422)


@login_required
@require_POST
@capability_required(C.MANAGE_CLAIMS)
def claim_replace(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """A frequency-7 replacement claim from the visit's current charges."""
    return screens.claim_action(request, public_id, services.claim_replace, "Replacement created.")


@login_required
@require_POST
@capability_required(C.MANAGE_CLAIMS)
def claim_void(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Void the claim (a frequency-8 void claim once it reached the payer)."""
    return screens.claim_action(request, public_id, services.claim_void, "Claim voided.")


# ---- encounters and charges ---------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(C.ENTER_CHARGES)
def encounter_new(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Open a visit for charge entry: date, practitioner, place of service, diagnoses."""
    patient = screens.patient_for_billing(request, public_id)
    form = screens.encounter_form(request, patient)
    if request.method == "POST" and form.is_valid():
        try:
            encounter = services.encounter_create(
                actor=_user(request), patient=patient, **screens.encounter_values(form, patient)
            )
            return redirect("billing:encounter", public_id=encounter.public_id)
        except BillingError as exc:
            form.add_billing_error(exc)
    status = 422 if request.method == "POST" else 200
    return render(
        request, "billing/encounter_form.html", {"patient": patient, "form": form}, status=status
    )


@login_required
@require_GET
@capability_required(C.VIEW_BILLING)
def encounter_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The visit: diagnoses, charge lines (with corrections), the add-line form and its claims."""
    encounter = selectors.encounter_get_for_user(user=_user(request), public_id=public_id)
    return render(request, "billing/encounter.html", screens.encounter_context(encounter))


@login_required
@require_POST
@capability_required(C.ENTER_CHARGES)
def charge_add(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    encounter = selectors.encounter_get_for_user(
        user=_user(request), public_id=public_id, event="charge.add_form"
    )
    form = ChargeLineForm(request.POST)
    if form.is_valid():
        try:
            services.charge_line_add(
                actor=_user(request), encounter=encounter, line=screens.line_input(form)
            )
            return redirect("billing:encounter", public_id=encounter.public_id)
        except BillingError as exc:
            form.add_billing_error(exc)
    context = screens.encounter_context(encounter) | {"line_form": form}
    return render(request, "billing/encounter.html", context, status=422)


@login_required
@require_POST
@capability_required(C.ENTER_CHARGES)
def charge_correct(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Reverse a charge line (a new negative line; never an edit)."""
    line = selectors.charge_line_get_for_user(
        user=_user(request), public_id=public_id, event="charge.correct_form"
    )
    form = CorrectForm(request.POST)
    if form.is_valid():
        try:
            services.charge_line_correct(
                actor=_user(request), line=line, reason=form.cleaned_data["reason"]
            )
            messages.success(request, f"Line {line.line_number} reversed.")
        except BillingError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "Say why the charge is corrected.")
    return redirect("billing:encounter", public_id=line.encounter.public_id)


@login_required
@require_POST
@capability_required(C.ENTER_CHARGES)
def claim_create(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """A draft claim for the next coverage in the order of benefits."""
    encounter = selectors.encounter_get_for_user(
        user=_user(request), public_id=public_id, event="claim.create_form"
    )
    try:
        claim = services.claim_create_from_encounter(actor=_user(request), encounter=encounter)
    except BillingError as exc:
        messages.error(request, exc.message)
        return redirect("billing:encounter", public_id=encounter.public_id)
    return redirect("billing:claim", public_id=claim.public_id)


@login_required
@require_POST
@capability_required(C.ENTER_CHARGES)
def icd10_check(request: HttpRequest) -> HttpResponse:
    """htmx: the description of the ICD-10-CM code just typed, or why it cannot be billed."""
    code = CodeCheckForm().code(request.POST)
    return render(request, "billing/_icd10_check.html", screens.icd10_check(code))


# ---- setup: payers and fee schedules ------------------------------------------------------------


@login_required
@require_GET
@capability_required(C.MANAGE_BILLING_SETUP)
def payer_list(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/payer_list.html", {"payers": selectors.payer_list()})


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(C.MANAGE_BILLING_SETUP)
def payer_edit(request: HttpRequest, public_id: uuid.UUID | None = None) -> HttpResponse:
    """Add a payer, or edit one."""
    payer = selectors.payer_get(public_id=public_id) if public_id else Payer()
    form = PayerForm(request.POST or None, instance=payer)
    if request.method == "POST" and form.is_valid():
        try:
            services.payer_save(
                actor=_user(request), payer=form.instance, changed=form.changed_data
            )
            messages.success(request, f"Payer {payer.name} saved.")
            return redirect("billing:payer_list")
        except BillingError as exc:
            form.add_billing_error(exc)
    status = 422 if request.method == "POST" else 200
    return render(request, "billing/payer_form.html", {"form": form, "payer": payer}, status=status)


@login_required
@require_GET
@capability_required(C.MANAGE_BILLING_SETUP)
def fee_schedule_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "billing/fee_schedule_list.html", {"schedules": selectors.fee_schedule_list()}
    )


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(C.MANAGE_BILLING_SETUP)
def fee_schedule_edit(request: HttpRequest, public_id: uuid.UUID | None = None) -> HttpResponse:
    """Add a fee schedule, or edit one (its header; entries below it)."""
    schedule = selectors.fee_schedule_get(public_id=public_id) if public_id else FeeSchedule()
    form = FeeScheduleForm(request.POST or None, instance=schedule)
    if request.method == "POST" and form.is_valid():
        try:
            services.fee_schedule_save(
                actor=_user(request), schedule=form.instance, changed=form.changed_data
            )
            return redirect("billing:fee_schedule", public_id=schedule.public_id)
        except BillingError as exc:
            form.add_billing_error(exc)
    context = {"form": form, "schedule": schedule, "entry_form": FeeEntryForm()}
    status = 422 if request.method == "POST" else 200
    return render(request, "billing/fee_schedule.html", context, status=status)


@login_required
@require_POST
@capability_required(C.MANAGE_BILLING_SETUP)
def fee_entry_set(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Set the price of a code in the schedule (adds or updates the entry)."""
    schedule = selectors.fee_schedule_get(public_id=public_id)
    form = FeeEntryForm(request.POST)
    if form.is_valid():
        try:
            services.fee_entry_set(actor=_user(request), schedule=schedule, **form.cleaned_data)
            return redirect("billing:fee_schedule", public_id=schedule.public_id)
        except BillingError as exc:
            form.add_billing_error(exc)
    context = {"form": FeeScheduleForm(instance=schedule), "schedule": schedule, "entry_form": form}
    return render(request, "billing/fee_schedule.html", context, status=422)
