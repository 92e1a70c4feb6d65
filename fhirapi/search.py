"""Patient and Coverage reads for the FHIR API, through patients.selectors (scope + audit)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied

from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability
from fhirapi.responses import PatientSearchParams
from patients.fhir import MRN_SYSTEM, coverage_to_fhir, patient_to_fhir
from patients.models import Patient, PatientIdentifier
from patients.selectors import SearchCriteria, coverages_for, patient_search

if TYPE_CHECKING:
    from accounts.models import User


def require_view(user: User, event: str) -> None:
    """403 (audited) for a signed-in user whose roles do not include viewing patients."""
    if not user.can(Capability.VIEW_PATIENTS):
        record(
            actor=user,
            action=Action.QUERY,
            event=event,
            category=Category.DEMOGRAPHICS,
            outcome=Outcome.DENIED,
        )
        raise PermissionDenied("Your roles do not allow viewing patients.")


def patient_resources(patients: list[Patient]) -> list[dict[str, Any]]:
    """FHIR Patients for a page of records, with their identifiers in one query."""
    by_patient: dict[int, list[PatientIdentifier]] = defaultdict(list)
    for ident in PatientIdentifier.objects.filter(patient_id__in=[p.pk for p in patients]):
        by_patient[ident.patient_id].append(ident)
    return [patient_to_fhir(p, by_patient[p.pk]) for p in patients]


def _page_window(count: int, offset: int) -> tuple[int, int, int]:
    """patient_search pages by number: (page, page size, rows to skip) for count/offset."""
    if offset % count == 0:
        return offset // count + 1, count, 0
    return 1, offset + count, offset


def search_patients(*, user: User, params: PatientSearchParams) -> tuple[list[Patient], bool]:
    """Patients matching the FHIR search, in the user's scope; one query event on the trail."""
    require_view(user, "patient.search")
    criteria = SearchCriteria(name=params.name, birth_date=params.birth_date)
    if params.identifier_value:
        if params.identifier_system in ("", MRN_SYSTEM):
            criteria.mrn = params.identifier_value
        else:
            # Another system's identifier: find the record's MRN, then search by it (scoped).
            mrn = (
                PatientIdentifier.objects.filter(
                    system=params.identifier_system, value=params.identifier_value
                )
                .values_list("patient__mrn", flat=True)
                .first()
            )
            if mrn is None:
                record(
                    actor=user,
                    action=Action.QUERY,
                    event="patient.search",
                    category=Category.DEMOGRAPHICS,
                    fields=[*criteria.used_fields(), "identifier"],
                    object_type="patients.Patient",
                    object_id="0 results",
                )
                return [], False
            criteria.mrn = mrn
    page, size, skip = _page_window(params.count, params.offset)
    result = patient_search(user=user, criteria=criteria, page=page, page_size=size)
    return result.patients[skip:], result.has_more


def coverage_resources(patient: Patient) -> list[dict[str, Any]]:
    return [coverage_to_fhir(c, patient) for c in coverages_for(patient)]
