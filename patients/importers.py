"""Importing FHIR R4 Bundles (e.g. Synthea output): patients and coverages, through the services.

What it does, and the decisions behind it:

* Each file is read and checked on its own: a missing file, a file that is not JSON or not a
  FHIR Bundle is reported and the others go on.
* Each entry is validated on its own with fhir.resources (R4B models, which read R4 JSON): a bad
  entry is reported by file, entry index and reason, and the rest of the bundle goes on. Only
  what is imported is validated: of a Patient, the elements patients/fhir.py reads (not its
  narrative `text`, not the extensions it does not read, not an address's own extensions, not
  the government identifiers it leaves out); a
  Coverage without its `text`; and the patient reference, insurance and billing period of the
  Claims and ExplanationOfBenefits of patients that have no Coverage resource in the bundle
  (those of the others are not used). Entries are sorted by resource type before any model
  validation, so the other resource types (Observation, Encounter...) only need a known
  resource type, looked up by name without loading their model classes.
* Patients are matched by identifier (PatientIdentifier, looked up in bulk per batch). A new
  patient is registered with those identifiers; a known one is updated with the fields the
  resource carries that differ (fields it does not carry are left alone). A known patient with
  nothing to change is counted in `skipped`, so a second run of the same files reports
  `patients_created: 0, patients_updated: 0, coverages: 0` and every patient as skipped.
* With `warn_duplicates` (`--warn-duplicates`), each new patient is also checked against likely
  duplicates registered without that identifier (same date of birth and similar name, or the
  same phone or e-mail); it is still imported, with a warning naming the candidates' MRNs for
  someone to review and merge. It is off by default: the identifier is what an import matches
  on, and the check costs a query per patient.
* Coverages come from Coverage resources (idempotent by their identifier, fullUrl or id) or,
  when a bundle has none (Synthea 2.x), are derived from the payers named on Claim and
  ExplanationOfBenefit insurance: one coverage per patient and payer, effective from the first to
  the last billing period seen, inactive once that period has ended, idempotent by
  `source_identifier` ("claims|<patient identifier>|<payer>"). The member id is not in those
  resources; the patient's source identifier stands in for it.
* Writes go through patients.services (validation, audit). Patients are written in batches of
  BATCH_SIZE, across files (a Synthea folder holds one patient per file), one transaction per
  batch: new patients with patient_register_many and new coverages with coverage_add_many (each
  row validated in full first; a refused row is reported and left out, never half-saved; a few
  bulk inserts and one record_many per batch), updates one by one with patient_update and
  coverage_save.
* Speed (docs/performance.md): with 400 files or more and more than one CPU, other processes
  (`--readers`) read and validate files while this one writes; the JSON is parsed with
  pydantic_core; the cyclic garbage collector leaves alone the objects that exist before the
  run (gc.freeze).
* Government identifiers are not kept and invalid optional values (a 555 phone number, a foreign
  state) are left out with a warning: see patients/fhir.py.
* The report: `patients_created`, `patients_updated`, `coverages` (written: created or changed),
  `skipped` (known patients with nothing to change) and `errors`, each
  `{"path", "entry" (index in Bundle.entry, or null for the file), "resource", "level" ("error"
  or "warning": imported without an optional value), "reason"}`. Reasons name the field; the
  importer's own messages quote no names, dates or numbers of the patient (only MRNs where
  someone must act on them), though a service's message may quote a rejected code. A run also
  leaves one `patient.import_run` audit event with the counts.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import hashlib
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
import pydantic_core
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import Action, Category
from audit.services import record
from core.capabilities import Capability
from core.models import Location
from core.text import fold
from patients.fhir import (
    BIRTHSEX_URL,
    GENDER_IDENTITY_URL,
    GOVERNMENT_ID_SYSTEMS,
    GOVERNMENT_ID_TYPES,
    INTERPRETER_URL,
    MRN_SYSTEM,
    CoverageImport,
    FhirMappingError,
    PatientImport,
    coverage_from_fhir,
    patient_from_fhir,
)
from patients.models import Coverage, Patient, PatientIdentifier
from patients.services import (
    NewCoverage,
    NewPatient,
    coverage_add_many,
    coverage_save,
    duplicate_candidates,
    patient_register_many,
    patient_update,
)

if TYPE_CHECKING:
    from accounts.models import User

SERVICE_USERNAME = "system-import"
SERVICE_ROLE = "medical_office_admin"
BATCH_SIZE = 200
PATIENT_EXTENSIONS = frozenset({BIRTHSEX_URL, GENDER_IDENTITY_URL, INTERPRETER_URL})
PATIENT_ELEMENTS = frozenset(
    {
        "resourceType", "id", "meta", "extension", "identifier", "active", "name", "telecom",
        "gender", "birthDate", "address", "communication", "contact",
    }
)  # fmt: skip
IMPORTED_TYPES = frozenset({"Patient", "Coverage", "Claim", "ExplanationOfBenefit"})
NO_INSURANCE = frozenset({"noinsurance", "selfpay", "none", "uninsured"})


# ---- the report --------------------------------------------------------------------------


@dataclass
class ImportReport:
    patients_created: int = 0
    patients_updated: int = 0
    coverages: int = 0
    skipped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    files_read: int = 0

    def add(
        self,
        path: str,
        reason: str,
        *,
        entry: int | None = None,
        resource: str | None = None,
        level: str = "error",
    ) -> None:
        self.errors.append(
            {"path": path, "entry": entry, "resource": resource, "level": level, "reason": reason}
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "patients_created": self.patients_created,
            "patients_updated": self.patients_updated,
            "coverages": self.coverages,
            "skipped": self.skipped,
            "errors": self.errors,
        }


# ---- who imports, and where --------------------------------------------------------------


def service_account() -> User:
    """The `system-import` account (created on first use; no usable password, so no sign-in),
    medical office administrator at every active location."""
    from accounts.models import Role, User
    from accounts.services import user_set_locations

    with transaction.atomic():
        user, created = User.objects.get_or_create(
            username=SERVICE_USERNAME, defaults={"first_name": "FHIR", "last_name": "import"}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.roles.set(Role.objects.filter(slug=SERVICE_ROLE))
            record(
                actor=None,
                username="import_fhir",
                action=Action.CREATE,
                event="user.create",
                category=Category.ADMINISTRATION,
                obj=user,
                reason=f"service account for import_fhir; role {SERVICE_ROLE}",
            )
        active = list(Location.objects.filter(is_active=True))
        if set(user.locations.values_list("pk", flat=True)) != {loc.pk for loc in active}:
            user_set_locations(actor=user, user=user, locations=active)
    for attr in ("capability_set", "location_ids", "role_slugs", "role_names", "requires_2fa"):
        user.__dict__.pop(attr, None)
    return user


def import_location(code: str | None) -> Location:
    qs = Location.objects.filter(is_active=True)
    location = qs.filter(code=code).first() if code else qs.order_by("pk").first()
    if location is None:
        raise ValidationError(
            f"No active location with code '{code}'." if code else "There is no active location."
        )
    return location


# ---- reading and validating --------------------------------------------------------------


@functools.cache
def _fhir_model_names() -> frozenset[str]:
    """Names of the FHIR R4B models (those fhir.resources' get_fhir_model_class accepts), read
    from its type registry without importing every model module."""
    from fhir.resources.R4B import fhirtypes

    return frozenset(
        name.removesuffix("Type")
        for name, value in vars(fhirtypes).items()
        if name.endswith("Type") and hasattr(value, "get_model_klass")
    )


def _check_resource_type(resource_type: Any) -> None:
    """ValueError unless `resource_type` names a FHIR R4B model. Looked up by name only, so
    the entries the importer skips do not load their model classes."""
    if not isinstance(resource_type, str) or not resource_type:
        raise ValueError("the entry's resource has no resourceType")
    if resource_type not in _fhir_model_names():
        raise ValueError(f"unknown resource type '{resource_type[:60]}'")


def _summary(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "__root__") or "resource"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message.splitlines()[0][:160]}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _validated_patient(resource: dict[str, Any]) -> None:
    """Validate what the importer reads of a Patient: the elements in PATIENT_ELEMENTS, the
    extensions in PATIENT_EXTENSIONS, and of the addresses what patients/fhir.py reads (not their
    own extensions, such as Synthea's geolocation)."""
    from fhir.resources.R4B.patient import Patient as FhirPatient

    subset = {key: value for key, value in resource.items() if key in PATIENT_ELEMENTS}
    if isinstance(subset.get("extension"), list):
        subset["extension"] = [
            e
            for e in subset["extension"]
            if isinstance(e, dict) and e.get("url") in PATIENT_EXTENSIONS
        ]
    if isinstance(subset.get("identifier"), list):
        subset["identifier"] = [i for i in subset["identifier"] if not _is_government_id(i)]
    if isinstance(subset.get("address"), list):
        subset["address"] = [
            {k: v for k, v in address.items() if k != "extension"}
            if isinstance(address, dict)
            else address
            for address in subset["address"]
        ]
    FhirPatient.model_validate(subset)


def _is_government_id(identifier: Any) -> bool:
    """A well-formed identifier the importer leaves out (SSN, driver's licence, passport: see
    patients/fhir.py), so not validated either. Anything malformed is validated as usual."""
    if not isinstance(identifier, dict):
        return False
    if identifier.get("system") in GOVERNMENT_ID_SYSTEMS:
        return True
    concept = identifier.get("type")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if not isinstance(codings, list):
        return False
    return any(isinstance(c, dict) and c.get("code") in GOVERNMENT_ID_TYPES for c in codings)


def _validated_coverage(resource: dict[str, Any]) -> None:
    from fhir.resources.R4B.coverage import Coverage as FhirCoverage

    FhirCoverage.model_validate({k: v for k, v in resource.items() if k != "text"})


def _validated_billing(resource: dict[str, Any]) -> None:
    """Claim / ExplanationOfBenefit: only the parts a coverage is derived from (the patient,
    the insurance lines, the billing period, and the payer of a contained Coverage)."""
    from fhir.resources.R4B.claim import ClaimInsurance
    from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefitInsurance
    from fhir.resources.R4B.period import Period
    from fhir.resources.R4B.reference import Reference

    insurance_model = (
        ClaimInsurance if resource["resourceType"] == "Claim" else ExplanationOfBenefitInsurance
    )
    Reference.model_validate(resource.get("patient") or {})
    for item in resource.get("insurance") or []:
        insurance_model.model_validate(item)
    if resource.get("billablePeriod") is not None:
        Period.model_validate(resource["billablePeriod"])
    for contained in resource.get("contained") or []:
        if isinstance(contained, dict) and contained.get("resourceType") == "Coverage":
            for payor in contained.get("payor") or []:
                Reference.model_validate(payor)


@dataclass(eq=False)
class PatientEntry:
    path: str
    index: int
    data: PatientImport
    patient_id: int | None = None  # set once written or matched


@dataclass(eq=False)
class CoverageEntry:
    path: str
    index: int
    owner: PatientEntry
    data: CoverageImport


@dataclass
class PayerUse:
    """What the claims of one patient say about one payer."""

    index: int
    start: dt.date | None = None
    end: dt.date | None = None

    def extend(self, period: Mapping[str, Any] | None) -> None:
        for key, pick in (("start", min), ("end", max)):
            raw = (period or {}).get(key)
            if not raw:
                continue
            day = dt.date.fromisoformat(str(raw)[:10])
            current = getattr(self, key)
            setattr(self, key, day if current is None else pick(current, day))


@dataclass
class ParsedBundle:
    """What one bundle holds to import; references are resolved within the bundle."""

    path: str
    patients: list[PatientEntry] = field(default_factory=list)
    by_reference: dict[str, PatientEntry] = field(default_factory=dict)
    coverage_refs: list[tuple[int, str, CoverageImport]] = field(default_factory=list)
    payers: dict[str, dict[str, PayerUse]] = field(default_factory=dict)

    def covered(self) -> set[int]:
        """Patients (ids of their PatientEntry) that have a Coverage resource in this bundle."""
        return {
            id(self.by_reference[ref])
            for _, ref, _ in self.coverage_refs
            if ref in self.by_reference
        }

    def coverages(self, report: ImportReport, today: dt.date) -> list[CoverageEntry]:
        """Coverage resources, or (for patients without any) coverages derived from claims."""
        result = []
        covered = self.covered()
        for index, ref, data in self.coverage_refs:
            owner = self.by_reference.get(ref)
            if owner is None:
                report.add(
                    self.path,
                    "the coverage's beneficiary is not a Patient in this bundle",
                    entry=index,
                    resource="Coverage",
                )
                continue
            result.append(CoverageEntry(self.path, index, owner, data))
        for ref, payers in self.payers.items():
            owner = self.by_reference.get(ref)
            if owner is None or id(owner) in covered:
                continue
            system, value = owner.data.match_keys[0]
            for payer, use in sorted(payers.items()):
                values = {
                    "payer_name": payer[:120],
                    "member_id": value[:40],
                    "relationship": "self",
                    "effective_start": use.start,
                    "effective_end": use.end,
                    "order": 1,
                    "is_active": use.end is None or use.end >= today,
                }
                source = _source_key("claims", system, value, payer)
                result.append(
                    CoverageEntry(self.path, use.index, owner, CoverageImport(values, source))
                )
        return result


def _source_key(*parts: str) -> str:
    key = "|".join(parts)
    return key if len(key) <= 200 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _payers(resource: Mapping[str, Any]) -> list[str]:
    contained = {
        f"#{c.get('id')}": c
        for c in resource.get("contained") or []
        if isinstance(c, dict) and c.get("resourceType") == "Coverage"
    }
    names = []
    for item in resource.get("insurance") or []:
        coverage = item.get("coverage") or {}
        target = contained.get(str(coverage.get("reference", "")))
        payor = ((target or {}).get("payor") or [{}])[0]
        name = " ".join(str(payor.get("display") or coverage.get("display") or "").split())
        if name and fold(name) not in NO_INSURANCE:
            names.append(name)
    if not names and resource.get("insurer", {}).get("display"):
        names.append(" ".join(str(resource["insurer"]["display"]).split()))
    return names


def _reference(resource: Mapping[str, Any], element: str) -> str:
    """resource[element].reference as a string ('' when absent or not an object)."""
    target = resource.get(element)
    return str(target.get("reference") or "") if isinstance(target, dict) else ""


def parse_bundle(path: str, data: Any, report: ImportReport) -> ParsedBundle | None:
    """Validate the bundle and the entries it will import; collect them. None if unusable.

    Entries are sorted by resource type first: Patients, then Coverages, then the Claims and
    ExplanationOfBenefits of patients without a Coverage resource (those of the others are not
    used, so they are not validated). Entries of other types only need a known resource type.
    Problems are reported in entry order."""
    from fhir.resources.R4B.bundle import Bundle, BundleEntry

    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        kind = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
        report.add(path, f"not a FHIR Bundle (resourceType is '{str(kind)[:60]}')")
        return None
    try:
        Bundle.model_validate({k: v for k, v in data.items() if k != "entry"})
    except pydantic.ValidationError as exc:
        report.add(path, f"the Bundle is not valid FHIR: {_summary(exc)}")
        return None
    entries = data.get("entry") or []
    if not isinstance(entries, list):
        report.add(path, "Bundle.entry is not a list")
        return None
    first_problem = len(report.errors)
    parsed = ParsedBundle(path)
    used: dict[str, list[tuple[int, dict[str, Any], dict[str, Any]]]] = {
        "Patient": [],
        "Coverage": [],
        "Claim": [],
    }
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            report.add(path, "the entry has no resource", entry=index)
            continue
        resource_type = resource.get("resourceType")
        if resource_type in IMPORTED_TYPES:
            kind = "Claim" if resource_type == "ExplanationOfBenefit" else resource_type
            used[kind].append((index, entry, resource))
            continue
        try:
            _check_resource_type(resource_type)
        except ValueError as exc:
            report.add(path, str(exc), entry=index, resource=_type_name(resource_type))
    for kind in ("Patient", "Coverage", "Claim"):
        if kind == "Claim":
            covered = parsed.covered()
            used[kind] = [
                item
                for item in used[kind]
                if id(parsed.by_reference.get(_reference(item[2], "patient"))) not in covered
            ]
        for index, entry, resource in used[kind]:
            try:
                BundleEntry.model_validate({k: v for k, v in entry.items() if k != "resource"})
                _collect(parsed, index, entry, resource)
            except ValueError as exc:  # pydantic.ValidationError is a ValueError
                reason = _summary(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
                report.add(path, reason, entry=index, resource=resource["resourceType"])
            except FhirMappingError as exc:
                report.add(path, str(exc), entry=index, resource=resource["resourceType"])
    report.errors[first_problem:] = sorted(
        report.errors[first_problem:], key=lambda error: error["entry"]
    )
    return parsed


def _type_name(resource_type: Any) -> str | None:
    return resource_type[:60] if isinstance(resource_type, str) and resource_type else None


def _collect(parsed: ParsedBundle, index: int, entry: dict[str, Any], resource: dict) -> None:
    full_url = str(entry.get("fullUrl") or "")
    resource_type = resource["resourceType"]
    if resource_type == "Patient":
        _validated_patient(resource)
        data = patient_from_fhir(resource, full_url=full_url)
        item = PatientEntry(path=parsed.path, index=index, data=data)
        parsed.patients.append(item)
        for ref in (full_url, f"Patient/{resource.get('id')}" if resource.get("id") else ""):
            if ref:
                parsed.by_reference[ref] = item
    elif resource_type == "Coverage":
        _validated_coverage(resource)
        parsed.coverage_refs.append(
            (
                index,
                _reference(resource, "beneficiary"),
                coverage_from_fhir(resource, full_url=full_url),
            )
        )
    elif resource_type in ("Claim", "ExplanationOfBenefit"):
        _validated_billing(resource)
        patient_ref = _reference(resource, "patient")
        for payer in _payers(resource):
            use = parsed.payers.setdefault(patient_ref, {}).setdefault(payer, PayerUse(index))
            use.extend(resource.get("billablePeriod"))


# ---- writing -----------------------------------------------------------------------------


class BatchWriter:
    """Writes patients (from one or several bundles) and their coverages in one transaction,
    with a savepoint per record (the services' own atomic blocks). Counts and errors go to the
    report; warnings are reported once a patient has been handled."""

    def __init__(
        self,
        *,
        actor: User,
        location: Location,
        report: ImportReport,
        warn_duplicates: bool = False,
        on_patient: Callable[[], object] | None = None,
    ) -> None:
        self.actor, self.location, self.report = actor, location, report
        self.warn_duplicates, self.on_patient = warn_duplicates, on_patient

    def write(self, patients: list[PatientEntry], coverages: list[CoverageEntry]) -> None:
        with transaction.atomic():
            written = self._write_patients(patients)
            self._write_coverages(coverages, written)

    # patients

    def _existing(self, batch: list[PatientEntry]) -> dict[tuple[str, str], int]:
        """Identifier -> patient id for the batch: one indexed query per identifier system."""
        by_system: dict[str, set[str]] = {}
        for item in batch:
            for system, value in item.data.match_keys:
                by_system.setdefault(system, set()).add(value)
        known: dict[tuple[str, str], int] = {}
        for system, values in by_system.items():
            found = PatientIdentifier.objects.filter(system=system, value__in=values)
            for value, patient_id in found.values_list("value", "patient_id"):
                known[(system, value)] = patient_id
        return known

    def _write_patients(self, batch: list[PatientEntry]) -> dict[int, Patient]:
        """In order: a patient matching one known record is updated (patient_update), one
        matching several is reported, a new one waits to be registered with the other new ones
        (patient_register_many). A patient whose identifiers are among those of a waiting one is
        handled after those are registered, so it updates the record just created."""
        known = self._existing(batch)
        patients = Patient.objects.in_bulk(set(known.values()))
        waiting: list[PatientEntry] = []
        waiting_keys: set[tuple[str, str]] = set()
        for item in batch:
            if waiting_keys.intersection(item.data.match_keys):
                self._register(waiting, known, patients)
                waiting, waiting_keys = [], set()
            matches = {known[key] for key in item.data.match_keys if key in known}
            if not matches:
                waiting.append(item)
                waiting_keys.update(item.data.match_keys)
                continue
            try:
                if len(matches) > 1:
                    raise ValidationError(
                        "its identifiers belong to different patients (MRNs "
                        + ", ".join(sorted(patients[pk].mrn for pk in matches if pk in patients))
                        + "); merge them first"
                    )
                (match,) = matches
                patient = patients.get(match) or Patient.objects.get(pk=match)
                self._update(item, patient)
                item.patient_id = patient.pk
                for key in item.data.match_keys:
                    known[key] = patient.pk
            except (ValidationError, PermissionDenied) as exc:
                reason = _messages(exc) if isinstance(exc, ValidationError) else str(exc)
                self.report.add(item.path, reason, entry=item.index, resource="Patient")
            self._handled(item)
        self._register(waiting, known, patients)
        return patients

    def _handled(self, item: PatientEntry) -> None:
        for warning in item.data.warnings:
            self.report.add(
                item.path, warning, entry=item.index, resource="Patient", level="warning"
            )
        if self.on_patient is not None:
            self.on_patient()

    def _register(
        self,
        items: list[PatientEntry],
        known: dict[tuple[str, str], int],
        patients: dict[int, Patient],
    ) -> None:
        if not items:
            return
        candidates = [self._likely_duplicates(item) for item in items]
        results = patient_register_many(
            actor=self.actor,
            home_location=self.location,
            rows=[NewPatient(item.data.values, item.data.identifiers) for item in items],
            event="patient.import",
        )
        for item, result, similar in zip(items, results, candidates, strict=True):
            if isinstance(result, ValidationError):
                self.report.add(item.path, _messages(result), entry=item.index, resource="Patient")
            else:
                self.report.patients_created += 1
                patients[result.pk] = result
                item.patient_id = result.pk
                for key in item.data.match_keys:
                    known[key] = result.pk
                if similar:
                    item.data.warnings.append(
                        f"possible duplicate of MRN {', '.join(c.mrn for c in similar)}: "
                        f"imported as MRN {result.mrn}; review and merge"
                    )
            self._handled(item)

    def _likely_duplicates(self, item: PatientEntry) -> list[Patient]:
        if not self.warn_duplicates:
            return []
        values = item.data.values
        return duplicate_candidates(
            family_name=values["family_name"],
            given_name=values["given_name"],
            birth_date=values["birth_date"],
            phone_mobile=values.get("phone_mobile", ""),
            phone_home=values.get("phone_home", ""),
            email=values.get("email", ""),
            limit=3,
        )

    def _update(self, item: PatientEntry, patient: Patient) -> None:
        if patient.home_location_id not in self.actor.location_ids:
            raise ValidationError(
                f"it matches MRN {patient.mrn} at a location the importing user does not work at"
            )
        changes = {
            name: value
            for name, value in item.data.values.items()
            if getattr(patient, name) != value
        }
        if not changes:
            self.report.skipped += 1
            return
        patient_update(
            actor=self.actor, patient=patient, values=changes, event="patient.import_update"
        )
        self.report.patients_updated += 1

    # coverages

    def _write_coverages(
        self, coverages: list[CoverageEntry], patients: dict[int, Patient]
    ) -> None:
        """New coverages are added together (coverage_add_many); a changed one is saved on its
        own (coverage_save), after the new ones of the same patient waiting before it.
        `patients` holds the batch's records as written (others are fetched)."""
        patient_ids = {item.owner.patient_id for item in coverages if item.owner.patient_id}
        existing = {
            (c.patient_id, c.source_identifier): c
            for c in Coverage.objects.filter(patient_id__in=patient_ids).exclude(
                source_identifier=""
            )
        }
        missing = patient_ids - set(patients)
        if missing:
            patients = patients | Patient.objects.in_bulk(missing)
        waiting: list[tuple[CoverageEntry, NewCoverage]] = []
        for item in coverages:
            owner = item.owner.patient_id
            if owner is None:
                self.report.add(
                    item.path,
                    "its patient was not imported (see that entry's error)",
                    entry=item.index,
                    resource="Coverage",
                )
                continue
            current = existing.get((owner, item.data.source_identifier))
            if current is None:
                new = NewCoverage(patients[owner], item.data.values, item.data.source_identifier)
                waiting.append((item, new))
                continue
            values = {k: v for k, v in item.data.values.items() if getattr(current, k) != v}
            if not values:
                continue
            if any(new.patient.pk == owner for _, new in waiting):
                self._add_coverages(waiting)
                waiting = []
            try:
                coverage_save(
                    actor=self.actor,
                    patient=patients[owner],
                    values=values,
                    coverage=current,
                    source_identifier=item.data.source_identifier,
                )
                self.report.coverages += 1
            except ValidationError as exc:
                self.report.add(item.path, _messages(exc), entry=item.index, resource="Coverage")
        self._add_coverages(waiting)

    def _add_coverages(self, waiting: list[tuple[CoverageEntry, NewCoverage]]) -> None:
        if not waiting:
            return
        results = coverage_add_many(actor=self.actor, items=[new for _, new in waiting])
        for (item, _), result in zip(waiting, results, strict=True):
            if isinstance(result, ValidationError):
                self.report.add(item.path, _messages(result), entry=item.index, resource="Coverage")
            else:
                self.report.coverages += 1


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)


# ---- the whole run -----------------------------------------------------------------------


def _load(path: str, report: ImportReport) -> Any:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        report.add(path, "file not found")
        return None
    except OSError as exc:
        report.add(path, f"cannot read the file ({exc.strerror or exc.__class__.__name__})")
        return None
    try:
        # pydantic's JSON parser (pydantic_core, Rust) reads a bundle in about two thirds of the
        # time json takes. What it refuses (a byte-order mark, UTF-16, lone surrogates, very deep
        # nesting, or not JSON at all) goes to json, which reads it or says where it is broken.
        return pydantic_core.from_json(raw, cache_strings="keys")
    except ValueError:
        pass
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        where = f" (line {line}, column {column})" if line is not None else ""
        report.add(path, f"not JSON{where}")
        return None
    except RecursionError:
        report.add(path, "not JSON that can be read (nested too deeply)")
        return None


def import_fhir_files(
    paths: Iterable[str],
    *,
    actor: User,
    location: Location,
    on_file: Callable[[str], object] | None = None,
    on_patient: Callable[[], object] | None = None,
    warn_duplicates: bool = False,
    readers: int | None = None,
) -> ImportReport:
    """Import each file; never stops at a bad file or entry (see the module docstring).

    Patients of consecutive files are written together, BATCH_SIZE at a time, so that a folder
    of one-patient bundles (Synthea's output) does not pay for a transaction and the lookups
    per file. `readers` processes read the files meanwhile (None: default_readers)."""
    if not actor.can(Capability.IMPORT_PATIENTS):
        raise PermissionDenied("This user's roles do not allow importing patients.")
    if location.pk not in actor.location_ids:
        raise ValidationError(f"{actor.get_username()} does not work at {location.code}.")
    report = ImportReport()
    paths = list(paths)
    with _collector_skips_existing_objects():
        _import_all(
            paths,
            report=report,
            actor=actor,
            location=location,
            on_file=on_file,
            on_patient=on_patient,
            warn_duplicates=warn_duplicates,
            readers=default_readers(len(paths)) if readers is None else readers,
        )
    record(
        actor=actor,
        action=Action.EXECUTE,
        event="patient.import_run",
        category=Category.DEMOGRAPHICS,
        object_type="import_fhir",
        reason=(
            f"files read {report.files_read}; created {report.patients_created}; updated "
            f"{report.patients_updated}; coverages {report.coverages}; skipped {report.skipped}; "
            f"problems {len(report.errors)}"
        ),
    )
    return report


@contextmanager
def _collector_skips_existing_objects() -> Iterator[None]:
    """Run the import with the objects that exist before it (Django, the FHIR model classes:
    several hundred thousand) set aside by the cyclic garbage collector (gc.freeze), and put
    back afterwards. Reading a bundle allocates thousands of containers, which triggers
    collections; without this, the full ones walk every long-lived object again and take a
    third of the import's time. What the import allocates is still collected as usual."""
    _load_fhir_models()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _load_fhir_models() -> None:
    """Import the fhir.resources models the importer validates with (before gc.freeze)."""
    from fhir.resources.R4B import bundle, claim, coverage, explanationofbenefit, patient

    del bundle, claim, coverage, explanationofbenefit, patient
    _fhir_model_names()


@dataclass
class ReadFile:
    """One file read and checked: what it brings to write, and its problems (report entries,
    in order). `bundle_read` is false when the file could not be read as a FHIR Bundle."""

    path: str
    bundle_read: bool
    patients: list[PatientEntry] = field(default_factory=list)
    coverages: list[CoverageEntry] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)


def read_file(path: str, today: dt.date) -> ReadFile:
    """Load, validate and map one file (no database access: it may run in another process)."""
    report = ImportReport()
    data = _load(path, report)
    parsed = parse_bundle(path, data, report) if data is not None else None
    if parsed is None:
        return ReadFile(path, bundle_read=False, problems=report.errors)
    coverages = parsed.coverages(report, today)
    return ReadFile(path, True, parsed.patients, coverages, report.errors)


def _read_chunk(paths: list[str], today: dt.date) -> list[ReadFile]:
    return [read_file(path, today) for path in paths]


READ_CHUNK = 20  # files per task handed to a reading process
# Chunks read ahead of the writing: two batches' worth, so that the readers keep working while
# a batch is written.
READ_AHEAD = 2 * BATCH_SIZE // READ_CHUNK
# Patients written early, in a smaller batch, rather than waiting for the readers.
EARLY_BATCH_SIZE = 50
PARALLEL_MIN_FILES = 2 * BATCH_SIZE


def default_readers(file_count: int) -> int:
    """Reading processes for a run: none for a small run or a single CPU, else one fewer than
    the CPUs (this process writes) but at least 2, at most 3 (more outpace the writing).

    Reading a patient takes more CPU than writing it (about 1.6 ms against 1.1 ms), so on two
    CPUs a single reader would leave the writer waiting and part of a CPU idle: two readers
    and the writer share both CPUs instead (the read-ahead bound holds the readers back when
    the writer falls behind)."""
    cpus = os.cpu_count() or 1
    if file_count < PARALLEL_MIN_FILES or cpus < 2:
        return 0
    return min(max(cpus - 1, 2), 3)


def _read_files(paths: list[str], today: dt.date, readers: int) -> Iterator[ReadFile | None]:
    """The files read, in order: here (readers=0), or by `readers` forked processes while this
    one writes what they have read. Reading (JSON, FHIR validation) is most of an import's CPU
    time and needs no database; the children never touch the parent's database connection
    (they end with os._exit, which closes nothing). With readers, None comes before a file
    that is not read yet: the caller may write what it holds meanwhile."""
    try:
        context = multiprocessing.get_context("fork") if readers > 0 else None
    except ValueError:  # no fork on this platform
        context = None
    if context is None:
        for path in paths:
            yield read_file(path, today)
        return
    chunks = [paths[start : start + READ_CHUNK] for start in range(0, len(paths), READ_CHUNK)]
    with context.Pool(readers) as pool:
        pending: deque[AsyncResult[list[ReadFile]]] = deque()
        submitted = 0
        while submitted < len(chunks) or pending:
            # Bounded read-ahead: memory stays flat however many files there are.
            while submitted < len(chunks) and len(pending) < READ_AHEAD:
                pending.append(pool.apply_async(_read_chunk, (chunks[submitted], today)))
                submitted += 1
            if not pending[0].ready():
                yield None
            yield from pending.popleft().get()


def _import_all(
    paths: list[str],
    *,
    report: ImportReport,
    actor: User,
    location: Location,
    on_file: Callable[[str], object] | None,
    on_patient: Callable[[], object] | None,
    warn_duplicates: bool,
    readers: int,
) -> None:
    writer = BatchWriter(
        actor=actor,
        location=location,
        report=report,
        warn_duplicates=warn_duplicates,
        on_patient=on_patient,
    )
    patients: list[PatientEntry] = []
    coverages: list[CoverageEntry] = []

    def write(count: int) -> None:
        nonlocal patients, coverages
        batch, patients = patients[:count], patients[count:]
        in_batch = {id(item) for item in batch}
        ready = [c for c in coverages if id(c.owner) in in_batch]
        coverages = [c for c in coverages if id(c.owner) not in in_batch]
        writer.write(batch, ready)

    for read in _read_files(paths, timezone.localdate(), readers):
        if read is None:  # the readers are behind: write what is here rather than wait
            if len(patients) >= EARLY_BATCH_SIZE:
                write(len(patients))
            continue
        report.errors += read.problems
        if read.bundle_read:
            report.files_read += 1
            patients += read.patients
            coverages += read.coverages
        while len(patients) >= BATCH_SIZE:
            write(BATCH_SIZE)
        if on_file is not None:
            on_file(read.path)
    write(len(patients))


__all__ = ["MRN_SYSTEM", "ImportReport", "import_fhir_files", "import_location", "service_account"]
