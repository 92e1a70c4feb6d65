"""Patient screens: thin views over patients.selectors (reads, access, audit) and
patients.services (writes). Missing and out-of-scope records answer 404; a signed-in user whose
roles lack a write capability gets 403 (both audited)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import capability_required
from core.capabilities import Capability
from patients import selectors, services
from patients.forms import (
    COMMON_LANGUAGES,
    BreakGlassForm,
    CoverageForm,
    FlagForm,
    MergeConfirmForm,
    MergeLookupForm,
    PatientForm,
    PrimaryCoverageForm,
    RegistrationForm,
    SearchForm,
)

if TYPE_CHECKING:
    from accounts.models import User
    from patients.models import Patient

View = Callable[..., HttpResponse]


def _user(request: HttpRequest) -> User:
    return cast("User", request.user)


def _patient(request: HttpRequest, public_id: uuid.UUID, event: str = "patient.view") -> Patient:
    return selectors.patient_get_for_user(user=_user(request), public_id=public_id, event=event)


def _banner_context(request: HttpRequest, patient: Patient) -> dict[str, Any]:
    grant = None
    if getattr(patient, "via_break_glass", False):
        grant = selectors.break_glass_active_grant(user=_user(request), patient=patient)
    return {"patient": patient, "break_glass_grant": grant}


# --- Search -----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.VIEW_PATIENTS, patient_kwarg="public_id")
def search(request: HttpRequest) -> HttpResponse:
    """GET: the empty search page. POST (htmx or plain): the results; criteria never in the URL."""
    form = SearchForm(request.POST if request.method == "POST" else None)
    context: dict[str, Any] = {"form": form, "result": None}
    if form.is_bound and form.is_valid() and not form.is_too_short():
        criteria = form.get_criteria()
        context["criteria"] = criteria
        context["result"] = selectors.patient_search(
            user=_user(request), criteria=criteria, page=form.page_number
        )
    partial = bool(getattr(request, "htmx", False))
    template = "patients/_search_results.html" if partial else "patients/search.html"
    return render(request, template, context)


# --- Registration -----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.REGISTER_PATIENTS, patient_kwarg="public_id")
def register(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    data = request.POST if request.method == "POST" else None
    form = RegistrationForm(data, user=user)
    coverage_form = PrimaryCoverageForm(data) if user.can(Capability.MANAGE_COVERAGE) else None
    context: dict[str, Any] = {
        "form": form,
        "coverage_form": coverage_form,
        "duplicates": None,
        "languages": COMMON_LANGUAGES,
    }
    if data is not None and form.is_valid() and (coverage_form is None or coverage_form.is_valid()):
        try:
            patient = _register(user, form, coverage_form)
        except services.DuplicateCandidatesFound as found:
            context["duplicates"] = selectors.duplicate_candidates_for_user(
                user=user, candidates=found.candidates
            )
        except ValidationError as exc:
            _place_registration_errors(form, coverage_form, exc)
        else:
            messages.success(request, f"Registered {patient.display_name}, MRN {patient.mrn}.")
            return redirect("patients:detail", public_id=patient.public_id)
    return render(request, "patients/register.html", context)


def _register(
    user: User, form: RegistrationForm, coverage_form: PrimaryCoverageForm | None
) -> Patient:
    filled = coverage_form is not None and coverage_form.is_filled()
    return services.patient_register_with_details(
        actor=user,
        home_location=form.cleaned_data["home_location"],
        values=form.patient_values(),
        coverage_values=coverage_form.coverage_values() if coverage_form and filled else None,
        flags=form.flags(),
        confirm_not_duplicate=form.cleaned_data["confirm_not_duplicate"],
    )


def _place_registration_errors(
    form: RegistrationForm, coverage_form: PrimaryCoverageForm | None, exc: ValidationError
) -> None:
    if coverage_form is not None and hasattr(exc, "error_dict"):
        coverage_errors = {k: v for k, v in exc.error_dict.items() if k.startswith("coverage")}
        if coverage_errors:
            coverage_form.add_service_errors(ValidationError(coverage_errors), prefix="coverage_")
            return
    form.add_service_errors(exc)


# --- Patient page and edit --------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = _patient(request, public_id)
    if patient.merged_into_id:
        return render(request, "patients/merged.html", {"patient": patient})
    context = _banner_context(request, patient)
    context.update(
        coverages=selectors.coverages_for(patient),
        flags=selectors.flags_for(patient),
        identifiers=selectors.identifiers_for(patient),
        merged_records=selectors.merged_records_for(patient),
    )
    return render(request, "patients/detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.REGISTER_PATIENTS, patient_kwarg="public_id")
def edit(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = _patient(request, public_id, event="patient.edit_form")
    if patient.merged_into_id:
        return redirect("patients:detail", public_id=patient.public_id)
    form = PatientForm(request.POST or None, instance=copy.copy(patient))
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_update(
                actor=_user(request), patient=patient, values=form.patient_values()
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Saved the changes.")
            return redirect("patients:detail", public_id=patient.public_id)
    context = _banner_context(request, patient) | {"form": form, "languages": COMMON_LANGUAGES}
    return render(request, "patients/edit.html", context)


# --- Coverages --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.MANAGE_COVERAGE, patient_kwarg="public_id")
def coverage_add(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = _patient(request, public_id, event="coverage.form")
    return _coverage_form(request, patient, coverage=None)


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.MANAGE_COVERAGE, patient_kwarg="public_id")
def coverage_edit(
    request: HttpRequest, public_id: uuid.UUID, coverage_id: uuid.UUID
) -> HttpResponse:
    patient = _patient(request, public_id, event="coverage.form")
    coverage = selectors.coverage_get_for_patient(patient=patient, public_id=coverage_id)
    return _coverage_form(request, patient, coverage=coverage)


def _coverage_form(request: HttpRequest, patient: Patient, coverage: Any) -> HttpResponse:
    form = CoverageForm(request.POST or None, instance=copy.copy(coverage) if coverage else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.coverage_save(
                actor=_user(request),
                patient=patient,
                values=form.coverage_values(),
                coverage=coverage,
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Saved the coverage.")
            return redirect(reverse("patients:detail", args=[patient.public_id]) + "#coverages")
    context = _banner_context(request, patient) | {"form": form, "coverage": coverage}
    return render(request, "patients/coverage_form.html", context)


@login_required
@require_POST
@capability_required(Capability.MANAGE_COVERAGE, patient_kwarg="public_id")
def coverage_verify(
    request: HttpRequest, public_id: uuid.UUID, coverage_id: uuid.UUID
) -> HttpResponse:
    patient = _patient(request, public_id, event="coverage.form")
    coverage = selectors.coverage_get_for_patient(patient=patient, public_id=coverage_id)
    services.coverage_verify(actor=_user(request), coverage=coverage)
    messages.success(request, f"Marked the {coverage.payer_name} coverage as verified today.")
    return redirect(reverse("patients:detail", args=[patient.public_id]) + "#coverages")


# --- Alerts -----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.MANAGE_FLAGS, patient_kwarg="public_id")
def flag_add(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = _patient(request, public_id, event="flag.form")
    form = FlagForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.flag_add(actor=_user(request), patient=patient, **form.cleaned_data)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Added the alert: {form.instance.get_kind_display()}.")
            return redirect(reverse("patients:detail", args=[patient.public_id]) + "#alerts")
    context = _banner_context(request, patient) | {"form": form}
    return render(request, "patients/flag_form.html", context)


@login_required
@require_POST
@capability_required(Capability.MANAGE_FLAGS, patient_kwarg="public_id")
def flag_clear(request: HttpRequest, public_id: uuid.UUID, flag_id: uuid.UUID) -> HttpResponse:
    patient = _patient(request, public_id, event="flag.form")
    flag = selectors.flag_get_for_patient(patient=patient, public_id=flag_id)
    services.flag_clear(actor=_user(request), flag=flag)
    messages.success(request, f"Cleared the alert: {flag.get_kind_display()}.")
    return redirect(reverse("patients:detail", args=[patient.public_id]) + "#alerts")


# --- Break-glass ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def break_glass(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Emergency access to a record outside the user's locations: explain, ask why, grant."""
    user = _user(request)
    patient = selectors.patient_find_for_break_glass(user=user, public_id=public_id)
    if selectors.in_scope(user=user, patient=patient) or selectors.has_break_glass(
        user=user, patient=patient
    ):
        return redirect("patients:detail", public_id=patient.public_id)
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.break_glass_grant(
                actor=user, patient=patient, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return redirect("patients:detail", public_id=patient.public_id)
    minutes = int(settings.BREAK_GLASS_DURATION.total_seconds() // 60)
    context = {"form": form, "target": patient, "duration_minutes": minutes}
    return render(request, "patients/break_glass.html", context)


# --- Merge ------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@capability_required(Capability.MERGE_PATIENTS, patient_kwarg="public_id")
def merge(request: HttpRequest) -> HttpResponse:
    """Two MRNs (POST) -> the records side by side -> choose the survivor, say why -> merge."""
    if request.method == "GET":
        return render(request, "patients/merge.html", {"form": MergeLookupForm()})
    if request.POST.get("step") == "merge":
        return _merge_confirm(request)
    form = MergeLookupForm(request.POST)
    pair = _merge_pair(request, form) if form.is_valid() else None
    if pair is None:
        return render(request, "patients/merge.html", {"form": form})
    confirm = MergeConfirmForm(initial=form.cleaned_data)
    return _merge_compare(request, confirm, pair)


def _merge_pair(request: HttpRequest, form: MergeLookupForm) -> tuple[Patient, Patient] | None:
    """Both records, or None with the form showing which MRN was not found."""
    found: list[Patient] = []
    for name in ("mrn_a", "mrn_b"):
        try:
            patient = selectors.patient_get_by_mrn_for_user(
                user=_user(request), mrn=form.cleaned_data[name], event="patient.merge_review"
            )
        except Http404:  # missing and out-of-scope look the same
            form.add_error(name, "No patient with this MRN at your locations.")
            continue
        if patient.merged_into is not None:
            form.add_error(name, f"Already merged into MRN {patient.merged_into.mrn}.")
        found.append(patient)
    if form.errors:
        return None
    return found[0], found[1]


def _merge_compare(
    request: HttpRequest, form: MergeConfirmForm, pair: tuple[Patient, Patient]
) -> HttpResponse:
    records = [
        {
            "key": key,
            "patient": patient,
            "coverages": selectors.coverages_for(patient),
            "flags": selectors.flags_for(patient),
            "identifiers": selectors.identifiers_for(patient),
        }
        for key, patient in zip(("a", "b"), pair, strict=True)
    ]
    return render(request, "patients/merge_compare.html", {"form": form, "records": records})


def _merge_confirm(request: HttpRequest) -> HttpResponse:
    form = MergeConfirmForm(request.POST)
    lookup = MergeLookupForm(request.POST)
    pair = _merge_pair(request, lookup) if lookup.is_valid() else None
    if pair is None:
        return render(request, "patients/merge.html", {"form": lookup})
    if form.is_valid():
        survivor, merged = pair if form.cleaned_data["survivor"] == "a" else pair[::-1]
        try:
            services.patient_merge(
                actor=_user(request),
                survivor=survivor,
                merged=merged,
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Merged MRN {merged.mrn} into MRN {survivor.mrn}.")
            return redirect("patients:detail", public_id=survivor.public_id)
    return _merge_compare(request, form, pair)
