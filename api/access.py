"""Reads the API needs beyond patients.selectors, with the same access check and audit.

`coverage_get_for_user` belongs in patients.selectors (requested from its owner); until it is
there it lives here and defers the access decision to `patient_get_for_user`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from audit.models import Action, Category, Outcome
from audit.services import record
from core.models import Location
from patients.models import Coverage, Patient
from patients.selectors import SearchCriteria, patient_get_for_user, patient_list_for_user

if TYPE_CHECKING:
    from accounts.models import User

SORTS: dict[str, tuple[str, ...]] = {
    "name": ("family_fold", "given_fold", "id"),
    "-name": ("-family_fold", "-given_fold", "-id"),
    "mrn": ("mrn",),
    "-mrn": ("-mrn",),
    "updated_at": ("updated_at", "id"),
    "-updated_at": ("-updated_at", "-id"),
    "created_at": ("created_at", "id"),
    "-created_at": ("-created_at", "-id"),
}


def coverage_get_for_user(
    *, user: User, public_id: uuid.UUID, event: str = "coverage.view"
) -> tuple[Coverage, Patient]:
    """A coverage and its patient, if the user may see the patient (404 otherwise, audited)."""
    coverage = Coverage.objects.select_related("patient").filter(public_id=public_id).first()
    if coverage is None:
        record(
            actor=user,
            action=Action.READ,
            event=event,
            category=Category.COVERAGE,
            object_type="patients.Coverage",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such coverage.")
    patient = patient_get_for_user(
        user=user, public_id=coverage.patient.public_id, event=event, category=Category.COVERAGE
    )
    return coverage, patient


def home_location_for(*, user: User, public_id: uuid.UUID | None) -> Location:
    """The registering user's location: the one named, or their only one."""
    if public_id is None:
        mine = list(Location.objects.filter(pk__in=user.location_ids, is_active=True)[:2])
        if len(mine) == 1:
            return mine[0]
        raise ValidationError(
            {"home_location": "Required: give the public id of one of your locations."}
        )
    location = Location.objects.filter(public_id=public_id, is_active=True).first()
    if location is None or location.pk not in user.location_ids:
        raise ValidationError(
            {"home_location": "You can register patients only at your own active locations."}
        )
    return location


def patient_page_for_user(
    *,
    user: User,
    location: uuid.UUID | None,
    updated_since: dt.datetime | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[int, list[Patient]]:
    """One page of the user's patients, with a query audit event (filter names only)."""
    qs: QuerySet[Patient] = patient_list_for_user(
        user=user, location_public_id=location, updated_since=updated_since
    )
    count = qs.count()
    rows = list(qs.order_by(*SORTS[sort])[offset : offset + limit])
    record(
        actor=user,
        action=Action.QUERY,
        event="patient.list",
        category=Category.DEMOGRAPHICS,
        object_type="patients.Patient",
        object_id=f"{len(rows)} results",
        fields=[
            name
            for name, value in (("location", location), ("updated_since", updated_since))
            if value
        ],
    )
    return count, rows


def search_window(limit: int, offset: int, criteria: SearchCriteria) -> tuple[int, int, int]:
    """patient_search pages by number: (page, page size, rows to skip) for limit/offset."""
    if criteria.is_empty():
        raise ValidationError(
            {"name": "Give at least one of name, birth_date, mrn, phone or member_id."}
        )
    if offset % limit == 0:
        return offset // limit + 1, limit, 0
    return 1, offset + limit, offset
