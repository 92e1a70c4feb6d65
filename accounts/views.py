"""Sign-in, sign-out, two-factor, API tokens and user administration screens."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import django_otp
import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import selectors, services
from accounts.forms import (
    ApiTokenForm,
    LoginForm,
    TotpCodeForm,
    UserCreateForm,
    UserUpdateForm,
)
from accounts.models import User
from core.capabilities import Capability


class AuthedRequest(HttpRequest):
    """A request behind @login_required: `user` is a real User."""

    user: User


def _is_verified(request: HttpRequest) -> bool:
    """True once django-otp has a verified device for this session."""
    return getattr(request.user, "otp_device", None) is not None


def _apply_errors(form: Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field where it names one."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(settings.LOGIN_REDIRECT_URL)


# --- Sign-in and sign-out -----------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["timed_out"] = self.request.GET.get("timeout") == "1"
        context["session_capped"] = self.request.GET.get("expired") == "1"
        context["idle_minutes"] = int(settings.SESSION_IDLE_TIMEOUT.total_seconds() // 60)
        context["demo_usernames"] = ()
        if settings.DEMO_MODE:
            from core.demo import DEMO_USERNAMES

            context["demo_usernames"] = DEMO_USERNAMES
        return context


login_view = never_cache(LoginView.as_view())


def lockout_response(
    request: HttpRequest, credentials: dict[str, Any], *args: Any, **kw: Any
) -> HttpResponse:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "accounts/locked_out.html", {"cooloff_minutes": minutes}, status=403)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # flushes the server-side session: the old cookie no longer authenticates
    messages.info(request, "You are signed out.")
    return redirect(settings.LOGOUT_REDIRECT_URL)


# --- Two-factor ---------------------------------------------------------------------------------


def _qr_data_uri(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


def _spaced_base32(device: TOTPDevice) -> str:
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _code_failed(form: TotpCodeForm, result: services.TotpResult) -> None:
    form.add_error(
        "code",
        "Too many wrong codes: wait a few seconds, then enter the newest code."
        if result.throttled
        else "That code is not right. Enter the code your app shows now.",
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def otp_verify(request: AuthedRequest) -> HttpResponse:
    device = selectors.totp_device_confirmed(user=request.user)
    if device is None:
        return redirect("accounts:otp_setup")
    if _is_verified(request):
        return redirect(_next_url(request))
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = services.totp_verify(
            actor=request.user, device=device, token=form.cleaned_data["code"]
        )
        if result.ok:
            request.session.cycle_key()  # a new session id for the elevated session
            django_otp.login(request, device)
            return redirect(_next_url(request))
        _code_failed(form, result)
    context = {"form": form, "next": _next_url(request)}
    return render(request, "accounts/otp_verify.html", context)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def otp_setup(request: AuthedRequest) -> HttpResponse:
    confirmed = selectors.totp_device_confirmed(user=request.user)
    if confirmed is not None and not _is_verified(request):
        # Replacing an authenticator needs the current one first: a password alone is not enough.
        return redirect(f"{reverse('accounts:otp_verify')}?next={reverse('accounts:otp_setup')}")
    device = services.totp_device_pending(user=request.user)
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = services.totp_device_confirm(
            actor=request.user, device=device, token=form.cleaned_data["code"]
        )
        if result.ok:
            request.session.cycle_key()
            django_otp.login(request, TOTPDevice.objects.get(pk=device.pk))
            messages.success(request, "Two-factor sign-in is on for your account.")
            return redirect(_next_url(request))
        _code_failed(form, result)
    context = {
        "form": form,
        "confirmed": confirmed,
        "qr_data_uri": _qr_data_uri(device.config_url),
        "secret": _spaced_base32(device),
        "next": _next_url(request),
    }
    return render(request, "accounts/otp_setup.html", context)


# --- API tokens ---------------------------------------------------------------------------------


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: AuthedRequest) -> HttpResponse:
    can_use_api = request.user.can(Capability.USE_API)
    if request.method == "POST" and not can_use_api:
        raise PermissionDenied("Your roles do not include API access.")
    form = ApiTokenForm(request.POST or None)
    new_token = ""
    if request.method == "POST" and form.is_valid():
        try:
            _, new_token = services.api_token_create(
                actor=request.user, user=request.user, name=form.cleaned_data["name"]
            )
            form = ApiTokenForm()
        except ValidationError as exc:
            _apply_errors(form, exc)
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": selectors.api_token_list(user=request.user),
        "can_use_api": can_use_api,
    }
    return render(request, "accounts/tokens.html", context)


@login_required
@require_POST
def token_revoke(request: AuthedRequest, public_id: uuid.UUID) -> HttpResponse:
    token = selectors.api_token_get_for_user(user=request.user, public_id=public_id)
    services.api_token_revoke(actor=request.user, token=token)
    messages.success(request, f"The token '{token.name}' is revoked: it no longer works.")
    return redirect("accounts:tokens")


# --- User administration ------------------------------------------------------------------------


@login_required
@require_GET
def user_list(request: AuthedRequest) -> HttpResponse:
    users = selectors.user_list(user=request.user)
    return render(request, "accounts/user_list.html", {"users": users})


@login_required
@require_http_methods(["GET", "POST"])
def user_create(request: AuthedRequest) -> HttpResponse:
    if not request.user.can(Capability.MANAGE_USERS):
        raise PermissionDenied
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.user_create(
                actor=request.user,
                username=data["username"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
                password=data["password"],
                roles=data["roles"],
                locations=data["locations"],
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"User {user.username} created.")
            return redirect("accounts:user_list")
    return render(request, "accounts/user_form.html", {"form": form, "subject": None})


@login_required
@require_http_methods(["GET", "POST"])
def user_edit(request: AuthedRequest, public_id: uuid.UUID) -> HttpResponse:
    subject = selectors.user_get_for_admin(user=request.user, public_id=public_id)
    form = UserUpdateForm.for_user(subject, request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields = ("first_name", "last_name", "email", "is_active", "roles", "locations")
        try:
            services.user_update(
                actor=request.user, user=subject, **{k: form.cleaned_data[k] for k in fields}
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"User {subject.username} saved.")
            return redirect("accounts:user_list")
    return render(request, "accounts/user_form.html", {"form": form, "subject": subject})
