"""Copy role definitions (core.capabilities.ROLE_DEFINITIONS) into the Role table."""

from __future__ import annotations

from typing import Any


def sync_roles(role_model: Any) -> None:
    from core.capabilities import ROLE_DEFINITIONS

    for slug, spec in ROLE_DEFINITIONS.items():
        role_model.objects.update_or_create(
            slug=slug,
            defaults={
                "name": spec["name"],
                "requires_2fa": spec["requires_2fa"],
                "capabilities": sorted(str(c) for c in spec["capabilities"]),  # type: ignore[attr-defined]
            },
        )
