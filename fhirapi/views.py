"""The FHIR R4 read API at /fhir/r4/. Same token auth, permissions and audit as the JSON API.

Every answer is application/fhir+json; every error an OperationOutcome with the right status:
400 bad search parameter, 401 not signed in, 403 role without the capability (or a session
request without its CSRF token), 404 missing or outside the user's locations, 405 wrong method.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from ninja.utils import check_csrf

from api.access import coverage_get_for_user
from api.errors import record_unauthenticated
from audit.models import Category
from core.capabilities import Capability
from fhirapi.responses import (
    SearchParameterError,
    absolute,
    capability_statement,
    fhir_response,
    operation_outcome,
    parse_patient_reference,
    parse_patient_search,
    searchset,
)
from fhirapi.search import coverage_resources, patient_resources, search_patients
from patients.fhir import coverage_to_fhir
from patients.selectors import patient_get_for_user

View = Callable[..., HttpResponse]
SAFE_METHODS = ("GET", "HEAD")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _denied(request: HttpRequest) -> HttpResponse | None:
    """401 for anonymous callers; 403 for a token without USE_API or a session without CSRF."""
    user = request.user
    if not user.is_authenticated:
        record_unauthenticated(request, "fhir.unauthenticated")
        return operation_outcome(
            401,
            "login",
            "Send 'Authorization: Bearer <token>' with a personal API token.",
            **{"WWW-Authenticate": 'Bearer realm="patientdesk"'},
        )
    if getattr(request, "api_token", None) is not None:
        if not user.can(Capability.USE_API):
            return operation_outcome(403, "forbidden", "Your roles do not allow API access.")
    elif request.method not in SAFE_METHODS and check_csrf(request) is not None:
        return operation_outcome(403, "forbidden", "CSRF verification failed.")
    return None


def fhir_endpoint(*methods: str, public: bool = False) -> Callable[[View], View]:
    """Method check, authentication, and errors turned into OperationOutcomes."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                allowed = ", ".join(methods)
                return operation_outcome(
                    405,
                    "not-supported",
                    f"{request.method} is not supported here ({allowed}).",
                    Allow=allowed,
                )
            if not public and (denied := _denied(request)) is not None:
                return denied
            try:
                return view(request, *args, **kwargs)
            except SearchParameterError as exc:
                return operation_outcome(400, "invalid", exc.message, expression=exc.parameter)
            except PermissionDenied as exc:
                return operation_outcome(403, "forbidden", str(exc) or "Not allowed.")
            except Http404:
                return operation_outcome(
                    404, "not-found", "No such resource, or it is outside your locations."
                )

        return wrapper

    return decorate


@fhir_endpoint("GET", "HEAD", public=True)
def metadata(request: HttpRequest) -> HttpResponse:
    return fhir_response(capability_statement(request))


@fhir_endpoint("GET", "HEAD")
def patient_read(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    patient = patient_get_for_user(user=request.user, public_id=public_id)  # type: ignore[arg-type]
    return fhir_response(patient_resources([patient])[0])


@fhir_endpoint("GET", "HEAD")
def patient_search(request: HttpRequest) -> HttpResponse:
    """GET Patient?name=&birthdate=&identifier= (prefer POST _search: PHI stays out of URLs)."""
    params = parse_patient_search(request.GET)
    patients, has_more = search_patients(user=request.user, params=params)  # type: ignore[arg-type]
    next_url = ""
    if has_more:
        query = request.GET.copy()
        query["_offset"] = str(params.offset + params.count)
        next_url = f"{absolute(request, 'fhir:patient-search')}?{query.urlencode()}"
    bundle = searchset(
        request,
        patient_resources(patients),
        self_url=request.build_absolute_uri(),
        next_url=next_url,
    )
    return fhir_response(bundle)


@fhir_endpoint("POST")
def patient_search_post(request: HttpRequest) -> HttpResponse:
    """POST Patient/_search with form-encoded parameters. No 'next' link: it would be a URL."""
    if request.GET:
        raise SearchParameterError(
            next(iter(request.GET)), "Send search parameters in the form body, not the URL."
        )
    if request.body and request.content_type not in FORM_TYPES:
        raise SearchParameterError("Content-Type", "Send application/x-www-form-urlencoded.")
    params = parse_patient_search(request.POST)
    patients, _ = search_patients(user=request.user, params=params)  # type: ignore[arg-type]
    bundle = searchset(
        request, patient_resources(patients), self_url=absolute(request, "fhir:patient-search")
    )
    return fhir_response(bundle)


@fhir_endpoint("GET", "HEAD")
def coverage_search(request: HttpRequest) -> HttpResponse:
    """GET Coverage?patient=<id>: 404 when the patient is missing or outside your locations."""
    patient = patient_get_for_user(
        user=request.user,  # type: ignore[arg-type]
        public_id=parse_patient_reference(request.GET),
        event="coverage.list",
        category=Category.COVERAGE,
    )
    bundle = searchset(request, coverage_resources(patient), self_url=request.build_absolute_uri())
    return fhir_response(bundle)


@fhir_endpoint("GET", "HEAD")
def coverage_read(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    coverage, patient = coverage_get_for_user(user=request.user, public_id=public_id)  # type: ignore[arg-type]
    return fhir_response(coverage_to_fhir(coverage, patient))


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return operation_outcome(
        404, "not-supported", "No such FHIR endpoint; see /fhir/r4/metadata for what is served."
    )
