"""Capability checks for views: one decorator for every app.

A signed-in user whose roles lack a capability gets 403, and the refusal is audited as a
security event naming the view (and the patient, when the URL's `patient_kwarg` names one).
Views check capabilities, never role names.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, cast

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from accounts.models import User
from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability

View = Callable[..., HttpResponse]


def deny_capability(
    request: HttpRequest,
    *,
    view_name: str,
    capability: Capability,
    patient_public_id: Any = None,
) -> NoReturn:
    """Audit the refusal and raise 403 naming what the user's roles do not allow."""
    record(
        actor=cast("User", request.user),
        action=Action.EXECUTE,
        event="auth.permission_denied",
        category=Category.SECURITY,
        outcome=Outcome.DENIED,
        object_type="url",
        object_id=view_name[:64],
        patient_public_id=patient_public_id,
        reason=f"missing capability {capability.value}",
    )
    raise PermissionDenied(f"Your roles do not allow: {capability.label}.")


def capability_required(
    *capabilities: Capability, patient_kwarg: str | None = None, prefix: str = ""
) -> Callable[[View], View]:
    """403 (audited) unless the user has at least one of `capabilities`.

    `patient_kwarg`: the URL keyword holding the patient's public id, so that the refusal
    names the patient; leave it out where the URL names something else (a claim, a refund).
    `prefix` goes before the view's name in the audit row (e.g. "billing:")."""
    if not capabilities:
        raise ValueError("capability_required needs at least one capability")

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = cast("User", request.user)
            if not any(user.can(capability) for capability in capabilities):
                deny_capability(
                    request,
                    view_name=f"{prefix}{view.__name__}",
                    capability=capabilities[0],
                    patient_public_id=kwargs.get(patient_kwarg) if patient_kwarg else None,
                )
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
