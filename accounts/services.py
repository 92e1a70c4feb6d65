"""Account writes: users, roles and locations, two-factor devices, API tokens. Each is audited.

Secrets never reach the audit trail: rows carry object ids and field *names*, never a password,
a token or a TOTP code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import ApiToken, Role, User, hash_token
from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability
from core.models import Location

TOTP_DEVICE_NAME = "Authenticator app"


def _forget_cached_access(user: User) -> None:
    user.forget_access()


# --- API tokens ---------------------------------------------------------------------------------


@transaction.atomic
def api_token_create(*, actor: User | None, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the token and the raw value (shown once, never stored).

    `actor` is None when the token is made on the command line (`manage.py create_api_token`).
    """
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. 'scheduling interface'."})
    if len(name) > 80:
        raise ValidationError({"name": "Keep the name to 80 characters or fewer."})
    if not user.is_active:
        raise ValidationError("This user is deactivated and cannot have API tokens.")
    if not user.can(Capability.USE_API):
        raise ValidationError("This user's roles do not allow API access.")
    raw = ApiToken.generate()
    token = ApiToken.objects.create(user=user, name=name, token_hash=hash_token(raw), hint=raw[:10])
    record(
        actor=actor,
        username="" if actor is not None else "manage.py",
        action=Action.CREATE,
        event="auth.token_create",
        category=Category.SECURITY,
        obj=token,
        reason=f"for {user.get_username()}",
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
    """The active token for `raw`, or None (audited) when unknown, revoked, expired, or its user
    is deactivated or no longer allowed to use the API (a token works only while its owner's
    roles grant USE_API)."""
    token = (
        ApiToken.objects.select_related("user").filter(token_hash=hash_token(raw)).first()
        if raw
        else None
    )
    if (
        token is None
        or not token.is_active
        or not token.user.is_active
        or not token.user.can(Capability.USE_API)
    ):
        record(
            actor=None,
            username=token.user.get_username() if token else "",
            action=Action.EXECUTE,
            event="auth.token_invalid",
            category=Category.SECURITY,
            outcome=Outcome.FAILURE,
            object_type="accounts.ApiToken",
            object_id=str(token.public_id) if token else "",
        )
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


# --- Two-factor (TOTP) --------------------------------------------------------------------------


def totp_device_pending(*, user: User) -> TOTPDevice:
    """The user's unconfirmed authenticator, created on first use (no audit: nothing is enabled
    until `totp_device_confirm`). Reloading the set-up page keeps the same secret."""
    with transaction.atomic():
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


@dataclass(frozen=True)
class TotpResult:
    ok: bool
    throttled: bool = False


def _check_totp(device: TOTPDevice, token: str) -> TotpResult:
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return TotpResult(ok=False, throttled=True)
    return TotpResult(ok=bool(device.verify_token(token)))


def totp_device_confirm(*, actor: User, device: TOTPDevice, token: str) -> TotpResult:
    """Confirm a pending authenticator with a code from it. On success it replaces any earlier
    confirmed device (one authenticator per user) and the enrolment is audited."""
    if device.user_id != actor.pk or device.confirmed:
        raise ValidationError("This authenticator is not waiting for confirmation.")
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        result = _check_totp(device, token)
        if result.ok:
            replaced = TOTPDevice.objects.filter(user=actor, confirmed=True).exclude(pk=device.pk)
            replaced_count = replaced.count()
            replaced.delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            record(
                actor=actor,
                action=Action.EXECUTE,
                event="auth.2fa_enrol",
                category=Category.SECURITY,
                object_type="otp_totp.TOTPDevice",
                object_id=str(device.pk),
                reason="replaced an earlier authenticator" if replaced_count else "",
            )
    if not result.ok:
        _record_2fa_failure(actor=actor, device=device, throttled=result.throttled)
    return result


def totp_verify(*, actor: User, device: TOTPDevice, token: str) -> TotpResult:
    """Check a sign-in code against the user's confirmed authenticator (throttled by django-otp:
    after each wrong code the next try must wait 1, 2, 4, 8... seconds)."""
    if device.user_id != actor.pk or not device.confirmed:
        raise ValidationError("This authenticator does not belong to the signed-in user.")
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        result = _check_totp(device, token)
        if result.ok:
            record(
                actor=actor,
                action=Action.EXECUTE,
                event="auth.2fa_verified",
                category=Category.SECURITY,
                object_type="otp_totp.TOTPDevice",
                object_id=str(device.pk),
            )
    if not result.ok:
        _record_2fa_failure(actor=actor, device=device, throttled=result.throttled)
    return result


@transaction.atomic
def _record_2fa_failure(*, actor: User, device: TOTPDevice, throttled: bool) -> None:
    record(
        actor=actor,
        action=Action.EXECUTE,
        event="auth.2fa_failed",
        category=Category.SECURITY,
        outcome=Outcome.DENIED if throttled else Outcome.FAILURE,
        object_type="otp_totp.TOTPDevice",
        object_id=str(device.pk),
        reason="too many attempts, throttled" if throttled else "wrong code",
    )


# --- Users, roles and locations -----------------------------------------------------------------


def _require_manage_users(actor: User) -> None:
    if not actor.can(Capability.MANAGE_USERS):
        raise PermissionError("Managing users needs the manage_users capability.")


def _codes(locations: Iterable[Location]) -> str:
    return ",".join(sorted(loc.code for loc in locations)) or "-"


@transaction.atomic
def user_set_roles(*, actor: User, user: User, roles: Iterable[Role]) -> User:
    roles = list(roles)
    if actor.pk == user.pk and actor.can(Capability.MANAGE_USERS):
        keeps_admin = any(str(Capability.MANAGE_USERS) in r.capabilities for r in roles)
        if not keeps_admin:
            raise ValidationError(
                {"roles": "You cannot remove your own user-management role; ask another admin."}
            )
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
    _forget_cached_access(user)
    return user


@transaction.atomic
def user_set_locations(*, actor: User, user: User, locations: Iterable[Location]) -> User:
    locations = list(locations)
    before = _codes(user.locations.all())
    after = _codes(locations)
    user.locations.set(locations)
    if before != after:
        record(
            actor=actor,
            action=Action.UPDATE,
            event="user.location_change",
            category=Category.ADMINISTRATION,
            obj=user,
            reason=f"{before} -> {after}",
        )
    _forget_cached_access(user)
    return user


@transaction.atomic
def user_create(
    *,
    actor: User,
    username: str,
    first_name: str,
    last_name: str,
    email: str,
    password: str,
    roles: Iterable[Role],
    locations: Iterable[Location],
) -> User:
    """Create a user with a password that passes Django's validators (min. 12 characters)."""
    _require_manage_users(actor)
    username = username.strip()
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "A user with this username already exists."})
    user = User(
        username=username,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        email=email.strip(),
        is_active=True,
    )
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    user.save()
    roles, locations = list(roles), list(locations)
    user.roles.set(roles)
    user.locations.set(locations)
    _forget_cached_access(user)
    record(
        actor=actor,
        action=Action.CREATE,
        event="user.create",
        category=Category.ADMINISTRATION,
        obj=user,
        fields=["username", "first_name", "last_name", "email", "password", "roles", "locations"],
        reason=f"roles {','.join(sorted(r.slug for r in roles)) or '-'}; "
        f"locations {_codes(locations)}",
    )
    return user


@transaction.atomic
def user_update(
    *,
    actor: User,
    user: User,
    first_name: str,
    last_name: str,
    email: str,
    is_active: bool,
    roles: Iterable[Role],
    locations: Iterable[Location],
) -> User:
    """Edit names, e-mail, active flag, roles and locations. Deactivating a user ends their
    sessions (Django refuses inactive users) and their API tokens (refused at authentication)."""
    _require_manage_users(actor)
    if actor.pk == user.pk and not is_active:
        raise ValidationError({"is_active": "You cannot deactivate your own account."})
    new_values = {
        "first_name": first_name.strip(),
        "last_name": last_name.strip(),
        "email": email.strip(),
        "is_active": is_active,
    }
    changed = [name for name, value in new_values.items() if getattr(user, name) != value]
    if changed:
        for name in changed:
            setattr(user, name, new_values[name])
        user.save(update_fields=[*changed, "updated_at"])
        event = "user.update"
        if "is_active" in changed:
            event = "user.activate" if is_active else "user.deactivate"
        record(
            actor=actor,
            action=Action.UPDATE,
            event=event,
            category=Category.ADMINISTRATION,
            obj=user,
            fields=changed,
        )
    user_set_roles(actor=actor, user=user, roles=roles)
    user_set_locations(actor=actor, user=user, locations=locations)
    return user
