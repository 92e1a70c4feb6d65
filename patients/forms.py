"""Forms for the patient screens. Validation names the field and the problem; writes go through
patients.services (the forms only shape and check the input)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from core.models import Location
from core.text import digits, fold
from patients.models import (
    US_STATES,
    ContactMethod,
    Coverage,
    FlagKind,
    FlagSeverity,
    Patient,
    PatientFlag,
    Relationship,
)
from patients.mrn import is_valid_mrn
from patients.selectors import SearchCriteria, criteria_from_text
from patients.services import COVERAGE_FIELDS, FLAG_DEFAULT_SEVERITY, PATIENT_FIELDS
from patients.validators import normalize_phone

if TYPE_CHECKING:
    from accounts.models import User

DATE_INPUT_FORMATS = ["%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y"]
COMMON_LANGUAGES = [
    "English", "Spanish", "Chinese (Mandarin)", "Chinese (Cantonese)", "Tagalog", "Vietnamese",
    "Arabic", "French", "Korean", "Russian", "Haitian Creole", "Portuguese", "Polish",
    "American Sign Language",
]  # fmt: skip


class DateInput(forms.DateInput):
    """The browser's date picker; the server also accepts MM/DD/YYYY typed by hand."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class BootstrapFormMixin:
    """Bootstrap classes on every widget, `is-invalid` on fields with errors, and error helpers.

    Labels, help texts and `aria-describedby`/`aria-invalid` come from Django's BoundField; the
    markup is in templates/includes/field.html.
    """

    fields: dict[str, forms.Field]
    errors: Any
    prefix: str | None

    def style_widgets(self) -> None:
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.CheckboxSelectMultiple | forms.RadioSelect):
                css = ""
            elif isinstance(widget, forms.Select):
                css = "form-select form-select-sm"
            else:
                css = "form-control form-control-sm"
            if css:
                widget.attrs["class"] = css

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = (widget.attrs.get("class", "") + " is-invalid").strip()

    def error_once(self, name: str, message: str) -> None:
        """Add `message` to a field unless it already shows an error."""
        if name not in self.errors:
            self.add_error(name, message)  # type: ignore[attr-defined]

    def error_summary(self) -> list[tuple[str, str, str]]:
        """(anchor id, field label, message) for the summary at the top of the page."""
        rows: list[tuple[str, str, str]] = []
        for name, messages in self.errors.items():
            if name == NON_FIELD_ERRORS:
                rows.extend(("", "", message) for message in messages)
                continue
            bound = self[name]  # type: ignore[index]
            label = str(self.fields[name].label or name)
            rows.extend((bound.id_for_label, label, message) for message in messages)
        return rows

    def add_service_errors(self, exc: ValidationError, prefix: str = "") -> None:
        """Place a service's ValidationError on the matching fields (the rest on the form)."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)  # type: ignore[attr-defined]
            return
        for name, errors in exc.error_dict.items():
            field = name[len(prefix) :] if prefix and name.startswith(prefix) else name
            messages = [message for error in errors for message in error.messages]
            target = field if field in self.fields and field not in self.errors else None
            self.add_error(target, messages)  # type: ignore[attr-defined]


class PatientForm(BootstrapFormMixin, forms.ModelForm):
    """Demographics, contact, consent, emergency contact and guarantor (edit and registration)."""

    class Meta:
        model = Patient
        fields = PATIENT_FIELDS
        widgets = {
            "birth_date": DateInput(),
            "phone_mobile": forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
            "phone_home": forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
            "emergency_contact_phone": forms.TextInput(attrs={"type": "tel"}),
            "guarantor_phone": forms.TextInput(attrs={"type": "tel"}),
            "email": forms.EmailInput(attrs={"autocomplete": "off"}),
            "preferred_language": forms.TextInput(attrs={"list": "language-list"}),
            "guarantor_address": forms.TextInput(),
        }
        labels = {
            "family_name": "Legal family name",
            "given_name": "Legal given name",
            "sex_at_birth": "Sex assigned at birth",
            "address_line1": "Street address",
            "address_line2": "Apartment, suite, unit",
            "postal_code": "ZIP code",
            "phone_mobile": "Mobile phone",
            "phone_home": "Home phone",
            "interpreter_needed": "Needs an interpreter",
            "consent_sms": "Consents to text messages (SMS)",
            "consent_email": "Consents to email",
            "emergency_contact_name": "Emergency contact name",
            "emergency_contact_relationship": "Relationship to patient",
            "emergency_contact_phone": "Emergency contact phone",
            "guarantor_relationship": "Guarantor (responsible party)",
            "guarantor_name": "Guarantor name",
            "guarantor_phone": "Guarantor phone",
            "guarantor_address": "Guarantor address",
        }
        help_texts = {
            "preferred_name": "What the patient likes to be called, if not the legal name.",
            "guarantor_relationship": "Who pays the bills: the patient (self) or someone else.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["birth_date"].input_formats = DATE_INPUT_FORMATS  # type: ignore[attr-defined]
        state: Any = self.fields["state"]
        state.choices = [("", "Choose a state…"), *US_STATES]
        for name in ("gender_identity",):
            choice_field: Any = self.fields[name]
            choice_field.choices = [("", "—"), *list(choice_field.choices)[1:]]
        self.fields["sex_at_birth"].choices = [  # type: ignore[attr-defined]
            ("", "Choose…"),
            *[c for c in self.fields["sex_at_birth"].choices if c[0]],  # type: ignore[attr-defined]
        ]
        for name in ("family_name", "given_name"):
            self.fields[name].widget.attrs["autocomplete"] = "off"
        self.style_widgets()

    def _clean_phone(self, name: str) -> str:
        try:
            return normalize_phone(self.cleaned_data.get(name, ""))
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc

    def clean_phone_mobile(self) -> str:
        return self._clean_phone("phone_mobile")

    def clean_phone_home(self) -> str:
        return self._clean_phone("phone_home")

    def clean_emergency_contact_phone(self) -> str:
        return self._clean_phone("emergency_contact_phone")

    def clean_guarantor_phone(self) -> str:
        return self._clean_phone("guarantor_phone")

    def clean_email(self) -> str:
        return (self.cleaned_data.get("email") or "").strip().lower()

    def _clean_name(self, name: str) -> str:
        value = " ".join((self.cleaned_data.get(name) or "").split())
        if value and not fold(value):
            raise ValidationError("A name needs at least one letter.")
        return value

    def clean_family_name(self) -> str:
        return self._clean_name("family_name")

    def clean_given_name(self) -> str:
        return self._clean_name("given_name")

    def clean_preferred_name(self) -> str:
        return self._clean_name("preferred_name")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # noqa: S101
        self._check_address(data)
        self._check_contact(data)
        self._check_related_people(data)
        return data

    def _check_address(self, data: Mapping[str, Any]) -> None:
        parts = ("address_line1", "city", "state", "postal_code")
        given = [name for name in (*parts, "address_line2") if data.get(name)]
        if given:
            for name in parts:
                if not data.get(name):
                    label = self.fields[name].label
                    self.error_once(name, f"{label} is needed for a complete address.")

    def _check_contact(self, data: Mapping[str, Any]) -> None:
        method = data.get("preferred_contact")
        if data.get("consent_sms") and not data.get("phone_mobile"):
            self.error_once("phone_mobile", "Text messages need a mobile number.")
        if data.get("consent_email") and not data.get("email"):
            self.error_once("email", "Email consent needs an email address.")
        problems = {
            ContactMethod.SMS: (
                not (data.get("phone_mobile") and data.get("consent_sms")),
                "Text messages need a mobile number and the patient's consent to SMS.",
            ),
            ContactMethod.EMAIL: (
                not (data.get("email") and data.get("consent_email")),
                "Email needs an address and the patient's consent to email.",
            ),
            ContactMethod.PHONE: (
                not (data.get("phone_mobile") or data.get("phone_home")),
                "Phone calls need a mobile or home number; or choose another contact method.",
            ),
            ContactMethod.MAIL: (
                not (data.get("address_line1") and data.get("postal_code")),
                "Letters need a complete address.",
            ),
        }
        if method in problems and problems[method][0]:
            self.error_once("preferred_contact", problems[method][1])

    def _check_related_people(self, data: Mapping[str, Any]) -> None:
        name, phone = data.get("emergency_contact_name"), data.get("emergency_contact_phone")
        if name and not phone:
            self.error_once("emergency_contact_phone", "Add a phone number for the contact.")
        if (phone or data.get("emergency_contact_relationship")) and not name:
            self.error_once("emergency_contact_name", "Add the emergency contact's name.")
        someone_else = data.get("guarantor_relationship") not in (None, "", Relationship.SELF)
        if someone_else and not data.get("guarantor_name"):
            self.error_once("guarantor_name", "Name the guarantor when it is not the patient.")

    def patient_values(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in PATIENT_FIELDS}


ALERT_CHOICES = [(kind.value, kind.label) for kind in FlagKind]


class RegistrationForm(PatientForm):
    """Registration: the patient's fields, the home location and the alerts to raise."""

    home_location = forms.ModelChoiceField(
        queryset=Location.objects.none(),
        label="Home location",
        empty_label="Choose a location…",
        help_text="The patient's home clinic; only staff of this location see the record.",
    )
    alerts = forms.MultipleChoiceField(
        choices=ALERT_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Alerts shown on every screen about this patient",
    )
    alert_note = forms.CharField(
        max_length=200,
        required=False,
        label="Alert note",
        help_text="Short, non-clinical: e.g. which allergy, or what 'Other' means.",
    )
    confirm_not_duplicate = forms.BooleanField(required=False, widget=forms.HiddenInput)

    field_order = ["home_location", *PATIENT_FIELDS]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        locations = Location.objects.filter(id__in=user.location_ids, is_active=True)
        home: Any = self.fields["home_location"]
        home.queryset = locations
        only = list(locations[:2])
        if len(only) == 1:
            self.initial.setdefault("home_location", only[0].pk)
        self.fields["family_name"].widget.attrs["autofocus"] = True
        self.style_widgets()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if FlagKind.OTHER in data.get("alerts", []) and not data.get("alert_note"):
            self.add_error("alert_note", "Say what the 'Other' alert is about.")
        return data

    def flags(self) -> list[tuple[str, str, str]]:
        note = self.cleaned_data.get("alert_note", "")
        return [
            (kind, FLAG_DEFAULT_SEVERITY.get(kind, FlagSeverity.WARNING), note)
            for kind in self.cleaned_data.get("alerts", [])
        ]


# The coverage form's fields: exactly what patients.services.coverage_save takes (including the
# Medicare secondary payer type, 837P SBR05).
COVERAGE_FORM_FIELDS: tuple[str, ...] = COVERAGE_FIELDS


class CoverageForm(BootstrapFormMixin, forms.ModelForm):
    """One insurance coverage (add and edit; the registration form uses it for the primary)."""

    class Meta:
        model = Coverage
        fields = COVERAGE_FORM_FIELDS
        widgets = {
            "subscriber_birth_date": DateInput(),
            "effective_start": DateInput(),
            "effective_end": DateInput(),
        }
        labels = {
            "payer_name": "Payer (insurance company)",
            "payer_identifier": "Payer id",
            "member_id": "Member id",
            "relationship": "Patient's relationship to subscriber",
            "effective_start": "Effective from",
            "effective_end": "Effective until",
            "order": "Order of benefits",
            "is_active": "Active",
            "medicare_secondary_type": "Medicare secondary payer type",
        }
        help_texts = {
            "subscriber_name": "The policy holder, when it is not the patient.",
            "effective_end": "Leave empty while the coverage is open-ended.",
            "medicare_secondary_type": (
                "Needed only when this coverage is Medicare and Medicare is not the primary "
                "payer (order of benefits secondary or tertiary): the reason another payer pays "
                "first. Claims to Medicare as a secondary payer are stopped at scrubbing "
                "without it. Leave empty otherwise."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("subscriber_birth_date", "effective_start", "effective_end"):
            self.fields[name].input_formats = DATE_INPUT_FORMATS  # type: ignore[attr-defined]
        self.style_widgets()

    def clean_member_id(self) -> str:
        value = (self.cleaned_data.get("member_id") or "").strip()
        if value and not fold(value):
            raise ValidationError("A member id needs letters or digits.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # noqa: S101
        start, end = data.get("effective_start"), data.get("effective_end")
        if start and end and end < start:
            self.add_error("effective_end", "The end date is before the start date.")
        someone_else = data.get("relationship") not in (None, "", Relationship.SELF)
        if someone_else and not data.get("subscriber_name"):
            self.error_once("subscriber_name", "Name the subscriber (the policy holder).")
        if data.get("medicare_secondary_type") and data.get("order") == Coverage.Order.PRIMARY:
            self.error_once(
                "medicare_secondary_type",
                "A primary coverage has no Medicare secondary payer type: leave it empty, or "
                "set the order of benefits to secondary or tertiary.",
            )
        return data

    def coverage_values(self) -> dict[str, Any]:
        """The values for coverage_save (the service takes exactly the form's fields)."""
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class PrimaryCoverageForm(CoverageForm):
    """The optional primary coverage on the registration form: left empty, it is skipped."""

    class Meta(CoverageForm.Meta):
        fields = tuple(
            name
            for name in COVERAGE_FIELDS
            if name not in ("order", "is_active", "medicare_secondary_type")
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "coverage")
        kwargs.setdefault("empty_permitted", True)
        kwargs.setdefault("use_required_attribute", False)
        super().__init__(*args, **kwargs)

    def is_filled(self) -> bool:
        return self.is_bound and self.has_changed()

    def coverage_values(self) -> dict[str, Any]:
        values = super().coverage_values()
        values.update(order=Coverage.Order.PRIMARY, is_active=True)
        return values


class FlagForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = PatientFlag
        fields = ("kind", "severity", "note")
        labels = {"kind": "Alert", "note": "Note"}
        help_texts = {"note": "Short and non-clinical; staff see it beside the alert."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].widget.attrs["autofocus"] = True
        self.style_widgets()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # noqa: S101
        if data.get("kind") == FlagKind.OTHER and not (data.get("note") or "").strip():
            self.add_error("note", "Say what the 'Other' alert is about.")
        return data


class BreakGlassForm(BootstrapFormMixin, forms.Form):
    reason = forms.CharField(
        label="Reason for emergency access",
        min_length=10,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "autofocus": True}),
        help_text=(
            "Required. Say why you need this record now (e.g. 'patient arrived unconscious, "
            "transferred from Riverside'). The privacy officer reviews every access."
        ),
        error_messages={"min_length": "Write at least 10 characters saying why."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style_widgets()


def _mrn_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=12,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


def _clean_mrn(value: str) -> str:
    value = (value or "").strip()
    if not value.isdigit():
        raise ValidationError("An MRN has digits only.")
    if not is_valid_mrn(value):
        raise ValidationError("The check digit does not match: check the number.")
    return value


class MergeLookupForm(BootstrapFormMixin, forms.Form):
    """Step 1 of a merge: the two records, by MRN."""

    mrn_a = _mrn_field("MRN of the first record")
    mrn_b = _mrn_field("MRN of the second record")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mrn_a"].widget.attrs["autofocus"] = True
        self.style_widgets()

    def clean_mrn_a(self) -> str:
        return _clean_mrn(self.cleaned_data.get("mrn_a", ""))

    def clean_mrn_b(self) -> str:
        return _clean_mrn(self.cleaned_data.get("mrn_b", ""))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # noqa: S101
        if data.get("mrn_a") and data.get("mrn_a") == data.get("mrn_b"):
            self.add_error("mrn_b", "Enter two different MRNs.")
        return data


class MergeConfirmForm(MergeLookupForm):
    """Step 2: which record survives, and why they are the same person."""

    survivor = forms.ChoiceField(
        label="Record to keep",
        choices=[("a", "First record"), ("b", "Second record")],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label="Why are these the same person?",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="e.g. 'same person, registered twice with a misspelt name; confirmed by ID'.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mrn_a"].widget = forms.HiddenInput()
        self.fields["mrn_b"].widget = forms.HiddenInput()


class SearchForm(BootstrapFormMixin, forms.Form):
    """The patient search box and its advanced fields. Sent by POST: criteria are PHI."""

    q = forms.CharField(
        label="Find a patient",
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "autocomplete": "off",
                "spellcheck": "false",
                "placeholder": "Name, DOB, MRN, phone or member id",
            }
        ),
        help_text="smith · smith, jo · jo smith · 04/12/1980 · MRN · phone · member id",
    )
    birth_date = forms.DateField(
        label="Date of birth", required=False, input_formats=DATE_INPUT_FORMATS, widget=DateInput()
    )
    mrn = forms.CharField(label="MRN", required=False, max_length=12)
    phone = forms.CharField(
        label="Phone", required=False, max_length=30, widget=forms.TextInput(attrs={"type": "tel"})
    )
    member_id = forms.CharField(label="Member id", required=False, max_length=40)
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)

    MIN_NAME_LETTERS = 2

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style_widgets()
        box = self.fields["q"].widget
        box.attrs["class"] = "form-control"
        box.attrs["data-search-box"] = ""
        box.attrs["autofocus"] = True
        for name in ("mrn", "member_id"):
            self.fields[name].widget.attrs["autocomplete"] = "off"

    def clean_mrn(self) -> str:
        value = (self.cleaned_data.get("mrn") or "").strip()
        return _clean_mrn(value) if value else ""

    def clean_phone(self) -> str:
        value = (self.cleaned_data.get("phone") or "").strip()
        if value and len(digits(value)) < 10:
            raise ValidationError("Enter the full phone number with its area code.")
        return digits(value)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # noqa: S101
        try:
            self.criteria = criteria_from_text(data.get("q", ""))
        except ValidationError as exc:
            self.add_error("q", exc.messages)
            return data
        criteria = self.criteria
        if data.get("birth_date"):
            criteria.birth_date = data["birth_date"]
        for name in ("mrn", "phone", "member_id"):
            if data.get(name):
                setattr(criteria, name, data[name].strip())
        return data

    def get_criteria(self) -> SearchCriteria:
        return self.criteria

    def is_too_short(self) -> bool:
        """Only a name of fewer than two letters: wait for more typing."""
        criteria = self.criteria
        others = (criteria.birth_date, criteria.mrn, criteria.phone, criteria.member_id)
        return not any(others) and len(fold(criteria.name)) < self.MIN_NAME_LETTERS

    @property
    def page_number(self) -> int:
        return self.cleaned_data.get("page") or 1
