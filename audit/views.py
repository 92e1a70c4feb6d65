"""The privacy officer's screens: the audit report, its CSV export and the break-glass review.

The report's filters can carry PHI (an MRN), so they travel by POST (htmx POST for the results
table, page changes and sorting); the break-glass review filters only by date, so it is a GET.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from audit.forms import BreakGlassFilterForm, ReportFilterForm
from audit.selectors import (
    BREAK_GLASS_REVIEW_EVENT,
    EXPORT_EVENT,
    REPORT_EVENT,
    audit_access_check,
    audit_export,
    audit_report_page,
    break_glass_review,
)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@require_http_methods(["GET", "POST"])
@login_required
def report(request: HttpRequest) -> HttpResponse:
    audit_access_check(user=request.user, event=REPORT_EVENT)  # type: ignore[arg-type]
    form = ReportFilterForm(request.POST if request.method == "POST" else {})
    if not form.is_valid():
        return _invalid_filters(request, form)
    page = audit_report_page(user=request.user, criteria=form.criteria())  # type: ignore[arg-type]
    template = "audit/_report_results.html" if request.htmx else "audit/report.html"  # type: ignore[attr-defined]
    return render(request, template, {"form": form, "page": page})


def _invalid_filters(request: HttpRequest, form: ReportFilterForm) -> HttpResponse:
    """The form again with its errors; for htmx, swapped over the whole form, not the table."""
    if not request.htmx:  # type: ignore[attr-defined]
        return render(request, "audit/report.html", {"form": form, "page": None})
    response = render(request, "audit/_report_form.html", {"form": form, "page": None})
    return retarget(reswap(response, "outerHTML"), "#audit-report")


@require_POST
@login_required
def export(request: HttpRequest) -> HttpResponseBase:
    audit_access_check(user=request.user, event=EXPORT_EVENT)  # type: ignore[arg-type]
    form = ReportFilterForm(request.POST)
    if not form.is_valid():
        return render(request, "audit/report.html", {"form": form, "page": None}, status=400)
    lines = audit_export(user=request.user, criteria=form.criteria())  # type: ignore[arg-type]
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(csv_stream(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-trail-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@login_required
def break_glass(request: HttpRequest) -> HttpResponse:
    audit_access_check(user=request.user, event=BREAK_GLASS_REVIEW_EVENT)  # type: ignore[arg-type]
    form = BreakGlassFilterForm(request.GET)
    review = None
    if form.is_valid():
        review = break_glass_review(
            user=request.user,  # type: ignore[arg-type]
            date_from=form.cleaned_data["date_from"],
            date_to=form.cleaned_data["date_to"],
            page=form.cleaned_data["page"] or 1,
        )
    return render(request, "audit/break_glass.html", {"form": form, "review": review})


class _Echo:
    """A file-like object whose write() returns the line, for csv.writer in a stream."""

    def write(self, value: str) -> str:
        return value


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in text a user could have typed."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def csv_stream(lines: Iterable[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff"  # byte-order mark: spreadsheet programs then read the file as UTF-8
    for line in lines:
        yield writer.writerow([_cell(value) for value in line])
