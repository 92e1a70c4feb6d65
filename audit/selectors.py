"""Reads of the audit trail for the privacy officer: the report, its CSV export, break-glass review.

Every read checks Capability.VIEW_AUDIT and is itself audited (denied attempts too). Queries
filter and sort on indexed columns only (see AuditEvent.Meta.indexes) and pages are fetched as
page_size + 1 rows ("is there a next page?"): nothing counts the whole table.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.models import Action, AuditEvent, Category, Outcome
from audit.services import record
from core.capabilities import ROLE_DEFINITIONS, Capability
from core.text import prefix_upper_bound
from patients.models import BreakGlassGrant, Patient, PatientIdentifier

if TYPE_CHECKING:
    from accounts.models import User

PAGE_SIZE = 50
EXPORT_CHUNK = 2000
MAX_MERGE_DEPTH = 10

REPORT_EVENT = "audit.report"
EXPORT_EVENT = "audit.export"
BREAK_GLASS_REVIEW_EVENT = "audit.break_glass_review"
BREAK_GLASS_EVENT = "access.break_glass"

# Sort keys the report accepts (allow-list) -> the indexed column behind each.
SORT_COLUMNS: dict[str, str] = {
    "sequence": "sequence",
    "time": "occurred_at",
    "user": "username",
    "action": "action",
    "event": "event",
    "outcome": "outcome",
}
DEFAULT_SORT = "-sequence"
SORT_CHOICES: list[str] = [key for name in SORT_COLUMNS for key in (name, f"-{name}")]

ROLE_NAMES: dict[str, str] = {slug: str(spec["name"]) for slug, spec in ROLE_DEFINITIONS.items()}


def role_names(slugs: str) -> list[str]:
    return [ROLE_NAMES.get(slug, slug) for slug in slugs.split(",") if slug]


def local_day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of `day` in settings.TIME_ZONE, as an aware datetime."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))


def resolve_patient(reference: str) -> tuple[uuid.UUID, ...] | None:
    """An MRN (current or kept as an alias after a merge) or a patient's public id -> the public
    ids whose events belong to that person (the record and every record merged into it).

    None when an MRN matches no patient. A well-formed public id is taken as given: the trail
    may name records that no longer resolve.
    """
    reference = reference.strip()
    try:
        public_id = uuid.UUID(reference)
    except ValueError:
        public_id = None
    if public_id is not None:
        patient = Patient.objects.filter(public_id=public_id).values("pk").first()
        if patient is None:
            return (public_id,)
        patient_pk = patient["pk"]
    else:
        identifier = (
            PatientIdentifier.objects.filter(system=PatientIdentifier.MRN_SYSTEM, value=reference)
            .values("patient_id")
            .first()
        )
        if identifier is None:
            return None
        patient_pk = identifier["patient_id"]
    found: dict[int, uuid.UUID] = {}
    frontier = [patient_pk]
    for _ in range(MAX_MERGE_DEPTH):
        rows = Patient.objects.filter(Q(pk__in=frontier) | Q(merged_into_id__in=frontier))
        new = {pk: pid for pk, pid in rows.values_list("pk", "public_id") if pk not in found}
        if not new:
            break
        found.update(new)
        frontier = list(new)
    ordered = [found.pop(patient_pk)] if patient_pk in found else []
    return (*ordered, *sorted(found.values(), key=str))


@dataclass(frozen=True)
class ReportCriteria:
    """Validated report filters (see audit.forms.ReportFilterForm)."""

    patient_ids: tuple[uuid.UUID, ...] = ()
    username: str = ""
    action: str = ""
    event: str = ""
    outcome: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    sort: str = DEFAULT_SORT
    page: int = 1
    used_fields: tuple[str, ...] = ()


def _date_range_q(date_from: dt.date | None, date_to: dt.date | None) -> Q:
    q = Q()
    if date_from:
        q &= Q(occurred_at__gte=local_day_start(date_from))
    if date_to:
        q &= Q(occurred_at__lt=local_day_start(date_to + dt.timedelta(days=1)))
    return q


def _event_q(event: str) -> Q:
    """Exact event name, or a prefix when it ends with '*' ('auth.*'), as an index range scan."""
    if event.endswith("*"):
        prefix = event.rstrip("*")
        if not prefix:
            return Q()
        return Q(event__gte=prefix, event__lt=prefix_upper_bound(prefix))
    return Q(event=event)


def report_queryset(criteria: ReportCriteria) -> QuerySet[AuditEvent]:
    q = _date_range_q(criteria.date_from, criteria.date_to)
    if criteria.patient_ids:
        q &= Q(patient_public_id__in=criteria.patient_ids)
    if criteria.username:
        q &= Q(username=criteria.username)
    if criteria.action:
        q &= Q(action=criteria.action)
    if criteria.event:
        q &= _event_q(criteria.event)
    if criteria.outcome:
        q &= Q(outcome=criteria.outcome)
    sort = criteria.sort
    if (criteria.date_from or criteria.date_to) and sort.lstrip("-") == "sequence":
        # Same order (times are taken under the chain's lock), but the (occurred_at, sequence)
        # index then serves the date range and the order together, with no sort step.
        sort = sort.replace("sequence", "time")
    return AuditEvent.objects.filter(q).order_by(*ordering_for(sort))


def ordering_for(sort: str) -> list[str]:
    """An allow-listed sort key -> ORDER BY columns that one index scan serves, forwards or
    backwards (see AuditEvent.Meta.indexes), so a page costs the same on any size of table.

    Ties are broken by the sequence in the index's direction: descending is then the exact
    reverse of ascending (user A-Z lists each user's newest event first; Z-A, oldest first).
    """
    descending = sort.startswith("-")
    column = SORT_COLUMNS.get(sort.lstrip("-"), "sequence")
    sign, other = ("-", "") if descending else ("", "-")
    if column == "sequence":
        return [f"{sign}sequence"]
    if column == "occurred_at":  # index (occurred_at, sequence)
        return [f"{sign}occurred_at", f"{sign}sequence"]
    return [f"{sign}{column}", f"{other}sequence"]  # indexes (column, -sequence)


SORT_LABELS: dict[str, str] = {
    "sequence": "#",
    "time": "Time",
    "user": "User",
    "action": "Action",
    "event": "Event",
    "outcome": "Outcome",
}
NEWEST_FIRST_COLUMNS = {"sequence", "time"}


@dataclass(frozen=True)
class SortHeader:
    column: str
    label: str
    next_sort: str  # what clicking the header asks for
    aria_sort: str  # "ascending", "descending" or "none"

    @property
    def action_label(self) -> str:
        """What the header button does, for screen readers: 'Sort by user, descending'."""
        name = "sequence number" if self.column == "sequence" else self.label.lower()
        direction = "descending" if self.next_sort.startswith("-") else "ascending"
        return f"Sort by {name}, {direction}"


@dataclass
class ReportRow:
    event: AuditEvent
    patient: Patient | None
    roles: list[str]


@dataclass
class ReportPage:
    rows: list[ReportRow]
    page: int
    has_next: bool
    sort: str
    criteria: ReportCriteria = field(default_factory=ReportCriteria)

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def sort_column(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def headers(self) -> dict[str, SortHeader]:
        out = {}
        for column, label in SORT_LABELS.items():
            if column == self.sort_column:
                aria = "descending" if self.descending else "ascending"
                next_sort = column if self.descending else f"-{column}"
            else:
                aria = "none"
                next_sort = f"-{column}" if column in NEWEST_FIRST_COLUMNS else column
            out[column] = SortHeader(column, label, next_sort, aria)
        return out


def _patients_by_public_id(events: Iterable[AuditEvent]) -> dict[uuid.UUID, Patient]:
    """The patients named by `events`, in one query."""
    ids = {e.patient_public_id for e in events if e.patient_public_id}
    if not ids:
        return {}
    patients = Patient.objects.filter(public_id__in=ids).only(
        "public_id", "mrn", "family_name", "given_name", "preferred_name"
    )
    return {p.public_id: p for p in patients}


def _rows(events: list[AuditEvent]) -> list[ReportRow]:
    patients = _patients_by_public_id(events)
    return [
        ReportRow(
            event=e,
            patient=patients.get(e.patient_public_id) if e.patient_public_id else None,
            roles=role_names(e.roles),
        )
        for e in events
    ]


def audit_access_check(*, user: User, event: str) -> None:
    """PermissionDenied (audited) unless the user may read the audit trail."""
    if not user.can(Capability.VIEW_AUDIT):
        record(
            actor=user,
            action=Action.QUERY,
            event=event,
            category=Category.AUDIT,
            outcome=Outcome.DENIED,
        )
        raise PermissionDenied("Reading the audit trail needs the privacy officer's role.")


def audit_report_page(*, user: User, criteria: ReportCriteria) -> ReportPage:
    """One page of the report (PAGE_SIZE rows, newest first by default). Audited as a query."""
    audit_access_check(user=user, event=REPORT_EVENT)
    offset = (criteria.page - 1) * PAGE_SIZE
    events = list(report_queryset(criteria)[offset : offset + PAGE_SIZE + 1])
    record(
        actor=user,
        action=Action.QUERY,
        event=REPORT_EVENT,
        category=Category.AUDIT,
        patient_public_id=criteria.patient_ids[0] if criteria.patient_ids else None,
        fields=criteria.used_fields,
        object_type="audit.AuditEvent",
        object_id=f"page {criteria.page}",
    )
    return ReportPage(
        rows=_rows(events[:PAGE_SIZE]),
        page=criteria.page,
        has_next=len(events) > PAGE_SIZE,
        sort=criteria.sort,
        criteria=criteria,
    )


EXPORT_HEADER = [
    "sequence",
    "time",
    "user",
    "roles",
    "action",
    "event",
    "category",
    "outcome",
    "patient_mrn",
    "patient_name",
    "patient_id",
    "object_type",
    "object_id",
    "ip",
    "request_id",
    "session",
    "reason",
    "fields",
]


def _export_line(row: ReportRow) -> list[str]:
    e = row.event
    return [
        str(e.sequence),
        timezone.localtime(e.occurred_at).isoformat(timespec="seconds"),
        e.username,
        "; ".join(row.roles),
        e.action,
        e.event,
        e.category,
        e.outcome,
        row.patient.mrn if row.patient else "",
        row.patient.display_name if row.patient else "",
        str(e.patient_public_id or ""),
        e.object_type,
        e.object_id,
        e.ip or "",
        e.request_id,
        e.session_ref,
        e.reason,
        ",".join(e.fields or []),
    ]


def audit_export(*, user: User, criteria: ReportCriteria) -> Iterator[list[str]]:
    """Every event matching `criteria`, as CSV cells (header first). The export is audited now,
    when it is asked for; the rows stream lazily, in chunks, with one patient query per chunk."""
    audit_access_check(user=user, event=EXPORT_EVENT)
    record(
        actor=user,
        action=Action.EXPORT,
        event=EXPORT_EVENT,
        category=Category.AUDIT,
        patient_public_id=criteria.patient_ids[0] if criteria.patient_ids else None,
        fields=criteria.used_fields,
        object_type="audit.AuditEvent",
    )
    return _export_lines(report_queryset(criteria))


def _export_lines(queryset: QuerySet[AuditEvent]) -> Iterator[list[str]]:
    yield EXPORT_HEADER
    events = queryset.iterator(chunk_size=EXPORT_CHUNK)
    while chunk := list(islice(events, EXPORT_CHUNK)):
        for row in _rows(chunk):
            yield _export_line(row)


@dataclass
class BreakGlassRow:
    event: AuditEvent
    grant: BreakGlassGrant | None
    patient: Patient | None

    @property
    def expired(self) -> bool:
        return self.grant is None or self.grant.expires_at <= timezone.now()


@dataclass
class BreakGlassPage:
    rows: list[BreakGlassRow]
    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def break_glass_review(
    *,
    user: User,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    page: int = 1,
) -> BreakGlassPage:
    """Every emergency access (access.break_glass), newest first, with its grant's expiry."""
    audit_access_check(user=user, event=BREAK_GLASS_REVIEW_EVENT)
    offset = (page - 1) * PAGE_SIZE
    events = list(
        AuditEvent.objects.filter(
            _date_range_q(date_from, date_to), event=BREAK_GLASS_EVENT
        ).order_by("-sequence")[offset : offset + PAGE_SIZE + 1]
    )
    has_next = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    grant_ids = {e.object_id for e in events if e.object_type == "patients.BreakGlassGrant"}
    grants = {
        str(g.public_id): g
        for g in BreakGlassGrant.objects.filter(public_id__in=_uuids(grant_ids)).select_related(
            "patient", "user"
        )
    }
    without_grant = [e for e in events if e.object_id not in grants]
    patients = _patients_by_public_id(without_grant)
    rows = []
    for e in events:
        grant = grants.get(e.object_id)
        patient = grant.patient if grant else patients.get(e.patient_public_id)  # type: ignore[arg-type]
        rows.append(BreakGlassRow(event=e, grant=grant, patient=patient))
    record(
        actor=user,
        action=Action.QUERY,
        event=BREAK_GLASS_REVIEW_EVENT,
        category=Category.AUDIT,
        fields=[name for name, value in (("date_from", date_from), ("date_to", date_to)) if value],
        object_type="audit.AuditEvent",
        object_id=f"page {page}",
    )
    return BreakGlassPage(rows=rows, page=page, has_next=has_next)


def _uuids(values: Iterable[str]) -> list[uuid.UUID]:
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            continue
    return out
