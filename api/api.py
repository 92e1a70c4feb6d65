"""The JSON API at /api/v1/: patients and coverages, through the same selectors and services as
the UI. Errors are problem+json (api/errors.py); OpenAPI 3 at /api/v1/openapi.json."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query, Status

from api import presenters
from api.access import (
    coverage_get_for_user,
    home_location_for,
    patient_page_for_user,
    search_window,
)
from api.auth import API_AUTH, require
from api.errors import DUPLICATE_TYPE, PROBLEM_CONTENT_TYPE, install_handlers, problem
from api.schemas import (
    CoverageCreate,
    CoverageOut,
    CoveragePatch,
    PatientCreate,
    PatientListParams,
    PatientOut,
    PatientPage,
    PatientPatch,
    PatientSearch,
    Problem,
    SearchPage,
)
from audit.models import Action, Category
from audit.services import record
from core.capabilities import Capability
from patients.selectors import (
    SearchCriteria,
    coverages_for,
    patient_get_for_user,
    patient_search,
)
from patients.services import (
    DuplicateCandidatesFound,
    coverage_save,
    patient_register,
    patient_update,
)


class PatientdeskAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Any) -> str:
        return str(operation.view_func.__name__)

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        """Error responses are documented with the media type they are sent with."""
        schema = super().get_openapi_schema(**kwargs)
        for path in schema["paths"].values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        content[PROBLEM_CONTENT_TYPE] = content.pop("application/json")
        return schema


api = PatientdeskAPI(
    title="patientdesk API",
    version="1",
    description=(
        "Patients and insurance coverages. Authenticate with `Authorization: Bearer <token>` "
        "(create a personal token under *API tokens*). Errors are RFC 9457 problem+json. "
        "Patient-identifying search criteria go in the body of `POST /patients/search`, "
        "never in a URL."
    ),
    urls_namespace="api",
    auth=API_AUTH,
)
install_handlers(api, field_map={})

ERRORS: dict[int, Any] = {401: Problem, 403: Problem, 404: Problem, 422: Problem}


@api.exception_handler(DuplicateCandidatesFound)
def on_duplicates(request: HttpRequest, exc: DuplicateCandidatesFound) -> HttpResponse:
    for candidate in exc.candidates:  # each patient disclosed to the caller is on the trail
        record(
            actor=request.auth,  # type: ignore[attr-defined]
            action=Action.QUERY,
            event="patient.duplicate_warning",
            category=Category.DEMOGRAPHICS,
            patient=candidate,
            obj=candidate,
        )
    return problem(
        409,
        "Possible duplicates of this patient exist. Check them; to register anyway, send the "
        'request again with "confirm_not_duplicate": true.',
        title="Possible duplicate patients",
        type_=DUPLICATE_TYPE,
        candidates=[{"public_id": str(c.public_id), "mrn": c.mrn} for c in exc.candidates],
    )


@api.get(
    "/patients", response={200: PatientPage, **ERRORS}, summary="List patients", tags=["patients"]
)
def patient_list(request: HttpRequest, params: Query[PatientListParams]) -> Any:
    """Patients of your locations, paged. Filters carry no patient-identifying data."""
    user = request.auth  # type: ignore[attr-defined]
    require(
        user,
        Capability.VIEW_PATIENTS,
        action=Action.QUERY,
        event="patient.list",
        category=Category.DEMOGRAPHICS,
    )
    count, rows = patient_page_for_user(
        user=user,
        location=params.location,
        updated_since=params.updated_since,
        sort=params.sort,
        limit=params.limit,
        offset=params.offset,
    )
    items = [presenters.patient_summary(p) for p in rows]
    return {"count": count, "limit": params.limit, "offset": params.offset, "items": items}


@api.post(
    "/patients",
    response={201: PatientOut, 409: Problem, **ERRORS},
    summary="Register a patient",
    tags=["patients"],
)
def patient_create(request: HttpRequest, payload: PatientCreate) -> Any:
    """Register a patient. Likely duplicates answer 409 with the candidates."""
    user = request.auth  # type: ignore[attr-defined]
    require(
        user,
        Capability.REGISTER_PATIENTS,
        action=Action.CREATE,
        event="patient.register",
        category=Category.DEMOGRAPHICS,
    )
    patient = patient_register(
        actor=user,
        home_location=home_location_for(user=user, public_id=payload.home_location),
        values=payload.values(),
        confirm_not_duplicate=payload.confirm_not_duplicate,
    )
    return Status(201, presenters.patient_detail(patient))


@api.post(
    "/patients/search",
    response={200: SearchPage, **ERRORS},
    summary="Search patients",
    tags=["patients"],
)
def patient_search_view(request: HttpRequest, payload: PatientSearch) -> Any:
    """Find patients by name prefix, date of birth, MRN, phone or member id."""
    user = request.auth  # type: ignore[attr-defined]
    criteria = SearchCriteria(
        name=payload.name,
        birth_date=payload.birth_date,
        mrn=payload.mrn,
        phone=payload.phone,
        member_id=payload.member_id,
    )
    require(
        user,
        Capability.VIEW_PATIENTS,
        action=Action.QUERY,
        event="patient.search",
        category=Category.DEMOGRAPHICS,
    )
    page, page_size, skip = search_window(payload.limit, payload.offset, criteria)
    result = patient_search(user=user, criteria=criteria, page=page, page_size=page_size)
    items = [presenters.patient_summary(p) for p in result.patients[skip:]]
    return {
        "limit": payload.limit,
        "offset": payload.offset,
        "has_more": result.has_more,
        "items": items,
    }


@api.get(
    "/patients/{uuid:public_id}",
    response={200: PatientOut, **ERRORS},
    summary="Read a patient",
    tags=["patients"],
)
def patient_read(request: HttpRequest, public_id: uuid.UUID) -> Any:
    """One patient (404 when missing or outside your locations)."""
    patient = patient_get_for_user(user=request.auth, public_id=public_id)  # type: ignore[attr-defined]
    return presenters.patient_detail(patient)


@api.patch(
    "/patients/{uuid:public_id}",
    response={200: PatientOut, **ERRORS},
    summary="Update a patient",
    tags=["patients"],
)
def patient_patch(request: HttpRequest, public_id: uuid.UUID, payload: PatientPatch) -> Any:
    """Change the fields sent; null clears an optional field."""
    user = request.auth  # type: ignore[attr-defined]
    patient = patient_get_for_user(user=user, public_id=public_id)
    require(
        user,
        Capability.REGISTER_PATIENTS,
        action=Action.UPDATE,
        event="patient.update",
        category=Category.DEMOGRAPHICS,
        patient_public_id=public_id,
    )
    patient = patient_update(actor=user, patient=patient, values=payload.values())
    return presenters.patient_detail(patient)


@api.get(
    "/patients/{uuid:public_id}/coverages",
    response={200: list[CoverageOut], **ERRORS},
    summary="List a patient's coverages",
    tags=["coverages"],
)
def coverage_list(request: HttpRequest, public_id: uuid.UUID) -> Any:
    """A patient's coverages, active ones first."""
    patient = patient_get_for_user(
        user=request.auth,  # type: ignore[attr-defined]
        public_id=public_id,
        event="coverage.list",
        category=Category.COVERAGE,
    )
    return [presenters.coverage_detail(c, patient) for c in coverages_for(patient)]


@api.post(
    "/patients/{uuid:public_id}/coverages",
    response={201: CoverageOut, **ERRORS},
    summary="Add a coverage",
    tags=["coverages"],
)
def coverage_create(request: HttpRequest, public_id: uuid.UUID, payload: CoverageCreate) -> Any:
    """Add an insurance coverage to a patient."""
    user = request.auth  # type: ignore[attr-defined]
    patient = patient_get_for_user(
        user=user, public_id=public_id, event="coverage.view", category=Category.COVERAGE
    )
    require(
        user,
        Capability.MANAGE_COVERAGE,
        action=Action.CREATE,
        event="coverage.add",
        category=Category.COVERAGE,
        patient_public_id=public_id,
    )
    coverage = coverage_save(actor=user, patient=patient, values=payload.values())
    return Status(201, presenters.coverage_detail(coverage, patient))


@api.get(
    "/coverages/{uuid:public_id}",
    response={200: CoverageOut, **ERRORS},
    summary="Read a coverage",
    tags=["coverages"],
)
def coverage_read(request: HttpRequest, public_id: uuid.UUID) -> Any:
    """One coverage (404 when missing or its patient is outside your locations)."""
    coverage, patient = coverage_get_for_user(user=request.auth, public_id=public_id)  # type: ignore[attr-defined]
    return presenters.coverage_detail(coverage, patient)


@api.patch(
    "/coverages/{uuid:public_id}",
    response={200: CoverageOut, **ERRORS},
    summary="Update a coverage",
    tags=["coverages"],
)
def coverage_patch(request: HttpRequest, public_id: uuid.UUID, payload: CoveragePatch) -> Any:
    """Change the fields sent; null clears an optional date."""
    user = request.auth  # type: ignore[attr-defined]
    coverage, patient = coverage_get_for_user(user=user, public_id=public_id)
    require(
        user,
        Capability.MANAGE_COVERAGE,
        action=Action.UPDATE,
        event="coverage.update",
        category=Category.COVERAGE,
        patient_public_id=patient.public_id,
    )
    coverage = coverage_save(
        actor=user, patient=patient, values=payload.values(), coverage=coverage
    )
    return presenters.coverage_detail(coverage, patient)


# Scheduling routes (practitioners, appointment types, slots, appointments) live with their app.
from scheduling.api import router as scheduling_router  # noqa: E402

api.add_router("", scheduling_router)
