"""The report switches: by, basis, as-of date, and the KPI period. None of them is PHI, so they
travel in the query string (bookmarkable reports)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone

from receivables.aging import Basis, GroupBy
from receivables.kpis import MAX_PERIOD_DAYS

EARLIEST = dt.date(2000, 1, 1)


class ReportForm(forms.Form):
    """Bootstrap classes, `is-invalid` on fields with errors, the first field focused, and the
    error summary that templates/includes/form_errors.html lists."""

    autofocus: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            widget = field.widget
            is_select = isinstance(widget, forms.Select)
            widget.attrs["class"] = (
                "form-select form-select-sm" if is_select else "form-control form-control-sm"
            )
            if name == self.autofocus:
                widget.attrs["autofocus"] = True

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()

    def error_summary(self) -> list[tuple[str, str, str]]:
        rows: list[tuple[str, str, str]] = []
        for name, messages in self.errors.items():
            if name not in self.fields:
                rows.extend(("", "", str(message)) for message in messages)
                continue
            label = str(self.fields[name].label or name)
            rows.extend((self[name].id_for_label, label, str(message)) for message in messages)
        return rows


class AgingForm(ReportForm):
    autofocus = "by"

    by = forms.ChoiceField(label="Group by", choices=GroupBy.choices, initial=GroupBy.PAYER)
    basis = forms.ChoiceField(label="Age from", choices=Basis.choices, initial=Basis.SERVICE)
    as_of = forms.DateField(
        label="As of",
        error_messages={"invalid": "Enter a valid date (YYYY-MM-DD)."},
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Postings up to the end of this day count.",
    )

    def clean_as_of(self) -> dt.date:
        value: dt.date = self.cleaned_data["as_of"]
        if value < EARLIEST:
            raise forms.ValidationError(f"Choose a date on or after {EARLIEST:%Y-%m-%d}.")
        if value > timezone.localdate() + dt.timedelta(days=366):
            raise forms.ValidationError("Choose a date within a year from today.")
        return value

    @classmethod
    def from_query(cls, query: Any) -> AgingForm:
        """Bound to the query string, with the defaults for what it leaves out."""
        data = {
            "by": query.get("by") or GroupBy.PAYER,
            "basis": query.get("basis") or Basis.SERVICE,
            "as_of": query.get("as_of") or timezone.localdate().isoformat(),
        }
        return cls(data)


class PeriodForm(ReportForm):
    autofocus = "start"

    start = forms.DateField(
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a valid date (YYYY-MM-DD)."},
    )
    end = forms.DateField(
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a valid date (YYYY-MM-DD)."},
    )

    @classmethod
    def from_query(cls, query: Any) -> PeriodForm:
        today = timezone.localdate()
        data = {
            "start": query.get("start") or (today - dt.timedelta(days=89)).isoformat(),
            "end": query.get("end") or today.isoformat(),
        }
        return cls(data)

    def clean_start(self) -> dt.date:
        value: dt.date = self.cleaned_data["start"]
        if value < EARLIEST:
            raise forms.ValidationError(f"Choose a date on or after {EARLIEST:%Y-%m-%d}.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", "The period must end on or after its start.")
            elif (end - start).days + 1 > MAX_PERIOD_DAYS:
                self.add_error("end", f"Choose a period of at most {MAX_PERIOD_DAYS} days.")
        return data
