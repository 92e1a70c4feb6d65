"""Reads of remittances, with the access checks and audit rows the screens need."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from audit.models import Action, Category
from audit.services import record
from billing.models import Claim
from core.capabilities import Capability
from remittance.models import IngestJob, RemittanceFile, UnmatchedRemittance, UnmatchedStatus

if TYPE_CHECKING:
    from accounts.models import User

PAGE = 100


def remittance_file_list(*, user: User) -> QuerySet[RemittanceFile]:
    """The latest files received (no patient data: names, counts and totals only)."""
    if not user.can(Capability.VIEW_BILLING):
        raise PermissionDenied("Your roles do not allow viewing billing.")
    return RemittanceFile.objects.select_related("received_by").defer("content")[:PAGE]


def unmatched_list_for_user(*, user: User) -> list[UnmatchedRemittance]:
    """The open unmatched queue, oldest first. The rows hold names and member ids as the payer
    wrote them (PHI that belongs to no patient record yet), so reading the list is audited as a
    query and needs POST_REMITTANCES; they have no location, so the billing office sees all."""
    if not user.can(Capability.POST_REMITTANCES):
        raise PermissionDenied("Your roles do not allow working remittances.")
    rows = list(
        UnmatchedRemittance.objects.filter(status=UnmatchedStatus.OPEN)
        .select_related("claim_remittance__payment__file")
        .order_by("created_at", "id")[:PAGE]
    )
    record(
        actor=user,
        action=Action.QUERY,
        event="remittance.unmatched_list",
        category=Category.PAYMENTS,
        object_type="remittance.UnmatchedRemittance",
        fields=["patient_name", "member_id", "paid"],
        reason=f"{len(rows)} rows",
    )
    return rows


def ingest_job_get_for_user(*, user: User, public_id: uuid.UUID) -> IngestJob:
    """An upload's job (file name, status, counts and totals; no patient data), for users who
    post remittances; an unknown id is a 404."""
    if not user.can(Capability.POST_REMITTANCES):
        raise PermissionDenied("Your roles do not allow working remittances.")
    job = IngestJob.objects.defer("content").filter(public_id=public_id).first()
    if job is None:
        raise Http404("No such upload.")
    return job


def unmatched_get_for_user(*, user: User, public_id: uuid.UUID) -> UnmatchedRemittance:
    """An open unmatched entry for a user who posts remittances; otherwise 404."""
    if not user.can(Capability.POST_REMITTANCES):
        raise PermissionDenied("Your roles do not allow working remittances.")
    entry = (
        UnmatchedRemittance.objects.filter(public_id=public_id, status=UnmatchedStatus.OPEN)
        .select_related("claim_remittance")
        .first()
    )
    if entry is None:
        raise Http404("No such unmatched claim payment.")
    return entry


def claim_for_resolution(*, user: User, patient_control_number: str) -> Claim | None:
    """The claim with that control number whose patient the user may see (home location one of
    theirs); None otherwise, so that other locations' claims stay invisible."""
    return (
        Claim.objects.select_related("patient")
        .filter(
            patient_control_number=patient_control_number,
            patient__home_location_id__in=user.location_ids,
        )
        .first()
    )
