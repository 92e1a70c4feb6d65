"""Reads of patient data, with the access check and the audit event in one place.

A patient is visible to a user who can view patients and works at the patient's home location,
or who holds an unexpired break-glass grant for that patient. Missing and forbidden look the same
(Http404), and both are audited.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, Q, QuerySet, prefetch_related_objects
from django.http import Http404
from django.utils import timezone

from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability
from core.models import Location
from core.text import digits, fold, prefix_upper_bound
from patients.models import (
    BreakGlassGrant,
    Coverage,
    FlagKind,
    Patient,
    PatientFlag,
    PatientIdentifier,
)
from patients.mrn import is_valid_mrn

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
    record(
        actor=user,
        action=Action.READ,
        event="access.break_glass_form",
        category=Category.SECURITY,
        patient=patient,
        obj=patient,
    )
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

    def describe(self) -> str:
        """'name and date of birth': what a search looked for, in words (no values)."""
        labels = [SEARCH_FIELD_LABELS[name] for name in self.used_fields()]
        if len(labels) < 2:
            return "".join(labels)
        return ", ".join(labels[:-1]) + " and " + labels[-1]


SEARCH_FIELD_LABELS = {
    "name": "name",
    "birth_date": "date of birth",
    "mrn": "MRN",
    "phone": "phone",
    "member_id": "member id",
}

_US_DATE = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d/])")
_ISO_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d-])")
_PHONE_CHARS = re.compile(r"[\d\s()+.\-]+")
_MAX_MRN_DIGITS = 9  # phone numbers have 10 or 11 digits; MRNs are shorter


def criteria_from_text(text: str) -> SearchCriteria:
    """Read one search box: a name ('smith', 'smith, jo', 'jo smith'), a date of birth
    (MM/DD/YYYY or YYYY-MM-DD, alone or with a name), an MRN (digits with a valid check digit),
    a phone number or a member id.

    Raises ValidationError naming the problem when a date is written but does not exist.
    """
    text = " ".join((text or "").split())
    criteria = SearchCriteria()
    for pattern, order in ((_US_DATE, (2, 0, 1)), (_ISO_DATE, (0, 1, 2))):
        match = pattern.search(text)
        if match is None:
            continue
        parts = [int(part) for part in match.groups()]
        year, month, day = (parts[i] for i in order)
        try:
            criteria.birth_date = dt.date(year, month, day)
        except ValueError as exc:
            raise ValidationError(
                f"{match.group(0)} is not a real date; write it as MM/DD/YYYY.", code="date"
            ) from exc
        text = (text[: match.start()] + text[match.end() :]).strip(" ,")
        break
    if not text:
        return criteria
    number = digits(text)
    if _PHONE_CHARS.fullmatch(text) and number:
        if text.isdigit() and len(text) <= _MAX_MRN_DIGITS and is_valid_mrn(text):
            criteria.mrn = text
        elif text.startswith("+") or len(number) in (10, 11):
            criteria.phone = number
        else:
            criteria.member_id = text.replace(" ", "")
    elif number and " " not in text:
        criteria.member_id = text
    else:
        criteria.name = text
    return criteria


NAME_ORDER = ("family_fold", "given_fold", "id")
GIVEN_NAME_ORDER = ("given_fold", "family_fold", "id")


def _prefix(field_name: str, value: str) -> Q:
    """Folded-name prefix written as a range (>= 'smi' AND < 'smj') that a B-tree index serves."""
    return Q(**{f"{field_name}__gte": value, f"{field_name}__lt": prefix_upper_bound(value)})


def _name_parts(name: str) -> list[tuple[Q, tuple[str, ...]]]:
    """A name search as disjoint parts, each with the order its index returns rows in; the
    results are the parts one after the other.

    'smith, jo' is one part (family and given prefixes). One word is two parts: family names
    starting with it, then given names starting with it (of people whose family name does not),
    so each part is a LIMITed walk of its own index, (family_fold, given_fold, id) or
    (given_fold, family_fold, id), instead of a walk of the whole name index. Two words or more
    ('jo smith', 'smith jo') are one part: first and last word as given and family prefixes, or
    the other way round.
    """
    if "," in name:
        family, _, given = name.partition(",")
        q = Q()
        if fold(family):
            q &= _prefix("family_fold", fold(family))
        if fold(given):
            q &= _prefix("given_fold", fold(given))
        return [(q, NAME_ORDER)] if q else []
    tokens = [fold(token) for token in name.split() if fold(token)]
    if not tokens:
        return []
    if len(tokens) == 1:
        family_prefix = _prefix("family_fold", tokens[0])
        return [
            (family_prefix, NAME_ORDER),
            (_prefix("given_fold", tokens[0]) & ~family_prefix, GIVEN_NAME_ORDER),
        ]
    first, last = tokens[0], tokens[-1]
    either = (_prefix("given_fold", first) & _prefix("family_fold", last)) | (
        _prefix("family_fold", first) & _prefix("given_fold", last)
    )
    return [(either, NAME_ORDER)]


def _search_queryset() -> QuerySet[Patient]:
    """Current records (never merged away) with their location; the alerts a result row shows
    are prefetched for the page alone (prefetch_related_objects)."""
    return Patient.objects.filter(merged_into__isnull=True).select_related("home_location")


def _page_of_parts(
    scoped: QuerySet[Patient],
    parts: list[tuple[Q, tuple[str, ...]]],
    offset: int,
    page_size: int,
) -> list[Patient]:
    """Rows offset .. offset + page_size of the parts one after the other, plus one more when
    there is a next page. Each part is one LIMIT/OFFSET query in its index's order; a part that
    ends before the page is counted (only when paging past its end) to know what to skip in the
    next one."""
    rows: list[Patient] = []
    skip = offset
    for part, order in parts:
        matching = scoped.filter(part)
        chunk = list(matching.order_by(*order)[skip : skip + page_size + 1 - len(rows)])
        rows += chunk
        if len(rows) > page_size:
            break
        skip = 0 if chunk or not skip else skip - matching.count()
    return rows


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
    q = Q()
    if criteria.birth_date:
        q &= Q(birth_date=criteria.birth_date)
    if criteria.phone:
        number = digits(criteria.phone)
        if len(number) == 10:
            number = "1" + number
        q &= Q(phone_mobile_digits=number) | Q(phone_home_digits=number)
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
    base = _search_queryset().filter(q)
    scoped = base.filter(home_location_id__in=user.location_ids)
    parts = _name_parts(criteria.name) if criteria.name.strip() else []
    rows = _page_of_parts(scoped, parts or [(Q(), NAME_ORDER)], (page - 1) * page_size, page_size)
    prefetch_related_objects(rows[:page_size], _active_flags())
    outside: list[Patient] = []
    if (criteria.mrn or criteria.member_id) and user.can(Capability.BREAK_GLASS):
        outside = list(
            base.exclude(home_location_id__in=user.location_ids).order_by(*NAME_ORDER)[:5]
        )
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


def coverage_get_for_patient(*, patient: Patient, public_id: uuid.UUID | str) -> Coverage:
    """One coverage of a patient the caller has already fetched with patient_get_for_user."""
    coverage = (
        Coverage.objects.select_related("verified_by")
        .filter(patient=patient, public_id=public_id)
        .first()
    )
    if coverage is None:
        raise Http404("No such coverage.")
    coverage.patient = patient
    return coverage


def flag_get_for_patient(*, patient: Patient, public_id: uuid.UUID | str) -> PatientFlag:
    flag = PatientFlag.objects.filter(patient=patient, public_id=public_id).first()
    if flag is None:
        raise Http404("No such alert.")
    flag.patient = patient
    return flag


def identifiers_for(patient: Patient) -> list[PatientIdentifier]:
    return list(patient.identifiers.order_by("is_alias", "system", "value"))


def flags_for(patient: Patient) -> list[PatientFlag]:
    """All alerts, active ones first (most severe first), then the cleared history."""
    flags = list(patient.flags.select_related("created_by"))
    return sorted(
        flags, key=lambda f: (not f.is_active, f.severity_rank, -f.created_at.timestamp())
    )


def merged_records_for(patient: Patient) -> list[Patient]:
    """Records that were merged into this one."""
    return list(Patient.objects.filter(merged_into=patient).order_by("mrn"))


def patient_get_by_mrn_for_user(
    *, user: User, mrn: str, event: str = "patient.view", category: Category = Category.DEMOGRAPHICS
) -> Patient:
    """The patient whose current MRN is `mrn`, if the user may see it (else Http404, audited)."""
    public_id = Patient.objects.filter(mrn=(mrn or "").strip()).values_list("public_id", flat=True)
    found = public_id.first()
    if found is None:
        record(
            actor=user,
            action=Action.READ,
            event=event,
            category=category,
            object_type="patients.Patient",
            object_id="mrn",
            outcome=Outcome.DENIED,
        )
        raise Http404("No such patient.")
    return patient_get_for_user(user=user, public_id=found, event=event, category=category)


@dataclass
class DuplicateCandidate:
    """A possible duplicate as shown to the registering user: details only when in scope."""

    patient: Patient
    in_scope: bool


def duplicate_candidates_for_user(
    *, user: User, candidates: list[Patient]
) -> list[DuplicateCandidate]:
    """Candidates found at registration, each disclosure audited as a read of that patient.

    Records outside the user's locations are shown by MRN and location only (with a way to
    break the glass), so duplicate detection does not leak names across locations.
    """
    shown: list[DuplicateCandidate] = []
    for candidate in candidates:
        visible = in_scope(user=user, patient=candidate) or has_break_glass(
            user=user, patient=candidate
        )
        record(
            actor=user,
            action=Action.READ,
            event="patient.duplicate_candidate",
            category=Category.DEMOGRAPHICS,
            patient=candidate,
            obj=candidate,
            fields=[] if visible else ["mrn", "home_location"],
        )
        shown.append(DuplicateCandidate(patient=candidate, in_scope=visible))
    return shown


def recent_registrations_for_user(*, user: User, limit: int = 10) -> list[Patient]:
    """The latest patients registered at the user's locations (audited as one query)."""
    if not user.can(Capability.VIEW_PATIENTS) or not user.location_ids:
        return []
    rows = list(
        patient_base_queryset()
        .filter(home_location_id__in=user.location_ids, merged_into__isnull=True)
        .order_by("-created_at", "-id")[:limit]
    )
    record(
        actor=user,
        action=Action.QUERY,
        event="patient.recent_list",
        category=Category.DEMOGRAPHICS,
        object_type="patients.Patient",
        object_id=f"{len(rows)} results",
    )
    return rows


@dataclass
class PatientCounts:
    """Operational counts (no PHI) for managers' and directors' home page."""

    by_location: list[tuple[str, int]]
    total: int
    registered_today: int
    registered_this_week: int
    active_alerts_by_kind: list[tuple[str, int]]
    active_alerts: int
    unverified_coverages: int


def patient_counts() -> PatientCounts:
    """Counts of what exists now, in a fixed number of queries."""
    today = timezone.localdate()
    start_today = timezone.make_aware(dt.datetime.combine(today, dt.time.min))
    start_week = start_today - dt.timedelta(days=today.weekday())
    current = Q(merged_into__isnull=True)
    registered = Patient.objects.filter(current).aggregate(
        total=Count("id"),
        today=Count("id", filter=Q(created_at__gte=start_today)),
        week=Count("id", filter=Q(created_at__gte=start_week)),
    )
    locations = Location.objects.annotate(
        current_patients=Count("patients", filter=Q(patients__merged_into__isnull=True))
    ).order_by("name")
    kinds: dict[str, int] = dict(
        PatientFlag.objects.filter(is_active=True, patient__merged_into__isnull=True)
        .order_by()
        .values("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    alerts = [(label, kinds[value]) for value, label in FlagKind.choices if kinds.get(value)]
    unverified = Coverage.objects.filter(
        is_active=True, verified_at__isnull=True, patient__merged_into__isnull=True
    ).count()
    return PatientCounts(
        by_location=[(loc.name, loc.current_patients) for loc in locations],
        total=registered["total"],
        registered_today=registered["today"],
        registered_this_week=registered["week"],
        active_alerts_by_kind=alerts,
        active_alerts=sum(kinds.values()),
        unverified_coverages=unverified,
    )


def break_glass_count(*, since: dt.datetime) -> int:
    return BreakGlassGrant.objects.filter(created_at__gte=since).count()


def break_glass_active_grant(*, user: User, patient: Patient) -> BreakGlassGrant | None:
    """The user's unexpired grant for this patient, latest expiry first."""
    return (
        BreakGlassGrant.objects.filter(user=user, patient=patient, expires_at__gt=timezone.now())
        .order_by("-expires_at")
        .first()
    )
