"""Users, roles (which grant capabilities) and personal API tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from functools import cached_property

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from core.capabilities import Capability
from core.models import BaseModel, Location


class Role(BaseModel):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80, unique=True)
    requires_2fa = models.BooleanField(default=False)
    capabilities = models.JSONField(default=list)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    roles = models.ManyToManyField(Role, blank=True, related_name="users")
    locations = models.ManyToManyField(Location, blank=True, related_name="staff")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["username"]

    # What a request asks of the user's roles and locations (capabilities, role names for the
    # audit trail and the menu, the two-factor requirement, location scope) is read once per
    # user object: one query for the roles, one for the locations. Changing the user's roles or
    # locations through this object forgets them (accounts.signals), as the services do.
    @cached_property
    def role_list(self) -> list[Role]:
        """The user's roles (one query, kept for this object's life)."""
        return list(self.roles.all())

    @cached_property
    def capability_set(self) -> frozenset[str]:
        if not self.is_active:
            return frozenset()
        caps: set[str] = set()
        for role in self.role_list:
            caps.update(role.capabilities)
        return frozenset(caps)

    def can(self, capability: Capability | str) -> bool:
        return str(capability) in self.capability_set

    @cached_property
    def location_list(self) -> list[Location]:
        """Every location the user works at, active or not, by name (one query, kept)."""
        return list(self.locations.order_by("name", "id"))

    @cached_property
    def location_ids(self) -> frozenset[int]:
        return frozenset(location.pk for location in self.location_list)

    @cached_property
    def role_slugs(self) -> str:
        return ",".join(sorted(r.slug for r in self.role_list))

    @cached_property
    def role_names(self) -> list[str]:
        return sorted(r.name for r in self.role_list)

    @cached_property
    def requires_2fa(self) -> bool:
        return any(r.requires_2fa for r in self.role_list)

    def forget_access(self) -> None:
        """Drop what was read of the roles and locations: the next use reads them again."""
        for name in CACHED_ACCESS_ATTRS:
            self.__dict__.pop(name, None)


CACHED_ACCESS_ATTRS = (
    "role_list",
    "capability_set",
    "role_slugs",
    "role_names",
    "requires_2fa",
    "location_list",
    "location_ids",
)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(BaseModel):
    """A personal API token. Only its SHA-256 is stored; the token is shown once."""

    PREFIX = "pdk_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="First characters, to tell tokens apart.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def generate(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
