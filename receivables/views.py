"""A/R screens: the aging report (page, htmx partial, CSV) and the KPI page. Thin views over
receivables.selectors, which check capabilities (403, audited) and audit PHI reads."""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING, cast
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from receivables import selectors
from receivables.aging import BUCKETS, Basis, GroupBy
from receivables.charts import aging_chart, trend_chart
from receivables.forms import AgingForm, PeriodForm

if TYPE_CHECKING:
    from accounts.models import User


def _user(request: HttpRequest) -> User:
    return cast("User", request.user)


@login_required
@require_GET
def aging(request: HttpRequest) -> HttpResponse:
    """The aging table and chart; the switches are GET parameters (no PHI in them)."""
    form = AgingForm.from_query(request.GET)
    context: dict[str, object] = {"form": form, "buckets": BUCKETS}
    htmx = bool(getattr(request, "htmx", False))
    if not form.is_valid():
        if htmx:  # htmx swaps only 2xx answers: the error summary goes into the report area
            return render(request, "receivables/_aging_errors.html", context)
        return render(request, "receivables/aging.html", context, status=400)
    data = form.cleaned_data
    report = selectors.aging_for_user(
        user=_user(request), by=data["by"], basis=data["basis"], as_of=data["as_of"]
    )
    query = urlencode({"by": report.by, "basis": report.basis, "as_of": report.as_of})
    context.update(report=report, chart_json=json.dumps(aging_chart(report)), query=query)
    template = "receivables/_aging_report.html" if htmx else "receivables/aging.html"
    return render(request, template, context)


@login_required
@require_GET
def aging_csv(request: HttpRequest) -> HttpResponse:
    """The whole aging report as CSV (audited as an export)."""
    form = AgingForm.from_query(request.GET)
    if not form.is_valid():
        context = {"form": form, "buckets": BUCKETS}
        return render(request, "receivables/aging.html", context, status=400)
    data = form.cleaned_data
    report = selectors.aging_for_user(
        user=_user(request), export=True, by=data["by"], basis=data["basis"], as_of=data["as_of"]
    )
    name = f"ar-aging-{report.by}-{report.basis}-{report.as_of.isoformat()}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    write_aging_csv(response, report)
    return response


def write_aging_csv(out: HttpResponse, report: selectors.AgingReport) -> None:
    writer = csv.writer(out)
    by_patient = report.by == GroupBy.PATIENT
    head = ["MRN", "Patient"] if by_patient else ["Payer"]
    writer.writerow([*head, *BUCKETS, "Insurance", "Patient responsibility", "Total"])
    for row in [*report.rows, report.totals]:
        label = [row.mrn, row.name] if by_patient else [row.name]
        amounts = [*row.buckets, row.insurance, row.patient, row.total]
        writer.writerow([*label, *(f"{amount:.2f}" for amount in amounts)])


@login_required
@require_GET
def kpis(request: HttpRequest) -> HttpResponse:
    """KPIs over a chosen period, with their definitions and a monthly trend chart."""
    form = PeriodForm.from_query(request.GET)
    if not form.is_valid():
        return render(request, "receivables/kpis.html", {"form": form}, status=400)
    report = selectors.kpis_for_user(
        user=_user(request), start=form.cleaned_data["start"], end=form.cleaned_data["end"]
    )
    context = {"form": form, "report": report, "chart_json": json.dumps(trend_chart(report))}
    return render(request, "receivables/kpis.html", context)


__all__ = ["Basis", "aging", "aging_csv", "kpis"]
