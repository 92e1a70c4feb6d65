"""Writes to patient records. Every function is atomic and writes its audit event in the same
transaction; callers (views, API, importers, seed) all come through here."""

from __future__ import annotations

import datetime as dt
import difflib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import Action, Category
from audit.services import (
    Statement,
    batches_statements,
    record,
    record_after_writes,
    record_many,
    run_statements,
)
from core.capabilities import Capability
from core.models import Location
from core.text import digits, fold
from patients.bulk import insert_objects, insert_statement
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
    "effective_end", "order", "is_active", "medicare_secondary_type",
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


# Not validated on a new patient: keys the service fills in, the home location (checked against
# the actor's locations) and the merge link (a new record is never merged).
NEW_PATIENT_EXCLUDE = ("mrn", "family_fold", "given_fold", "home_location", "merged_into")


def _optional_fields(model: type[Patient] | type[Coverage], names: Iterable[str]) -> frozenset[str]:
    """Fields a new row may leave to their model default: blank allowed, or a default value."""
    fields = {field.name: field for field in model._meta.concrete_fields}
    return frozenset(name for name in names if fields[name].blank or fields[name].has_default())


_PATIENT_OPTIONAL_FIELDS = _optional_fields(Patient, PATIENT_FIELDS)


def _fill_search_keys(patient: Patient) -> None:
    """What Patient.save() maintains, for rows written without it (patients.bulk)."""
    patient.family_fold = fold(patient.family_name)
    patient.given_fold = fold(patient.given_name)
    patient.phone_mobile_digits = digits(patient.phone_mobile)
    patient.phone_home_digits = digits(patient.phone_home)


def _new_patient(home_location: Location, values: Mapping[str, Any]) -> tuple[Patient, list[str]]:
    """A validated, unsaved patient and the names of the fields given a value; ValidationError
    naming the fields otherwise. The row's only database constraint (not merged into itself)
    cannot fail for a new record, so no query is needed."""
    cleaned = _clean_patient_values(values)
    patient = Patient(home_location=home_location, **cleaned)
    # Not checked a second time: a phone _clean_patient_values has turned into E.164, and a
    # field left to its model default (valid by definition; a required field has none).
    normalised = [name for name in PHONE_FIELDS if cleaned.get(name)]
    defaulted = [name for name in _PATIENT_OPTIONAL_FIELDS if name not in cleaned]
    patient.full_clean(
        exclude=[*NEW_PATIENT_EXCLUDE, *normalised, *defaulted],
        validate_unique=False,
        validate_constraints=False,
    )
    return patient, [name for name in cleaned if cleaned[name] not in ("", None)]


def _common_letters(counts: Mapping[str, int], other: str) -> int:
    """How many letters of `other` can be paired with letters counted in `counts`."""
    left = dict(counts)
    common = 0
    for char in other:
        if left.get(char, 0) > 0:
            left[char] -= 1
            common += 1
    return common


def _similarity(
    name_key: str, name_key_swapped: str, letters: Mapping[str, int], other: str
) -> float:
    """The best difflib ratio of `other` against the name in either order (`letters` counts the
    name's letters), skipping the full comparison when its exact upper bound (letters in common,
    as difflib's quick_ratio; the same for both orders) already falls short of
    DUPLICATE_NAME_SIMILARITY."""
    size = len(name_key) + len(other)
    if 2 * _common_letters(letters, other) < DUPLICATE_NAME_SIMILARITY * size:
        return 0.0
    return max(
        difflib.SequenceMatcher(None, name_key, other).ratio(),
        difflib.SequenceMatcher(None, name_key_swapped, other).ratio(),
    )


@dataclass(frozen=True)
class _DuplicateQuery:
    """What the duplicate check looks for, normalised, and the SQL that reads its pool."""

    family_name: str
    given_name: str
    birth_date: dt.date | None
    phones: frozenset[str]
    email: str
    sql: str | None  # None: nothing to compare on
    params: tuple[Any, ...]


def _duplicate_query(
    *,
    family_name: str,
    given_name: str,
    birth_date: dt.date | None,
    phone_mobile: str = "",
    phone_home: str = "",
    email: str = "",
    exclude_id: int | None = None,
) -> _DuplicateQuery:
    """The pool query: (id, family_fold, given_fold, birth_date, mobile digits, home digits,
    email) of current records sharing the birth date, a phone or the e-mail, the first 200 in
    name order.

    Plain SQL: registration runs this on every call, and building it with the ORM cost more than
    running it (each condition is served by its own index)."""
    phones = frozenset({digits(p) for p in (phone_mobile, phone_home) if p} - {""})
    email = email.strip().lower() if email else ""
    where: list[str] = []
    params: list[Any] = []
    if birth_date:
        where.append("birth_date = %s")
        params.append(birth_date)
    for number in sorted(phones):
        where += ["phone_mobile_digits = %s", "phone_home_digits = %s"]
        params += [number, number]
    if email:
        where.append("email = %s")
        params.append(email)
    sql: str | None = None
    if where:
        table = connection.ops.quote_name(Patient._meta.db_table)
        columns = (
            "id, family_fold, given_fold, birth_date, phone_mobile_digits, phone_home_digits, email"
        )
        current = "is_active AND merged_into_id IS NULL"
        # Only column names and placeholders go into the text; the values are parameters.
        sql = f"SELECT {columns} FROM {table} WHERE {current} AND ({' OR '.join(where)})"  # noqa: S608
        if exclude_id is not None:
            sql += " AND id <> %s"
            params.append(exclude_id)
        sql += " ORDER BY family_fold, given_fold, id LIMIT 200"
    return _DuplicateQuery(family_name, given_name, birth_date, phones, email, sql, tuple(params))


def _duplicate_matches(
    query: _DuplicateQuery, pool: Iterable[Sequence[Any]], limit: int
) -> list[Patient]:
    """The pool's likely duplicates, best first: same date of birth with a similar name, or
    the same phone or e-mail. Full records are fetched for the matches alone (usually none)."""
    name_key = fold(query.family_name) + " " + fold(query.given_name)
    name_key_swapped = fold(query.given_name) + " " + fold(query.family_name)
    letters = Counter(name_key)
    birth_date, phones, email = query.birth_date, query.phones, query.email
    matches: list[tuple[float, int]] = []
    for pk, family, given, born, mobile, home, mail in pool:
        score = 0.0
        if email and mail == email:
            score = 1.0
        if phones & {mobile, home}:
            score = max(score, 0.95)
        if birth_date and born == birth_date:
            other = family + " " + given
            similarity = _similarity(name_key, name_key_swapped, letters, other)
            if similarity >= DUPLICATE_NAME_SIMILARITY:
                score = max(score, similarity)
        if score:
            matches.append((score, pk))
    if not matches:
        return []
    matches.sort(key=lambda item: -item[0])
    chosen = [pk for _, pk in matches[:limit]]
    found = Patient.objects.select_related("home_location").in_bulk(chosen)
    return [found[pk] for pk in chosen if pk in found]


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
    """Likely duplicates: same date of birth with a similar name, or the same phone or email.

    The pool is read as a few columns only; full records are fetched for the matches alone
    (usually none)."""
    query = _duplicate_query(
        family_name=family_name,
        given_name=given_name,
        birth_date=birth_date,
        phone_mobile=phone_mobile,
        phone_home=phone_home,
        email=email,
        exclude_id=exclude_id,
    )
    if query.sql is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(query.sql, query.params)
        pool = cursor.fetchall()
    return _duplicate_matches(query, pool, limit)


def mrn_allocate(count: int = 1) -> list[str]:
    """Allocate `count` consecutive MRNs. Call inside a transaction: the counter row stays
    locked until it ends (one UPDATE ... RETURNING; the row is created on first use)."""
    if count < 1:
        return []
    table = connection.ops.quote_name(MrnCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET value = value + %s WHERE name = %s RETURNING value",  # noqa: S608
            [count, "mrn"],
        )
        row = cursor.fetchone()
    if row is not None:
        last = int(row[0])
    else:
        counter, _ = MrnCounter.objects.select_for_update().get_or_create(
            name="mrn", defaults={"value": MRN_START - 1}
        )
        counter.value += count
        counter.save(update_fields=["value"])
        last = counter.value
    return [make_mrn(seq) for seq in range(last - count + 1, last + 1)]


def _require_registration(actor: User, home_location: Location) -> None:
    _require(actor, Capability.REGISTER_PATIENTS)
    if home_location.pk not in actor.location_ids:
        raise ValidationError(
            {"home_location": "You can register patients only at your locations."}
        )


# The next MRN and the new patient's id, in one statement (PostgreSQL; run_statements sends it
# with the duplicate check). The id comes from the table's own sequence.
_MRN_AND_ID_SQL = (
    "UPDATE {counter} SET value = value + 1 WHERE name = %s "
    "RETURNING value, nextval(pg_get_serial_sequence(%s, 'id'))"
)


def _check_and_number(patient: Patient, query: _DuplicateQuery | None) -> bool:
    """Run the duplicate check (`query`; DuplicateCandidatesFound for likely duplicates) and
    give the patient its MRN. On PostgreSQL both travel in one round trip, and the patient's
    id is drawn from its sequence there too: True then (the caller inserts with that id)."""
    pool_statements: list[Statement] = [(query.sql, query.params)] if query and query.sql else []
    numbers = None
    if batches_statements():
        counter = connection.ops.quote_name(MrnCounter._meta.db_table)
        mrn_sql = _MRN_AND_ID_SQL.format(counter=counter)
        statements = [*pool_statements, (mrn_sql, ["mrn", Patient._meta.db_table])]
        with connection.cursor() as cursor:
            run_statements(cursor, statements)
            pool = cursor.fetchall() if pool_statements else []
            if pool_statements:
                cursor.nextset()
            numbers = cursor.fetchone()
    elif pool_statements:
        with connection.cursor() as cursor:
            cursor.execute(*pool_statements[0])
            pool = cursor.fetchall()
    else:
        pool = []
    if query is not None and pool:
        candidates = _duplicate_matches(query, pool, 10)
        if candidates:
            raise DuplicateCandidatesFound(candidates)
    if numbers is None:  # SQLite, or the counter's first use
        (patient.mrn,) = mrn_allocate(1)
        return False
    patient.mrn = make_mrn(int(numbers[0]))
    patient.pk = int(numbers[1])
    return True


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
    """Create a patient with a new MRN. Raises DuplicateCandidatesFound unless confirmed.

    On PostgreSQL this is four round trips: BEGIN; the duplicate check with the MRN and id;
    the patient and identifier INSERTs with the audit chain's lock and tail; the audit row
    (then COMMIT). Elsewhere, the same statements one by one."""
    _require_registration(actor, home_location)
    patient, given = _new_patient(home_location, values)
    query = None
    if check_duplicates and not confirm_not_duplicate:
        query = _duplicate_query(
            family_name=patient.family_name,
            given_name=patient.given_name,
            birth_date=patient.birth_date,
            phone_mobile=patient.phone_mobile,
            phone_home=patient.phone_home,
            email=patient.email,
        )
    numbered = _check_and_number(patient, query)
    keys = [(PatientIdentifier.MRN_SYSTEM, patient.mrn), *identifiers]
    audit_event: dict[str, Any] = {
        "actor": actor,
        "action": Action.CREATE,
        "event": event,
        "category": Category.DEMOGRAPHICS,
        "patient": patient,
        "obj": patient,
        "fields": given,
        "reason": "confirmed not a duplicate" if confirm_not_duplicate else "",
    }
    if not numbered:
        patient.save(force_insert=True)
        PatientIdentifier.objects.bulk_create(
            PatientIdentifier(patient=patient, system=system, value=value) for system, value in keys
        )
        record(**audit_event)
        return patient
    _fill_search_keys(patient)  # what Patient.save() maintains
    rows = [
        PatientIdentifier(patient=patient, system=system, value=value) for system, value in keys
    ]
    record_after_writes([insert_statement([patient]), insert_statement(rows)], **audit_event)
    return patient


@dataclass
class NewPatient:
    """One row for patient_register_many: the values patient_register takes, and identifiers
    from another system to store with the record (the MRN is allocated)."""

    values: Mapping[str, Any]
    identifiers: Sequence[tuple[str, str]] = ()


def _identifier_conflicts(rows: Sequence[tuple[int, Sequence[tuple[str, str]]]]) -> set[int]:
    """Positions of rows whose identifiers are already stored, claimed by an earlier row, or
    given twice in the row."""
    wanted: dict[str, set[str]] = {}
    for _, keys in rows:
        for system, value in keys:
            wanted.setdefault(system, set()).add(value)
    query = Q()
    for system, values in wanted.items():
        query |= Q(system=system, value__in=values)
    taken: set[tuple[str, str]] = (
        set(PatientIdentifier.objects.filter(query).values_list("system", "value"))
        if query
        else set()
    )
    conflicts = set()
    for position, keys in rows:
        if len(set(keys)) < len(keys) or any(key in taken for key in keys):
            conflicts.add(position)
        taken.update(keys)
    return conflicts


@transaction.atomic
def patient_register_many(
    *,
    actor: User,
    home_location: Location,
    rows: Sequence[NewPatient],
    event: str = "patient.import",
) -> list[Patient | ValidationError]:
    """Register many patients at once (imports): for each row, in order, the new Patient or the
    ValidationError that kept it out. Each row is validated in full before anything is written,
    so a refused row leaves nothing behind; the accepted ones are written with a few bulk
    inserts (patients.bulk: patients, then identifiers; one audit event each through
    record_many).

    No duplicate check: batch callers match records by identifier first and may call
    duplicate_candidates themselves. A row whose identifier is already stored (or appears in an
    earlier row) is refused rather than linked to another record.
    """
    _require_registration(actor, home_location)
    results: list[Patient | ValidationError] = []
    accepted: list[tuple[int, Patient, list[str], Sequence[tuple[str, str]]]] = []
    for position, row in enumerate(rows):
        try:
            patient, given = _new_patient(home_location, row.values)
        except ValidationError as exc:
            results.append(exc)
            continue
        results.append(patient)
        accepted.append((position, patient, given, tuple(row.identifiers)))
    conflicts = _identifier_conflicts([(position, keys) for position, _, _, keys in accepted])
    if conflicts:
        for position in conflicts:
            results[position] = ValidationError(
                {"identifier": "This identifier is already recorded for another patient."}
            )
        accepted = [item for item in accepted if item[0] not in conflicts]
    if not accepted:
        return results
    patients = [patient for _, patient, _, _ in accepted]
    for patient, mrn in zip(patients, mrn_allocate(len(patients)), strict=True):
        patient.mrn = mrn
        _fill_search_keys(patient)
    insert_objects(patients, read_ids_by="mrn")
    insert_objects(
        [
            PatientIdentifier(patient=patient, system=system, value=value)
            for _, patient, _, keys in accepted
            for system, value in [(PatientIdentifier.MRN_SYSTEM, patient.mrn), *keys]
        ]
    )
    record_many(
        {
            "actor": actor,
            "action": Action.CREATE,
            "event": event,
            "category": Category.DEMOGRAPHICS,
            "patient": patient,
            "obj": patient,
            "fields": given,
        }
        for _, patient, given, _ in accepted
    )
    return results


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
def patient_identifiers_add(
    *,
    actor: User,
    patient: Patient,
    identifiers: Iterable[tuple[str, str]],
    event: str = "patient.identifiers_add",
) -> list[tuple[str, str]]:
    """Give `patient` the (system, value) identifiers it does not have yet (another facility's
    record number, say, sent in an HL7 ADT^A08's PID-3); returns those added, in order, and
    audits them by system. An identifier another patient holds, or one in our own MRN system
    (we assign MRNs), is refused with a ValidationError naming its system and the problem (never
    the value: the messages reach interface logs); nothing is added then. The patient row is
    locked first, so a merge in progress cannot leave an identifier on the merged record."""
    _require(actor, Capability.REGISTER_PATIENTS)
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if patient.merged_into_id:
        raise ValidationError("This record was merged into another and can no longer be edited.")
    wanted: list[tuple[str, str]] = []
    for system, value in identifiers:
        key = (system.strip(), value.strip())
        if not key[0] or not key[1]:
            raise ValidationError({"identifiers": "An identifier needs a system and a value."})
        if key[0] == PatientIdentifier.MRN_SYSTEM:
            raise ValidationError(
                {
                    "identifiers": "an identifier in our own MRN system cannot be added: MRNs are "
                    "assigned at registration."
                }
            )
        if key not in wanted:
            wanted.append(key)
    if not wanted:
        return []
    query = Q()
    for system, value in wanted:
        query |= Q(system=system, value=value)
    held = {(row.system, row.value): row for row in PatientIdentifier.objects.filter(query)}
    for key in wanted:
        row = held.get(key)
        if row is not None and row.patient_id != patient.pk:
            raise ValidationError(
                {
                    "identifiers": f"an identifier of system {key[0]} belongs to another patient; "
                    "merge the two records first."
                }
            )
    added = [key for key in wanted if key not in held]
    if not added:
        return []
    rows = [
        PatientIdentifier(patient=patient, system=system, value=value) for system, value in added
    ]
    for row in rows:
        row.full_clean(exclude=["patient"], validate_unique=False)
    PatientIdentifier.objects.bulk_create(rows)
    record(
        actor=actor,
        action=Action.UPDATE,
        event=event,
        category=Category.DEMOGRAPHICS,
        patient=patient,
        obj=patient,
        fields=[f"identifier:{system}" for system, _ in added],
    )
    return added


COVERAGE_CLEAN_EXCLUDE = ("patient", "member_id_fold", "verified_by")


_COVERAGE_OPTIONAL_FIELDS = _optional_fields(Coverage, COVERAGE_FIELDS)


def _clean_coverage(coverage: Coverage, given: Iterable[str] | None = None) -> None:
    """Field validation and the end-after-start rule, checked here rather than by a query (the
    database keeps the constraint too). For a new coverage, `given` names the fields set: the
    others hold their model defaults, which need no check."""
    defaulted = [] if given is None else sorted(_COVERAGE_OPTIONAL_FIELDS - set(given))
    errors: dict[str, list[ValidationError]] = {}
    try:
        coverage.full_clean(
            exclude=[*COVERAGE_CLEAN_EXCLUDE, *defaulted],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as exc:
        errors = exc.update_error_dict(errors)
    start, end = coverage.effective_start, coverage.effective_end
    dates_valid = not {"effective_start", "effective_end"} & set(errors)
    if dates_valid and start and end and end < start:
        errors.setdefault("effective_end", []).append(
            ValidationError("The end date is before the start date.", code="end_before_start")
        )
    if errors:
        raise ValidationError(errors)


def _order_taken(coverage: Coverage) -> ValidationError:
    return ValidationError(
        {
            "order": (
                f"This patient already has an active {coverage.get_order_display().lower()} "
                "coverage; end it or choose another order of benefits."
            )
        }
    )


def _is_current(coverage: Coverage, today: dt.date) -> bool:
    """Active and not ended before today: holds its order of benefits."""
    return coverage.is_active and (
        coverage.effective_end is None or coverage.effective_end >= today
    )


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
    _clean_coverage(target)
    if (
        target.is_active
        and Coverage.objects.filter(patient=patient, order=target.order, is_active=True)
        .exclude(pk=target.pk)
        .filter(Q(effective_end__isnull=True) | Q(effective_end__gte=timezone.localdate()))
        .exists()
    ):
        raise _order_taken(target)
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


@dataclass
class NewCoverage:
    """One row for coverage_add_many: what coverage_save takes to add a coverage."""

    patient: Patient
    values: Mapping[str, Any]
    source_identifier: str = ""


@transaction.atomic
def coverage_add_many(
    *, actor: User, items: Sequence[NewCoverage]
) -> list[Coverage | ValidationError]:
    """Add many coverages at once (imports), with coverage_save's rules: for each item, in order,
    the new Coverage or the ValidationError that kept it out. Validation happens in full before
    the bulk insert; one audit event per coverage (record_many). An item is checked against the
    patients' current coverages and against the items accepted before it. The rows are
    written by patients.bulk (the rows bulk_create would store, as a test proves)."""
    _require(actor, Capability.MANAGE_COVERAGE)
    today = timezone.localdate()
    blank = Coverage()
    taken = set(
        Coverage.objects.filter(
            Q(effective_end__isnull=True) | Q(effective_end__gte=today),
            patient__in={item.patient.pk for item in items},
            is_active=True,
        ).values_list("patient_id", "order")
    )
    results: list[Coverage | ValidationError] = []
    accepted: list[tuple[Coverage, list[str]]] = []
    for item in items:
        unknown = set(item.values) - set(COVERAGE_FIELDS)
        if unknown:
            results.append(ValidationError(dict.fromkeys(sorted(unknown), "Unknown field.")))
            continue
        target = Coverage(patient=item.patient, source_identifier=item.source_identifier)
        changed = [name for name, value in item.values.items() if getattr(blank, name) != value]
        for name, value in item.values.items():
            setattr(target, name, value.strip() if isinstance(value, str) else value)
        try:
            _clean_coverage(target, given=item.values)
        except ValidationError as exc:
            results.append(exc)
            continue
        key = (item.patient.pk, target.order)
        if target.is_active and key in taken:
            results.append(_order_taken(target))
            continue
        if _is_current(target, today):
            taken.add(key)
        target.member_id_fold = fold(target.member_id)  # what Coverage.save() maintains
        results.append(target)
        accepted.append((target, changed))
    insert_objects([coverage for coverage, _ in accepted], read_ids_by="public_id")
    record_many(
        {
            "actor": actor,
            "action": Action.CREATE,
            "event": "coverage.add",
            "category": Category.COVERAGE,
            "patient": coverage.patient,
            "obj": coverage,
            "fields": changed,
        }
        for coverage, changed in accepted
    )
    return results


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
