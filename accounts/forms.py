"""Forms for two-factor codes, API tokens and user administration."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import (
    password_validators_help_texts,
    validate_password,
)

from accounts.models import Role, User
from core.models import Location


class BootstrapMixin:
    """Bootstrap 5 classes on every widget, and `is-invalid` on fields with errors (Django adds
    aria-invalid and aria-describedby pointing at `<id>_error` / `<id>_helptext`)."""

    fields: dict[str, forms.Field]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxSelectMultiple | forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def add_error(self, field: str | None, error: Any) -> None:
        super().add_error(field, error)  # type: ignore[misc]
        for name in self.errors:  # type: ignore[attr-defined]
            if name in self.fields:
                widget = self.fields[name].widget
                if "is-invalid" not in widget.attrs.get("class", ""):
                    widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()


class LoginForm(BootstrapMixin, AuthenticationForm):
    pass


class TotpCodeForm(BootstrapMixin, forms.Form):
    code = forms.CharField(
        label="Six-digit code",
        max_length=9,
        help_text="The code your authenticator app shows now. It changes every 30 seconds.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "size": 9,
                "class": "font-monospace w-auto",
            }
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if len(code) != 6 or not code.isdigit():
            raise forms.ValidationError("Enter the 6 digits shown in your authenticator app.")
        return code


class ApiTokenForm(BootstrapMixin, forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=80,
        help_text="What will use it, e.g. 'scheduling interface'.",
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off"}),
    )


class _UserFieldsForm(BootstrapMixin, forms.Form):
    first_name = forms.CharField(label="First name", max_length=150)
    last_name = forms.CharField(label="Last name", max_length=150)
    email = forms.EmailField(label="Email", required=False)
    roles = forms.ModelMultipleChoiceField(
        label="Roles",
        queryset=Role.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one role."},
    )
    locations = forms.ModelMultipleChoiceField(
        label="Locations",
        queryset=Location.objects.filter(is_active=True).order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The user sees patients whose home location is one of these.",
    )


class UserCreateForm(_UserFieldsForm):
    username = forms.CharField(
        label="Username",
        max_length=150,
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off"}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=" ".join(password_validators_help_texts()),
    )
    password_confirm = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    field_order = [
        "username",
        "first_name",
        "last_name",
        "email",
        "password",
        "password_confirm",
        "roles",
        "locations",
    ]

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        User.username_validator(username)
        return username

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password, again = cleaned.get("password"), cleaned.get("password_confirm")
        if password:
            candidate = User(
                username=cleaned.get("username", ""),
                first_name=cleaned.get("first_name", ""),
                last_name=cleaned.get("last_name", ""),
                email=cleaned.get("email", ""),
            )
            try:
                validate_password(password, user=candidate)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        if password and again and password != again:
            self.add_error("password_confirm", "The two passwords differ.")
        return cleaned


class UserUpdateForm(_UserFieldsForm):
    is_active = forms.BooleanField(
        label="Active (may sign in)",
        required=False,
        help_text="Deactivating ends the user's sessions and API tokens at once.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["first_name"].widget.attrs["autofocus"] = True

    @classmethod
    def for_user(cls, user: User, data: Any = None) -> UserUpdateForm:
        return cls(
            data,
            initial={
                "first_name": user.first_name,
                "last_name": user.last_name,
                "email": user.email,
                "is_active": user.is_active,
                "roles": list(user.roles.all()),
                "locations": list(user.locations.all()),
            },
        )
