"""Bearer-token authentication, session time-outs and the two-factor requirement."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from audit.models import Action, Category, Outcome
from audit.services import record
from core import request_context

Handler = Callable[[HttpRequest], HttpResponse]

SESSION_LOGIN_AT = "pd_login_at"
SESSION_LAST_SEEN = "pd_last_seen"
# Set at sign-in: the user has an authenticator, so this session needs it even if no role does.
SESSION_2FA_ENROLLED = "pd_2fa_enrolled"


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/fhir/"))


def machine_error(
    request: HttpRequest,
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    """An API error: a FHIR OperationOutcome under /fhir/, else RFC 9457 problem+json."""
    if request.path.startswith("/fhir/"):
        code = {401: "login", 403: "forbidden"}.get(status, "processing")
        body: dict[str, object] = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": detail}],
        }
        content_type = "application/fhir+json"
    else:
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        content_type = "application/problem+json"
    return JsonResponse(body, status=status, content_type=content_type, headers=headers)


class BearerTokenMiddleware:
    """`Authorization: Bearer <token>` authenticates API requests with a personal token."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        request.api_token = None  # type: ignore[attr-defined]
        if header.lower().startswith("bearer "):
            from accounts.services import api_token_authenticate

            raw = header[7:].strip()
            token = api_token_authenticate(raw=raw)
            if token is None:
                return machine_error(
                    request,
                    401,
                    "Unauthorized",
                    "The bearer token is invalid, expired or revoked.",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            request.user = token.user
            request.api_token = token  # type: ignore[attr-defined]
            request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
            # A reference to the token row, never any part of the token itself.
            request_context.update(session_ref=f"token:{token.public_id.hex[:10]}")
        return self.get_response(request)


class SessionLimitsMiddleware:
    """Idle time-out (settings.SESSION_IDLE_TIMEOUT) and an absolute cap of 12 hours."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and getattr(request, "api_token", None) is None:
            session = request.session
            request_context.update(
                session_ref=request_context.session_reference(session.session_key)
            )
            now = timezone.now().timestamp()
            login_at = session.get(SESSION_LOGIN_AT, now)
            last_seen = session.get(SESSION_LAST_SEEN, now)
            idle = now - last_seen > settings.SESSION_IDLE_TIMEOUT.total_seconds()
            expired = now - login_at > settings.SESSION_ABSOLUTE_TIMEOUT.total_seconds()
            if idle or expired:
                record(
                    actor=user,
                    action=Action.EXECUTE,
                    event="auth.session_timeout",
                    category=Category.SECURITY,
                    reason="idle time-out" if idle else "12-hour session limit",
                )
                logout(request)
                login_url = f"{reverse(settings.LOGIN_URL)}?{'timeout' if idle else 'expired'}=1"
                if _wants_json(request):
                    return machine_error(
                        request, 401, "Session ended", "Your session has ended. Sign in again."
                    )
                if request.headers.get("HX-Request"):
                    response = HttpResponse("Your session has ended. Sign in again.", status=401)
                    response["HX-Redirect"] = login_url
                    return response
                return redirect(login_url)
            session.setdefault(SESSION_LOGIN_AT, now)
            # Polling requests (htmx triggers marked background) do not count as activity.
            if not request.headers.get("X-Background-Poll"):
                session[SESSION_LAST_SEEN] = now
        return self.get_response(request)


TWO_FACTOR_EXEMPT_URL_NAMES = {"otp_verify", "otp_setup", "logout"}


def _demo_exempt(user: object) -> bool:
    """The demo (settings.DEMO_MODE) relaxes two-factor sign-in for its seeded users only."""
    if not settings.DEMO_MODE:
        return False
    from core.demo import DEMO_USERNAMES

    return getattr(user, "username", None) in DEMO_USERNAMES


class TwoFactorRequiredMiddleware:
    """Users whose roles require 2FA, or who turned it on themselves, reach nothing but the 2FA
    screens until the session is verified."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and getattr(request, "api_token", None) is None
            and (
                getattr(user, "requires_2fa", False)
                or request.session.get(SESSION_2FA_ENROLLED, False)
            )
            and not _demo_exempt(user)
            and not user.is_verified()  # type: ignore[attr-defined]
            and not request.path.startswith(settings.STATIC_URL)
        ):
            from django.urls import resolve
            from django.urls.exceptions import Resolver404

            try:
                match = resolve(request.path_info)
                name = match.url_name
            except Resolver404:
                name = None
            if name not in TWO_FACTOR_EXEMPT_URL_NAMES:
                record(
                    actor=user,
                    action=Action.EXECUTE,
                    event="auth.2fa_required",
                    category=Category.SECURITY,
                    outcome=Outcome.DENIED,
                    object_type="url",
                    object_id=(name or "")[:64],
                )
                if _wants_json(request):
                    return machine_error(
                        request,
                        403,
                        "Two-factor verification required",
                        "Sign in with your authenticator code in the web application first.",
                    )
                from django_otp.plugins.otp_totp.models import TOTPDevice

                has_device = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
                target = reverse("accounts:otp_verify" if has_device else "accounts:otp_setup")
                if request.method == "GET" and not request.headers.get("HX-Request"):
                    target += "?" + urlencode({"next": request.get_full_path()})
                if request.headers.get("HX-Request"):
                    response = HttpResponse("Two-factor verification required.", status=403)
                    response["HX-Redirect"] = target
                    return response
                return redirect(target)
        return self.get_response(request)
