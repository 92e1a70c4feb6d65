"""Billing forms: validation and inline errors; the services decide the rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django import forms
from django.urls import reverse_lazy

from billing import icd10
from billing.models import (
    ClaimStatus,
    FeeSchedule,
    FeeScheduleEntry,
    Payer,
    PlaceOfService,
)
from billing.scrub_rules import PROCEDURE_CODE
from billing.services import MAX_DIAGNOSES, BillingError

NON_FIELD = "__all__"


class StyledMixin:
    """Bootstrap classes, `is-invalid` on fields with errors, the error summary
    (templates/includes/form_errors.html) and a service's BillingError put on its field."""

    fields: dict[str, forms.Field]
    errors: Any
    service_field_map: dict[str, str] = {}

    def style(self) -> None:
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select form-select-sm"
            else:
                css = "form-control form-control-sm"
            widget.attrs["class"] = css

    def mark_invalid(self) -> None:
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = (widget.attrs.get("class", "") + " is-invalid").strip()
                widget.attrs["aria-invalid"] = "true"

    def error_summary(self) -> list[tuple[str, str, str]]:
        rows: list[tuple[str, str, str]] = []
        for name, messages in self.errors.items():
            if name == NON_FIELD or name not in self.fields:
                rows.extend(("", "", str(message)) for message in messages)
                continue
            label = str(self.fields[name].label or name)
            bound = self[name]  # type: ignore[index]
            rows.extend((bound.id_for_label, label, str(message)) for message in messages)
        return rows

    def add_billing_error(self, exc: BillingError) -> None:
        name = self.service_field_map.get(exc.field, exc.field)
        target = name if name in self.fields else None
        message = exc.message if target else f"{exc.field.replace('_', ' ')}: {exc.message}"
        self.add_error(target, message)  # type: ignore[attr-defined]
        self.mark_invalid()


class StyledForm(StyledMixin, forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style()

    def full_clean(self) -> None:
        super().full_clean()
        self.mark_invalid()


class StyledModelForm(StyledMixin, forms.ModelForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style()

    def full_clean(self) -> None:
        super().full_clean()
        self.mark_invalid()


def _place_choices() -> list[tuple[str, str]]:
    return [(p.code, f"{p.code} {p.name}") for p in PlaceOfService.objects.filter(is_active=True)]


class EncounterForm(StyledForm):
    date_of_service = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    rendering_practitioner = forms.ChoiceField(label="Rendering practitioner")
    place_of_service = forms.ChoiceField(initial="11")
    appointment = forms.ChoiceField(required=False, label="Visit (optional)")

    def __init__(
        self,
        *args: Any,
        practitioners: list[tuple[str, str]],
        appointments: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        for position in range(1, MAX_DIAGNOSES + 1):
            self.fields[f"dx{position}"] = forms.CharField(
                required=position == 1,
                max_length=8,
                label=f"Diagnosis {position}",
                widget=forms.TextInput(
                    attrs={
                        "hx-post": reverse_lazy("billing:icd10_check"),
                        "hx-trigger": "change",
                        "hx-target": f"#dx{position}-check",
                        "hx-swap": "innerHTML",
                        "autocomplete": "off",
                    }
                ),
            )
        cast("forms.ChoiceField", self.fields["rendering_practitioner"]).choices = practitioners
        cast("forms.ChoiceField", self.fields["place_of_service"]).choices = _place_choices()
        cast("forms.ChoiceField", self.fields["appointment"]).choices = [
            ("", "No appointment"),
            *appointments,
        ]
        self.fields["date_of_service"].widget.attrs["autofocus"] = "autofocus"
        self.style()
        for position in range(1, MAX_DIAGNOSES + 1):
            self.fields[f"dx{position}"].widget.attrs["class"] += " font-monospace"
        self.service_field_map = {
            f"diagnoses.{n}": f"dx{n}" for n in range(1, MAX_DIAGNOSES + 1)
        } | {"diagnoses": "dx1"}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for position in range(1, MAX_DIAGNOSES + 1):
            name = f"dx{position}"
            raw = (data.get(name) or "").strip()
            if raw:
                reason = icd10.why_not_billable(raw)
                if reason:
                    self.add_error(name, reason)
        return data

    def diagnosis_fields(self) -> list[Any]:
        return [self[f"dx{n}"] for n in range(1, MAX_DIAGNOSES + 1)]

    def diagnoses(self) -> list[str]:
        return [
            self.cleaned_data[f"dx{n}"]
            for n in range(1, MAX_DIAGNOSES + 1)
            if self.cleaned_data.get(f"dx{n}")
        ]


class CodeCheckForm(forms.Form):
    """One diagnosis field posted by htmx as the user leaves it (any dxN name)."""

    def code(self, data: Any) -> str:
        for position in range(1, MAX_DIAGNOSES + 1):
            value = str(data.get(f"dx{position}", "")).strip()
            if value:
                return value[:10]
        return ""


class ChargeLineForm(StyledForm):
    code = forms.CharField(label="CPT/HCPCS code", max_length=5)
    modifier1 = forms.CharField(required=False, max_length=2, label="Modifier 1")
    modifier2 = forms.CharField(required=False, max_length=2, label="Modifier 2")
    modifier3 = forms.CharField(required=False, max_length=2, label="Modifier 3")
    modifier4 = forms.CharField(required=False, max_length=2, label="Modifier 4")
    units = forms.DecimalField(
        initial=1, min_value=Decimal("0.001"), max_digits=9, decimal_places=3
    )
    pointer1 = forms.IntegerField(initial=1, min_value=1, max_value=12, label="Pointer 1")
    pointer2 = forms.IntegerField(required=False, min_value=1, max_value=12, label="Pointer 2")
    pointer3 = forms.IntegerField(required=False, min_value=1, max_value=12, label="Pointer 3")
    pointer4 = forms.IntegerField(required=False, min_value=1, max_value=12, label="Pointer 4")
    amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=2,
        label="Charge (blank: fee schedule)",
    )
    override_reason = forms.CharField(required=False, max_length=200, label="Reason for override")
    service_date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Service date"
    )

    service_field_map = {"modifiers": "modifier1", "pointers": "pointer1"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].widget.attrs.update({"autofocus": "autofocus", "accesskey": "a"})

    def clean_code(self) -> str:
        code = (self.cleaned_data.get("code") or "").strip().upper()
        if not PROCEDURE_CODE.match(code):
            raise forms.ValidationError(f"{code or 'This'} is not a CPT/HCPCS code (e.g. 99213).")
        return code


class CorrectForm(StyledForm):
    reason = forms.CharField(max_length=200, label="Reason for the correction")


class NoteForm(StyledForm):
    note = forms.CharField(required=False, max_length=200, label="Note")


class TransitionForm(StyledForm):
    to_status = forms.ChoiceField(choices=ClaimStatus.choices, label="New status")
    note = forms.CharField(required=False, max_length=200, label="Note")


class ClaimFilterForm(forms.Form):
    """GET filter: status and payer only (no patient data in the URL)."""

    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *ClaimStatus.choices])
    payer = forms.ModelChoiceField(
        required=False,
        queryset=Payer.objects.all(),
        to_field_name="public_id",
        empty_label="Any payer",
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=100000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select form-select-sm"
        self.fields["page"].widget = forms.HiddenInput()

    def value(self, name: str) -> Any:
        if not self.is_valid():
            return self.cleaned_data.get(name) if name not in self.errors else None
        return self.cleaned_data.get(name)


class PayerForm(StyledModelForm):
    class Meta:
        model = Payer
        fields = [
            "name",
            "payer_id",
            "claim_filing_indicator",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "postal_code",
            "phone",
            "timely_filing_days",
            "appeal_days",
            "is_active",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs["autofocus"] = "autofocus"

    def clean_payer_id(self) -> str:
        value = (self.cleaned_data.get("payer_id") or "").strip()
        if not value.replace("-", "").isalnum():
            raise forms.ValidationError("A payer id holds letters and digits only.")
        return value


class FeeScheduleForm(StyledModelForm):
    class Meta:
        model = FeeSchedule
        fields = ["name", "payer", "effective_start", "effective_end"]
        widgets = {
            "effective_start": forms.DateInput(attrs={"type": "date"}),
            "effective_end": forms.DateInput(attrs={"type": "date"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        payer = cast("forms.ModelChoiceField[Payer]", self.fields["payer"])
        payer.empty_label = "Default (self-pay and fallback)"
        self.fields["payer"].required = False
        self.fields["name"].widget.attrs["autofocus"] = "autofocus"


class FeeEntryForm(StyledModelForm):
    class Meta:
        model = FeeScheduleEntry
        fields = ["code", "modifier", "amount", "description"]
        labels = {"description": "Description (HCPCS Level II only)"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].widget.attrs.update({"autofocus": "autofocus", "accesskey": "a"})

    def clean_code(self) -> str:
        code = (self.cleaned_data.get("code") or "").strip().upper()
        if not PROCEDURE_CODE.match(code):
            raise forms.ValidationError(f"{code or 'This'} is not a CPT/HCPCS code (e.g. 99213).")
        return code

    def clean_modifier(self) -> str:
        return (self.cleaned_data.get("modifier") or "").strip().upper()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        code = data.get("code") or ""
        if code[:1].isdigit() and (data.get("description") or "").strip():
            self.add_error(
                "description",
                "CPT descriptions are licensed by the AMA and are not stored: leave it blank.",
            )
        return data
