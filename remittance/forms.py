"""The 835 upload form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from remittance.services import MAX_UPLOAD_BYTES


class UploadForm(forms.Form):
    file = forms.FileField(
        label="835 file",
        help_text="An X12 5010 835 remittance as received from the payer or clearinghouse.",
        error_messages={
            "required": "Choose the 835 file to upload.",
            "empty": "The file is empty.",
        },
    )
    dry_run = forms.BooleanField(
        label="Dry run: parse and match, post nothing",
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].widget.attrs.update(
            {
                "class": "form-control form-control-sm",
                "autofocus": True,
                "accept": ".835,.txt,.edi,.x12",
            }
        )
        self.fields["dry_run"].widget.attrs["class"] = "form-check-input"

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
            )
        return upload

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


class ResolveForm(forms.Form):
    patient_control_number = forms.CharField(
        label="Our claim's control number",
        max_length=20,
        error_messages={"required": "Enter the control number of the claim this payment is for."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["patient_control_number"].widget.attrs["class"] = "form-control form-control-sm"

    def clean_patient_control_number(self) -> str:
        return str(self.cleaned_data["patient_control_number"]).strip().upper()
