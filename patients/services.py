"""Writes to patient records. Every function is atomic and writes its audit event in the same
transaction; callers (views, API, importers, seed) all come through here."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import Action, Category
from audit.services import record
from core.capabilities import Capability
from core.models import Location
from core.text import digits, fold
from patients.models import (
    BreakGlassGrant,
    Coverage,
    FlagKind,
    FlagSeverity,
    MrnCounter,
    Patient,
    PatientFlag,
    PatientIdentifier,
)
from patients.mrn import MRN_START, make_mrn
from patients.validators import normalize_phone

if TYPE_CHECKING:
    from accounts.models import User

PATIENT_FIELDS: tuple[str, ...] = (
    "family_name", "given_name", "middle_name", "suffix", "preferred_name", "birth_date",
    "sex_at_birth", "gender_identity", "address_line1", "address_line2", "city", "state",
    "postal_code", "phone_mobile", "phone_home", "email", "preferred_language",
    "interpreter_needed", "preferred_contact", "consent_sms", "consent_email",
    "emergency_contact_name", "emergency_contact_relationship", "emergency_contact_phone",
    "guarantor_relationship", "guarantor_name", "guarantor_phone", "guarantor_address",
)  # fmt: skip
PHONE_FIELDS = ("phone_mobile", "phone_home", "emergency_contact_phone", "guarantor_phone")
COVERAGE_FIELDS: tuple[str, ...] = (
    "payer_name", "payer_identifier", "plan_name", "member_id", "group_number",
    "subscriber_name", "subscriber_birth_date", "relationship", "effective_start",
    "effective_end", "order", "is_active",
)  # fmt: skip

DUPLICATE_NAME_SIMILARITY = 0.8


class DuplicateCandidatesFound(Exception):  # noqa: N818  (a warning the caller acts on)
    """Registration found likely duplicates; the caller must show them and may confirm."""

    def __init__(self, candidates: list[Patient]) -> None:
        super().__init__(f"{len(candidates)} possible duplicate record(s)")
        self.candidates = candidates


def _require(actor: User, capability: Capability) -> None:
    if not actor.can(capability):
        raise PermissionDenied(f"Missing capability: {capability.label}")


def _clean_patient_values(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(PATIENT_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
    cleaned = dict(values)
    errors: dict[str, list[str]] = {}
    for name in PHONE_FIELDS:
        if cleaned.get(name):
            try:
                cleaned[name] = normalize_phone(str(cleaned[name]))
            except ValidationError as exc:
                errors[name] = exc.messages
    for name in ("family_name", "given_name", "middle_name", "preferred_name", "city"):
        if isinstance(cleaned.get(name), str):
            cleaned[name] = " ".join(cleaned[name].split())
    if isinstance(cleaned.get("email"), str):
        cleaned["email"] = cleaned["email"].strip().lower()
    if isinstance(cleaned.get("state"), str):
        cleaned["state"] = cleaned["state"].strip().upper()
    if errors:
        raise ValidationError(errors)
    return cleaned


def _full_clean(instance: Patient | Coverage, exclude: Iterable[str] = ()) -> None:
    instance.full_clean(exclude=list(exclude), validate_unique=False)


def duplicate_candidates(
    *,
    family_name: str,
    given_name: str,
    birth_date: dt.date | None,
    phone_mobile: str = "",
    phone_home: str = "",
    email: str = "",
    exclude_id: int | None = None,
    limit: int = 10,
) -> list[Patient]:
    """Likely duplicates: same date of birth with a similar name, or the same phone or email."""
    query = Q()
    if birth_date:
        query |= Q(birth_date=birth_date)
    phone_digits = {digits(p) for p in (phone_mobile, phone_home) if p}
    for number in phone_digits:
        query |= Q(phone_mobile_digits=number) | Q(phone_home_digits=number)
    if email:
        query |= Q(email=email.strip().lower())
    if not query:
        return []
    pool = Patient.objects.filter(query, is_active=True, merged_into__isnull=True)
    if exclude_id is not None:
        pool = pool.exclude(pk=exclude_id)
    name_key = fold(family_name) + " " + fold(given_name)
    name_key_swapped = fold(given_name) + " " + fold(family_name)
    matches: list[tuple[float, Patient]] = []
    for candidate in pool.select_related("home_location")[:200]:
        score = 0.0
        if email and candidate.email == email.strip().lower():
            score = 1.0
        if phone_digits & {candidate.phone_mobile_digits, candidate.phone_home_digits} - {""}:
            score = max(score, 0.95)
        if birth_date and candidate.birth_date == birth_date:
            other = candidate.family_fold + " " + candidate.given_fold
            similarity = max(
                difflib.SequenceMatcher(None, name_key, other).ratio(),
                difflib.SequenceMatcher(None, name_key_swapped, other).ratio(),
            )
            if similarity >= DUPLICATE_NAME_SIMILARITY:
                score = max(score, similarity)
        if score:
            matches.append((score, candidate))
    matches.sort(key=lambda item: -item[0])
    return [candidate for _, candidate in matches[:limit]]


def _next_mrns(count: int = 1) -> list[str]:
    """Allocate `count` consecutive MRNs under a row lock."""
    counter, _ = MrnCounter.objects.select_for_update().get_or_create(
        name="mrn", defaults={"value": MRN_START - 1}
    )
    start = counter.value + 1
    counter.value += count
    counter.save(update_fields=["value"])
    return [make_mrn(seq) for seq in range(start, start + count)]


@transaction.atomic
def patient_register(
    *,
    actor: User,
    home_location: Location,
    values: Mapping[str, Any],
    confirm_not_duplicate: bool = False,
    check_duplicates: bool = True,
    identifiers: Iterable[tuple[str, str]] = (),
    event: str = "patient.register",
) -> Patient:
    """Create a patient with a new MRN. Raises DuplicateCandidatesFound unless confirmed."""
    _require(actor, Capability.REGISTER_PATIENTS)
    if home_location.pk not in actor.location_ids:
        raise ValidationError(
            {"home_location": "You can register patients only at your locations."}
        )
    cleaned = _clean_patient_values(values)
    patient = Patient(home_location=home_location, **cleaned)
    _full_clean(patient, exclude=["mrn", "family_fold", "given_fold"])
    if check_duplicates and not confirm_not_duplicate:
        candidates = duplicate_candidates(
            family_name=patient.family_name,
            given_name=patient.given_name,
            birth_date=patient.birth_date,
            phone_mobile=patient.phone_mobile,
            phone_home=patient.phone_home,
            email=patient.email,
        )
        if candidates:
            raise DuplicateCandidatesFound(candidates)
    patient.mrn = _next_mrns(1)[0]
    patient.save(force_insert=True)
    PatientIdentifier.objects.create(
        patient=patient, system=PatientIdentifier.MRN_SYSTEM, value=patient.mrn
    )
    for system, value in identifiers:
        PatientIdentifier.objects.create(patient=patient, system=system, value=value)
    record(
        actor=actor,
        action=Action.CREATE,
        event=event,
        category=Category.DEMOGRAPHICS,
        patient=patient,
        obj=patient,
        fields=[name for name in cleaned if cleaned[name] not in ("", None)],
        reason="confirmed not a duplicate" if confirm_not_duplicate else "",
    )
    return patient


@transaction.atomic
def patient_update(
    *, actor: User, patient: Patient, values: Mapping[str, Any], event: str = "patient.update"
) -> Patient:
    _require(actor, Capability.REGISTER_PATIENTS)
    if patient.merged_into_id:
        raise ValidationError("This record was merged into another and can no longer be edited.")
    cleaned = _clean_patient_values(values)
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    changed = [name for name, value in cleaned.items() if getattr(locked, name) != value]
    for name in changed:
        setattr(locked, name, cleaned[name])
    _full_clean(locked, exclude=["mrn", "family_fold", "given_fold"])
    if changed:
        locked.save()
        record(
            actor=actor,
            action=Action.UPDATE,
            event=event,
            category=Category.DEMOGRAPHICS,
            patient=locked,
            obj=locked,
            fields=changed,
        )
    return locked


@transaction.atomic
def coverage_save(
    *,
    actor: User,
    patient: Patient,
    values: Mapping[str, Any],
    coverage: Coverage | None = None,
    source_identifier: str = "",
) -> Coverage:
    """Add a coverage, or update the given one."""
    _require(actor, Capability.MANAGE_COVERAGE)
    unknown = set(values) - set(COVERAGE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
    creating = coverage is None
    target = coverage if coverage is not None else Coverage(patient=patient)
    if not creating and target.patient_id != patient.pk:
        raise ValidationError("This coverage belongs to another patient.")
    changed = [name for name, value in values.items() if getattr(target, name, None) != value]
    for name, value in values.items():
        setattr(target, name, value.strip() if isinstance(value, str) else value)
    if source_identifier:
        target.source_identifier = source_identifier
    target.full_clean(exclude=["patient", "member_id_fold", "verified_by"])
    if (
        target.is_active
        and Coverage.objects.filter(patient=patient, order=target.order, is_active=True)
        .exclude(pk=target.pk)
        .filter(Q(effective_end__isnull=True) | Q(effective_end__gte=timezone.localdate()))
        .exists()
    ):
        raise ValidationError(
            {
                "order": (
                    f"This patient already has an active {target.get_order_display().lower()} "
                    "coverage; end it or choose another order of benefits."
                )
            }
        )
    target.save()
    record(
        actor=actor,
        action=Action.CREATE if creating else Action.UPDATE,
        event="coverage.add" if creating else "coverage.update",
        category=Category.COVERAGE,
        patient=patient,
        obj=target,
        fields=changed,
    )
    return target


@transaction.atomic
def coverage_verify(*, actor: User, coverage: Coverage) -> Coverage:
    _require(actor, Capability.MANAGE_COVERAGE)
    coverage.verified_at = timezone.now()
    coverage.verified_by = actor
    coverage.save(update_fields=["verified_at", "verified_by", "updated_at"])
    record(
        actor=actor,
        action=Action.UPDATE,
        event="coverage.verify",
        category=Category.COVERAGE,
        patient=coverage.patient,
        obj=coverage,
        fields=["verified_at"],
    )
    return coverage


@transaction.atomic
def flag_add(
    *, actor: User, patient: Patient, kind: str, severity: str = "warning", note: str = ""
) -> PatientFlag:
    _require(actor, Capability.MANAGE_FLAGS)
    flag = PatientFlag(
        patient=patient, kind=kind, severity=severity, note=note.strip(), created_by=actor
    )
    flag.full_clean(exclude=["patient", "created_by"])
    flag.save()
    record(
        actor=actor,
        action=Action.CREATE,
        event="flag.add",
        category=Category.ALERTS,
        patient=patient,
        obj=flag,
        fields=["kind", "severity"] + (["note"] if note else []),
    )
    return flag


@transaction.atomic
def flag_clear(*, actor: User, flag: PatientFlag) -> PatientFlag:
    _require(actor, Capability.MANAGE_FLAGS)
    if flag.is_active:
        flag.is_active = False
        flag.cleared_at = timezone.now()
        flag.save(update_fields=["is_active", "cleared_at", "updated_at"])
        record(
            actor=actor,
            action=Action.UPDATE,
            event="flag.clear",
            category=Category.ALERTS,
            patient=flag.patient,
            obj=flag,
            fields=["is_active"],
        )
    return flag


@transaction.atomic
def break_glass_grant(*, actor: User, patient: Patient, reason: str) -> BreakGlassGrant:
    from django.conf import settings

    _require(actor, Capability.BREAK_GLASS)
    reason = " ".join((reason or "").split())
    if len(reason) < 10:
        raise ValidationError({"reason": "Write the reason for emergency access (10+ characters)."})
    grant = BreakGlassGrant.objects.create(
        user=actor,
        patient=patient,
        reason=reason,
        expires_at=timezone.now() + settings.BREAK_GLASS_DURATION,
    )
    record(
        actor=actor,
        action=Action.READ,
        event="access.break_glass",
        category=Category.SECURITY,
        patient=patient,
        obj=grant,
        reason=reason,
    )
    return grant


@transaction.atomic
def patient_merge(*, actor: User, survivor: Patient, merged: Patient, reason: str) -> Patient:
    """Merge `merged` into `survivor`: move everything attached, keep its identifiers as aliases."""
    _require(actor, Capability.MERGE_PATIENTS)
    if survivor.pk == merged.pk:
        raise ValidationError("Choose two different records to merge.")
    first, second = sorted([survivor.pk, merged.pk])
    locked = {p.pk: p for p in Patient.objects.select_for_update().filter(pk__in=[first, second])}
    survivor, merged = locked[survivor.pk], locked[merged.pk]
    if merged.merged_into_id or survivor.merged_into_id:
        raise ValidationError("One of these records has already been merged.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationError({"reason": "Say why these records are the same person."})
    moved: list[str] = []
    # Every relation that points at Patient moves to the survivor, except merge bookkeeping.
    for relation in Patient._meta.related_objects:
        if relation.related_model is Patient or relation.related_model is BreakGlassGrant:
            continue
        if not (relation.one_to_many or relation.one_to_one):
            continue
        model: Any = relation.related_model
        field_name = relation.field.name
        if model is PatientIdentifier:
            model.objects.filter(patient=merged).update(patient=survivor, is_alias=True)
            moved.append("identifiers")
            continue
        count = model.objects.filter(**{field_name: merged}).update(**{field_name: survivor})
        if count:
            moved.append(model._meta.label)
    if not PatientIdentifier.objects.filter(
        system=PatientIdentifier.MRN_SYSTEM, value=merged.mrn
    ).exists():
        PatientIdentifier.objects.create(
            patient=survivor, system=PatientIdentifier.MRN_SYSTEM, value=merged.mrn, is_alias=True
        )
    merged.merged_into = survivor
    merged.is_active = False
    merged.save(update_fields=["merged_into", "is_active", "updated_at"])
    record(
        actor=actor,
        action=Action.UPDATE,
        event="patient.merge",
        category=Category.DEMOGRAPHICS,
        patient=survivor,
        obj=survivor,
        reason=reason,
        fields=moved,
    )
    record(
        actor=actor,
        action=Action.DELETE,
        event="patient.merged_away",
        category=Category.DEMOGRAPHICS,
        patient=merged,
        obj=merged,
        reason=f"merged into {survivor.mrn}",
    )
    return survivor


# Severity an alert gets when it is ticked on the registration form.
FLAG_DEFAULT_SEVERITY: dict[str, str] = {
    FlagKind.BEHAVIOURAL: FlagSeverity.CRITICAL,
    FlagKind.ALLERGY: FlagSeverity.CRITICAL,
    FlagKind.FALL_RISK: FlagSeverity.WARNING,
    FlagKind.MOBILITY: FlagSeverity.WARNING,
    FlagKind.FINANCIAL: FlagSeverity.WARNING,
    FlagKind.OTHER: FlagSeverity.WARNING,
    FlagKind.INTERPRETER: FlagSeverity.INFO,
}


def _prefixed_errors(exc: ValidationError, prefix: str) -> ValidationError:
    """{'member_id': [...]} -> {'coverage_member_id': [...]}; errors of no field -> 'coverage'."""
    if hasattr(exc, "error_dict"):
        return ValidationError(
            {
                (f"{prefix}_{name}" if name != NON_FIELD_ERRORS else prefix): errors
                for name, errors in exc.error_dict.items()
            }
        )
    return ValidationError({prefix: exc.messages})


@transaction.atomic
def patient_register_with_details(
    *,
    actor: User,
    home_location: Location,
    values: Mapping[str, Any],
    coverage_values: Mapping[str, Any] | None = None,
    flags: Iterable[tuple[str, str, str]] = (),
    confirm_not_duplicate: bool = False,
) -> Patient:
    """Register a patient together with a primary coverage and alerts, all or nothing.

    `flags` holds (kind, severity, note) triples. Errors in the coverage come back keyed
    `coverage_<field>` and errors in the alerts under `alerts`, so a form can place them.
    """
    patient = patient_register(
        actor=actor,
        home_location=home_location,
        values=values,
        confirm_not_duplicate=confirm_not_duplicate,
    )
    if coverage_values:
        try:
            coverage_save(actor=actor, patient=patient, values=coverage_values)
        except ValidationError as exc:
            raise _prefixed_errors(exc, "coverage") from exc
    for kind, severity, note in flags:
        try:
            flag_add(actor=actor, patient=patient, kind=kind, severity=severity, note=note)
        except ValidationError as exc:
            raise ValidationError({"alerts": exc.messages}) from exc
    return patient
