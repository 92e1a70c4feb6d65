"""The fast paths behind the performance targets (docs/performance.md) keep the rules of the slow
ones: batch registration and coverages, MRN allocation, the duplicate check's shortcut, name
search in two index-ordered parts, and the importer's batching and reading processes."""

from __future__ import annotations

import datetime as dt
import difflib
import io
import json
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import User
from audit.chain import iter_rows, verify_chain
from audit.models import AuditEvent
from audit.services import batches_statements
from core.models import Location
from patients import services
from patients.models import Coverage, MrnCounter, Patient, PatientIdentifier
from patients.mrn import MRN_START, is_valid_mrn, make_mrn
from patients.selectors import SearchCriteria, patient_search
from patients.tests.factories import CoverageFactory, PatientFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
BUSTER = FIXTURES / "synthea_r4_Buster_Hoeger.json"
BUSTER_FULL_URL_ID = "e4531916-b162-4f4b-90c2-ce37e132b8d4"
BUSTER_ID = "ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423"
SYNTHEA = "https://github.com/synthetichealth/synthea"


def person(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "family_name": "Okafor",
        "given_name": "Ada",
        "birth_date": dt.date(1984, 2, 29),
        "sex_at_birth": "F",
        "phone_mobile": "(617) 555-0177",
    }
    values.update(changes)
    return values


def refused(result: object) -> dict[str, list[str]]:
    """The errors of a row a batch service refused."""
    assert isinstance(result, ValidationError)
    return result.message_dict


def new(**changes: object) -> services.NewPatient:
    identifiers = changes.pop("identifiers", ())
    return services.NewPatient(person(**changes), identifiers)


# --- patient_register_many ---------------------------------------------------------------------


def test_register_many_writes_the_valid_rows_and_reports_the_others(
    persona: Callable[[str], User], main_clinic: Location
) -> None:
    officeadmin = persona("officeadmin")

    results = services.patient_register_many(
        actor=officeadmin,
        home_location=main_clinic,
        rows=[
            new(identifiers=[("urn:example", "A-1")]),
            new(family_name="", given_name="Ben"),
            new(
                given_name="Chi", birth_date=dt.date(2999, 1, 1), identifiers=[("urn:example", "C")]
            ),
            new(given_name="Dee", phone_mobile="12"),
            new(given_name="Eve", identifiers=[("urn:example", "E-5")]),
        ],
    )

    first, no_family, future, bad_phone, fifth = results
    assert isinstance(first, Patient)
    assert isinstance(fifth, Patient)
    assert "family_name" in refused(no_family)
    assert "birth_date" in refused(future)
    assert "phone_mobile" in refused(bad_phone)
    assert sorted(Patient.objects.values_list("given_name", flat=True)) == ["Ada", "Eve"]
    # nothing of a refused row is left behind
    assert not PatientIdentifier.objects.filter(value="C").exists()
    stored = Patient.objects.get(pk=first.pk)
    assert (stored.family_fold, stored.given_fold, stored.phone_mobile_digits) == (
        "okafor", "ada", "16175550177"
    )  # fmt: skip
    assert set(first.identifiers.values_list("system", "value")) == {
        (PatientIdentifier.MRN_SYSTEM, first.mrn),
        ("urn:example", "A-1"),
    }
    events = AuditEvent.objects.filter(event="patient.import").order_by("sequence")
    assert [e.patient_public_id for e in events] == [first.public_id, fifth.public_id]
    assert "family_name" in events[0].fields
    assert "Okafor" not in str(events[0].fields) + events[0].reason


def test_a_required_field_left_out_is_refused_and_defaults_are_kept(
    persona: Callable[[str], User], main_clinic: Location
) -> None:
    without_sex = person()
    del without_sex["sex_at_birth"]

    refused_row, kept = services.patient_register_many(
        actor=persona("officeadmin"),
        home_location=main_clinic,
        rows=[services.NewPatient(without_sex), new()],
    )

    assert "sex_at_birth" in refused(refused_row)
    assert isinstance(kept, Patient)
    stored = Patient.objects.get(pk=kept.pk)
    assert (stored.preferred_language, stored.preferred_contact) == ("English", "phone")


def test_register_many_allocates_consecutive_valid_mrns(
    persona: Callable[[str], User], main_clinic: Location
) -> None:
    officeadmin = persona("officeadmin")

    patients = services.patient_register_many(
        actor=officeadmin,
        home_location=main_clinic,
        rows=[new(given_name=name) for name in ("Ann", "Bo", "Cy")],
    )

    mrns = [p.mrn for p in patients if isinstance(p, Patient)]
    sequences = [int(mrn[:-1]) for mrn in mrns]
    assert sequences == [sequences[0], sequences[0] + 1, sequences[0] + 2]
    assert all(is_valid_mrn(mrn) for mrn in mrns)


def test_register_many_refuses_an_identifier_already_recorded_or_repeated(
    persona: Callable[[str], User], main_clinic: Location
) -> None:
    officeadmin = persona("officeadmin")
    existing = PatientFactory.create(home_location=main_clinic)
    PatientIdentifier.objects.create(patient=existing, system="urn:example", value="TAKEN")

    taken, first, repeated = services.patient_register_many(
        actor=officeadmin,
        home_location=main_clinic,
        rows=[
            new(given_name="Ann", identifiers=[("urn:example", "TAKEN")]),
            new(given_name="Bo", identifiers=[("urn:example", "NEW")]),
            new(given_name="Cy", identifiers=[("urn:example", "NEW")]),
        ],
    )

    assert "identifier" in refused(taken)
    assert isinstance(first, Patient)
    assert "identifier" in refused(repeated)
    assert PatientIdentifier.objects.get(value="NEW").patient_id == first.pk


def test_register_many_needs_the_capability_and_one_of_the_users_locations(
    persona: Callable[[str], User], main_clinic: Location, riverside: Location
) -> None:
    with pytest.raises(PermissionDenied):
        services.patient_register_many(
            actor=persona("billing"), home_location=main_clinic, rows=[new()]
        )
    with pytest.raises(ValidationError):
        services.patient_register_many(
            actor=persona("officeadmin"), home_location=riverside, rows=[new()]
        )
    assert not Patient.objects.exists()


def test_mrns_continue_the_counter_and_start_it_on_first_use(db: None) -> None:
    # given no counter row yet
    MrnCounter.objects.all().delete()

    # when
    with transaction.atomic():
        first = services.mrn_allocate(2)
    with transaction.atomic():
        second = services.mrn_allocate(1)

    # then
    assert first == [make_mrn(MRN_START), make_mrn(MRN_START + 1)]
    assert second == [make_mrn(MRN_START + 2)]
    assert services.mrn_allocate(0) == []


def test_registration_takes_a_fixed_number_of_queries(
    frontdesk: User,
    main_clinic: Location,
    django_assert_num_queries: Callable[[int], Any],
) -> None:
    services.patient_register(actor=frontdesk, home_location=main_clinic, values=person())

    # PostgreSQL: the duplicate check with the MRN and id; the patient and identifier INSERTs
    # with the audit lock and row. SQLite: duplicate check, MRN, patient, identifier, audit
    # chain's tail, audit row (its write lock is taken at BEGIN IMMEDIATE). Inside the test's
    # transaction, a savepoint and its release come on top.
    with django_assert_num_queries((2 if batches_statements() else 6) + 2):
        services.patient_register(
            actor=frontdesk,
            home_location=main_clinic,
            values=person(family_name="Nguyen", given_name="Bao", phone_mobile=""),
        )


def test_a_registered_patient_is_the_stored_row_with_its_mrn_and_audit_event(
    frontdesk: User, main_clinic: Location
) -> None:
    # when
    created = services.patient_register(
        actor=frontdesk,
        home_location=main_clinic,
        values=person(family_name="Müller", given_name="Zoë"),
        identifiers=[("urn:example:chart", "C-1")],
    )

    # then
    stored = Patient.objects.get(pk=created.pk)
    assert (stored.public_id, stored.mrn, stored.created_at) == (
        created.public_id,
        created.mrn,
        created.created_at,
    )
    assert (stored.family_fold, stored.given_fold) == ("muller", "zoe")
    assert stored.phone_mobile_digits == "16175550177"
    assert is_valid_mrn(stored.mrn)
    assert set(stored.identifiers.values_list("system", "value")) == {
        (PatientIdentifier.MRN_SYSTEM, stored.mrn),
        ("urn:example:chart", "C-1"),
    }
    audit = AuditEvent.objects.get(event="patient.register")
    assert (audit.patient_public_id, audit.object_id) == (stored.public_id, str(stored.public_id))
    assert created.pk is not None
    assert not created._state.adding
    assert verify_chain(iter_rows()).intact


def test_registration_starts_the_mrn_counter_on_first_use(
    frontdesk: User, main_clinic: Location
) -> None:
    # given no counter row yet
    MrnCounter.objects.all().delete()

    # when
    first = services.patient_register(actor=frontdesk, home_location=main_clinic, values=person())
    second = services.patient_register(
        actor=frontdesk,
        home_location=main_clinic,
        values=person(family_name="Nguyen", given_name="Bao", phone_mobile=""),
    )

    # then
    assert [first.mrn, second.mrn] == [make_mrn(MRN_START), make_mrn(MRN_START + 1)]
    assert Patient.objects.get(mrn=second.mrn).pk == second.pk


def test_a_duplicate_warning_writes_nothing_and_uses_no_mrn(
    frontdesk: User, main_clinic: Location
) -> None:
    # given
    first = services.patient_register(actor=frontdesk, home_location=main_clinic, values=person())
    events = AuditEvent.objects.count()

    # when the same person is registered again
    with pytest.raises(services.DuplicateCandidatesFound) as warning:
        services.patient_register(actor=frontdesk, home_location=main_clinic, values=person())

    # then
    assert [candidate.pk for candidate in warning.value.candidates] == [first.pk]
    assert Patient.objects.count() == 1
    assert AuditEvent.objects.count() == events
    confirmed = services.patient_register(
        actor=frontdesk, home_location=main_clinic, values=person(), confirm_not_duplicate=True
    )
    assert int(confirmed.mrn[:-1]) == int(first.mrn[:-1]) + 1


def test_an_identifier_already_recorded_refuses_the_registration_whole(
    frontdesk: User, main_clinic: Location
) -> None:
    # given
    services.patient_register(
        actor=frontdesk,
        home_location=main_clinic,
        values=person(),
        identifiers=[("urn:example:chart", "C-1")],
    )
    events = AuditEvent.objects.count()

    # when
    with pytest.raises(IntegrityError), transaction.atomic():
        services.patient_register(
            actor=frontdesk,
            home_location=main_clinic,
            values=person(family_name="Nguyen", given_name="Bao", phone_mobile=""),
            identifiers=[("urn:example:chart", "C-1")],
        )

    # then
    assert Patient.objects.count() == 1
    assert AuditEvent.objects.count() == events
    assert verify_chain(iter_rows()).intact


# --- the duplicate check's shortcut ------------------------------------------------------------

NAMES = st.text(alphabet="abcdeilnorst ", min_size=1, max_size=14)


@given(family=NAMES, given_name=NAMES, other=NAMES)
def test_the_similarity_shortcut_never_changes_the_verdict(
    family: str, given_name: str, other: str
) -> None:
    key, swapped = f"{family} {given_name}", f"{given_name} {family}"
    full = max(
        difflib.SequenceMatcher(None, key, other).ratio(),
        difflib.SequenceMatcher(None, swapped, other).ratio(),
    )

    shortcut = services._similarity(key, swapped, Counter(key), other)

    threshold = services.DUPLICATE_NAME_SIMILARITY
    assert (shortcut >= threshold) == (full >= threshold)
    if full >= threshold:
        assert shortcut == full


# --- coverage_add_many -------------------------------------------------------------------------


def cover(patient: Patient, **changes: object) -> services.NewCoverage:
    values: dict[str, object] = {"payer_name": "Aetna", "member_id": "W123", "order": 1}
    values.update(changes)
    return services.NewCoverage(patient, values, source_identifier=f"src|{changes}")


def test_add_many_adds_coverages_and_audits_each(frontdesk: User, main_clinic: Location) -> None:
    ann, bo = (PatientFactory.create(home_location=main_clinic) for _ in range(2))

    results = services.coverage_add_many(
        actor=frontdesk, items=[cover(ann, member_id="xq-1 "), cover(bo, member_id="B-2")]
    )

    assert all(isinstance(result, Coverage) for result in results)
    stored = Coverage.objects.get(patient=ann)
    assert (stored.member_id, stored.member_id_fold) == ("xq-1", "xq1")
    assert stored.source_identifier.startswith("src|")
    events = AuditEvent.objects.filter(event="coverage.add")
    assert {e.patient_public_id for e in events} == {ann.public_id, bo.public_id}
    assert set(events[0].fields) == {"payer_name", "member_id"}  # `order` is the default


def test_add_many_keeps_one_current_coverage_per_order_of_benefits(
    frontdesk: User, main_clinic: Location
) -> None:
    # given Ann holds a current primary coverage, and Bo an ended one
    ann, bo = (PatientFactory.create(home_location=main_clinic) for _ in range(2))
    CoverageFactory.create(patient=ann, order=1)
    CoverageFactory.create(patient=bo, order=1, effective_end=dt.date(2001, 1, 1))

    # when
    ann_primary, ann_secondary, bo_primary, bo_second_primary = services.coverage_add_many(
        actor=frontdesk,
        items=[cover(ann), cover(ann, order=2), cover(bo), cover(bo, member_id="B-9")],
    )

    # then
    assert "order" in refused(ann_primary)
    assert isinstance(ann_secondary, Coverage)
    assert isinstance(bo_primary, Coverage)
    assert "order" in refused(bo_second_primary)
    assert Coverage.objects.count() == 4


def test_a_coverage_cannot_end_before_it_starts(frontdesk: User, main_clinic: Location) -> None:
    ann = PatientFactory.create(home_location=main_clinic)
    dates = {"effective_start": dt.date(2024, 5, 1), "effective_end": dt.date(2024, 4, 30)}

    [batch] = services.coverage_add_many(actor=frontdesk, items=[cover(ann, **dates)])
    with pytest.raises(ValidationError) as caught:
        services.coverage_save(
            actor=frontdesk,
            patient=ann,
            values={"payer_name": "Aetna", "member_id": "W1", "order": 1, **dates},
        )

    assert "effective_end" in refused(batch)
    assert "effective_end" in caught.value.message_dict
    assert not Coverage.objects.exists()


# --- name search in two parts ------------------------------------------------------------------


@pytest.fixture
def jo_people(main_clinic: Location) -> dict[str, Patient]:
    """Three family names and three given names starting with 'jo' (one person has both)."""
    make = PatientFactory.create
    return {
        "jones": make(home_location=main_clinic, family_name="Jones", given_name="Zed"),
        "jordan": make(home_location=main_clinic, family_name="Jordan", given_name="Amy"),
        "joyce": make(home_location=main_clinic, family_name="Joyce", given_name="Jonah"),
        "adams": make(home_location=main_clinic, family_name="Adams", given_name="Josie"),
        "baker": make(home_location=main_clinic, family_name="Baker", given_name="Joan"),
        "other": make(home_location=main_clinic, family_name="Smith", given_name="Anna"),
    }


def names(patients: list[Patient]) -> list[str]:
    return [f"{p.family_name} {p.given_name}" for p in patients]


def test_one_word_lists_family_names_first_then_given_names(
    frontdesk: User, jo_people: dict[str, Patient]
) -> None:
    result = patient_search(user=frontdesk, criteria=SearchCriteria(name="Jo"))

    assert names(result.patients) == [
        "Jones Zed", "Jordan Amy", "Joyce Jonah", "Baker Joan", "Adams Josie"
    ]  # fmt: skip
    assert not result.has_more


def test_pages_run_through_both_parts_without_gaps_or_repeats(
    frontdesk: User, jo_people: dict[str, Patient]
) -> None:
    pages = [
        patient_search(user=frontdesk, criteria=SearchCriteria(name="jo"), page=n, page_size=2)
        for n in (1, 2, 3)
    ]

    assert [names(page.patients) for page in pages] == [
        ["Jones Zed", "Jordan Amy"],
        ["Joyce Jonah", "Baker Joan"],
        ["Adams Josie"],
    ]
    assert [page.has_more for page in pages] == [True, True, False]


def test_a_page_past_the_last_result_is_empty(
    frontdesk: User, jo_people: dict[str, Patient]
) -> None:
    result = patient_search(user=frontdesk, criteria=SearchCriteria(name="jo"), page=4, page_size=2)

    assert result.patients == []
    assert not result.has_more


def test_a_search_takes_a_fixed_number_of_queries(
    frontdesk: User,
    jo_people: dict[str, Patient],
    django_assert_max_num_queries: Callable[[int], Any],
) -> None:
    patient_search(user=frontdesk, criteria=SearchCriteria(name="jo"))

    # two name parts, the alerts of the page, the audit lock + tail + row (and BEGIN/COMMIT)
    with django_assert_max_num_queries(8):
        patient_search(user=frontdesk, criteria=SearchCriteria(name="jo"), page_size=3)


# --- import_fhir: batches and reading processes ------------------------------------------------


def buster_copy(tmp_path: Path, number: int, *, coverage: bool = False) -> str:
    """Buster's bundle as another person: new fullUrl, id and identifiers."""
    text = BUSTER.read_text()
    text = text.replace(BUSTER_FULL_URL_ID, str(uuid.uuid5(uuid.NAMESPACE_URL, f"full-{number}")))
    text = text.replace(BUSTER_ID, str(uuid.uuid5(uuid.NAMESPACE_URL, f"id-{number}")))
    data = json.loads(text)
    data["entry"][0]["resource"]["name"][0]["given"] = [f"Buster{number}"]
    if coverage:
        data["entry"].append(coverage_of(data["entry"][0]["fullUrl"], number))
    target = tmp_path / f"buster_{number}.json"
    target.write_text(json.dumps(data))
    return str(target)


def coverage_of(beneficiary: str, number: int) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'cov-{number}')}",
        "resource": {
            "resourceType": "Coverage",
            "identifier": [{"system": "urn:example:payer", "value": f"POL-{number}"}],
            "status": "active",
            "subscriberId": f"W{number}",
            "beneficiary": {"reference": beneficiary},
            "payor": [{"display": "Aetna"}],
        },
    }


def run(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("import_fhir", *args, "--json", stdout=out, stderr=io.StringIO())
    return dict(json.loads(out.getvalue()))


def test_import_queries_do_not_grow_with_the_patients_of_a_batch(
    main_clinic: Location,
    tmp_path: Path,
    django_assert_max_num_queries: Callable[[int], Any],
) -> None:
    run(buster_copy(tmp_path, 0))  # the service account exists from here on
    few = [buster_copy(tmp_path, n, coverage=True) for n in (1, 2)]
    many = [buster_copy(tmp_path, n, coverage=True) for n in range(3, 13)]

    with django_assert_max_num_queries(40) as few_queries:
        run(*few)
    with django_assert_max_num_queries(40) as many_queries:
        run(*many)

    assert len(many_queries.captured_queries) == len(few_queries.captured_queries)
    assert Patient.objects.count() == 13
    assert Coverage.objects.filter(payer_name="Aetna").count() == 12


def test_a_patient_seen_twice_in_one_run_is_created_once(
    main_clinic: Location, tmp_path: Path
) -> None:
    path = buster_copy(tmp_path, 1)

    report = run(path, path)

    assert (report["patients_created"], report["skipped"]) == (1, 1)
    assert PatientIdentifier.objects.filter(system=SYNTHEA).count() == 1


def test_claims_are_read_only_for_patients_without_a_coverage_resource(
    main_clinic: Location, tmp_path: Path
) -> None:
    # given a broken Claim in a bundle with a Coverage resource, and one in a bundle without
    covered, uncovered = (
        json.loads(Path(buster_copy(tmp_path, n, coverage=n == 1)).read_text()) for n in (1, 2)
    )
    for data in (covered, uncovered):
        claim = next(e for e in data["entry"] if e["resource"]["resourceType"] == "Claim")
        claim["resource"]["billablePeriod"] = {"start": "not a date"}
    (tmp_path / "covered.json").write_text(json.dumps(covered))
    (tmp_path / "uncovered.json").write_text(json.dumps(uncovered))

    # when
    report = run(str(tmp_path / "covered.json"), str(tmp_path / "uncovered.json"))

    # then the unused claim is not read; the used one is reported
    problems = [(Path(e["path"]).name, e["resource"]) for e in report["errors"]]
    assert problems.count(("uncovered.json", "Claim")) == 1
    assert ("covered.json", "Claim") not in problems
    assert report["patients_created"] == 2
    assert not Coverage.objects.filter(payer_name="private", patient__given_name="Buster1")


def test_government_identifiers_are_neither_kept_nor_validated_but_others_are(
    main_clinic: Location, tmp_path: Path
) -> None:
    # given one bundle whose SSN identifier is malformed (it is left out anyway), and one whose
    # medical record number identifier is malformed (it would be kept)
    left_out, kept = (json.loads(Path(buster_copy(tmp_path, n)).read_text()) for n in (1, 2))
    for data, code in ((left_out, "SS"), (kept, "MR")):
        identifiers = data["entry"][0]["resource"]["identifier"]
        target = next(
            i for i in identifiers if i.get("type", {}).get("coding", [{}])[0].get("code") == code
        )
        target["period"] = {"start": "not a date"}
    (tmp_path / "left_out.json").write_text(json.dumps(left_out))
    (tmp_path / "kept.json").write_text(json.dumps(kept))

    # when
    report = run(str(tmp_path / "left_out.json"), str(tmp_path / "kept.json"))

    # then
    errors = [e for e in report["errors"] if e["level"] == "error"]
    assert [(Path(e["path"]).name, e["resource"]) for e in errors] == [("kept.json", "Patient")]
    assert "identifier" in errors[0]["reason"]
    assert report["patients_created"] == 1
    assert not PatientIdentifier.objects.filter(value__startswith="999-")


def test_reading_in_another_process_gives_the_same_import(
    main_clinic: Location, tmp_path: Path
) -> None:
    broken = json.loads(Path(buster_copy(tmp_path, 9)).read_text())
    broken["entry"][0]["resource"]["birthDate"] = "1988-13-45"
    broken["entry"].insert(1, {"resource": {"resourceType": "Foo"}})
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    paths = [
        *(buster_copy(tmp_path, n, coverage=n % 2 == 0) for n in range(6)),
        str(tmp_path / "broken.json"),
        str(tmp_path / "missing.json"),
    ]

    with transaction.atomic():
        in_readers = run(*paths, "--readers", "2")
        rows = sorted(Patient.objects.values_list("family_name", "given_name", "birth_date"))
        transaction.set_rollback(True)
    here = run(*paths, "--readers", "0")

    assert in_readers == here
    assert rows == sorted(Patient.objects.values_list("family_name", "given_name", "birth_date"))
    assert here["patients_created"] == 6
    assert verify_chain(iter_rows()).intact
