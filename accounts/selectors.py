"""Account reads with their access checks: the user list and user records for administrators,
a user's own API tokens and authenticator."""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import ApiToken, User
from core.capabilities import Capability


def _require_manage_users(user: User) -> None:
    if not user.can(Capability.MANAGE_USERS):
        raise PermissionDenied("Managing users needs the manage_users capability.")


def user_list(*, user: User) -> QuerySet[User]:
    """Every user with roles, locations and whether a confirmed authenticator exists (3 queries)."""
    _require_manage_users(user)
    enrolled = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    return (
        User.objects.annotate(has_2fa=Exists(enrolled))
        .prefetch_related("roles", "locations")
        .order_by("username")
    )


def user_get_for_admin(*, user: User, public_id: uuid.UUID) -> User:
    _require_manage_users(user)
    found = User.objects.prefetch_related("roles", "locations").filter(public_id=public_id).first()
    if found is None:
        raise Http404("No such user.")
    return found


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def api_token_get_for_user(*, user: User, public_id: uuid.UUID) -> ApiToken:
    """Only the owner reaches a token; anyone else gets the same 404 as for a missing one."""
    token = ApiToken.objects.filter(user=user, public_id=public_id).first()
    if token is None:
        raise Http404("No such token.")
    return token


def totp_device_confirmed(*, user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()
