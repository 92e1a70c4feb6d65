"""Security events from Django's auth signals and django-axes into the audit trail; a user
object forgets what it read of its roles and locations when they change through it."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from audit.models import Action, Category, Outcome
from audit.services import record
from core import request_context


@receiver(m2m_changed, sender=User.roles.through)
@receiver(m2m_changed, sender=User.locations.through)
def on_access_changed(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    """`user.roles.set(...)` (add, remove, clear; locations alike) on a user object: its cached
    capabilities, role names and location scope are read again at their next use."""
    if action.startswith("post_") and isinstance(instance, User):
        instance.forget_access()


@receiver(user_logged_in)
def on_login(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.middleware import SESSION_2FA_ENROLLED, SESSION_LAST_SEEN, SESSION_LOGIN_AT

    now = timezone.now().timestamp()
    request.session[SESSION_LOGIN_AT] = now
    request.session[SESSION_LAST_SEEN] = now
    request.session[SESSION_2FA_ENROLLED] = TOTPDevice.objects.filter(
        user=user, confirmed=True
    ).exists()
    request.session.save()
    request_context.update(
        session_ref=request_context.session_reference(request.session.session_key)
    )
    record(actor=user, action=Action.EXECUTE, event="auth.login", category=Category.SECURITY)


@receiver(user_logged_out)
def on_logout(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record(actor=user, action=Action.EXECUTE, event="auth.logout", category=Category.SECURITY)


@receiver(user_login_failed)
def on_login_failed(sender: Any, credentials: dict[str, Any], **kwargs: Any) -> None:
    # Only the username: the password Django passes here is already masked, and is never logged.
    record(
        actor=None,
        username=str(credentials.get("username", ""))[:150],
        action=Action.EXECUTE,
        event="auth.login_failed",
        category=Category.SECURITY,
        outcome=Outcome.FAILURE,
    )


@receiver(user_locked_out)
def on_locked_out(sender: Any, request: HttpRequest, username: str, **kwargs: Any) -> None:
    record(
        actor=None,
        username=str(username or "")[:150],
        action=Action.EXECUTE,
        event="auth.lockout",
        category=Category.SECURITY,
        outcome=Outcome.DENIED,
    )
