from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from audit.models import AuditEvent
from core import demo
from core.models import Location
from core.text import fold
from patients.models import US_STATES, Coverage, Patient, PatientFlag, PatientIdentifier
from patients.mrn import is_valid_mrn
from patients.selectors import SearchCriteria, patient_search
from patients.validators import normalize_phone
from scheduling.models import Practitioner
from scheduling.validators import is_valid_npi

pytestmark = pytest.mark.django_db

EXPECTED_ROLES = {
    "frontdesk": ("patient_service_rep", {"main"}),
    "officeadmin": ("medical_office_admin", {"main"}),
    "officemanager": ("medical_office_manager", {"main", "riverside"}),
    "billing": ("billing_specialist", {"main", "riverside"}),
    "psmanager": ("patient_services_manager", {"main", "riverside"}),
    "servicedirector": ("service_director", {"main", "riverside"}),
    "meddirector": ("medical_director", {"main", "riverside"}),
    "privacy": ("privacy_officer", {"main", "riverside"}),
    "sysadmin": ("system_admin", {"main", "riverside"}),
}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, "--verbosity", "0", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "locations": Location.objects.count(),
        "practitioners": Practitioner.objects.count(),
        "users": User.objects.count(),
        "patients": Patient.objects.count(),
        "coverages": Coverage.objects.count(),
        "flags": PatientFlag.objects.count(),
        "identifiers": PatientIdentifier.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def assert_patients_are_complete() -> None:
    """Invariants every seeded patient meets, whichever path created it."""
    for patient in Patient.objects.prefetch_related("identifiers"):
        assert is_valid_mrn(patient.mrn)
        assert [(i.system, i.value) for i in patient.identifiers.all()] == [
            (PatientIdentifier.MRN_SYSTEM, patient.mrn)
        ]
        assert patient.family_fold == fold(patient.family_name)
        assert patient.given_fold == fold(patient.given_name)
        assert patient.phone_mobile_digits == patient.phone_mobile.lstrip("+")
        assert patient.home_location.code in {"main", "riverside"}
    for coverage in Coverage.objects.all():
        assert coverage.member_id_fold == fold(coverage.member_id)
        assert coverage.payer_name
    assert Patient.objects.filter(coverages__isnull=False).distinct().count() > 0


def test_creates_one_user_per_role_at_the_right_locations() -> None:
    # when
    seed("--patients", "0")
    # then
    for username, (role, locations) in EXPECTED_ROLES.items():
        user = User.objects.get(username=username)
        assert user.role_slugs == role
        assert {loc.code for loc in user.locations.all()} == locations
        assert user.check_password(demo.DEMO_PASSWORD)
        assert user.is_active


def test_demo_password_passes_the_configured_password_validators() -> None:
    seed("--patients", "0")
    assert len(demo.DEMO_PASSWORD) >= 12
    for username in EXPECTED_ROLES:
        validate_password(demo.DEMO_PASSWORD, User.objects.get(username=username))


def test_loader_account_registers_patients_but_cannot_sign_in() -> None:
    seed("--patients", "0")
    loader = User.objects.get(username=demo.LOADER_USERNAME)
    assert not loader.has_usable_password()
    assert loader.role_slugs == demo.LOADER_ROLE
    assert {loc.code for loc in loader.locations.all()} == {"main", "riverside"}


def test_creates_two_locations_and_twelve_practitioners_with_valid_npis() -> None:
    seed("--patients", "0")
    main = Location.objects.get(code="main")
    riverside = Location.objects.get(code="riverside")
    assert main.name == "Main Street Clinic"
    assert main.time_zone == "America/New_York"
    assert riverside.name == "Riverside Hospital Outpatient"
    practitioners = list(Practitioner.objects.prefetch_related("locations"))
    assert len(practitioners) == 12
    assert all(is_valid_npi(p.npi) for p in practitioners)
    assert main.practitioners.exists()
    assert riverside.practitioners.exists()


def test_seeding_a_small_clinic_registers_patients_through_the_services() -> None:
    # when
    output = seed("--patients", "30")
    # then
    assert "30 created through the patient services" in output
    assert Patient.objects.count() == 30
    assert_patients_are_complete()
    loader = User.objects.get(username=demo.LOADER_USERNAME)
    events = AuditEvent.objects.filter(user=loader)
    assert events.filter(event="patient.register").count() == 30
    assert events.filter(event="coverage.add").count() == Coverage.objects.count()
    assert events.filter(event="flag.add").count() == PatientFlag.objects.count()
    assert not AuditEvent.objects.filter(event="patient.bulk_seed").exists()


def test_running_twice_creates_nothing_new() -> None:
    # given
    seed("--patients", "30")
    before = counts()
    # when
    output = seed("--patients", "30")
    # then
    assert counts() == before
    assert "Patients: 0 created" in output


def test_tops_patients_up_to_the_requested_number() -> None:
    # given
    seed("--patients", "10")
    # when
    seed("--patients", "25")
    # then
    assert Patient.objects.count() == 25
    assert len(set(Patient.objects.values_list("mrn", flat=True))) == 25


def test_if_empty_does_nothing_once_demo_users_exist() -> None:
    # given
    seed("--patients", "5")
    before = counts()
    # when
    output = seed("--patients", "50", "--if-empty")
    # then
    assert "already loaded" in output
    assert counts() == before


def test_if_empty_seeds_an_empty_database() -> None:
    seed("--patients", "5", "--if-empty")
    assert User.objects.filter(username__in=demo.DEMO_USERNAMES).count() == 9
    assert Patient.objects.count() == 5


def test_rejects_a_negative_patient_count() -> None:
    with pytest.raises(CommandError, match="--patients"):
        seed("--patients", "-1")


def test_bulk_path_gives_the_same_invariants_with_one_audit_event_per_batch() -> None:
    # when
    report = demo.seed_demo(patients=30, bulk_above=0, batch_size=12)
    # then
    assert report.path == "bulk"
    assert report.patients_created == 30
    assert Patient.objects.count() == 30
    assert_patients_are_complete()
    batches = list(AuditEvent.objects.filter(event="patient.bulk_seed").order_by("sequence"))
    assert len(batches) == 3  # 12 + 12 + 6
    assert not AuditEvent.objects.filter(event="patient.register").exists()
    assert all(event.username == demo.LOADER_USERNAME for event in batches)


def test_bulk_audit_events_name_fields_but_carry_no_values() -> None:
    demo.seed_demo(patients=10, bulk_above=0)
    event = AuditEvent.objects.get(event="patient.bulk_seed")
    assert "family_name" in event.fields
    assert "birth_date" in event.fields
    recorded = " ".join([*event.fields, event.reason, event.object_id])
    for patient in Patient.objects.all():
        assert patient.family_name not in recorded
        assert patient.birth_date.isoformat() not in recorded
        assert patient.phone_mobile not in recorded


def test_bulk_command_option_forces_the_bulk_path() -> None:
    output = seed("--patients", "8", "--bulk-above", "0")
    assert "8 created in bulk" in output
    assert AuditEvent.objects.filter(event="patient.bulk_seed").count() == 1


def test_bulk_seeded_patients_are_found_by_every_search_criterion() -> None:
    # given
    demo.seed_demo(patients=20, bulk_above=0)
    officemanager = User.objects.get(username="officemanager")
    patient = Patient.objects.filter(coverages__isnull=False).first()
    assert patient is not None
    coverage = patient.coverages.first()
    assert coverage is not None
    criteria = [
        SearchCriteria(name=patient.family_name[:3].lower()),
        SearchCriteria(name=f"{patient.family_name}, {patient.given_name}"),
        SearchCriteria(birth_date=patient.birth_date),
        SearchCriteria(mrn=patient.mrn),
        SearchCriteria(phone=patient.phone_mobile),
        SearchCriteria(member_id=coverage.member_id.lower()),
    ]
    for criterion in criteria:
        # when
        result = patient_search(user=officemanager, criteria=criterion, page_size=50)
        # then
        assert patient in result.patients, criterion


def test_services_and_bulk_paths_create_the_same_people_for_the_same_seed() -> None:
    # given
    demo.seed_demo(patients=12, seed=5)
    by_services = list(Patient.objects.order_by("mrn").values_list("family_name", "given_name"))
    Patient.objects.all().delete()
    # when
    demo.seed_demo(patients=12, seed=5, bulk_above=0)
    # then
    by_bulk = list(Patient.objects.order_by("mrn").values_list("family_name", "given_name"))
    assert by_bulk == by_services


def test_generated_people_are_reproducible_from_seed_and_index() -> None:
    assert demo.demo_patient(7, seed=3) == demo.demo_patient(7, seed=3)
    assert demo.demo_patient(7, seed=3).values != demo.demo_patient(7, seed=4).values
    assert demo.demo_patient(7, seed=3).values != demo.demo_patient(8, seed=3).values


def test_generated_people_pass_the_patient_field_rules() -> None:
    states = {code for code, _ in US_STATES}
    location = Location(code="main", name="Main")
    for index in range(300):
        person = demo.demo_patient(index)
        values = person.values
        Patient(mrn="10000007", home_location=location, **values).full_clean(
            exclude=["home_location", "family_fold", "given_fold"], validate_unique=False
        )
        for name in ("phone_mobile", "phone_home", "emergency_contact_phone", "guarantor_phone"):
            assert normalize_phone(values[name]) == values[name]
            assert values[name] == "" or values[name][5:8] == "555"
        assert values["state"] in states
        assert re.fullmatch(r"\d{5}(-\d{4})?", values["postal_code"])
        assert values["email"] == "" or values["email"].endswith("@example.org")
        for coverage in person.coverages:
            assert coverage["effective_start"] >= values["birth_date"]


def test_generated_population_has_the_intended_mix() -> None:
    people = [demo.demo_patient(index) for index in range(3000)]

    def share(predicate: object) -> float:
        return sum(1 for p in people if predicate(p)) / len(people)  # type: ignore[operator]

    assert 0.05 <= share(lambda p: p.values["preferred_language"] != "English") <= 0.11
    assert 0.03 <= share(lambda p: p.values["interpreter_needed"]) <= 0.09
    assert 0.07 <= share(lambda p: p.flags) <= 0.14
    assert 0.02 <= share(lambda p: not p.coverages) <= 0.08
    assert 0.10 <= share(lambda p: len(p.coverages) == 2) <= 0.20
    assert share(lambda p: p.home_location == "riverside") > 0.25
    names = {p.values["family_name"] for p in people}
    assert any("-" in name for name in names)
    assert any(fold(name) != name.lower() and name.isalpha() for name in names)  # accented
    payers = {c["payer_name"] for p in people for c in p.coverages}
    assert payers >= {
        "Medicare",
        "Medicaid",
        "Aetna",
        "Blue Cross Blue Shield",
        "UnitedHealthcare",
        "Cigna",
        "Humana",
    }
