"""The 837P batches screen: the batches built so far, a "build batches" button that runs the
export (billing.export) as a background task with its progress polled by htmx, and the download
of a released file (audited per patient in it). No patient data in any URL."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.access import capability_required
from billing import export
from billing.models import Payer
from billing.views import _user
from core.capabilities import Capability


def _payer_from_form(request: HttpRequest) -> tuple[Payer | None, str]:
    value = request.POST.get("payer", "").strip()
    if not value:
        return None, ""
    try:
        payer = Payer.objects.filter(public_id=uuid.UUID(value)).first()
    except ValueError:
        payer = None
    return payer, "" if payer else "Payer: choose a payer from the list, or all payers."


def _page(
    request: HttpRequest, *, error: str = "", task_id: str = "", status: int = 200
) -> HttpResponse:
    context = {
        "batches": export.batches_for_user(user=_user(request)),
        "payers": Payer.objects.filter(is_active=True).order_by("name"),
        "ready": export.ready_claims_count(),
        "error": error,
        "task_id": task_id,
        "progress": export.batch_build_progress(task_id=task_id) if task_id else None,
    }
    return render(request, "billing/batches.html", context, status=status)


@login_required
@require_GET
@capability_required(Capability.VIEW_BILLING, prefix="billing_batches:")
def batch_list(request: HttpRequest) -> HttpResponse:
    task_id = request.GET.get("task", "")
    try:
        task_id = str(uuid.UUID(task_id)) if task_id else ""
    except ValueError:
        task_id = ""
    return _page(request, task_id=task_id)


@login_required
@require_POST
@capability_required(Capability.MANAGE_CLAIMS, prefix="billing_batches:")
def batch_build(request: HttpRequest) -> HttpResponse:
    payer, error = _payer_from_form(request)
    if error:
        return _page(request, error=error, status=422)
    task_id = export.batch_build_enqueue(actor=_user(request), payer=payer)
    if getattr(request, "htmx", False):
        return _progress(request, task_id)
    return redirect(reverse("billing_batches:list") + f"?task={task_id}")


@login_required
@require_GET
@capability_required(Capability.MANAGE_CLAIMS, prefix="billing_batches:")
def batch_progress(request: HttpRequest, task_id: uuid.UUID) -> HttpResponse:
    return _progress(request, str(task_id))


def _progress(request: HttpRequest, task_id: str) -> HttpResponse:
    progress = export.batch_build_progress(task_id=task_id)
    if progress is None:
        raise Http404("No such build.")
    context = {"progress": progress, "task_id": task_id}
    return render(request, "billing/batches_progress.html", context)


@login_required
@require_GET
@capability_required(Capability.MANAGE_CLAIMS, prefix="billing_batches:")
def batch_download(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    batch = export.batch_download_for_user(user=_user(request), public_id=public_id)
    response = HttpResponse(batch.content, content_type="application/edi-x12")
    response["Content-Disposition"] = f'attachment; filename="{batch.file_name}"'
    response["Cache-Control"] = "no-store"
    return response
