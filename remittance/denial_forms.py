"""Forms of the denial queue: validation and inline errors; remittance.denials decides."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from billing.models import DenialCause
from remittance.denials import ARGUMENT_LIMIT, NOTE_LIMIT, REASON_LIMIT, DenialError
from remittance.models import DenialStatus


class StyledForm(forms.Form):
    """Bootstrap classes, `is-invalid` on fields with errors, the error summary
    (templates/includes/form_errors.html) and a service's DenialError put on its field."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select form-select-sm"
            else:
                css = "form-control form-control-sm"
            widget.attrs["class"] = css

    def full_clean(self) -> None:
        super().full_clean()
        self.mark_invalid()

    def mark_invalid(self) -> None:
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = (widget.attrs.get("class", "") + " is-invalid").strip()
                widget.attrs["aria-invalid"] = "true"

    def error_summary(self) -> list[tuple[str, str, str]]:
        rows: list[tuple[str, str, str]] = []
        for name, messages in self.errors.items():
            if name == NON_FIELD_ERRORS or name not in self.fields:
                rows.extend(("", "", str(message)) for message in messages)
                continue
            label = str(self.fields[name].label or name)
            rows.extend((self[name].id_for_label, label, str(message)) for message in messages)
        return rows

    def add_denial_error(self, exc: DenialError) -> None:
        target = exc.field if exc.field in self.fields else None
        self.add_error(target, exc.message)
        self.mark_invalid()


def _blank(label: str, choices: Any) -> list[tuple[str, str]]:
    return [("", label), *((str(v), str(lbl)) for v, lbl in choices)]


class QueueFilterForm(StyledForm):
    """The queue's filters (GET: none of them is PHI)."""

    status = forms.ChoiceField(required=False, choices=_blank("Any status", DenialStatus.choices))
    cause = forms.ChoiceField(required=False, choices=_blank("Any cause", DenialCause.choices))
    payer = forms.ChoiceField(required=False)
    owner = forms.ChoiceField(required=False)
    due_before = forms.DateField(
        required=False,
        label="Due before",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the date as YYYY-MM-DD."},
    )

    def __init__(
        self,
        *args: Any,
        payers: list[tuple[str, str]],
        owners: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["payer"]).choices = [("", "Any payer"), *payers]
        cast(forms.ChoiceField, self.fields["owner"]).choices = [
            ("", "Anyone"),
            ("none", "Nobody yet"),
            *owners,
        ]
        self.fields["status"].widget.attrs["autofocus"] = True


class AssignForm(StyledForm):
    owner = forms.ChoiceField(
        label="Assign to",
        error_messages={
            "required": "Choose who works the denials.",
            "invalid_choice": "Choose someone who can work denials.",
        },
    )
    denials = forms.TypedMultipleChoiceField(
        label="Denials",
        required=True,
        coerce=str,
        widget=forms.MultipleHiddenInput,
        error_messages={"required": "Tick at least one denial to assign."},
    )

    def __init__(self, *args: Any, owners: list[tuple[str, str]], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "assign_%s")  # the queue's filter form has an owner too
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["owner"]).choices = [
            ("", "Choose…"),
            ("none", "Nobody"),
            *owners,
        ]
        data = args[0] if args else kwargs.get("data")
        picked = data.getlist("denials") if data is not None and hasattr(data, "getlist") else []
        cast(forms.ChoiceField, self.fields["denials"]).choices = [(p, p) for p in picked]

    def clean_denials(self) -> list[str]:
        import uuid

        values: list[str] = self.cleaned_data["denials"]
        try:
            return [str(uuid.UUID(v)) for v in values]
        except ValueError:
            raise forms.ValidationError("One of the chosen denials is not valid.") from None


class StatusForm(StyledForm):
    to_status = forms.ChoiceField(
        label="New status",
        choices=[
            ("", "Choose…"),
            (DenialStatus.IN_PROGRESS, DenialStatus.IN_PROGRESS.label),
            (DenialStatus.WRITTEN_OFF, DenialStatus.WRITTEN_OFF.label),
            (DenialStatus.CLOSED, DenialStatus.CLOSED.label),
        ],
        error_messages={"required": "Choose the new status."},
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=REASON_LIMIT,
        help_text="Required to write off (no clinical details).",
    )


class NoteForm(StyledForm):
    text = forms.CharField(
        label="Note",
        max_length=NOTE_LIMIT,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write the note first."},
    )


class AppealForm(StyledForm):
    argument = forms.CharField(
        label="Why the claim should be paid",
        max_length=ARGUMENT_LIMIT,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Printed in the letter under the denial's codes.",
        error_messages={"required": "Write why the claim should be paid."},
    )


class ResubmitForm(StyledForm):
    note = forms.CharField(
        label="What was corrected",
        required=False,
        max_length=REASON_LIMIT,
    )
