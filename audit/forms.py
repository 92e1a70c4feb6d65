"""Filters for the audit report and the break-glass review. Every message names its field."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django import forms

from audit.models import Action, Outcome
from audit.selectors import DEFAULT_SORT, SORT_CHOICES, ReportCriteria, resolve_patient

MAX_PAGE = 100_000
REPORT_FILTER_FIELDS = (
    "patient",
    "username",
    "action",
    "event",
    "outcome",
    "date_from",
    "date_to",
)


SORT_MESSAGE = "Sort by one of the report's columns."
PAGE_MESSAGE = f"The page must be a whole number from 1 to {MAX_PAGE}."


def _page_messages(page_field: forms.Field) -> None:
    for key in ("invalid", "min_value", "max_value"):
        page_field.error_messages[key] = PAGE_MESSAGE


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class BootstrapMixin:
    """Bootstrap classes on every widget, and `is-invalid` on fields with errors."""

    def _style(self) -> None:
        form: forms.Form = self  # type: ignore[assignment]
        for name, bound_field in form.fields.items():
            widget = bound_field.widget
            if isinstance(widget, forms.HiddenInput):
                continue
            css = "form-select" if isinstance(widget, forms.Select) else "form-control"
            if form.is_bound and name in form.errors:
                css += " is-invalid"
                widget.attrs["aria-invalid"] = "true"
                widget.attrs["aria-describedby"] = f"{form[name].auto_id}-error"
            widget.attrs["class"] = css

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        self._style()


class DateRangeMixin:
    def clean_date_range(self, cleaned: dict[str, Any]) -> None:
        form: forms.Form = self  # type: ignore[assignment]
        date_from: dt.date | None = cleaned.get("date_from")
        date_to: dt.date | None = cleaned.get("date_to")
        if date_from and date_to and date_to < date_from:
            form.add_error("date_to", "The end date must be on or after the start date.")


class ReportFilterForm(BootstrapMixin, DateRangeMixin, forms.Form):
    patient = forms.CharField(
        label="Patient",
        required=False,
        max_length=64,
        help_text="MRN or the patient's record id.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )
    username = forms.CharField(
        label="User",
        required=False,
        max_length=150,
        help_text="Username, exactly.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    action = forms.ChoiceField(
        label="Action", required=False, choices=[("", "Any action"), *Action.choices]
    )
    event = forms.CharField(
        label="Event",
        required=False,
        max_length=60,
        help_text="E.g. patient.view, or auth.* for every sign-in event.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    outcome = forms.ChoiceField(
        label="Outcome", required=False, choices=[("", "Any outcome"), *Outcome.choices]
    )
    date_from = forms.DateField(label="From", required=False, widget=DateInput())
    date_to = forms.DateField(label="To", required=False, widget=DateInput())
    # The current sort (hidden), a new sort asked for by a column header, and the page asked for.
    sort = forms.ChoiceField(
        label="Sort",
        required=False,
        choices=[(s, s) for s in SORT_CHOICES],
        widget=forms.HiddenInput,
    )
    sort_by = forms.ChoiceField(
        label="Sort",
        required=False,
        choices=[(s, s) for s in SORT_CHOICES],
        widget=forms.HiddenInput,
    )
    page = forms.IntegerField(
        label="Page", required=False, min_value=1, max_value=MAX_PAGE, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.patient_ids: tuple[uuid.UUID, ...] = ()
        for name in ("sort", "sort_by"):
            self.fields[name].error_messages["invalid_choice"] = SORT_MESSAGE
        _page_messages(self.fields["page"])

    def clean_patient(self) -> str:
        reference: str = self.cleaned_data["patient"].strip()
        if reference:
            ids = resolve_patient(reference)
            if ids is None:
                raise forms.ValidationError(
                    "No patient has this MRN. Type an MRN or a patient record id."
                )
            self.patient_ids = ids
        return reference

    def clean_username(self) -> str:
        return str(self.cleaned_data["username"]).strip()

    def clean_event(self) -> str:
        return str(self.cleaned_data["event"]).strip()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.clean_date_range(cleaned)
        return cleaned

    @property
    def used_fields(self) -> tuple[str, ...]:
        return tuple(name for name in REPORT_FILTER_FIELDS if self.cleaned_data.get(name))

    def criteria(self) -> ReportCriteria:
        """The validated filters. A new sort starts again at page 1."""
        data = self.cleaned_data
        new_sort = data.get("sort_by") or ""
        return ReportCriteria(
            patient_ids=self.patient_ids,
            username=data.get("username", ""),
            action=data.get("action", ""),
            event=data.get("event", ""),
            outcome=data.get("outcome", ""),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            sort=new_sort or data.get("sort") or DEFAULT_SORT,
            page=1 if new_sort else (data.get("page") or 1),
            used_fields=self.used_fields,
        )


class BreakGlassFilterForm(BootstrapMixin, DateRangeMixin, forms.Form):
    date_from = forms.DateField(label="From", required=False, widget=DateInput())
    date_to = forms.DateField(label="To", required=False, widget=DateInput())
    page = forms.IntegerField(
        label="Page", required=False, min_value=1, max_value=MAX_PAGE, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _page_messages(self.fields["page"])
        self.fields["date_from"].widget.attrs["autofocus"] = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.clean_date_range(cleaned)
        return cleaned
