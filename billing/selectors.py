"""Billing reads with access checks and audit.

A user sees a patient's encounters and claims when they may view billing and the patient's home
location is one of theirs (or they hold a break-glass grant), as patients.selectors decides.
Missing and forbidden both answer 404 and both are audited.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone

from audit.models import Action, Category, Outcome
from audit.services import record
from billing import icd10
from billing.models import (
    ChargeLine,
    Claim,
    ClaimStatus,
    Encounter,
    EncounterStatus,
    FeeSchedule,
    Payer,
)
from core.capabilities import Capability
from patients.selectors import has_break_glass, in_scope
from scheduling.models import Appointment, AppointmentStatus

if TYPE_CHECKING:
    from accounts.models import User
    from patients.models import Patient

PAGE_SIZE = 50


def _may_see(user: User, patient: Patient) -> bool:
    return user.can(Capability.VIEW_BILLING) and (
        in_scope(user=user, patient=patient) or has_break_glass(user=user, patient=patient)
    )


def _denied(user: User, *, event: str, object_type: str, public_id: object) -> Http404:
    record(
        actor=user,
        action=Action.READ,
        event=event,
        category=Category.BILLING,
        object_type=object_type,
        object_id=str(public_id),
        outcome=Outcome.DENIED,
    )
    return Http404("Not found.")


def _read(
    user: User, *, event: str, obj: object, patient: Patient, action: Action = Action.READ
) -> None:
    record(
        actor=user,
        action=action,
        event=event,
        category=Category.BILLING,
        patient=patient,
        obj=obj,
    )


def encounter_get_for_user(
    *, user: User, public_id: uuid.UUID | str, event: str = "encounter.view"
) -> Encounter:
    encounter = (
        Encounter.objects.select_related(
            "patient__home_location", "rendering_practitioner", "billing_provider", "appointment"
        )
        .filter(public_id=public_id)
        .first()
    )
    if encounter is None or not _may_see(user, encounter.patient):
        raise _denied(user, event=event, object_type="billing.Encounter", public_id=public_id)
    _read(user, event=event, obj=encounter, patient=encounter.patient)
    return encounter


def charge_line_get_for_user(
    *, user: User, public_id: uuid.UUID | str, event: str = "charge.view"
) -> ChargeLine:
    line = (
        ChargeLine.objects.select_related("encounter__patient__home_location")
        .filter(public_id=public_id)
        .first()
    )
    if line is None or not _may_see(user, line.encounter.patient):
        raise _denied(user, event=event, object_type="billing.ChargeLine", public_id=public_id)
    _read(user, event=event, obj=line, patient=line.encounter.patient)
    return line


def claim_get_for_user(
    *,
    user: User,
    public_id: uuid.UUID | str,
    event: str = "claim.view",
    action: Action = Action.READ,
) -> Claim:
    """The claim if the user may see it (audited as `action`: READ, or PRINT for the
    CMS-1500), else 404 (audited as refused)."""
    claim = (
        Claim.objects.select_related(
            "patient__home_location",
            "coverage",
            "payer",
            "billing_provider",
            "rendering_practitioner",
            "encounter",
            "replaces",
            "batch",
        )
        .filter(public_id=public_id)
        .first()
    )
    if claim is None or not _may_see(user, claim.patient):
        raise _denied(user, event=event, object_type="billing.Claim", public_id=public_id)
    _read(user, event=event, obj=claim, patient=claim.patient, action=action)
    return claim


@dataclass(frozen=True)
class DiagnosisRow:
    position: int
    code: str
    display: str
    description: str


def diagnoses_for(encounter: Encounter) -> list[DiagnosisRow]:
    return [
        DiagnosisRow(d.position, d.code, icd10.display_code(d.code), icd10.description(d.code))
        for d in encounter.diagnoses.order_by("position")
    ]


def charge_lines_for(encounter: Encounter) -> list[ChargeLine]:
    """All lines, in order, each with `is_reversed` set (a reversed line has a correction)."""
    lines = list(encounter.lines.order_by("line_number"))
    reversed_ids = {line.corrects_id for line in lines if line.corrects_id}
    for line in lines:
        line.is_reversed = line.pk in reversed_ids  # type: ignore[attr-defined]
    return lines


def claims_for_encounter(encounter: Encounter) -> list[Claim]:
    return list(encounter.claims.select_related("payer").order_by("created_at", "id"))


def claim_detail(claim: Claim) -> dict[str, object]:
    """The claim page's parts: lines, diagnoses, last scrub's problems, timeline, allowed moves."""
    from billing.models import ALLOWED

    return {
        "lines": list(claim.lines.order_by("line_number")),
        "diagnoses": diagnoses_for(claim.encounter),
        "problems": list(claim.problems.order_by("severity", "line_number", "rule_id")),
        "events": list(claim.events.select_related("actor").order_by("at", "id")),
        "next_statuses": sorted(ALLOWED[claim.status]),
        "replaced_by": list(claim.replaced_by.order_by("created_at")),
        "prior_payments": list(claim.prior_payments.select_related("payer", "claim_line")),
        "prior_adjustments": list(claim.prior_adjustments.select_related("claim_line")),
    }


def _claims_in_scope(user: User) -> QuerySet[Claim]:
    return Claim.objects.filter(patient__home_location_id__in=user.location_ids)


@dataclass(frozen=True)
class WorkList:
    status_counts: list[tuple[str, str, int]]
    encounters_to_bill: Sequence[Encounter]
    visits_to_code: list[Appointment]


def work_list_for_user(*, user: User, limit: int = 25) -> WorkList:
    """The billing home: claims by status (counts), open encounters without a claim, and
    completed visits of the last 14 days that have no encounter yet. Audited as one query."""
    counts = dict(_claims_in_scope(user).values_list("status").annotate(n=Count("id")).order_by())
    encounters = list(
        Encounter.objects.filter(
            patient__home_location_id__in=user.location_ids, status=EncounterStatus.OPEN
        )
        .select_related("patient", "rendering_practitioner")
        .annotate(line_count=Count("lines"))
        .order_by("date_of_service", "id")[:limit]
    )
    since = timezone.now() - dt.timedelta(days=14)
    visits = list(
        Appointment.objects.filter(
            location_id__in=user.location_ids,
            status=AppointmentStatus.COMPLETED,
            start__gte=since,
        )
        .filter(~Exists(Encounter.objects.filter(appointment=OuterRef("pk"))))
        .select_related("patient", "appointment_type")
        .order_by("start", "id")[:limit]
    )
    record(
        actor=user,
        action=Action.QUERY,
        event="billing.work_list",
        category=Category.BILLING,
        reason=f"{len(encounters)} encounters, {len(visits)} visits",
    )
    return WorkList(
        status_counts=[(s.value, s.label, counts.get(s.value, 0)) for s in ClaimStatus],
        encounters_to_bill=encounters,
        visits_to_code=visits,
    )


@dataclass(frozen=True)
class ClaimPage:
    claims: list[Claim]
    page: int
    has_next: bool
    total: int


def claim_list_for_user(
    *, user: User, status: str = "", payer: Payer | None = None, page: int = 1
) -> ClaimPage:
    """Claims at the user's locations, newest first, filtered by status and payer (no PHI in the
    filter). Audited as a query; each patient shown is not audited separately (a list page)."""
    queryset = _claims_in_scope(user)
    if status:
        queryset = queryset.filter(status=status)
    if payer is not None:
        queryset = queryset.filter(payer=payer)
    total = queryset.count()
    start = (max(page, 1) - 1) * PAGE_SIZE
    claims = list(
        queryset.select_related("patient", "payer").order_by("-created_at", "-id")[
            start : start + PAGE_SIZE + 1
        ]
    )
    record(
        actor=user,
        action=Action.QUERY,
        event="claim.list",
        category=Category.BILLING,
        fields=[name for name, value in (("status", status), ("payer", payer)) if value],
    )
    return ClaimPage(claims[:PAGE_SIZE], max(page, 1), len(claims) > PAGE_SIZE, total)


def appointments_for_coding(*, patient: Patient) -> list[Appointment]:
    """The patient's recent visits (last 90 days, not cancelled) to attach an encounter to."""
    since = timezone.now() - dt.timedelta(days=90)
    return list(
        Appointment.objects.filter(patient=patient, start__gte=since, start__lte=timezone.now())
        .exclude(status__in=[AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW])
        .select_related("appointment_type")
        .order_by("-start")[:20]
    )


def appointment_for_patient(*, patient: Patient, public_id: uuid.UUID | str) -> Appointment:
    appointment = Appointment.objects.filter(patient=patient, public_id=public_id).first()
    if appointment is None:
        raise Http404("No such appointment.")
    return appointment


def payer_list() -> list[Payer]:
    return list(Payer.objects.annotate(schedule_count=Count("fee_schedules")).order_by("name"))


def payer_get(*, public_id: uuid.UUID | str) -> Payer:
    payer = Payer.objects.filter(public_id=public_id).first()
    if payer is None:
        raise Http404("No such payer.")
    return payer


def fee_schedule_list() -> list[FeeSchedule]:
    return list(
        FeeSchedule.objects.select_related("payer")
        .annotate(entry_count=Count("entries"))
        .order_by("payer__name", "-effective_start", "id")
    )


def fee_schedule_get(*, public_id: uuid.UUID | str) -> FeeSchedule:
    schedule = (
        FeeSchedule.objects.select_related("payer")
        .prefetch_related(Prefetch("entries"))
        .filter(public_id=public_id)
        .first()
    )
    if schedule is None:
        raise Http404("No such fee schedule.")
    return schedule
