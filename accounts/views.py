"""Sign-in, sign-out and two-factor screens."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST


def lockout_response(
    request: HttpRequest, credentials: dict[str, Any], *args: Any, **kw: Any
) -> HttpResponse:
    return render(request, "accounts/locked_out.html", status=403)


login_view = auth_views.LoginView.as_view(
    template_name="accounts/login.html", redirect_authenticated_user=True
)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth import logout

    logout(request)
    return redirect("accounts:login")


@login_required
def otp_verify(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/otp_verify.html")


@login_required
def otp_setup(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/otp_setup.html")
