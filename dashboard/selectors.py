"""What the home page shows, by capability. Read-only; composes other apps' selectors.

Every part is a fixed number of queries whatever the size of the clinic.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.utils import timezone

from core.capabilities import Capability
from patients import selectors as patient_selectors

if TYPE_CHECKING:
    from accounts.models import User
    from patients.models import Patient

BREAK_GLASS_WINDOW = dt.timedelta(days=7)


@dataclass
class HomePage:
    """The parts of the home page a user may see; None means the part is not shown."""

    show_search: bool = False
    recent_registrations: list[Patient] | None = None
    counts: patient_selectors.PatientCounts | None = None
    break_glass_last_7_days: int | None = None
    active_users: int | None = None
    sections: list[str] = field(default_factory=list)


def active_user_count() -> int:
    return get_user_model().objects.filter(is_active=True).count()


def home_page_for_user(*, user: User) -> HomePage:
    """Compose the home page from what the user's roles allow."""
    page = HomePage()
    if user.can(Capability.VIEW_PATIENTS):
        page.show_search = True
        page.sections.append("search")
    if user.can(Capability.REGISTER_PATIENTS):
        page.recent_registrations = patient_selectors.recent_registrations_for_user(user=user)
        page.sections.append("recent")
    if user.can(Capability.VIEW_AUDIT):
        page.break_glass_last_7_days = patient_selectors.break_glass_count(
            since=timezone.now() - BREAK_GLASS_WINDOW
        )
        page.sections.append("privacy")
    if user.can(Capability.MANAGE_USERS):
        page.active_users = active_user_count()
        page.sections.append("users")
    if user.can(Capability.VIEW_OPERATIONS):
        page.counts = patient_selectors.patient_counts()
        page.sections.append("operations")
    return page
