"""Remittance screens: the files received, the upload (ingest runs as a background task, its
page polls the job), and the unmatched queue. Thin views over remittance.selectors (reads,
access, audit) and remittance.services (writes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability
from remittance import selectors, services
from remittance.forms import ResolveForm, UploadForm

if TYPE_CHECKING:
    from accounts.models import User


def _user(request: HttpRequest) -> User:
    return cast("User", request.user)


def _denied(request: HttpRequest, view: str, error: PermissionDenied) -> PermissionDenied:
    record(
        actor=_user(request),
        action=Action.EXECUTE,
        event="auth.permission_denied",
        category=Category.SECURITY,
        outcome=Outcome.DENIED,
        object_type="url",
        object_id=view,
        reason=str(error)[:200],
    )
    return error


@login_required
@require_GET
def file_list(request: HttpRequest) -> HttpResponse:
    try:
        files = selectors.remittance_file_list(user=_user(request))
    except PermissionDenied as error:
        raise _denied(request, "remittance.file_list", error) from None
    can_upload = _user(request).can(Capability.POST_REMITTANCES)
    return render(request, "remittance/file_list.html", {"files": files, "can_upload": can_upload})


@login_required
@require_GET
def unmatched_list(request: HttpRequest) -> HttpResponse:
    try:
        rows = selectors.unmatched_list_for_user(user=_user(request))
    except PermissionDenied as error:
        raise _denied(request, "remittance.unmatched_list", error) from None
    return render(request, "remittance/unmatched_list.html", {"rows": rows, "form": ResolveForm()})


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not user.can(Capability.POST_REMITTANCES):
        raise _denied(request, "remittance.upload", PermissionDenied("Cannot post remittances."))
    posted = request.method == "POST"
    form = UploadForm(request.POST, request.FILES) if posted else UploadForm()
    if posted and form.is_valid():
        upload = form.cleaned_data["file"]
        job = services.ingest_job_create(
            actor=user,
            file_name=upload.name,
            data=upload.read(),
            dry_run=form.cleaned_data["dry_run"],
        )
        return redirect("remittance:job", public_id=job.public_id)
    return render(request, "remittance/upload.html", {"form": form})


@login_required
@require_GET
def job(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The upload's progress and report; htmx polls the same URL for the partial."""
    try:
        found = selectors.ingest_job_get_for_user(user=_user(request), public_id=public_id)
    except PermissionDenied as error:
        raise _denied(request, "remittance.job", error) from None
    partial = bool(getattr(request, "htmx", False))
    template = "remittance/_job.html" if partial else "remittance/job.html"
    return render(request, template, {"job": found})


@login_required
@require_POST
def unmatched_resolve(request: HttpRequest, public_id: UUID) -> HttpResponse:
    user = _user(request)
    try:
        entry = selectors.unmatched_get_for_user(user=user, public_id=public_id)
    except PermissionDenied as error:
        raise _denied(request, "remittance.unmatched_resolve", error) from None
    form = ResolveForm(request.POST)
    if form.is_valid():
        pcn = form.cleaned_data["patient_control_number"]
        claim = selectors.claim_for_resolution(user=user, patient_control_number=pcn)
        if claim is None:
            form.add_error("patient_control_number", f"None of your claims has the number {pcn}.")
        else:
            services.unmatched_resolve(actor=user, unmatched=entry, claim=claim)
            messages.success(request, f"Claim payment applied to claim {pcn}.")
            return redirect("remittance:unmatched_list")
    rows = selectors.unmatched_list_for_user(user=user)
    context = {
        "rows": rows,
        "form": ResolveForm(),
        "failed": entry.pk,
        "failed_public_id": entry.public_id,
        "failed_form": form,
    }
    return render(request, "remittance/unmatched_list.html", context, status=400)
