"""Reads of the denial queue with access checks and audit rows.

A user sees a denial when they may view billing and the claim's patient has a home location
of theirs. Missing and forbidden both answer 404 and both are audited.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User as UserModel
from audit.models import Action, Category, Outcome
from audit.services import record
from billing.models import DenialCause
from core.capabilities import Capability
from remittance.models import Denial

if TYPE_CHECKING:
    from accounts.models import User

PAGE = 200
UNASSIGNED = "none"


@dataclass(frozen=True)
class QueueFilters:
    status: str = ""
    cause: str = ""
    payer: uuid.UUID | None = None
    owner: str = ""  # a user's public id, or "none"
    due_before: dt.date | None = None


def _scoped(user: User) -> QuerySet[Denial]:
    return Denial.objects.filter(claim__patient__home_location_id__in=user.location_ids)


def _filtered(user: User, filters: QueueFilters) -> QuerySet[Denial]:
    rows = _scoped(user)
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.cause:
        rows = rows.filter(cause=filters.cause)
    if filters.payer is not None:
        rows = rows.filter(claim__payer__public_id=filters.payer)
    if filters.owner == UNASSIGNED:
        rows = rows.filter(owner__isnull=True)
    elif filters.owner:
        rows = rows.filter(owner__public_id=filters.owner)
    if filters.due_before is not None:
        rows = rows.filter(due_date__lt=filters.due_before)
    return rows


@dataclass(frozen=True)
class Queue:
    rows: list[Denial]
    total: int
    by_cause: list[tuple[str, str, int]]  # (cause, label, count)
    today: dt.date


def denial_queue(*, user: User, filters: QueueFilters) -> Queue:
    """The denials the user may see, due first (overdue on top), with counts per cause.
    Reading the list is audited as a query (it names patients)."""
    if not user.can(Capability.VIEW_BILLING):
        raise PermissionDenied("Your roles do not allow viewing billing.")
    query = _filtered(user, filters)
    rows = list(
        query.select_related("claim__patient", "claim__payer", "owner").order_by("due_date", "id")[
            :PAGE
        ]
    )
    counts = dict(query.order_by().values_list("cause").annotate(n=Count("id")))
    by_cause = [(c.value, str(c.label), counts.get(c.value, 0)) for c in DenialCause]
    total = sum(counts.values())
    record(
        actor=user,
        action=Action.QUERY,
        event="denial.queue",
        category=Category.BILLING,
        object_type="remittance.Denial",
        fields=["status", "cause", "payer", "owner", "due_date"],
        reason=f"{len(rows)} rows",
    )
    return Queue(rows=rows, total=total, by_cause=by_cause, today=timezone.localdate())


def _denied(user: User, event: str, public_id: object) -> Http404:
    record(
        actor=user,
        action=Action.READ,
        event=event,
        category=Category.BILLING,
        object_type="remittance.Denial",
        object_id=str(public_id),
        outcome=Outcome.DENIED,
    )
    return Http404("No such denial.")


def denial_get_for_user(
    *, user: User, public_id: uuid.UUID | str, event: str = "denial.view"
) -> Denial:
    """One denial with its claim, for a user who may see it (audited); otherwise 404."""
    denial = (
        Denial.objects.select_related(
            "claim__patient__home_location",
            "claim__payer",
            "claim__coverage",
            "claim_remittance__payment",
            "owner",
            "replacement_claim",
            "write_off",
        )
        .filter(public_id=public_id)
        .first()
    )
    if (
        denial is None
        or not user.can(Capability.VIEW_BILLING)
        or denial.claim.patient.home_location_id not in user.location_ids
    ):
        raise _denied(user, event, public_id)
    record(
        actor=user,
        action=Action.READ,
        event=event,
        category=Category.BILLING,
        patient=denial.claim.patient,
        obj=denial,
    )
    return denial


def denials_for_update(*, user: User, public_ids: Sequence[uuid.UUID]) -> list[Denial]:
    """The chosen denials (bulk assign); any the user may not see makes the whole set a 404."""
    wanted = set(public_ids)
    rows = list(_scoped(user).filter(public_id__in=wanted).select_related("claim__patient"))
    if len(rows) != len(wanted) or not user.can(Capability.VIEW_BILLING):
        missing = wanted - {d.public_id for d in rows}
        raise _denied(user, "denial.assign", next(iter(missing), ""))
    return rows


def denial_owner_choices(*, user: User) -> list[User]:
    """Active people at one of the user's locations who may work denials."""
    candidates = (
        UserModel.objects.filter(is_active=True, locations__in=user.location_ids)
        .distinct()
        .prefetch_related("roles")
        .order_by("last_name", "first_name", "username")
    )
    return [u for u in candidates if u.can(Capability.WORK_DENIALS)]


def owner_for_user(*, user: User, public_id: str) -> User | None:
    return next((u for u in denial_owner_choices(user=user) if str(u.public_id) == public_id), None)


def denial_timeline(denial: Denial) -> list[object]:
    return list(denial.timeline.select_related("author").order_by("created_at", "id"))


def payers_in_queue(*, user: User) -> list[tuple[str, str]]:
    """The payers of the user's denials (the payer filter's choices)."""
    rows = (
        _scoped(user)
        .order_by()
        .values_list("claim__payer__public_id", "claim__payer__name")
        .distinct()
    )
    return sorted(((str(pid), name) for pid, name in rows), key=lambda r: r[1])
