"""Interface screens: the HL7 interface status (with retry), calendar feed links, and the
calendar feed itself. Thin views over interop.selectors (reads, access, audit) and
interop.services (writes). A signed-in user without the capability gets 403; a row outside the
user's locations answers 404 (both audited)."""

from __future__ import annotations

import uuid
from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from accounts.models import User
from interop import selectors, services
from interop.forms import FeedTokenForm
from interop.ical import build_calendar


def _user(request: HttpRequest) -> User:
    return cast("User", request.user)


@require_GET
@login_required
def status(request: HttpRequest) -> HttpResponse:
    report = selectors.interface_status(user=_user(request))
    return render(request, "interop/status.html", {"report": report})


@require_POST
@login_required
def outbound_retry(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    message = selectors.outbound_get_for_user(user=_user(request), public_id=public_id)
    try:
        services.outbound_retry(actor=_user(request), message=message)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, f"{message.message_type} {message.control_id} will be sent again."
        )
    return redirect("interop:status")


@require_http_methods(["GET", "POST"])
@login_required
def feeds(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    tokens = selectors.ical_tokens_for_user(user=user)
    form = FeedTokenForm(
        request.POST if request.method == "POST" else None,
        practitioners=selectors.practitioners_for_feeds(user=user),
    )
    context: dict[str, object] = {"form": form, "tokens": tokens, "new_url": None}
    if form.is_bound and form.is_valid():
        context.update(_create_feed(request, form))
    response = render(request, "interop/feeds.html", context)
    response["Cache-Control"] = "no-store"
    return response


def _create_feed(request: HttpRequest, form: FeedTokenForm) -> dict[str, object]:
    """Create the link; the page then shows its URL once, and a fresh form."""
    user = _user(request)
    try:
        token, raw = services.ical_token_create(
            actor=user,
            practitioner=form.cleaned_data["practitioner"],
            detail=form.cleaned_data["detail"],
        )
    except ValidationError as exc:
        form.add_service_errors(exc)
        return {}
    path = reverse("interop:ical_feed", kwargs={"token": raw})
    return {
        "new_url": request.build_absolute_uri(path),
        "new_token": token,
        "form": FeedTokenForm(practitioners=selectors.practitioners_for_feeds(user=user)),
        "tokens": selectors.ical_tokens_for_user(user=user),
    }


@require_POST
@login_required
def feed_revoke(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    token = selectors.ical_token_get_for_user(user=_user(request), public_id=public_id)
    try:
        services.ical_token_revoke(actor=_user(request), token=token)
    except PermissionDenied as exc:
        raise Http404("No such calendar feed.") from exc
    messages.success(request, f"Revoked the calendar link {token.hint}… for {token.practitioner}.")
    return redirect("interop:feeds")


@never_cache
@require_safe
def ical_feed(request: HttpRequest, token: str) -> HttpResponse:
    """No login: the token in the URL is the credential. Unknown or revoked -> 404."""
    content = selectors.ical_feed_open(raw_token=token)
    if content is None:
        raise Http404("No such calendar.")
    body = build_calendar(
        practitioner=content.token.practitioner,
        appointments=content.appointments,
        detail=content.token.detail,
        now=content.now,
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="appointments.ics"'
    response["X-Robots-Tag"] = "noindex"
    return response
