"""Model instances to the plain dicts the response schemas describe."""

from __future__ import annotations

from typing import Any

from patients.models import Coverage, Patient, PatientFlag

SUMMARY_FIELDS = (
    "public_id", "mrn", "family_name", "given_name", "middle_name", "preferred_name",
    "birth_date", "sex_at_birth", "is_active", "updated_at",
)  # fmt: skip
DETAIL_FIELDS = (
    "suffix", "gender_identity", "address_line1", "address_line2", "city", "state",
    "postal_code", "phone_mobile", "phone_home", "email", "preferred_language",
    "interpreter_needed", "preferred_contact", "consent_sms", "consent_email",
    "emergency_contact_name", "emergency_contact_relationship", "emergency_contact_phone",
    "guarantor_relationship", "guarantor_name", "guarantor_phone", "guarantor_address",
    "created_at",
)  # fmt: skip
COVERAGE_FIELDS = (
    "public_id", "payer_name", "payer_identifier", "plan_name", "member_id", "group_number",
    "subscriber_name", "subscriber_birth_date", "relationship", "effective_start",
    "effective_end", "order", "is_active", "medicare_secondary_type", "verified_at", "created_at",
    "updated_at",
)  # fmt: skip


def _alerts(patient: Patient) -> list[dict[str, Any]]:
    flags: list[PatientFlag] | None = getattr(patient, "active_flags", None)
    if flags is None:
        flags = list(patient.flags.filter(is_active=True))
    return [{"kind": f.kind, "severity": f.severity, "label": f.get_kind_display()} for f in flags]


def patient_summary(patient: Patient) -> dict[str, Any]:
    data = {name: getattr(patient, name) for name in SUMMARY_FIELDS}
    location = patient.home_location
    data["home_location"] = {
        "public_id": location.public_id,
        "code": location.code,
        "name": location.name,
    }
    data["alerts"] = _alerts(patient)
    return data


def patient_detail(patient: Patient) -> dict[str, Any]:
    data = patient_summary(patient)
    data.update({name: getattr(patient, name) for name in DETAIL_FIELDS})
    survivor = patient.merged_into
    data["merged_into"] = survivor.public_id if survivor is not None else None
    data["identifiers"] = [
        {"system": i.system, "value": i.value, "is_alias": i.is_alias}
        for i in patient.identifiers.all()
    ]
    return data


def coverage_detail(coverage: Coverage, patient: Patient) -> dict[str, Any]:
    data = {name: getattr(coverage, name) for name in COVERAGE_FIELDS}
    data["patient"] = patient.public_id
    return data
