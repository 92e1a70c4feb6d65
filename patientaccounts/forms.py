"""Forms of the patient-account screens: they shape and check input; services write."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone

from core.capabilities import Capability
from core.models import Location
from patientaccounts.models import (
    DisputeReason,
    DisputeStatus,
    PaymentMethod,
    PaymentPlan,
)

if TYPE_CHECKING:
    from accounts.models import User


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def money_field(label: str, **kwargs: Any) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        max_digits=12,
        decimal_places=2,
        min_value=0.01,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
        error_messages={
            "required": f"Enter the {label.lower()}.",
            "invalid": f"{label} must be a number such as 25.00.",
            "min_value": f"{label} must be more than zero.",
            "max_decimal_places": f"{label} must be in whole cents (two decimals at most).",
            "max_digits": f"{label} is too large.",
        },
        **kwargs,
    )


class AccountForm(forms.Form):
    """Bootstrap classes, `is-invalid` on fields with errors, a summary and service errors."""

    autofocus: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            widget = field.widget
            if isinstance(widget, forms.HiddenInput):
                continue
            css = "form-select form-select-sm" if isinstance(widget, forms.Select) else None
            widget.attrs["class"] = css or "form-control form-control-sm"
            if name == self.autofocus:
                widget.attrs["autofocus"] = True

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = (widget.attrs.get("class", "") + " is-invalid").strip()

    def error_summary(self) -> list[tuple[str, str, str]]:
        rows: list[tuple[str, str, str]] = []
        for name, messages in self.errors.items():
            if name == NON_FIELD_ERRORS or name not in self.fields:
                rows.extend(("", "", str(message)) for message in messages)
                continue
            label = str(self.fields[name].label or name)
            rows.extend((self[name].id_for_label, label, str(message)) for message in messages)
        return rows

    def add_service_errors(self, exc: ValidationError) -> None:
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)
            return
        for name, errors in exc.error_dict.items():
            messages = [message for error in errors for message in error.messages]
            target = name if name in self.fields and name not in self.errors else None
            self.add_error(target, messages)
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                if "is-invalid" not in widget.attrs.get("class", ""):
                    widget.attrs["class"] = (widget.attrs.get("class", "") + " is-invalid").strip()


class PaymentForm(AccountForm):
    autofocus = "amount"

    amount = money_field("Amount")
    method = forms.ChoiceField(
        label="Method",
        choices=PaymentMethod.choices,
        error_messages={
            "required": "Choose the payment method.",
            "invalid_choice": "Choose a listed method.",
        },
    )
    reference = forms.CharField(
        label="Reference",
        required=False,
        max_length=60,
        help_text="Check number; for cards only the last 4 digits and the authorisation code.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    paid_by = forms.CharField(label="Paid by (if not the patient)", required=False, max_length=120)
    plan = forms.ModelChoiceField(
        label="Apply to payment plan",
        queryset=PaymentPlan.objects.none(),
        required=False,
        empty_label="No plan",
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args: Any, plans: Any = None, **kwargs: Any) -> None:
        initial = kwargs.setdefault("initial", {})
        initial.setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        field = self.fields["plan"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101  (narrowing)
        if plans is not None:
            field.queryset = plans
        else:
            del self.fields["plan"]
        self.fields["method"].widget.attrs["accesskey"] = "m"


class RefundRequestForm(AccountForm):
    autofocus = "amount"

    amount = money_field("Amount")
    method = forms.ChoiceField(label="Refund by", choices=PaymentMethod.choices)
    reason = forms.CharField(
        label="Reason",
        max_length=300,
        error_messages={"required": "Enter the reason for the refund."},
    )


class RefundDecisionForm(AccountForm):
    note = forms.CharField(label="Note", required=False, max_length=300)


class PaymentPlanForm(AccountForm):
    autofocus = "total"

    total = money_field("Total")
    instalment_amount = money_field("Instalment amount")
    start_date = forms.DateField(
        label="First instalment due",
        widget=DateInput(),
        error_messages={"required": "Enter the first due date.", "invalid": "Enter a valid date."},
    )


class StatementRunForm(AccountForm):
    autofocus = "statement_date"

    statement_date = forms.DateField(
        label="Statement date",
        widget=DateInput(),
        error_messages={"required": "Enter the statement date.", "invalid": "Enter a valid date."},
    )
    location = forms.ModelChoiceField(
        label="Location", queryset=Location.objects.none(), empty_label=None
    )
    message = forms.CharField(label="Message on the statements", required=False, max_length=300)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("statement_date", timezone.localdate())
        super().__init__(*args, **kwargs)
        field = self.fields["location"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101
        field.queryset = Location.objects.filter(pk__in=user.location_ids)


class DepositReportForm(AccountForm):
    autofocus = "day"

    day = forms.DateField(
        label="Day",
        widget=DateInput(),
        error_messages={"required": "Enter the day.", "invalid": "Enter a valid date."},
    )
    location = forms.ModelChoiceField(
        label="Location",
        queryset=Location.objects.none(),
        empty_label=None,
        to_field_name="code",
        error_messages={"invalid_choice": "Choose one of your locations."},
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["location"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101
        field.queryset = Location.objects.filter(pk__in=user.location_ids)


def dispute_owner_choices(user: User) -> Any:
    from accounts.models import User as UserModel

    staff = UserModel.objects.filter(is_active=True, locations__in=user.location_ids).distinct()
    return [u for u in staff.prefetch_related("roles") if u.can(Capability.MANAGE_DISPUTES)]


class DisputeForm(AccountForm):
    autofocus = "reason"

    reason = forms.ChoiceField(label="Reason", choices=DisputeReason.choices)
    disputed_amount = money_field("Disputed amount")
    details = forms.CharField(
        label="Details", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )


class DisputeUpdateForm(AccountForm):
    status = forms.ChoiceField(label="Status", choices=DisputeStatus.choices)
    owner = forms.TypedChoiceField(label="Owner", coerce=int, required=False)
    resolution = forms.CharField(
        label="Resolution",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owners = {u.pk: u for u in dispute_owner_choices(user)}
        field = self.fields["owner"]
        assert isinstance(field, forms.TypedChoiceField)  # noqa: S101
        field.choices = [
            ("", "—"),
            *((pk, u.get_full_name() or u.get_username()) for pk, u in self.owners.items()),
        ]

    def owner_user(self) -> Any:
        pk = self.cleaned_data.get("owner")
        return self.owners.get(pk) if pk else None


class DisputeNoteForm(AccountForm):
    autofocus = "text"

    text = forms.CharField(
        label="Note",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Enter the note."},
    )
