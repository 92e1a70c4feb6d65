"""Forms of the scheduling screens. They shape and check the input; the writes go through
scheduling.services and scheduling.availability_services, whose errors land on the same fields.

Dates and times are typed in the location's wall-clock time and turned into aware datetimes
with the location's time zone (never the server's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from core.models import Location
from scheduling.availability import to_utc, zone
from scheduling.models import (
    WEEKDAYS,
    AppointmentType,
    CancelledBy,
    ExceptionKind,
    Practitioner,
    Resource,
)
from scheduling.view_selectors import STEPS


def aware(moment: dt.datetime, location: Location) -> dt.datetime:
    """A wall-clock time typed at the location, as an aware UTC datetime."""
    return to_utc(moment.date(), moment.time(), zone(location.time_zone))


def local_input(moment: dt.datetime, location: Location) -> str:
    """An aware datetime as a datetime-local input value at the location."""
    return moment.astimezone(zone(location.time_zone)).strftime("%Y-%m-%dT%H:%M")


class LocalDateTimeField(forms.Field):
    """A wall-clock date and time (no zone): the browser's datetime-local, or 2030-01-07 09:30
    typed by hand. The form turns it into an aware datetime with the location's zone."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    default_error_messages = {"invalid": "Enter a date and time, e.g. 2030-01-07 09:30."}

    def to_python(self, value: Any) -> dt.datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=None)
        try:
            parsed = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        return parsed.replace(tzinfo=None, second=0, microsecond=0)


class StyledForm(forms.Form):
    """Bootstrap classes on the widgets, `is-invalid` on fields with errors, the error summary
    (templates/includes/form_errors.html) and service errors placed on their fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for bound in self.fields.values():
            widget = bound.widget
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
        """A service's ValidationError on the matching fields (the rest on the form)."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)
            return
        for name, errors in exc.error_dict.items():
            messages = [message for error in errors for message in error.messages]
            target = name if name in self.fields and name not in self.errors else None
            if target is None and messages:
                label = name.replace("_", " ").capitalize()
                messages = [f"{label}: {m}" if name != NON_FIELD_ERRORS else m for m in messages]
            self.add_error(target, messages)


# ---- the calendar's own choices (GET: location, date, step and view; no patient data) ------


class CalendarQueryForm(forms.Form):
    location = forms.UUIDField(required=False)
    date = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
    step = forms.TypedChoiceField(
        required=False, coerce=int, choices=[(s, f"{s} min") for s in STEPS], empty_value=None
    )
    by = forms.ChoiceField(
        required=False, choices=[("practitioner", "Practitioners"), ("room", "Rooms")]
    )
    practitioner = forms.UUIDField(required=False)

    def value(self, name: str, default: Any = None) -> Any:
        """The cleaned value, or `default` when missing or invalid (bad input is ignored)."""
        if not self.is_valid() and name in self.errors:
            return default
        found = self.cleaned_data.get(name) if hasattr(self, "cleaned_data") else None
        return default if found in (None, "") else found


# ---- booking ---------------------------------------------------------------------------------


class PatientPickForm(forms.Form):
    patient_query = forms.CharField(max_length=200, required=False)


class BookingForm(StyledForm):
    patient = forms.UUIDField(
        label="Patient",
        error_messages={
            "required": "Choose a patient: type a name, date of birth or MRN, then pick one.",
            "invalid": "Choose a patient from the list.",
        },
    )
    appointment_type = forms.ModelChoiceField(
        label="Appointment type",
        queryset=AppointmentType.objects.none(),
        to_field_name="public_id",
        empty_label="Choose a type",
    )
    practitioners = forms.ModelMultipleChoiceField(
        label="Practitioners",
        queryset=Practitioner.objects.none(),
        to_field_name="public_id",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one practitioner."},
    )
    start = LocalDateTimeField(label="Start")
    resources = forms.ModelMultipleChoiceField(
        label="Rooms and equipment",
        queryset=Resource.objects.none(),
        to_field_name="public_id",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave empty to pick free ones of the kinds the type needs.",
    )
    reason = forms.CharField(label="Reason for visit", max_length=200, required=False)
    overbook = forms.BooleanField(label="Overbook (double-book on purpose)", required=False)
    overbook_reason = forms.CharField(
        label="Reason for overbooking", max_length=200, required=False
    )

    def __init__(
        self,
        *args: Any,
        location: Location,
        practitioners: Sequence[Practitioner],
        can_overbook: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.location = location
        fields = self.fields
        fields["appointment_type"].queryset = AppointmentType.objects.filter(  # type: ignore[attr-defined]
            is_active=True
        ).order_by("name")
        fields["practitioners"].queryset = Practitioner.objects.filter(  # type: ignore[attr-defined]
            pk__in=[p.pk for p in practitioners]
        ).order_by("family_name", "given_name", "id")
        fields["resources"].queryset = Resource.objects.filter(  # type: ignore[attr-defined]
            location=location, is_active=True
        ).order_by("category", "name", "id")
        self.overbook_offered = can_overbook and any(p.allows_overbooking for p in practitioners)
        if not self.overbook_offered:
            del fields["overbook"], fields["overbook_reason"]
        fields["start"].widget.attrs["step"] = 300

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("overbook") and not (data.get("overbook_reason") or "").strip():
            self.add_error("overbook_reason", "Give a reason for overbooking.")
        return data

    @property
    def start_at(self) -> dt.datetime:
        return aware(self.cleaned_data["start"], self.location)


# ---- an appointment's actions ----------------------------------------------------------------


class RescheduleForm(StyledForm):
    start = LocalDateTimeField(label="New start time")
    practitioner = forms.ModelChoiceField(
        label="Practitioner",
        queryset=Practitioner.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="Keep the current practitioner",
    )

    def __init__(
        self,
        data: Any = None,
        *args: Any,
        location: Location,
        practitioners: Sequence[Practitioner],
        **kwargs: Any,
    ) -> None:
        if data is not None and data.get("slot"):
            # A "next open slot" button: "<local start>|<practitioner public id>".
            start, _, practitioner = str(data["slot"]).partition("|")
            data = data.copy()
            data["start"], data["practitioner"] = start, practitioner
        super().__init__(data, *args, **kwargs)
        self.location = location
        self.fields["practitioner"].queryset = Practitioner.objects.filter(  # type: ignore[attr-defined]
            pk__in=[p.pk for p in practitioners]
        ).order_by("family_name", "given_name", "id")
        self.fields["start"].widget.attrs["step"] = 300

    @property
    def start_at(self) -> dt.datetime:
        return aware(self.cleaned_data["start"], self.location)


class CancelForm(StyledForm):
    cancelled_by = forms.ChoiceField(
        label="Cancelled by", choices=CancelledBy.choices, widget=forms.RadioSelect
    )
    reason = forms.CharField(label="Reason for cancelling", max_length=200)


class CheckInForm(StyledForm):
    insurance_verified = forms.BooleanField(label="Insurance verified", required=False)
    copay_collected = forms.DecimalField(
        label="Copay collected ($)",
        required=False,
        min_value=Decimal("0"),
        max_value=Decimal("9999999.99"),
        max_digits=9,
        decimal_places=2,
        error_messages={"invalid": "Give the amount as a number, e.g. 25.00."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["copay_collected"].widget.attrs.update(
            {"inputmode": "decimal", "step": "0.01", "min": "0"}
        )


class RoomForm(StyledForm):
    room = forms.ModelChoiceField(
        label="Room",
        queryset=Resource.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="No particular room",
    )

    def __init__(self, *args: Any, rooms: Sequence[Resource], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["room"].queryset = Resource.objects.filter(  # type: ignore[attr-defined]
            pk__in=[r.pk for r in rooms]
        ).order_by("name", "id")


# ---- waitlist --------------------------------------------------------------------------------


class WaitlistForm(StyledForm):
    patient = forms.UUIDField(
        label="Patient",
        error_messages={
            "required": "Choose a patient: type a name, date of birth or MRN, then pick one.",
            "invalid": "Choose a patient from the list.",
        },
    )
    appointment_type = forms.ModelChoiceField(
        label="Appointment type",
        queryset=AppointmentType.objects.none(),
        to_field_name="public_id",
        empty_label="Choose a type",
    )
    practitioner = forms.ModelChoiceField(
        label="Practitioner",
        queryset=Practitioner.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="Any practitioner",
    )
    earliest = forms.DateField(
        label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    latest = forms.DateField(
        label="Until", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    preferred_weekdays = forms.TypedMultipleChoiceField(
        label="Preferred days",
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any day.",
    )
    priority = forms.IntegerField(
        label="Priority", min_value=1, max_value=9, initial=5, help_text="1 is the most urgent."
    )
    note = forms.CharField(label="Note", max_length=200, required=False)

    def __init__(
        self, *args: Any, location: Location, practitioners: Sequence[Practitioner], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.location = location
        self.fields["appointment_type"].queryset = AppointmentType.objects.filter(  # type: ignore[attr-defined]
            is_active=True
        ).order_by("name")
        self.fields["practitioner"].queryset = Practitioner.objects.filter(  # type: ignore[attr-defined]
            pk__in=[p.pk for p in practitioners]
        ).order_by("family_name", "given_name", "id")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        earliest, latest = data.get("earliest"), data.get("latest")
        if earliest and latest and latest < earliest:
            self.add_error("latest", "The window must end on or after its first day.")
        return data

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """The first day's local midnight to the end of the last day, at the location."""
        tz = zone(self.location.time_zone)
        earliest, latest = self.cleaned_data["earliest"], self.cleaned_data["latest"]
        return to_utc(earliest, dt.time.min, tz), to_utc(
            latest + dt.timedelta(days=1), dt.time.min, tz
        )


# ---- availability management -----------------------------------------------------------------

_TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class AvailabilityRuleForm(StyledForm):
    start_date = forms.DateField(label="First date", widget=_DATE)
    until_date = forms.DateField(
        label="Last date", required=False, widget=_DATE, help_text="Empty: no end."
    )
    start_time = forms.TimeField(label="From", widget=_TIME)
    end_time = forms.TimeField(label="To", widget=_TIME)
    rrule = forms.CharField(
        label="Repeats (RFC 5545 RRULE)",
        max_length=200,
        initial="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        help_text="e.g. FREQ=WEEKLY;BYDAY=MO,WE,FR or FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
    )
    appointment_types = forms.ModelMultipleChoiceField(
        label="Only these appointment types",
        queryset=AppointmentType.objects.none(),
        to_field_name="public_id",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any type the practitioner takes.",
    )
    is_active = forms.BooleanField(label="In use", required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["appointment_types"].queryset = AppointmentType.objects.filter(  # type: ignore[attr-defined]
            is_active=True
        ).order_by("name")
        self.fields["rrule"].widget.attrs.update({"spellcheck": "false", "autocomplete": "off"})

    def values(self) -> dict[str, Any]:
        names = ("start_date", "until_date", "start_time", "end_time", "rrule", "is_active")
        return {name: self.cleaned_data[name] for name in names}


class OccurrenceForm(StyledForm):
    change = forms.ChoiceField(
        label="This occurrence",
        choices=[
            ("planned", "As the rule plans"),
            ("changed", "Different hours"),
            ("cancelled", "Cancelled"),
        ],
        widget=forms.RadioSelect,
    )
    start_time = forms.TimeField(label="From", required=False, widget=_TIME)
    end_time = forms.TimeField(label="To", required=False, widget=_TIME)
    reason = forms.CharField(label="Reason", max_length=200, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("change") == "changed":
            for name in ("start_time", "end_time"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, "Give the hours of this occurrence.")
        return data


class ExceptionForm(StyledForm):
    kind = forms.ChoiceField(label="Kind", choices=ExceptionKind.choices)
    practitioner = forms.ModelChoiceField(
        label="Practitioner",
        queryset=Practitioner.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="Whole location (holiday)",
    )
    start = LocalDateTimeField(label="From")
    end = LocalDateTimeField(label="Until")
    reason = forms.CharField(label="Reason", max_length=200, help_text="Shown on the calendar.")

    def __init__(
        self, *args: Any, location: Location, practitioners: Sequence[Practitioner], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.location = location
        self.fields["practitioner"].queryset = Practitioner.objects.filter(  # type: ignore[attr-defined]
            pk__in=[p.pk for p in practitioners]
        ).order_by("family_name", "given_name", "id")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error("end", "The end must be after the start.")
        return data

    def span(self) -> tuple[dt.datetime, dt.datetime]:
        return aware(self.cleaned_data["start"], self.location), aware(
            self.cleaned_data["end"], self.location
        )
