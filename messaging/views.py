"""Messaging screens.

Public (no login; the signed token is the only key, and it carries no PHI):
- /m/a/<token>/confirm/ and /cancel/: GET shows the appointment, POST confirms or cancels it;
- /m/o/<token>/accept/ and /decline/: a waitlist offer;
- /m/u/<token>/: unsubscribe from email (RFC 8058 one-click POST, so no CSRF token there).
A broken, altered or expired link gets a plain page with status 400, never a 500.

Webhooks for the SMS gateway (JSON, header `X-Gateway-Token`): /m/sms/status (delivery receipts)
and /m/sms/inbound (STOP replies). Staff: /m/reminder-calls/ (who needs a reminder call).
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability
from messaging import rendering, selectors, services
from messaging.forms import SmsInboundForm, SmsStatusForm
from messaging.links import LinkError, Purpose
from messaging.models import OutboundMessage
from messaging.services import LinkOutcome

if TYPE_CHECKING:
    from accounts.models import User

CONFLICT_OUTCOMES = {LinkOutcome.NOT_POSSIBLE, LinkOutcome.TAKEN, LinkOutcome.CLOSED}


def _link_error(request: HttpRequest, error: LinkError) -> HttpResponse:
    return render(request, "messaging/link_error.html", {"error": error}, status=400)


def _page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    status = 409 if context.get("outcome") in CONFLICT_OUTCOMES else 200
    return render(request, template, context, status=status)


def _appointment_link(request: HttpRequest, token: str, purpose: Purpose) -> HttpResponse:
    try:
        appointment = selectors.appointment_for_link(token=token, purpose=purpose)
    except LinkError as error:
        return _link_error(request, error)
    outcome = None
    if request.method == "POST":
        if purpose is Purpose.CONFIRM:
            outcome = services.appointment_confirm_by_patient(appointment=appointment)
        else:
            outcome = services.appointment_cancel_by_patient(appointment=appointment)
        appointment.refresh_from_db(fields=["status"])
    context = rendering.appointment_context(appointment)
    context |= {"appointment": appointment, "purpose": purpose.value, "outcome": outcome}
    return _page(request, "messaging/appointment_link.html", context)


@require_http_methods(["GET", "POST"])
def appointment_confirm(request: HttpRequest, token: str) -> HttpResponse:
    return _appointment_link(request, token, Purpose.CONFIRM)


@require_http_methods(["GET", "POST"])
def appointment_cancel(request: HttpRequest, token: str) -> HttpResponse:
    return _appointment_link(request, token, Purpose.CANCEL)


def _offer_link(request: HttpRequest, token: str, purpose: Purpose) -> HttpResponse:
    try:
        offer = selectors.offer_for_link(token=token, purpose=purpose)
    except LinkError as error:
        return _link_error(request, error)
    outcome = None
    if request.method == "POST":
        if purpose is Purpose.OFFER_ACCEPT:
            outcome = services.waitlist_offer_accept_by_patient(offer=offer)
        else:
            outcome = services.waitlist_offer_decline_by_patient(offer=offer)
        offer.refresh_from_db(fields=["status"])
    context = rendering.offer_context(offer)
    context |= {"offer": offer, "purpose": purpose.value, "outcome": outcome}
    return _page(request, "messaging/offer_link.html", context)


@require_http_methods(["GET", "POST"])
def offer_accept(request: HttpRequest, token: str) -> HttpResponse:
    return _offer_link(request, token, Purpose.OFFER_ACCEPT)


@require_http_methods(["GET", "POST"])
def offer_decline(request: HttpRequest, token: str) -> HttpResponse:
    return _offer_link(request, token, Purpose.OFFER_DECLINE)


@csrf_exempt  # RFC 8058 one-click: the mail client POSTs without a form; the token is the key
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        patient = selectors.patient_for_unsubscribe(token=token)
    except LinkError as error:
        return _link_error(request, error)
    outcome = None
    if request.method == "POST":
        outcome = services.email_unsubscribe_by_patient(patient=patient)
    return render(request, "messaging/unsubscribe.html", {"outcome": outcome})


# --- SMS gateway webhooks -----------------------------------------------------------------------


def _problem(status: int, detail: str, errors: dict[str, Any] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status, content_type="application/problem+json")


def _gateway_token_ok(request: HttpRequest, endpoint: str) -> bool:
    expected = str(
        getattr(settings, "PATIENTDESK_SMS_WEBHOOK_TOKEN", "")
        or getattr(settings, "PATIENTDESK_SMS_GATEWAY_TOKEN", "")
    )
    given = request.headers.get("X-Gateway-Token", "")
    ok = bool(expected) and hmac.compare_digest(given.encode(), expected.encode())
    if not ok:
        record(
            actor=None,
            username="sms-gateway",
            action=Action.EXECUTE,
            event="messaging.webhook_denied",
            category=Category.SECURITY,
            outcome=Outcome.DENIED,
            object_type="url",
            object_id=endpoint,
        )
    return ok


def _json_object(request: HttpRequest) -> dict[str, Any] | None:
    try:
        payload = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


@csrf_exempt
@require_POST
def sms_status(request: HttpRequest) -> HttpResponse:
    if not _gateway_token_ok(request, "sms_status"):
        return _problem(403, "The gateway token is missing or wrong.")
    payload = _json_object(request)
    if payload is None:
        return _problem(400, "The body must be a JSON object.")
    form = SmsStatusForm.from_payload(payload)
    if not form.is_valid():
        return _problem(400, "The delivery receipt is not valid.", form.errors.get_json_data())
    try:
        message = services.delivery_receipt_record(
            provider_message_id=form.cleaned_data["message_id"],
            status=form.cleaned_data["status"],
            error_code=form.cleaned_data["error_code"],
        )
    except OutboundMessage.DoesNotExist:
        return _problem(404, "No message was sent with this message_id.")
    return JsonResponse({"message_id": message.provider_message_id, "status": message.status})


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    if not _gateway_token_ok(request, "sms_inbound"):
        return _problem(403, "The gateway token is missing or wrong.")
    payload = _json_object(request)
    if payload is None:
        return _problem(400, "The body must be a JSON object.")
    form = SmsInboundForm.from_payload(payload)
    if not form.is_valid():
        return _problem(400, "The inbound message is not valid.", form.errors.get_json_data())
    action = services.sms_inbound(
        from_number=form.cleaned_data["from_number"], body=form.cleaned_data["body"]
    )
    return JsonResponse({"action": action})


# --- staff ----------------------------------------------------------------------------------------


@login_required
@require_GET
def reminder_calls(request: HttpRequest) -> HttpResponse:
    user = cast("User", request.user)
    if not user.can(Capability.VIEW_SCHEDULE):
        record(
            actor=user,
            action=Action.EXECUTE,
            event="auth.permission_denied",
            category=Category.SECURITY,
            outcome=Outcome.DENIED,
            object_type="url",
            object_id="messaging.reminder_calls",
            reason=f"missing capability {Capability.VIEW_SCHEDULE.value}",
        )
        raise PermissionDenied(f"Your roles do not allow: {Capability.VIEW_SCHEDULE.label}.")
    rows = selectors.reminder_calls_for_user(user=user)
    return render(request, "messaging/reminder_calls.html", {"rows": rows})
