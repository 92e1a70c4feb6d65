"""FHIR R4 envelopes: responses, OperationOutcome, searchset Bundle, CapabilityStatement, and
the parsing of search parameters (which answer 400 with the parameter named).

Not named `resources.py`: `fhir.resources` is the fhir.resources library (see fhir/__init__.py).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from django.utils import timezone

from patients.fhir import MRN_SYSTEM

FHIR_CONTENT_TYPE = "application/fhir+json; charset=utf-8"
FHIR_VERSION = "4.0.1"
MAX_COUNT = 200
DEFAULT_COUNT = 50
MAX_OFFSET = 1000


class SearchParameterError(Exception):
    """A search parameter FHIR clients must fix (answered 400 with an OperationOutcome)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def fhir_response(resource: dict[str, Any], status: int = 200, **headers: str) -> HttpResponse:
    return HttpResponse(
        json.dumps(resource), status=status, content_type=FHIR_CONTENT_TYPE, headers=headers
    )


def operation_outcome(
    status: int, code: str, diagnostics: str, *, expression: str = "", **headers: str
) -> HttpResponse:
    """An OperationOutcome with one issue. `code` is from the FHIR IssueType value set."""
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return fhir_response({"resourceType": "OperationOutcome", "issue": [issue]}, status, **headers)


def absolute(request: HttpRequest, name: str, *args: Any) -> str:
    return request.build_absolute_uri(reverse(name, args=args))


def searchset(
    request: HttpRequest, resources: Iterable[dict[str, Any]], *, self_url: str, next_url: str = ""
) -> dict[str, Any]:
    entries = [
        {
            "fullUrl": absolute(
                request, f"fhir:{resource['resourceType'].lower()}-read", resource["id"]
            ),
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in resources
    ]
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": timezone.now().isoformat()},
        "type": "searchset",
        "timestamp": timezone.now().isoformat(),
        "link": links,
        "entry": entries,
    }
    if not entries:
        del bundle["entry"]
    return bundle


def capability_statement(request: HttpRequest) -> dict[str, Any]:
    base = absolute(request, "fhir:metadata").removesuffix("metadata")
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": timezone.localdate().isoformat(),
        "publisher": "patientdesk",
        "kind": "instance",
        "software": {"name": "patientdesk"},
        "implementation": {"description": "patientdesk FHIR R4 read API", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Read-only. Authenticate with 'Authorization: Bearer <token>' (a personal "
                    "API token) or a signed-in session. You see patients of your locations; "
                    "anything else answers 404. Every read and search is audited. Prefer "
                    "POST Patient/_search (form-encoded) so that patient details stay out of "
                    "URLs and server logs."
                ),
                "security": {
                    "description": "Personal bearer tokens; sessions with CSRF protection.",
                },
                "resource": [
                    {
                        "type": "Patient",
                        "profile": "http://hl7.org/fhir/StructureDefinition/Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {
                                "name": "name",
                                "type": "string",
                                "documentation": "Starts-with match on family or given name; "
                                "case and accents ignored.",
                            },
                            {
                                "name": "birthdate",
                                "type": "date",
                                "documentation": "A full date (YYYY-MM-DD), optional 'eq' prefix.",
                            },
                            {
                                "name": "identifier",
                                "type": "token",
                                "documentation": f"[system|]value; no system means the MRN "
                                f"({MRN_SYSTEM}).",
                            },
                            {"name": "_count", "type": "number"},
                            {"name": "_offset", "type": "number"},
                        ],
                    },
                    {
                        "type": "Coverage",
                        "profile": "http://hl7.org/fhir/StructureDefinition/Coverage",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {
                                "name": "patient",
                                "type": "reference",
                                "documentation": "Required: Patient/<id> or <id>.",
                            }
                        ],
                    },
                    *SCHEDULING_RESOURCES,
                ],
            }
        ],
    }


def _read_search(kind: str, documentation: str, params: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "type": kind,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{kind}",
        "documentation": documentation,
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": params,
    }


_PAGING = [{"name": "_count", "type": "number"}, {"name": "_offset", "type": "number"}]
# The schedule (fhirapi/scheduling.py). Practitioner, Location, Schedule and Slot need the
# view-schedule capability; Appointment also needs view-patients and the patient in your scope.
SCHEDULING_RESOURCES: list[dict[str, Any]] = [
    _read_search(
        "Practitioner",
        "Practitioners who work at your locations; NPI identifier.",
        [
            {
                "name": "name",
                "type": "string",
                "documentation": "Starts-with match on given or family name (or a part of it).",
            },
            {
                "name": "identifier",
                "type": "token",
                "documentation": "[http://hl7.org/fhir/sid/us-npi|]NPI",
            },
            *_PAGING,
        ],
    ),
    _read_search(
        "Location",
        "Your locations, with opening hours and time zone.",
        [{"name": "name", "type": "string", "documentation": "Starts-with match."}],
    ),
    _read_search(
        "Schedule",
        "One schedule per practitioner and location; comment gives the weekly availability.",
        [
            {
                "name": "actor",
                "type": "reference",
                "documentation": "Practitioner/<id> or Location/<id>.",
            }
        ],
    ),
    _read_search(
        "Slot",
        "Free slots of one appointment type and busy time of one schedule. A slot's id is "
        "the schedule id (hex), the UTC start (YYYYMMDDHHMM) and its minutes.",
        [
            {"name": "schedule", "type": "reference", "documentation": "Required: Schedule/<id>."},
            {
                "name": "start",
                "type": "date",
                "documentation": "ge/gt/le/lt/eq bounds; a date is the day at the location. "
                "Default: the next 7 days; at most 92 days.",
            },
            {"name": "status", "type": "token", "documentation": "free, busy (default: both)."},
            {
                "name": "appointment-type",
                "type": "token",
                "documentation": "[urn:patientdesk:appointment-type|]code of the type the free "
                "slots are for (default: the shortest the practitioner takes).",
            },
            {"name": "_count", "type": "number"},
        ],
    ),
    _read_search(
        "Appointment",
        "Appointments of patients in your scope. Every read and search is audited.",
        [
            {
                "name": "date",
                "type": "date",
                "documentation": "The start: ge/gt/le/lt/eq bounds; a date is the local day at "
                "the appointment's location.",
            },
            {"name": "practitioner", "type": "reference", "documentation": "Practitioner/<id>."},
            {"name": "patient", "type": "reference", "documentation": "Patient/<id>."},
            {
                "name": "status",
                "type": "token",
                "documentation": "proposed, booked, arrived, checked-in, fulfilled, cancelled, "
                "noshow (comma-separated for any of them).",
            },
            *_PAGING,
        ],
    ),
]


@dataclass
class PatientSearchParams:
    name: str = ""
    birth_date: dt.date | None = None
    identifier_system: str = ""
    identifier_value: str = ""
    count: int = DEFAULT_COUNT
    offset: int = 0


PATIENT_PARAMS = {"name", "birthdate", "identifier", "_count", "_offset", "_format"}
_DATE = re.compile(r"^(eq)?(\d{4}-\d{2}-\d{2})$")


def _single(params: QueryDict, name: str) -> str:
    values = params.getlist(name)
    if len(values) > 1:
        raise SearchParameterError(name, f"{name}: give this parameter once.")
    return values[0].strip() if values else ""


def _integer(params: QueryDict, name: str, default: int, low: int, high: int) -> int:
    raw = _single(params, name)
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise SearchParameterError(name, f"{name}: give a whole number from {low} to {high}.")
    return int(raw)


def parse_patient_search(params: QueryDict) -> PatientSearchParams:
    # Modifiers (name:exact, identifier:of-type...) are not supported either.
    unknown = sorted(key for key in params if key not in PATIENT_PARAMS)
    if unknown:
        raise SearchParameterError(
            unknown[0],
            f"{unknown[0]}: not supported. Patient search takes name, birthdate, identifier, "
            "_count and _offset.",
        )
    if _single(params, "_format") not in ("", "json", "application/fhir+json"):
        raise SearchParameterError("_format", "_format: only JSON is served.")
    result = PatientSearchParams(name=_single(params, "name"))
    if len(result.name) > 160:
        raise SearchParameterError("name", "name: at most 160 characters.")
    birthdate = _single(params, "birthdate")
    if birthdate:
        match = _DATE.match(birthdate)
        try:
            result.birth_date = dt.date.fromisoformat(match.group(2)) if match else None
        except ValueError:
            result.birth_date = None
        if result.birth_date is None:
            raise SearchParameterError(
                "birthdate", "birthdate: give a full date as YYYY-MM-DD (only 'eq' is supported)."
            )
    identifier = _single(params, "identifier")
    if identifier:
        system, sep, value = identifier.rpartition("|")
        if not value or len(value) > 120 or len(system) > 200:
            raise SearchParameterError("identifier", "identifier: give [system|]value.")
        result.identifier_system = system if sep else ""
        result.identifier_value = value
    result.count = _integer(params, "_count", DEFAULT_COUNT, 1, MAX_COUNT)
    result.offset = _integer(params, "_offset", 0, 0, MAX_OFFSET)
    return result


def parse_patient_reference(params: QueryDict) -> uuid.UUID:
    unknown = sorted(set(params) - {"patient", "_format"})
    if unknown:
        raise SearchParameterError(
            unknown[0], f"{unknown[0]}: not supported. Coverage search takes patient."
        )
    raw = _single(params, "patient")
    if not raw:
        raise SearchParameterError("patient", "patient: required (Patient/<id> or <id>).")
    parts = raw.rstrip("/").split("/")
    try:
        if len(parts) > 1 and parts[-2] != "Patient":
            raise ValueError(parts[-2])
        return uuid.UUID(parts[-1])
    except ValueError as exc:
        raise SearchParameterError("patient", "patient: give Patient/<id> or <id>.") from exc
