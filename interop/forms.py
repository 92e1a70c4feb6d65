"""The calendar feed form: which practitioner, and what the entries show."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import QuerySet

from interop.models import FeedDetail
from scheduling.models import Practitioner


class PractitionerChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.display_name} ({obj.specialty})"


class FeedTokenForm(forms.Form):
    practitioner = PractitionerChoice(
        label="Practitioner",
        queryset=Practitioner.objects.none(),
        error_messages={
            "required": "Choose the practitioner whose appointments the link shows.",
            "invalid_choice": "Choose a practitioner who works at one of your locations.",
        },
        empty_label="Choose a practitioner",
        to_field_name="public_id",
        widget=forms.Select(attrs={"class": "form-select", "autofocus": True}),
    )
    detail = forms.ChoiceField(
        label="Calendar entries show",
        choices=FeedDetail.choices,
        initial=FeedDetail.INITIALS,
        error_messages={"required": "Choose what the calendar entries show."},
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        help_text="Never names, dates of birth or reasons for visit.",
    )

    def __init__(self, *args: Any, practitioners: QuerySet[Practitioner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["practitioner"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101  (for mypy)
        field.queryset = practitioners

    def full_clean(self) -> None:
        super().full_clean()
        self._mark_invalid()

    def _mark_invalid(self) -> None:
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                if "is-invalid" not in widget.attrs.get("class", ""):
                    widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()

    def error_summary(self) -> list[tuple[str, str, str]]:
        """(anchor id, field label, message) for the summary at the top of the page."""
        rows: list[tuple[str, str, str]] = []
        for name, messages in self.errors.items():
            if name == NON_FIELD_ERRORS:
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
            target = name if name in self.fields else None
            self.add_error(target, [m for error in errors for m in error.messages])
        self._mark_invalid()
