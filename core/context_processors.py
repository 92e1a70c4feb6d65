from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from core.capabilities import Capability


def navigation(request: HttpRequest) -> dict[str, Any]:
    """What the navigation bar may show: capabilities of the signed-in user."""
    user = getattr(request, "user", None)
    caps: frozenset[str] = frozenset()
    if user is not None and user.is_authenticated:
        caps = user.capability_set
    return {
        "caps": {c.value: (c.value in caps) for c in Capability},
        "demo_mode": settings.DEMO_MODE,
    }
