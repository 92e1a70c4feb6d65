"""Account writes: API tokens, roles and locations. Each is audited."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, Role, User, hash_token
from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability


@transaction.atomic
def api_token_create(*, actor: User, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the token and the raw value (shown once, never stored)."""
    from django.core.exceptions import ValidationError

    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. 'scheduling interface'."})
    if not user.can(Capability.USE_API):
        raise ValidationError("This user's roles do not allow API access.")
    raw = ApiToken.generate()
    token = ApiToken.objects.create(
        user=user, name=name[:80], token_hash=hash_token(raw), hint=raw[:10]
    )
    record(
        actor=actor,
        action=Action.CREATE,
        event="auth.token_create",
        category=Category.SECURITY,
        obj=token,
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        record(
            actor=actor,
            action=Action.UPDATE,
            event="auth.token_revoke",
            category=Category.SECURITY,
            obj=token,
        )
    return token


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    token = (
        ApiToken.objects.select_related("user").filter(token_hash=hash_token(raw)).first()
        if raw
        else None
    )
    if token is None or not token.is_active or not token.user.is_active:
        record(
            actor=None,
            action=Action.EXECUTE,
            event="auth.token_invalid",
            category=Category.SECURITY,
            outcome=Outcome.FAILURE,
            object_type="accounts.ApiToken",
            object_id=token.hint if token else "",
        )
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


@transaction.atomic
def user_set_roles(*, actor: User, user: User, roles: list[Role]) -> User:
    before = sorted(r.slug for r in user.roles.all())
    user.roles.set(roles)
    after = sorted(r.slug for r in roles)
    if before != after:
        record(
            actor=actor,
            action=Action.UPDATE,
            event="user.role_change",
            category=Category.ADMINISTRATION,
            obj=user,
            reason=f"{','.join(before) or '-'} -> {','.join(after) or '-'}",
        )
    for attr in ("capability_set", "role_slugs", "role_names", "requires_2fa"):
        user.__dict__.pop(attr, None)
    return user
