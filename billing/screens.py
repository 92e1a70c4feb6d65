"""What the billing views put on screen: context builders and small helpers, so the views stay
thin. Reads go through billing.selectors; nothing here writes except through billing.services."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from audit.models import Category
from billing import icd10, selectors
from billing.forms import (
    ChargeLineForm,
    ClaimFilterForm,
    CorrectForm,
    EncounterForm,
    NoteForm,
    TransitionForm,
)
from billing.models import ClaimStatus, Encounter
from billing.scrub_rules import ERROR, Problem
from billing.services import BillingError, ClaimNotCleanError, LineInput, primary_payer
from patients import selectors as patient_selectors
from scheduling.models import Practitioner

if TYPE_CHECKING:
    from accounts.models import User
    from billing.models import Claim
    from patients.models import Patient


def _user(request: HttpRequest) -> User:
    return cast("User", request.user)


def patient_for_billing(request: HttpRequest, public_id: uuid.UUID) -> Patient:
    return patient_selectors.patient_get_for_user(
        user=_user(request),
        public_id=public_id,
        event="encounter.new_form",
        category=Category.BILLING,
    )


def encounter_form(request: HttpRequest, patient: Patient) -> EncounterForm:
    practitioners = Practitioner.objects.filter(is_active=True)
    at_home = practitioners.filter(locations=patient.home_location_id)
    appointments = selectors.appointments_for_coding(patient=patient)
    initial: dict[str, Any] = {"date_of_service": timezone.localdate(), "place_of_service": "11"}
    chosen = request.GET.get("appointment", "")
    for appointment in appointments:
        if str(appointment.public_id) == chosen:
            initial["appointment"] = chosen
            initial["date_of_service"] = timezone.localtime(appointment.start).date()
    return EncounterForm(
        request.POST or None,
        initial=initial,
        practitioners=[
            (str(p.public_id), p.display_name)
            for p in (at_home if at_home.exists() else practitioners)
        ],
        appointments=[
            (
                str(a.public_id),
                f"{timezone.localtime(a.start):%m/%d/%Y %H:%M} {a.appointment_type.name}",
            )
            for a in appointments
        ],
    )


def encounter_values(form: EncounterForm, patient: Patient) -> dict[str, Any]:
    data = form.cleaned_data
    appointment = None
    if data.get("appointment"):
        appointment = selectors.appointment_for_patient(
            patient=patient, public_id=data["appointment"]
        )
    return {
        "date_of_service": data["date_of_service"],
        "rendering_practitioner": Practitioner.objects.get(
            public_id=data["rendering_practitioner"]
        ),
        "place_of_service": data["place_of_service"],
        "appointment": appointment,
        "diagnoses": form.diagnoses(),
    }


def line_input(form: ChargeLineForm) -> LineInput:
    data = form.cleaned_data
    return LineInput(
        code=data["code"],
        modifiers=[data.get(f"modifier{n}") or "" for n in range(1, 5)],
        units=data["units"],
        pointers=[data[f"pointer{n}"] for n in range(1, 5) if data.get(f"pointer{n}")],
        amount=data.get("amount"),
        override_reason=data.get("override_reason") or "",
        service_date=data.get("service_date"),
    )


def encounter_context(encounter: Encounter) -> dict[str, Any]:
    lines = selectors.charge_lines_for(encounter)
    payer = primary_payer(encounter.patient, encounter.date_of_service)
    return {
        "encounter": encounter,
        "patient": encounter.patient,
        "diagnoses": selectors.diagnoses_for(encounter),
        "lines": lines,
        "total": sum((line.amount for line in lines), start=0),
        "claims": selectors.claims_for_encounter(encounter),
        "line_form": ChargeLineForm(),
        "correct_form": CorrectForm(),
        "payer": payer,
    }


def claim_context(claim: Claim) -> dict[str, Any]:
    detail = selectors.claim_detail(claim)
    next_statuses = cast("list[str]", detail["next_statuses"])
    return detail | {
        "claim": claim,
        "patient": claim.patient,
        "transition_form": TransitionForm(),
        "note_form": NoteForm(),
        "moves": [(s, ClaimStatus(s).label) for s in next_statuses if s != ClaimStatus.VOID],
        "can_void": ClaimStatus.VOID in next_statuses,
        "can_replace": ClaimStatus.RESUBMITTED in next_statuses,
        "error_count": sum(1 for p in cast("list[Any]", detail["problems"]) if p.severity == ERROR),
    }


def claim_action(
    request: HttpRequest,
    public_id: uuid.UUID,
    service: Callable[..., Claim | None],
    done: str,
) -> HttpResponse:
    """Run a claim service that takes (actor, claim, note); back to the resulting claim."""
    claim = selectors.claim_get_for_user(
        user=_user(request), public_id=public_id, event=f"claim.{service.__name__}_form"[:60]
    )
    form = NoteForm(request.POST)
    note = form.cleaned_data.get("note", "") if form.is_valid() else ""
    try:
        result = service(actor=_user(request), claim=claim, note=note)
    except BillingError as exc:
        messages.error(request, exc.message)
        return redirect("billing:claim", public_id=claim.public_id)
    messages.success(request, done)
    return redirect("billing:claim", public_id=(result or claim).public_id)


def scrub_summary(problems: Sequence[Problem]) -> str:
    errors = sum(1 for p in problems if p.severity == ERROR)
    warnings = len(problems) - errors
    if not problems:
        return "The scrubber found no problems."
    return f"The scrubber found {errors} error(s) and {warnings} warning(s)."


def not_clean_message(exc: ClaimNotCleanError) -> str:
    errors = [p for p in exc.problems if p.severity == ERROR]
    return f"Not ready: fix the {len(errors)} problem(s) listed under Scrubber findings."


def icd10_check(code: str) -> dict[str, str]:
    if not code:
        return {"code": "", "description": "", "problem": ""}
    problem = icd10.why_not_billable(code)
    return {
        "code": icd10.display_code(code),
        "description": "" if problem else icd10.description(code),
        "problem": problem,
    }


def filter_query(form: ClaimFilterForm) -> str:
    """The filter as a query string for the pager links (status and payer: no patient data)."""
    values = {}
    if form.value("status"):
        values["status"] = form.value("status")
    if form.value("payer") is not None:
        values["payer"] = str(form.value("payer").public_id)
    return urlencode(values)
