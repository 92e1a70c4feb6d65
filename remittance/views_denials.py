"""Denial work queue screens: the queue (filters, counts per cause, bulk assign) and a denial's
page (claim summary, codes, timeline, actions). Thin views over remittance.denial_selectors
(reads, access, audit) and remittance.denials (writes).

Reads need VIEW_BILLING and the patient's location; writes need WORK_DENIALS too. A denial the
user may not see is a 404 (audited) before anything else; a user who may see it but not work it
gets a 403 (audited)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit.models import Action, Category
from audit.services import record
from core.capabilities import Capability
from patientaccounts.pdf import PdfUnavailableError
from remittance import denial_selectors as sel
from remittance import denials as services
from remittance.denial_forms import (
    AppealForm,
    AssignForm,
    NoteForm,
    QueueFilterForm,
    ResubmitForm,
    StatusForm,
)
from remittance.models import AppealLetter, Denial
from remittance.views import _denied

if TYPE_CHECKING:
    from accounts.models import User


def _user(request: HttpRequest) -> User:
    return cast("User", request.user)


def _owners(user: User) -> list[tuple[str, str]]:
    return [
        (str(u.public_id), u.get_full_name() or u.username)
        for u in sel.denial_owner_choices(user=user)
    ]


def _may_work(request: HttpRequest, view: str) -> None:
    if not _user(request).can(Capability.WORK_DENIALS):
        raise _denied(request, view, PermissionDenied("Your roles do not allow working denials."))


def _pdf(pdf: bytes, name: str) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not user.can(Capability.VIEW_BILLING):
        raise _denied(request, "remittance:denial_queue", PermissionDenied("No billing access."))
    owners = _owners(user)
    form = QueueFilterForm(
        request.GET or None, payers=sel.payers_in_queue(user=user), owners=owners
    )
    data = form.cleaned_data if form.is_valid() else {}
    filters = sel.QueueFilters(
        status=data.get("status", ""),
        cause=data.get("cause", ""),
        payer=UUID(data["payer"]) if data.get("payer") else None,
        owner=data.get("owner", ""),
        due_before=data.get("due_before"),
    )
    found = sel.denial_queue(user=user, filters=filters)
    return render(request, "remittance/denials.html", _queue_context(user, form, found, owners))


def _queue_context(
    user: User, form: QueueFilterForm, found: sel.Queue, owners: list[tuple[str, str]], **extra: Any
) -> dict[str, Any]:
    chart = {
        "labels": [label for _, label, _ in found.by_cause],
        "counts": [n for *_, n in found.by_cause],
    }
    return {
        "form": form,
        "queue": found,
        "chart_json": json.dumps(chart),
        "can_work": user.can(Capability.WORK_DENIALS),
        "assign_form": extra.pop("assign_form", None) or AssignForm(owners=owners),
        **extra,
    }


@login_required
@require_POST
def assign_many(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = AssignForm(request.POST, owners=_owners(user))
    if form.is_valid():
        chosen = sel.denials_for_update(
            user=user, public_ids=[UUID(v) for v in form.cleaned_data["denials"]]
        )
        _may_work(request, "remittance:denial_assign_many")
        owner = _owner(user, form.cleaned_data["owner"])
        try:
            count = services.denial_assign(actor=user, denials=chosen, owner=owner)
        except services.DenialError as exc:
            form.add_denial_error(exc)
        else:
            messages.success(request, f"{count} denial(s) assigned.")
            return redirect("remittance:denial_queue")
    _may_work(request, "remittance:denial_assign_many")
    problems = (f"{label}: {m}" if label else m for _, label, m in form.error_summary())
    messages.error(request, "Not assigned. " + "; ".join(problems))
    return redirect("remittance:denial_queue")


def _owner(user: User, value: str) -> User | None:
    return None if value == "none" else sel.owner_for_user(user=user, public_id=value)


# ---- one denial ------------------------------------------------------------------------------


def _detail(request: HttpRequest, denial: Denial, status: int = 200, **forms: Any) -> HttpResponse:
    user = _user(request)
    owners = _owners(user)
    carc, rarc = services.code_wording(denial)
    context = {
        "denial": denial,
        "claim": denial.claim,
        "carc": carc,
        "rarc": rarc,
        "timeline": sel.denial_timeline(denial),
        "letters": list(denial.appeal_letters.select_related("created_by").defer("pdf")),
        "can_work": user.can(Capability.WORK_DENIALS),
        "today": timezone.localdate(),
        "assign_form": forms.get("assign_form")
        or AssignForm(
            owners=owners, initial={"owner": str(denial.owner.public_id) if denial.owner else ""}
        ),
        "status_form": forms.get("status_form") or StatusForm(),
        "note_form": forms.get("note_form") or NoteForm(),
        "appeal_form": forms.get("appeal_form") or AppealForm(),
        "resubmit_form": forms.get("resubmit_form") or ResubmitForm(),
        "failed": next(iter(forms), ""),
    }
    return render(request, "remittance/denial_detail.html", context, status=status)


def _back(denial: Denial, message: str, request: HttpRequest) -> HttpResponse:
    messages.success(request, message)
    return redirect(reverse("remittance:denial", args=[denial.public_id]))


@login_required
@require_GET
def detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    denial = sel.denial_get_for_user(user=_user(request), public_id=public_id)
    return _detail(request, denial)


@login_required
@require_POST
def assign(request: HttpRequest, public_id: UUID) -> HttpResponse:
    user = _user(request)
    denial = sel.denial_get_for_user(user=user, public_id=public_id, event="denial.assign")
    _may_work(request, "remittance:denial_assign")
    data = request.POST.copy()
    data.setlist("denials", [str(denial.public_id)])
    form = AssignForm(data, owners=_owners(user))
    if form.is_valid():
        try:
            services.denial_assign(
                actor=user, denials=[denial], owner=_owner(user, form.cleaned_data["owner"])
            )
            return _back(denial, "Owner changed.", request)
        except services.DenialError as exc:
            form.add_denial_error(exc)
    return _detail(request, denial, 400, assign_form=form)


@login_required
@require_POST
def set_status(request: HttpRequest, public_id: UUID) -> HttpResponse:
    user = _user(request)
    denial = sel.denial_get_for_user(user=user, public_id=public_id, event="denial.status")
    _may_work(request, "remittance:denial_status")
    form = StatusForm(request.POST)
    if form.is_valid():
        try:
            services.denial_set_status(actor=user, denial=denial, **form.cleaned_data)
            return _back(denial, "Status changed.", request)
        except services.DenialError as exc:
            form.add_denial_error(exc)
    return _detail(request, denial, 400, status_form=form)


@login_required
@require_POST
def add_note(request: HttpRequest, public_id: UUID) -> HttpResponse:
    user = _user(request)
    denial = sel.denial_get_for_user(user=user, public_id=public_id, event="denial.note")
    _may_work(request, "remittance:denial_note")
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            services.denial_add_note(actor=user, denial=denial, text=form.cleaned_data["text"])
            return _back(denial, "Note added.", request)
        except services.DenialError as exc:
            form.add_denial_error(exc)
    return _detail(request, denial, 400, note_form=form)


@login_required
@require_POST
def appeal(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Make the appeal letter and download it (the claim and the denial become appealed)."""
    user = _user(request)
    denial = sel.denial_get_for_user(user=user, public_id=public_id, event="denial.appeal")
    _may_work(request, "remittance:denial_appeal")
    form = AppealForm(request.POST)
    if form.is_valid():
        try:
            letter = services.denial_appeal(
                actor=user, denial=denial, argument=form.cleaned_data["argument"]
            )
            return _pdf(bytes(letter.pdf), f"appeal-{denial.claim.patient_control_number}")
        except services.DenialError as exc:
            form.add_denial_error(exc)
        except PdfUnavailableError as exc:
            return render(
                request, "patientaccounts/pdf_unavailable.html", {"error": str(exc)}, status=503
            )
    return _detail(request, denial, 400, appeal_form=form)


@login_required
@require_GET
def letter(request: HttpRequest, public_id: UUID, letter_id: UUID) -> HttpResponse:
    """A letter made earlier, as it was printed (audited as a print)."""
    user = _user(request)
    denial = sel.denial_get_for_user(user=user, public_id=public_id, event="denial.letter")
    found = AppealLetter.objects.filter(denial=denial, public_id=letter_id).first()
    if found is None:
        raise sel._denied(user, "denial.letter", letter_id)
    record(
        actor=user,
        action=Action.PRINT,
        event="denial.appeal_letter",
        category=Category.BILLING,
        patient=denial.claim.patient,
        obj=found,
    )
    return _pdf(bytes(found.pdf), f"appeal-{denial.claim.patient_control_number}")


@login_required
@require_POST
def resubmit(request: HttpRequest, public_id: UUID) -> HttpResponse:
    user = _user(request)
    denial = sel.denial_get_for_user(user=user, public_id=public_id, event="denial.resubmit")
    _may_work(request, "remittance:denial_resubmit")
    form = ResubmitForm(request.POST)
    if form.is_valid():
        try:
            claim = services.denial_resubmit(
                actor=user, denial=denial, note=form.cleaned_data["note"]
            )
            return _back(
                denial,
                f"Corrected claim {claim.patient_control_number} created as a draft.",
                request,
            )
        except services.DenialError as exc:
            form.add_denial_error(exc)
    return _detail(request, denial, 400, resubmit_form=form)
