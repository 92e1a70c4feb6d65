"""Reads of patient data, with the access check and the audit event in one place.

A patient is visible to a user who can view patients and works at the patient's home location,
or who holds an unexpired break-glass grant for that patient. Missing and forbidden look the same
(Http404), and both are audited.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability
from core.text import digits, fold, prefix_upper_bound
from patients.models import BreakGlassGrant, Coverage, Patient, PatientFlag, PatientIdentifier

if TYPE_CHECKING:
    from accounts.models import User


def _active_flags() -> Prefetch:
    return Prefetch(
        "flags", queryset=PatientFlag.objects.filter(is_active=True), to_attr="active_flags"
    )


def patient_base_queryset() -> QuerySet[Patient]:
    return Patient.objects.select_related("home_location", "merged_into").prefetch_related(
        _active_flags()
    )


def has_break_glass(*, user: User, patient: Patient) -> bool:
    return BreakGlassGrant.objects.filter(
        user=user, patient=patient, expires_at__gt=timezone.now()
    ).exists()


def in_scope(*, user: User, patient: Patient) -> bool:
    return patient.home_location_id in user.location_ids


def patient_get_for_user(
    *,
    user: User,
    public_id: uuid.UUID | str,
    event: str = "patient.view",
    category: Category = Category.DEMOGRAPHICS,
    audit: bool = True,
) -> Patient:
    """Fetch a patient the user may see, writing a read event (or a denied one) to the trail."""
    patient = patient_base_queryset().filter(public_id=public_id).first()
    allowed = (
        patient is not None
        and user.can(Capability.VIEW_PATIENTS)
        and (in_scope(user=user, patient=patient) or has_break_glass(user=user, patient=patient))
    )
    if not allowed:
        record(
            actor=user,
            action=Action.READ,
            event=event,
            category=category,
            patient_public_id=str(public_id) if patient is not None else None,
            object_type="patients.Patient",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such patient.")
    assert patient is not None  # noqa: S101  (narrowing for mypy)
    patient.via_break_glass = not in_scope(user=user, patient=patient)  # type: ignore[attr-defined]
    if audit:
        record(
            actor=user,
            action=Action.READ,
            event=event,
            category=category,
            patient=patient,
            obj=patient,
            reason="break-glass" if patient.via_break_glass else "",  # type: ignore[attr-defined]
        )
    return patient


def patient_find_for_break_glass(*, user: User, public_id: uuid.UUID | str) -> Patient:
    """The patient a user is about to break the glass for (outside their scope). Audited."""
    patient = Patient.objects.select_related("home_location").filter(public_id=public_id).first()
    if patient is None or not user.can(Capability.BREAK_GLASS):
        record(
            actor=user,
            action=Action.READ,
            event="access.break_glass_form",
            category=Category.SECURITY,
            object_type="patients.Patient",
            object_id=str(public_id),
            outcome=Outcome.DENIED,
        )
        raise Http404("No such patient.")
    return patient


def coverages_for(patient: Patient) -> list[Coverage]:
    return list(patient.coverages.select_related("verified_by").order_by("-is_active", "order"))


@dataclass
class SearchCriteria:
    name: str = ""
    birth_date: dt.date | None = None
    mrn: str = ""
    phone: str = ""
    member_id: str = ""

    def is_empty(self) -> bool:
        return not (
            self.name.strip() or self.birth_date or self.mrn or self.phone or self.member_id
        )

    def used_fields(self) -> list[str]:
        return [k for k in ("name", "birth_date", "mrn", "phone", "member_id") if getattr(self, k)]


def _name_q(name: str) -> Q:
    """Prefix match on folded family/given names, written as index-friendly range scans."""

    def prefix(field_name: str, value: str) -> Q:
        return Q(**{f"{field_name}__gte": value, f"{field_name}__lt": prefix_upper_bound(value)})

    if "," in name:
        family, _, given = name.partition(",")
        q = Q()
        if fold(family):
            q &= prefix("family_fold", fold(family))
        if fold(given):
            q &= prefix("given_fold", fold(given))
        return q
    tokens = [fold(token) for token in name.split() if fold(token)]
    if not tokens:
        return Q()
    if len(tokens) == 1:
        return prefix("family_fold", tokens[0]) | prefix("given_fold", tokens[0])
    first, last = tokens[0], tokens[-1]
    return (prefix("given_fold", first) & prefix("family_fold", last)) | (
        prefix("family_fold", first) & prefix("given_fold", last)
    )


@dataclass
class SearchResult:
    patients: list[Patient]
    total_shown: int
    has_more: bool
    page: int
    outside_scope: list[Patient] = field(default_factory=list)


def patient_search(
    *, user: User, criteria: SearchCriteria, page: int = 1, page_size: int = 25
) -> SearchResult:
    """Search patients in the user's locations; records a query event (criteria names only).

    An exact MRN or member-id match at another location is returned separately in
    `outside_scope`, so that a user can break the glass for it; nothing else leaks.
    """
    if not user.can(Capability.VIEW_PATIENTS):
        record(
            actor=user,
            action=Action.QUERY,
            event="patient.search",
            category=Category.DEMOGRAPHICS,
            outcome=Outcome.DENIED,
            fields=criteria.used_fields(),
        )
        raise Http404
    q = Q(merged_into__isnull=True)
    if criteria.name.strip():
        q &= _name_q(criteria.name)
    if criteria.birth_date:
        q &= Q(birth_date=criteria.birth_date)
    if criteria.phone:
        number = digits(criteria.phone)
        if len(number) == 10:
            number = "1" + number
        q &= Q(phone_mobile_digits=number) | Q(phone_home_digits=number)
    mrn_ids: QuerySet[PatientIdentifier] | None = None
    if criteria.mrn:
        mrn_ids = PatientIdentifier.objects.filter(
            system=PatientIdentifier.MRN_SYSTEM, value=criteria.mrn.strip()
        )
        q &= Q(pk__in=mrn_ids.values("patient_id"))
    if criteria.member_id:
        q &= Q(
            pk__in=Coverage.objects.filter(member_id_fold=fold(criteria.member_id)).values(
                "patient_id"
            )
        )
    page = max(1, page)
    base = patient_base_queryset().filter(q)
    scoped = base.filter(home_location_id__in=user.location_ids)
    offset = (page - 1) * page_size
    rows = list(scoped.order_by("family_fold", "given_fold", "id")[offset : offset + page_size + 1])
    outside: list[Patient] = []
    if (criteria.mrn or criteria.member_id) and user.can(Capability.BREAK_GLASS):
        outside = list(base.exclude(home_location_id__in=user.location_ids)[:5])
    record(
        actor=user,
        action=Action.QUERY,
        event="patient.search",
        category=Category.DEMOGRAPHICS,
        fields=criteria.used_fields(),
        object_type="patients.Patient",
        object_id=f"{min(len(rows), page_size)} results",
    )
    return SearchResult(
        patients=rows[:page_size],
        total_shown=min(len(rows), page_size),
        has_more=len(rows) > page_size,
        page=page,
        outside_scope=outside,
    )


def patient_list_for_user(
    *,
    user: User,
    location_public_id: uuid.UUID | str | None = None,
    updated_since: dt.datetime | None = None,
) -> QuerySet[Patient]:
    """Patients in the user's locations (for the API listing; filters carry no PHI)."""
    qs = patient_base_queryset().filter(
        home_location_id__in=user.location_ids, merged_into__isnull=True
    )
    if location_public_id:
        qs = qs.filter(home_location__public_id=location_public_id)
    if updated_since:
        qs = qs.filter(updated_at__gte=updated_since)
    return qs
