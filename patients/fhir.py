"""FHIR R4 <-> patientdesk mapping for Patient and Coverage.

Export (`patient_to_fhir`, `coverage_to_fhir`) builds plain JSON-ready dicts (the FHIR API
serves them; the tests parse every one with fhir.resources R4B). Import (`patient_from_fhir`,
`coverage_from_fhir`) reads resources that fhir.resources has already validated and returns the
values the services take, plus warnings for optional data that had to be left out.

Decisions:
* MRN: identifier with system `urn:patientdesk:mrn` and type MR. Other stored identifiers are
  exported as they are (merge aliases with use "old").
* Government identifiers (SSN, driver's licence, passport) are not imported: patient services
  do not need them, and they are the most sensitive identifiers a record can carry.
* A phone number, state or ZIP code that does not pass our validation is left out with a
  warning; a record without a usable family name, given name or full date of birth is refused.
* On import, a field the resource does not carry is not sent to the service, so data entered at
  the desk (guarantor, consents...) survives a re-import.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from patients.models import US_STATES, GenderIdentity, PatientIdentifier, Relationship
from patients.validators import normalize_phone, validate_postal_code

if TYPE_CHECKING:
    from patients.models import Coverage, Patient

MRN_SYSTEM = PatientIdentifier.MRN_SYSTEM
URI_SYSTEM = "urn:ietf:rfc:3986"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
BCP47 = "urn:ietf:bcp:47"
BIRTHSEX_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
GENDER_IDENTITY_URL = "http://hl7.org/fhir/StructureDefinition/patient-genderIdentity"
INTERPRETER_URL = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
GENDER_IDENTITY_SYSTEM = "urn:patientdesk:gender-identity"

GOVERNMENT_ID_TYPES = frozenset({"SS", "SB", "DL", "PPN"})
GOVERNMENT_ID_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/us-ssn"})

LANGUAGE_CODES = {
    "English": "en", "Spanish": "es", "Chinese": "zh", "French": "fr", "German": "de",
    "Italian": "it", "Portuguese": "pt", "Russian": "ru", "Arabic": "ar", "Vietnamese": "vi",
    "Korean": "ko", "Japanese": "ja", "Tagalog": "tl", "Polish": "pl", "Hindi": "hi",
    "Haitian Creole": "ht", "Greek": "el", "Persian": "fa", "Urdu": "ur", "Bengali": "bn",
}  # fmt: skip
LANGUAGE_NAMES = {code: name for name, code in LANGUAGE_CODES.items()}

STATE_CODES = {name.lower(): code for code, name in US_STATES} | {
    code.lower(): code for code, _ in US_STATES
}
SEX_FROM_BIRTHSEX = {"M": "M", "F": "F", "UNK": "U"}
BIRTHSEX_FROM_SEX = {"M": "M", "F": "F", "U": "UNK"}
SEX_FROM_GENDER = {"male": "M", "female": "F"}
GENDER_FROM_IDENTITY = {
    "female": "female",
    "male": "male",
    "transgender-female": "female",
    "transgender-male": "male",
    "non-binary": "other",
    "other": "other",
}
GENDER_FROM_SEX = {"M": "male", "F": "female", "U": "unknown"}
RELATIONSHIP_FROM_FHIR = {
    "self": Relationship.SELF,
    "spouse": Relationship.SPOUSE,
    "common": Relationship.SPOUSE,
    "child": Relationship.CHILD,
    "parent": Relationship.PARENT,
    "other": Relationship.OTHER,
    "injured": Relationship.OTHER,
}
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


class FhirMappingError(Exception):
    """The resource is valid FHIR but cannot become a patientdesk record (message says why)."""


# ---- export ------------------------------------------------------------------------------


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    """FHIR forbids empty strings, lists and objects: leave such elements out."""
    return {key: value for key, value in data.items() if value not in ("", None, [], {})}


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def patient_reference(patient: Patient) -> dict[str, str]:
    return {"reference": f"Patient/{patient.public_id}"}


def patient_to_fhir(patient: Patient, identifiers: Iterable[PatientIdentifier]) -> dict[str, Any]:
    """A FHIR R4 Patient for this record."""
    mrn_identifier = {
        "use": "usual",
        "type": {
            "coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}],
            "text": "MRN",
        },
        "system": MRN_SYSTEM,
        "value": patient.mrn,
    }
    others = [
        {
            "use": "old" if ident.is_alias else "secondary",
            "system": ident.system,
            "value": ident.value,
        }
        for ident in identifiers
        if not (ident.system == MRN_SYSTEM and ident.value == patient.mrn)
    ]
    names = [
        _drop_empty(
            {
                "use": "official",
                "family": patient.family_name,
                "given": [patient.given_name, *patient.middle_name.split()],
                "suffix": [patient.suffix] if patient.suffix else [],
            }
        )
    ]
    if patient.preferred_name:
        names.append(
            {"use": "usual", "family": patient.family_name, "given": [patient.preferred_name]}
        )
    telecom = [
        {"system": "phone", "value": value, "use": use}
        for value, use in ((patient.phone_mobile, "mobile"), (patient.phone_home, "home"))
        if value
    ]
    if patient.email:
        telecom.append({"system": "email", "value": patient.email, "use": "home"})
    address = _drop_empty(
        {
            "line": [line for line in (patient.address_line1, patient.address_line2) if line],
            "city": patient.city,
            "state": patient.state,
            "postalCode": patient.postal_code,
        }
    )
    if address:
        address = {"use": "home", **address, "country": "US"}
    language = patient.preferred_language
    communication = (
        [
            {
                "language": _drop_empty(
                    {
                        "coding": [
                            {"system": BCP47, "code": LANGUAGE_CODES[language], "display": language}
                        ]
                        if language in LANGUAGE_CODES
                        else [],
                        "text": language,
                    }
                ),
                "preferred": True,
            }
        ]
        if language
        else []
    )
    extension: list[dict[str, Any]] = [
        {"url": BIRTHSEX_URL, "valueCode": BIRTHSEX_FROM_SEX.get(patient.sex_at_birth, "UNK")},
        {"url": INTERPRETER_URL, "valueBoolean": patient.interpreter_needed},
    ]
    if patient.gender_identity:
        extension.append(
            {
                "url": GENDER_IDENTITY_URL,
                "valueCodeableConcept": {
                    "coding": [{"system": GENDER_IDENTITY_SYSTEM, "code": patient.gender_identity}],
                    "text": patient.get_gender_identity_display(),
                },
            }
        )
    resource = {
        "resourceType": "Patient",
        "id": str(patient.public_id),
        "meta": {"lastUpdated": _instant(patient.updated_at)},
        "extension": extension,
        "identifier": [mrn_identifier, *others],
        "active": patient.is_active and not patient.merged_into_id,
        "name": names,
        "telecom": telecom,
        "gender": GENDER_FROM_IDENTITY.get(patient.gender_identity)
        or GENDER_FROM_SEX.get(patient.sex_at_birth, "unknown"),
        "birthDate": patient.birth_date.isoformat(),
        "address": [address] if address else [],
        "contact": _emergency_contact(patient),
        "communication": communication,
    }
    if patient.merged_into_id:
        survivor = patient.merged_into
        assert survivor is not None  # noqa: S101  (narrowing for mypy)
        resource["link"] = [{"other": patient_reference(survivor), "type": "replaced-by"}]
    return _drop_empty(resource)


def _emergency_contact(patient: Patient) -> list[dict[str, Any]]:
    if not (patient.emergency_contact_name or patient.emergency_contact_phone):
        return []
    relationship: list[dict[str, Any]] = [
        {"coding": [{"system": V2_0131, "code": "C", "display": "Emergency Contact"}]}
    ]
    if patient.emergency_contact_relationship:
        relationship.append({"text": patient.emergency_contact_relationship})
    contact = {
        "relationship": relationship,
        "name": {"text": patient.emergency_contact_name} if patient.emergency_contact_name else {},
        "telecom": [{"system": "phone", "value": patient.emergency_contact_phone}]
        if patient.emergency_contact_phone
        else [],
    }
    return [_drop_empty(contact)]


def coverage_to_fhir(coverage: Coverage, patient: Patient) -> dict[str, Any]:
    """A FHIR R4 Coverage for this record (payor by name; plan and group as classes)."""
    classes = []
    if coverage.group_number:
        classes.append(
            {
                "type": {"coding": [{"system": COVERAGE_CLASS, "code": "group"}]},
                "value": coverage.group_number,
            }
        )
    if coverage.plan_name:
        classes.append(
            {
                "type": {"coding": [{"system": COVERAGE_CLASS, "code": "plan"}]},
                "value": coverage.plan_name,
                "name": coverage.plan_name,
            }
        )
    payor = _drop_empty(
        {
            "display": coverage.payer_name,
            "identifier": {"value": coverage.payer_identifier}
            if coverage.payer_identifier
            else None,
        }
    )
    period = _drop_empty(
        {
            "start": coverage.effective_start.isoformat() if coverage.effective_start else None,
            "end": coverage.effective_end.isoformat() if coverage.effective_end else None,
        }
    )
    resource = {
        "resourceType": "Coverage",
        "id": str(coverage.public_id),
        "meta": {"lastUpdated": _instant(coverage.updated_at)},
        "status": "active" if coverage.is_active else "cancelled",
        "subscriber": {"display": coverage.subscriber_name} if coverage.subscriber_name else None,
        "subscriberId": coverage.member_id,
        "beneficiary": patient_reference(patient),
        "relationship": {
            "coding": [{"system": SUBSCRIBER_RELATIONSHIP, "code": coverage.relationship}],
            "text": coverage.get_relationship_display(),
        },
        "period": period,
        "payor": [payor],
        "class": classes,
        "order": coverage.order,
    }
    return _drop_empty(resource)


# ---- import ------------------------------------------------------------------------------


@dataclass
class PatientImport:
    values: dict[str, Any]
    # Every identifier to match an existing record by (including patientdesk MRNs) ...
    match_keys: list[tuple[str, str]]
    # ... and those to store on a new record (not MRNs: registration allocates its own).
    identifiers: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _first(items: Iterable[Mapping[str, Any]], **wanted: Any) -> Mapping[str, Any] | None:
    for item in items:
        matches = (
            item.get(key) in (options if isinstance(options, tuple) else (options,))
            for key, options in wanted.items()
        )
        if all(matches):
            return item
    return None


def _codes(concept: Mapping[str, Any] | None) -> list[str]:
    if not concept:
        return []
    return [str(c.get("code", "")) for c in concept.get("coding", []) or []]


def _extension(resource: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    return _first(resource.get("extension", []) or [], url=url)


def _date(value: Any, where: str) -> dt.date | None:
    if value in (None, ""):
        return None
    text = str(value)
    if not _FULL_DATE.match(text):
        raise FhirMappingError(f"{where}: give a full date (YYYY-MM-DD), not only a year or month.")
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError as exc:
        raise FhirMappingError(f"{where}: not a date that exists.") from exc


def _identifiers(resource: Mapping[str, Any], full_url: str) -> tuple[list[tuple[str, str]], int]:
    keys: list[tuple[str, str]] = []
    skipped = 0
    for ident in resource.get("identifier", []) or []:
        system, value = str(ident.get("system") or ""), str(ident.get("value") or "")
        if not system or not value:
            continue
        if system in GOVERNMENT_ID_SYSTEMS or set(_codes(ident.get("type"))) & GOVERNMENT_ID_TYPES:
            continue
        if len(system) > 200 or len(value) > 120:
            skipped += 1
            continue
        if (system, value) not in keys:
            keys.append((system, value))
    if not keys and full_url.startswith("urn:uuid:"):
        keys.append((URI_SYSTEM, full_url))
    return keys, skipped


def patient_from_fhir(resource: Mapping[str, Any], *, full_url: str = "") -> PatientImport:
    """Values for patient_register / patient_update from a validated FHIR Patient."""
    warnings: list[str] = []
    keys, too_long = _identifiers(resource, full_url)
    if too_long:
        warnings.append(f"identifier: {too_long} identifier(s) too long to keep were left out.")
    if not keys:
        raise FhirMappingError(
            "identifier: the Patient has no identifier (and no urn:uuid fullUrl), so a second "
            "import could not find it again."
        )
    names = resource.get("name", []) or []
    official = (
        _first(names, use="official") or _first(names, use=("usual", None)) or (names or [None])[0]
    )
    given = [_text(g) for g in (official or {}).get("given", []) or [] if _text(g)]
    family = _text((official or {}).get("family"))
    if not family or not given:
        raise FhirMappingError("name: a family name and a given name are required.")
    values: dict[str, Any] = {
        "family_name": family,
        "given_name": given[0],
        "middle_name": " ".join(given[1:]),
        "suffix": _text(((official or {}).get("suffix") or [""])[0]),
    }
    preferred = next(
        (n for n in names if n is not official and n.get("use") in ("usual", "nickname")), None
    )
    if preferred and preferred.get("given"):
        values["preferred_name"] = _text(preferred["given"][0])
    birth_date = _date(resource.get("birthDate"), "birthDate")
    if birth_date is None:
        raise FhirMappingError("birthDate: a date of birth is required.")
    values["birth_date"] = birth_date
    birthsex = _extension(resource, BIRTHSEX_URL)
    values["sex_at_birth"] = (
        SEX_FROM_BIRTHSEX.get(str(birthsex.get("valueCode")), "U")
        if birthsex
        else SEX_FROM_GENDER.get(str(resource.get("gender")), "U")
    )
    identity = _extension(resource, GENDER_IDENTITY_URL)
    for code in _codes((identity or {}).get("valueCodeableConcept")):
        if code in GenderIdentity.values:
            values["gender_identity"] = code
            break
    interpreter = _extension(resource, INTERPRETER_URL)
    if interpreter is not None and isinstance(interpreter.get("valueBoolean"), bool):
        values["interpreter_needed"] = interpreter["valueBoolean"]
    values.update(_telecom(resource.get("telecom", []) or [], warnings))
    values.update(_address(resource.get("address", []) or [], warnings))
    language = _language(resource.get("communication", []) or [])
    if language:
        values["preferred_language"] = language[:40]
    values.update(_contact(resource.get("contact", []) or [], warnings))
    stored = [(system, value) for system, value in keys if system != MRN_SYSTEM]
    return PatientImport(values=values, match_keys=keys, identifiers=stored, warnings=warnings)


def _phone(value: Any, where: str, warnings: list[str]) -> str:
    try:
        return normalize_phone(str(value or ""))
    except ValidationError:
        warnings.append(f"{where}: not a valid phone number; left out.")
        return ""


def _telecom(telecom: list[Mapping[str, Any]], warnings: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, point in enumerate(telecom):
        system, use = point.get("system"), point.get("use")
        if system == "email" and point.get("value") and "email" not in values:
            values["email"] = str(point["value"]).strip().lower()
        elif system in ("phone", "sms") and point.get("value"):
            target = "phone_mobile" if use == "mobile" or system == "sms" else "phone_home"
            if target in values:
                continue
            number = _phone(point["value"], f"telecom[{index}]", warnings)
            if number:
                values[target] = number
    return values


def _address(addresses: list[Mapping[str, Any]], warnings: list[str]) -> dict[str, str]:
    address = _first(addresses, use="home") or (addresses[0] if addresses else None)
    if not address:
        return {}
    lines = [_text(line) for line in address.get("line", []) or [] if _text(line)]
    values = {
        "address_line1": lines[0] if lines else "",
        "address_line2": ", ".join(lines[1:]),
        "city": _text(address.get("city")),
    }
    state = _text(address.get("state"))
    if state:
        if state.lower() in STATE_CODES:
            values["state"] = STATE_CODES[state.lower()]
        else:
            warnings.append("address.state: not a US state; left out.")
    postal = _text(address.get("postalCode"))
    if postal:
        try:
            validate_postal_code(postal)
            values["postal_code"] = postal
        except ValidationError:
            warnings.append("address.postalCode: not a US ZIP code; left out.")
    return values


def _language(communication: list[Mapping[str, Any]]) -> str:
    chosen = _first(communication, preferred=True) or (communication[0] if communication else None)
    if not chosen:
        return ""
    concept = chosen.get("language") or {}
    if concept.get("text"):
        return _text(concept["text"])
    for coding in concept.get("coding", []) or []:
        if coding.get("display"):
            return _text(coding["display"])
        code = str(coding.get("code", "")).split("-")[0]
        if code in LANGUAGE_NAMES:
            return LANGUAGE_NAMES[code]
    return ""


def _contact(contacts: list[Mapping[str, Any]], warnings: list[str]) -> dict[str, str]:
    chosen = next(
        (c for c in contacts if any("C" in _codes(r) for r in c.get("relationship", []) or [])),
        contacts[0] if contacts else None,
    )
    if not chosen:
        return {}
    name = chosen.get("name") or {}
    full_name = _text(name.get("text")) or _text(
        " ".join([*(name.get("given") or []), name.get("family") or ""])
    )
    relationship = ""
    for concept in chosen.get("relationship", []) or []:
        if concept.get("text"):
            relationship = _text(concept["text"])
            break
        displays = [
            c.get("display") for c in concept.get("coding", []) or [] if c.get("code") != "C"
        ]
        if displays and displays[0]:
            relationship = _text(displays[0])
            break
    values = {
        "emergency_contact_name": full_name[:160],
        "emergency_contact_relationship": relationship[:40],
    }
    phone = _first(chosen.get("telecom", []) or [], system="phone")
    if phone and phone.get("value"):
        values["emergency_contact_phone"] = _phone(phone["value"], "contact.telecom", warnings)
    return values


@dataclass
class CoverageImport:
    values: dict[str, Any]
    source_identifier: str


def coverage_from_fhir(
    resource: Mapping[str, Any], *, full_url: str = "", today: dt.date | None = None
) -> CoverageImport:
    """Values for coverage_save from a validated FHIR Coverage (beneficiary resolved by caller)."""
    payors = resource.get("payor", []) or []
    payor = next((p for p in payors if p.get("display")), None)
    if payor is None:
        raise FhirMappingError("payor: the payer needs a display name.")
    identifiers = resource.get("identifier", []) or []
    member_id = _text(resource.get("subscriberId")) or (
        _text(identifiers[0].get("value")) if identifiers else ""
    )
    if not member_id:
        raise FhirMappingError("subscriberId: a member id is required.")
    values: dict[str, Any] = {
        "payer_name": _text(payor["display"])[:120],
        "payer_identifier": _text((payor.get("identifier") or {}).get("value"))[:20],
        "member_id": member_id,
        "subscriber_name": _text((resource.get("subscriber") or {}).get("display"))[:160],
    }
    for klass in resource.get("class", []) or []:
        codes = _codes(klass.get("type"))
        if "group" in codes:
            values["group_number"] = _text(klass.get("value"))[:40]
        elif "plan" in codes:
            values["plan_name"] = _text(klass.get("name") or klass.get("value"))[:120]
    codes = [c for c in _codes(resource.get("relationship")) if c in RELATIONSHIP_FROM_FHIR]
    relationship = RELATIONSHIP_FROM_FHIR[codes[0]] if codes else Relationship.SELF
    values["relationship"] = str(relationship)
    period = resource.get("period") or {}
    values["effective_start"] = _date(period.get("start"), "period.start")
    values["effective_end"] = _date(period.get("end"), "period.end")
    order = resource.get("order") or 1
    if order not in (1, 2, 3):
        raise FhirMappingError("order: only primary, secondary and tertiary (1-3) are kept.")
    values["order"] = order
    values["is_active"] = resource.get("status") == "active"
    if identifiers and identifiers[0].get("value"):
        source = f"{identifiers[0].get('system', '')}|{identifiers[0]['value']}"
    elif full_url:
        source = full_url
    elif resource.get("id"):
        source = f"Coverage/{resource['id']}"
    else:
        raise FhirMappingError("identifier: the Coverage has no identifier, fullUrl or id.")
    return CoverageImport(values=values, source_identifier=source[:200])
