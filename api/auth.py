"""Who may call the JSON API, and the capability checks its operations share.

`accounts.middleware.BearerTokenMiddleware` authenticates `Authorization: Bearer <token>`
(answering 401 itself for a bad token); these classes only accept what it established, or a
signed-in browser session. Session calls that change data must carry the CSRF token; token calls
are exempt. A token works only while its owner's roles grant USE_API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability

if TYPE_CHECKING:
    from accounts.models import User


class TokenAuth(HttpBearer):
    """A personal API token (checked by the middleware; here only its owner's capability)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        if getattr(request, "api_token", None) is None:
            return None
        user = request.user
        if not user.can(Capability.USE_API):  # type: ignore[union-attr]
            record(
                actor=user,  # type: ignore[arg-type]
                action=Action.EXECUTE,
                event="api.token_not_allowed",
                category=Category.SECURITY,
                outcome=Outcome.DENIED,
            )
            raise PermissionDenied("Your roles no longer allow API access with a token.")
        return user


class SessionAuth(APIKeyCookie):
    """The browser session (for the docs page's "Try it out" and same-site scripts)."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        if not request.user.is_authenticated or getattr(request, "api_token", None) is not None:
            return None
        if check_csrf(request) is not None:
            raise PermissionDenied(
                "CSRF verification failed: send the X-CSRFToken header with session requests."
            )
        return request.COOKIES.get(self.param_name, "")

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if key is None:
            return None
        return request.user


API_AUTH = [TokenAuth(), SessionAuth()]


def require(
    user: User,
    capability: Capability,
    *,
    action: Action,
    event: str,
    category: Category,
    patient_public_id: Any = None,
    object_type: str = "",
    object_id: str = "",
) -> None:
    """Raise PermissionDenied (403), writing a denied audit event, unless the user can."""
    if user.can(capability):
        return
    record(
        actor=user,
        action=action,
        event=event,
        category=category,
        patient_public_id=patient_public_id,
        object_type=object_type,
        object_id=object_id,
        outcome=Outcome.DENIED,
    )
    raise PermissionDenied(f"Your roles do not allow this: {capability.label.lower()}.")
