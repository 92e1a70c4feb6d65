"""manage.py import_fhir: the Synthea sample bundles, broken entries, bad files, re-runs."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from patients.importers import SERVICE_USERNAME
from patients.models import Coverage, Patient, PatientIdentifier
from patients.tests.factories import PatientFactory

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
BUSTER = FIXTURES / "synthea_r4_Buster_Hoeger.json"
CLEMENTE = FIXTURES / "synthea_r4_Clemente_Kreiger.json"
SYNTHEA = "https://github.com/synthetichealth/synthea"
BUSTER_ID = "ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423"


def run(*args: str) -> tuple[dict[str, Any], str]:
    """Run the command with --json; returns the report and what went to stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("import_fhir", *args, "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def bundle(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def write(tmp_path: Path, name: str, data: Any) -> str:
    target = tmp_path / name
    target.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(target)


def errors_of(report: dict[str, Any], level: str = "error") -> list[dict[str, Any]]:
    return [e for e in report["errors"] if e["level"] == level]


# ---- the sample bundles ------------------------------------------------------------------


def test_imports_both_synthea_patients_with_their_coverages(main_clinic: Location) -> None:
    report, _ = run(str(BUSTER), str(CLEMENTE))

    assert {k: report[k] for k in report if k != "errors"} == {
        "patients_created": 2,
        "patients_updated": 0,
        "coverages": 2,
        "skipped": 0,
    }
    assert errors_of(report) == []
    buster = Patient.objects.get(identifiers__system=SYNTHEA, identifiers__value=BUSTER_ID)
    assert (buster.family_name, buster.given_name, str(buster.birth_date)) == (
        "Hoeger", "Buster", "1988-03-16"
    )  # fmt: skip
    assert (buster.sex_at_birth, buster.home_location) == ("M", main_clinic)
    assert (buster.address_line1, buster.city, buster.state, buster.postal_code) == (
        "535 Howe Neck Apt 38", "Amherst", "MA", "01002"
    )  # fmt: skip
    assert buster.preferred_language == "English"
    clemente = Patient.objects.get(family_name="Kreiger")
    assert clemente.preferred_language == "Chinese"


def test_government_identifiers_are_not_kept(main_clinic: Location) -> None:
    run(str(BUSTER))

    systems = set(PatientIdentifier.objects.values_list("system", flat=True))
    assert systems == {SYNTHEA, "http://hospital.smarthealthit.org", "urn:patientdesk:mrn"}
    assert not PatientIdentifier.objects.filter(value="999-59-2277").exists()


def test_synthea_555_phone_numbers_are_left_out_with_a_warning(main_clinic: Location) -> None:
    report, _ = run(str(BUSTER))

    [warning] = errors_of(report, "warning")
    assert (warning["path"], warning["entry"], warning["resource"]) == (str(BUSTER), 0, "Patient")
    assert "telecom[0]" in warning["reason"]
    assert "555" not in warning["reason"]  # the report carries no values
    assert Patient.objects.get().phone_home == ""


def test_coverage_is_derived_from_the_claims_payer(main_clinic: Location) -> None:
    run(str(BUSTER))

    coverage = Coverage.objects.get()
    assert (coverage.payer_name, coverage.member_id, coverage.relationship) == (
        "private", BUSTER_ID, "self"
    )  # fmt: skip
    # first claim 1994-09-02; last ExplanationOfBenefit billing period ends 2020-12-17
    assert (str(coverage.effective_start), str(coverage.effective_end)) == (
        "1994-09-02", "2020-12-17"
    )  # fmt: skip
    assert coverage.is_active is False
    assert coverage.source_identifier == f"claims|{SYNTHEA}|{BUSTER_ID}|private"


def test_second_run_changes_nothing(main_clinic: Location) -> None:
    # given
    run(str(BUSTER), str(CLEMENTE))
    patients = list(Patient.objects.values())
    coverages = list(Coverage.objects.values())
    write_events = ["patient.import", "patient.import_update", "coverage.add", "coverage.update"]
    writes = AuditEvent.objects.filter(event__in=write_events).count()

    # when
    report, _ = run(str(BUSTER), str(CLEMENTE))

    # then
    assert {k: report[k] for k in report if k != "errors"} == {
        "patients_created": 0,
        "patients_updated": 0,
        "coverages": 0,
        "skipped": 2,
    }
    assert list(Patient.objects.values()) == patients
    assert list(Coverage.objects.values()) == coverages
    assert AuditEvent.objects.filter(event__in=write_events).count() == writes


def test_changed_resource_updates_the_patient(main_clinic: Location, tmp_path: Path) -> None:
    # given an imported patient who then moves
    run(str(BUSTER))
    moved = bundle(BUSTER)
    moved["entry"][0]["resource"]["address"][0]["city"] = "Springfield"

    # when
    report, _ = run(write(tmp_path, "moved.json", moved))

    # then
    assert (report["patients_created"], report["patients_updated"]) == (0, 1)
    assert Patient.objects.get().city == "Springfield"
    event = AuditEvent.objects.filter(event="patient.import_update").get()
    assert event.fields == ["city"]


def test_fields_the_resource_does_not_carry_are_kept(main_clinic: Location) -> None:
    # given a record completed at the desk after a first import
    run(str(BUSTER))
    Patient.objects.update(guarantor_name="Faith Hoeger", email="buster@example.org")

    # when
    run(str(BUSTER))

    # then
    patient = Patient.objects.get()
    assert (patient.guarantor_name, patient.email) == ("Faith Hoeger", "buster@example.org")


def test_every_write_is_audited_as_the_service_account(main_clinic: Location) -> None:
    run(str(BUSTER))

    patient = Patient.objects.get()
    events = AuditEvent.objects.filter(patient_public_id=patient.public_id)
    assert {e.event for e in events} == {"patient.import", "coverage.add"}
    assert {e.username for e in events} == {SERVICE_USERNAME}
    run_event = AuditEvent.objects.get(event="patient.import_run")
    assert "created 1" in run_event.reason
    assert "Hoeger" not in run_event.reason


def test_service_account_is_created_once_and_cannot_sign_in(
    main_clinic: Location, riverside: Location
) -> None:
    run(str(BUSTER))
    run(str(BUSTER))

    account = User.objects.get(username=SERVICE_USERNAME)
    assert not account.has_usable_password()
    assert account.role_slugs == "medical_office_admin"
    assert set(account.locations.all()) == {main_clinic, riverside}
    assert AuditEvent.objects.filter(event="user.create").count() == 1


def test_progress_is_shown_on_stderr(main_clinic: Location) -> None:
    _, stderr = run(str(BUSTER), str(CLEMENTE))

    assert "import_fhir" in stderr
    assert "2/2" in stderr


def test_json_output_has_exactly_the_documented_keys(main_clinic: Location) -> None:
    out = io.StringIO()
    call_command("import_fhir", str(BUSTER), "--json", stdout=out, stderr=io.StringIO())

    assert list(json.loads(out.getvalue())) == [
        "patients_created", "patients_updated", "coverages", "skipped", "errors"
    ]  # fmt: skip


def test_summary_without_json_is_readable(main_clinic: Location) -> None:
    out = io.StringIO()
    call_command("import_fhir", str(BUSTER), stdout=out, stderr=io.StringIO())

    assert "Patients created: 1" in out.getvalue()
    assert "warning:" in out.getvalue()


# ---- bad entries and bad files -----------------------------------------------------------


@pytest.fixture
def broken(tmp_path: Path) -> str:
    """Buster's bundle with a bad birth date, Clemente's patient without a name, and an entry of
    an unknown resource type."""
    data = bundle(BUSTER)
    clemente = copy.deepcopy(bundle(CLEMENTE)["entry"][0])
    del clemente["resource"]["name"]
    data["entry"][0]["resource"]["birthDate"] = "1988-13-45"
    data["entry"].insert(1, clemente)
    data["entry"].insert(2, {"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Foo"}})
    data["entry"].insert(3, {"request": {"method": "POST", "url": "Patient"}})
    return write(tmp_path, "broken.json", data)


def test_bad_entries_are_reported_by_index_and_reason(main_clinic: Location, broken: str) -> None:
    report, _ = run(broken, str(CLEMENTE))

    problems = {(e["path"], e["entry"]): e for e in errors_of(report)}
    assert set(problems) >= {(broken, 0), (broken, 1), (broken, 2), (broken, 3)}
    assert "birthDate" in problems[(broken, 0)]["reason"]
    assert problems[(broken, 1)]["reason"].startswith("name:")
    assert problems[(broken, 2)]["reason"] == "unknown resource type 'Foo'"
    assert problems[(broken, 3)]["reason"] == "the entry has no resource"
    # the rest goes on: Clemente's own bundle imports
    assert report["patients_created"] == 1
    assert Patient.objects.get().family_name == "Kreiger"


def test_coverage_of_a_patient_that_failed_is_reported_not_written(
    main_clinic: Location, broken: str
) -> None:
    report, _ = run(broken)

    assert not Coverage.objects.exists()
    assert report["coverages"] == 0


def test_record_refused_by_the_services_is_not_half_saved(
    main_clinic: Location, tmp_path: Path
) -> None:
    # given a birth date FHIR accepts but patientdesk refuses (in the future)
    data = bundle(BUSTER)
    data["entry"][0]["resource"]["birthDate"] = "2999-01-01"

    # when
    report, _ = run(write(tmp_path, "future.json", data), str(CLEMENTE))

    # then
    [error] = [e for e in errors_of(report) if e["entry"] == 0 and "future" in e["path"]]
    assert error["reason"].startswith("birth_date:")
    assert not PatientIdentifier.objects.filter(value=BUSTER_ID).exists()
    assert list(Patient.objects.values_list("family_name", flat=True)) == ["Kreiger"]


def test_bad_files_are_reported_and_the_rest_go_on(main_clinic: Location, tmp_path: Path) -> None:
    not_json = write(tmp_path, "notes.json", "this is not JSON {")
    not_bundle = write(tmp_path, "patient.json", {"resourceType": "Patient", "id": "1"})
    a_list = write(tmp_path, "list.json", [1, 2])
    bad_envelope = write(tmp_path, "envelope.json", {"resourceType": "Bundle", "total": "many"})
    missing = str(tmp_path / "missing.json")

    report, _ = run(not_json, not_bundle, a_list, bad_envelope, missing, str(BUSTER))

    reasons = {e["path"]: e["reason"] for e in errors_of(report)}
    assert reasons[not_json].startswith("not JSON (line 1")
    assert reasons[not_bundle] == "not a FHIR Bundle (resourceType is 'Patient')"
    assert reasons[a_list] == "not a FHIR Bundle (resourceType is 'list')"
    assert reasons[bad_envelope].startswith("the Bundle is not valid FHIR")
    assert reasons[missing] == "file not found"
    assert report["patients_created"] == 1


def test_exit_code_is_non_zero_only_when_nothing_could_be_read(
    main_clinic: Location, tmp_path: Path
) -> None:
    not_json = write(tmp_path, "notes.json", "nope")
    out = io.StringIO()

    with pytest.raises(CommandError, match="No file could be read"):
        call_command("import_fhir", not_json, "--json", stdout=out, stderr=io.StringIO())

    assert json.loads(out.getvalue())["errors"][0]["reason"].startswith("not JSON")


# ---- Coverage resources, identifiers, duplicates -----------------------------------------


def coverage_entry(**changes: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Coverage",
        "id": "cov-1",
        "identifier": [{"system": "urn:example:payer", "value": "POL-77"}],
        "status": "active",
        "subscriberId": "W777",
        "beneficiary": {"reference": "urn:uuid:e4531916-b162-4f4b-90c2-ce37e132b8d4"},
        "relationship": {"coding": [{"code": "spouse"}]},
        "period": {"start": "2024-01-01"},
        "payor": [{"display": "Aetna", "identifier": {"value": "60054"}}],
        "class": [
            {"type": {"coding": [{"code": "group"}]}, "value": "G-9"},
            {"type": {"coding": [{"code": "plan"}]}, "value": "PPO", "name": "Aetna PPO"},
        ],
        "order": 2,
    }
    resource.update(changes)
    return {"fullUrl": "urn:uuid:cov-1", "resource": resource}


def test_coverage_resources_are_imported_and_idempotent(
    main_clinic: Location, tmp_path: Path
) -> None:
    data = bundle(BUSTER)
    data["entry"].append(coverage_entry())
    path = write(tmp_path, "with_coverage.json", data)

    first, _ = run(path)
    second, _ = run(path)

    assert (first["coverages"], second["coverages"]) == (1, 0)
    coverage = Coverage.objects.get()  # none derived from claims: the bundle has a Coverage
    assert (coverage.payer_name, coverage.payer_identifier, coverage.member_id) == (
        "Aetna", "60054", "W777"
    )  # fmt: skip
    assert (coverage.group_number, coverage.plan_name, coverage.order) == ("G-9", "Aetna PPO", 2)
    assert (coverage.relationship, str(coverage.effective_start)) == ("spouse", "2024-01-01")
    assert coverage.source_identifier == "urn:example:payer|POL-77"


def test_coverage_with_an_unknown_beneficiary_is_reported(
    main_clinic: Location, tmp_path: Path
) -> None:
    data = bundle(BUSTER)
    data["entry"].append(coverage_entry(beneficiary={"reference": "Patient/elsewhere"}))

    report, _ = run(write(tmp_path, "orphan.json", data))

    [error] = [e for e in errors_of(report) if e["resource"] == "Coverage"]
    assert error["entry"] == len(data["entry"]) - 1
    assert "beneficiary" in error["reason"]


def test_patient_matched_by_its_patientdesk_mrn_is_updated(
    main_clinic: Location, tmp_path: Path
) -> None:
    # given a patient exported from patientdesk and re-imported with a corrected name
    existing = PatientFactory(home_location=main_clinic, family_name="Hoger", given_name="Buster")
    data = bundle(BUSTER)
    data["entry"][0]["resource"]["identifier"] = [
        {"system": "urn:patientdesk:mrn", "value": existing.mrn}
    ]

    # when
    report, _ = run(write(tmp_path, "export.json", data))

    # then
    assert (report["patients_created"], report["patients_updated"]) == (0, 1)
    existing.refresh_from_db()
    assert existing.family_name == "Hoeger"


def test_patient_without_identifier_is_matched_by_its_fullurl(
    main_clinic: Location, tmp_path: Path
) -> None:
    data = bundle(BUSTER)
    del data["entry"][0]["resource"]["identifier"]
    path = write(tmp_path, "anonymous.json", data)

    first, _ = run(path)
    second, _ = run(path)

    assert (first["patients_created"], second["skipped"]) == (1, 1)
    assert PatientIdentifier.objects.filter(
        system="urn:ietf:rfc:3986", value="urn:uuid:e4531916-b162-4f4b-90c2-ce37e132b8d4"
    ).exists()


def test_warns_about_likely_duplicates_when_asked(main_clinic: Location) -> None:
    existing = PatientFactory(
        home_location=main_clinic,
        family_name="Hoeger",
        given_name="Buster",
        birth_date="1988-03-16",
    )

    report, _ = run(str(BUSTER), "--warn-duplicates")

    warnings = [e["reason"] for e in errors_of(report, "warning")]
    assert any(f"possible duplicate of MRN {existing.mrn}" in w for w in warnings)
    assert report["patients_created"] == 1


# ---- who and where -----------------------------------------------------------------------


def test_location_option_sets_the_home_location(main_clinic: Location, riverside: Location) -> None:
    run(str(BUSTER), "--location", "riverside")

    assert Patient.objects.get().home_location == riverside


def test_unknown_location_is_refused(main_clinic: Location) -> None:
    with pytest.raises(CommandError, match="No active location with code 'nowhere'"):
        run(str(BUSTER), "--location", "nowhere")


def test_no_location_at_all_is_refused(db: None) -> None:
    with pytest.raises(CommandError, match="There is no active location"):
        run(str(BUSTER))


def test_imports_as_a_named_user_with_the_capability(persona: Callable[[str], User]) -> None:
    persona("officeadmin")

    run(str(BUSTER), "--user", "officeadmin")

    event = AuditEvent.objects.get(event="patient.import")
    assert event.username == "officeadmin"
    assert not User.objects.filter(username=SERVICE_USERNAME).exists()


def test_user_without_the_import_capability_is_refused(persona: Callable[[str], User]) -> None:
    persona("frontdesk")

    with pytest.raises(CommandError, match="do not allow importing"):
        run(str(BUSTER), "--user", "frontdesk")
    assert not Patient.objects.exists()


def test_user_must_work_at_the_location(persona: Callable[[str], User]) -> None:
    persona("officeadmin")

    with pytest.raises(CommandError, match="does not work at riverside"):
        run(str(BUSTER), "--user", "officeadmin", "--location", "riverside")


def test_unknown_user_is_refused(main_clinic: Location) -> None:
    with pytest.raises(CommandError, match="No active user 'ghost'"):
        run(str(BUSTER), "--user", "ghost")
