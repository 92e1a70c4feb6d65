from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from patients import services
from patients.models import Coverage, Patient, PatientFlag, PatientIdentifier
from patients.mrn import is_valid_mrn
from patients.tests.factories import CoverageFactory, PatientFactory, PatientFlagFactory

pytestmark = pytest.mark.django_db

DOB = dt.date(1980, 4, 12)


def values(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "family_name": "Smith",
        "given_name": "Joanna",
        "birth_date": DOB,
        "sex_at_birth": "F",
        "phone_mobile": "(617) 555-0142",
    }
    base.update(changes)
    return base


def register(user: User, location: Location, **changes: object) -> Patient:
    return services.patient_register(actor=user, home_location=location, values=values(**changes))


# --- Registration -----------------------------------------------------------------------------


def test_registration_assigns_a_valid_mrn_and_records_it_as_an_identifier(
    frontdesk: User, main_clinic: Location
) -> None:
    patient = register(frontdesk, main_clinic)

    assert is_valid_mrn(patient.mrn)
    assert patient.phone_mobile == "+16175550142"
    assert PatientIdentifier.objects.filter(
        patient=patient, system=PatientIdentifier.MRN_SYSTEM, value=patient.mrn
    ).exists()
    event = AuditEvent.objects.get(event="patient.register")
    assert event.patient_public_id == patient.public_id
    assert "family_name" in event.fields
    assert "Smith" not in str(event.fields) + event.reason


def test_two_registrations_get_different_mrns(frontdesk: User, main_clinic: Location) -> None:
    first = register(frontdesk, main_clinic)
    second = register(
        frontdesk, main_clinic, family_name="Jones", given_name="Peter", phone_mobile=""
    )

    assert first.mrn != second.mrn


def test_refuses_registration_at_a_location_that_is_not_the_users(
    frontdesk: User, riverside: Location
) -> None:
    with pytest.raises(ValidationError) as caught:
        register(frontdesk, riverside)

    assert "home_location" in caught.value.message_dict


def test_refuses_registration_without_the_capability(
    persona: Callable[[str], User], main_clinic: Location
) -> None:
    billing = persona("billing")

    with pytest.raises(PermissionDenied):
        register(billing, main_clinic)


def test_register_with_details_saves_patient_coverage_and_alerts_together(
    frontdesk: User, main_clinic: Location
) -> None:
    patient = services.patient_register_with_details(
        actor=frontdesk,
        home_location=main_clinic,
        values=values(),
        coverage_values={"payer_name": "Aetna", "member_id": "W123456789", "order": 1},
        flags=[("fall_risk", "warning", ""), ("allergy", "critical", "latex")],
    )

    assert patient.coverages.get().member_id == "W123456789"
    assert sorted(patient.flags.values_list("kind", flat=True)) == ["allergy", "fall_risk"]


def test_register_with_details_saves_nothing_when_the_coverage_is_invalid(
    frontdesk: User, main_clinic: Location
) -> None:
    with pytest.raises(ValidationError) as caught:
        services.patient_register_with_details(
            actor=frontdesk,
            home_location=main_clinic,
            values=values(),
            coverage_values={"payer_name": "Aetna", "member_id": ""},
        )

    assert "coverage_member_id" in caught.value.message_dict
    assert not Patient.objects.exists()
    assert not AuditEvent.objects.filter(event="patient.register").exists()


def test_register_with_details_saves_nothing_when_an_alert_is_invalid(
    frontdesk: User, main_clinic: Location
) -> None:
    with pytest.raises(ValidationError) as caught:
        services.patient_register_with_details(
            actor=frontdesk,
            home_location=main_clinic,
            values=values(),
            flags=[("no-such-kind", "warning", "")],
        )

    assert "alerts" in caught.value.message_dict
    assert not Patient.objects.exists()


# --- Duplicate detection ----------------------------------------------------------------------


@pytest.fixture
def joanna(main_clinic: Location) -> Patient:
    return PatientFactory.create(
        home_location=main_clinic,
        family_name="Smith",
        given_name="Joanna",
        birth_date=DOB,
        phone_mobile="+16175550142",
        email="jo.smith@example.org",
    )


def candidates(**changes: object) -> list[Patient]:
    v = {"family_name": "Smyth", "given_name": "Joanna", "birth_date": DOB}
    v.update(changes)
    return services.duplicate_candidates(**v)


def test_same_birth_date_and_similar_name_is_a_duplicate(joanna: Patient) -> None:
    assert candidates() == [joanna]


def test_swapped_given_and_family_names_are_a_duplicate(joanna: Patient) -> None:
    assert candidates(family_name="Joanna", given_name="Smith") == [joanna]


def test_same_phone_is_a_duplicate_even_with_another_name_and_birth_date(joanna: Patient) -> None:
    found = candidates(
        family_name="Brown",
        given_name="Alex",
        birth_date=dt.date(1999, 1, 1),
        phone_mobile="+16175550142",
    )
    assert found == [joanna]


def test_same_email_is_a_duplicate_whatever_its_case(joanna: Patient) -> None:
    found = candidates(
        family_name="Brown",
        given_name="Alex",
        birth_date=dt.date(1999, 1, 1),
        email="Jo.Smith@Example.org",
    )
    assert found == [joanna]


def test_different_birth_date_and_different_name_is_not_a_duplicate(joanna: Patient) -> None:
    assert candidates(family_name="Brown", given_name="Alex", birth_date=dt.date(1999, 1, 1)) == []


def test_same_birth_date_with_an_unrelated_name_is_not_a_duplicate(joanna: Patient) -> None:
    assert candidates(family_name="Okonkwo", given_name="Chidi") == []


def test_merged_away_records_are_not_offered_as_duplicates(joanna: Patient) -> None:
    survivor = PatientFactory.create(home_location=joanna.home_location)
    Patient.objects.filter(pk=joanna.pk).update(merged_into=survivor, is_active=False)

    assert candidates() == []


def test_registration_stops_at_a_likely_duplicate_until_confirmed(
    frontdesk: User, main_clinic: Location, joanna: Patient
) -> None:
    with pytest.raises(services.DuplicateCandidatesFound) as caught:
        register(frontdesk, main_clinic, family_name="Smyth", phone_mobile="")
    assert caught.value.candidates == [joanna]
    assert Patient.objects.count() == 1

    patient = services.patient_register(
        actor=frontdesk,
        home_location=main_clinic,
        values=values(family_name="Smyth", phone_mobile=""),
        confirm_not_duplicate=True,
    )

    assert Patient.objects.count() == 2
    event = AuditEvent.objects.get(event="patient.register", patient_public_id=patient.public_id)
    assert event.reason == "confirmed not a duplicate"


# --- Updates, coverages and alerts ------------------------------------------------------------


def test_update_audits_only_the_names_of_changed_fields(
    frontdesk: User, main_clinic: Location
) -> None:
    patient = register(frontdesk, main_clinic)

    services.patient_update(
        actor=frontdesk, patient=patient, values=values(city="Boston", given_name="Joanna")
    )

    event = AuditEvent.objects.get(event="patient.update")
    assert event.fields == ["city"]
    assert "Boston" not in event.reason


def test_identifiers_add_gives_only_the_new_ones_and_audits_their_systems(
    frontdesk: User, main_clinic: Location
) -> None:
    patient = register(frontdesk, main_clinic)
    lab = ("urn:oid:2.16.840.1.113883.19.5", "L-1")
    added = services.patient_identifiers_add(
        actor=frontdesk, patient=patient, identifiers=[lab, lab, (" urn:x ", " X9 ")]
    )
    assert added == [lab, ("urn:x", "X9")]
    assert (
        services.patient_identifiers_add(actor=frontdesk, patient=patient, identifiers=[lab]) == []
    )
    event = AuditEvent.objects.get(event="patient.identifiers_add")
    assert event.fields == [f"identifier:{lab[0]}", "identifier:urn:x"]
    assert "L-1" not in str(event.fields) + event.reason


def test_identifiers_add_refuses_another_patients_identifier_and_our_mrns(
    frontdesk: User, main_clinic: Location, persona: Callable[[str], User]
) -> None:
    patient = register(frontdesk, main_clinic)
    other = register(frontdesk, main_clinic, family_name="Jones", phone_mobile="")
    services.patient_identifiers_add(actor=frontdesk, patient=other, identifiers=[("urn:x", "1")])
    with pytest.raises(ValidationError) as caught:
        services.patient_identifiers_add(
            actor=frontdesk, patient=patient, identifiers=[("urn:y", "2"), ("urn:x", "1")]
        )
    assert caught.value.message_dict["identifiers"] == [
        "an identifier of system urn:x belongs to another patient; merge the two records first."
    ]
    assert not PatientIdentifier.objects.filter(system="urn:y").exists()  # nothing half-added
    with pytest.raises(ValidationError, match="MRNs are assigned"):
        services.patient_identifiers_add(
            actor=frontdesk,
            patient=patient,
            identifiers=[(PatientIdentifier.MRN_SYSTEM, "M000")],
        )
    with pytest.raises(PermissionDenied):
        services.patient_identifiers_add(
            actor=persona("billing"), patient=patient, identifiers=[("urn:z", "3")]
        )
    # a record merged into another takes no new identifier
    services.patient_merge(
        actor=persona("officemanager"), survivor=other, merged=patient, reason="same"
    )
    with pytest.raises(ValidationError, match="merged into another"):
        services.patient_identifiers_add(
            actor=frontdesk, patient=patient, identifiers=[("urn:z", "3")]
        )


def test_a_second_active_primary_coverage_is_refused(
    frontdesk: User, main_clinic: Location
) -> None:
    patient = PatientFactory.create(home_location=main_clinic)
    CoverageFactory.create(patient=patient, order=1)

    with pytest.raises(ValidationError) as caught:
        services.coverage_save(
            actor=frontdesk,
            patient=patient,
            values={"payer_name": "Cigna", "member_id": "C1", "order": 1},
        )

    assert "primary" in caught.value.message_dict["order"][0]


def test_verifying_a_coverage_records_who_and_when(frontdesk: User, main_clinic: Location) -> None:
    coverage = CoverageFactory.create(patient=PatientFactory.create(home_location=main_clinic))

    services.coverage_verify(actor=frontdesk, coverage=coverage)

    coverage.refresh_from_db()
    assert coverage.verified_by == frontdesk
    assert coverage.verified_at is not None


def test_clearing_an_alert_keeps_it_as_history(frontdesk: User, main_clinic: Location) -> None:
    flag = PatientFlagFactory.create(patient=PatientFactory.create(home_location=main_clinic))

    services.flag_clear(actor=frontdesk, flag=flag)

    flag.refresh_from_db()
    assert not flag.is_active
    assert flag.cleared_at is not None


# --- Merge ------------------------------------------------------------------------------------


def test_merge_moves_everything_attached_and_keeps_the_old_mrn_as_an_alias(
    officemanager: User, main_clinic: Location
) -> None:
    # given
    survivor = PatientFactory.create(home_location=main_clinic)
    merged = PatientFactory.create(home_location=main_clinic)
    coverage = CoverageFactory.create(patient=merged)
    flag = PatientFlagFactory.create(patient=merged)
    PatientIdentifier.objects.create(
        patient=merged, system="urn:oid:2.16.840.1.113883.4.1", value="x-1"
    )

    # when
    services.patient_merge(
        actor=officemanager, survivor=survivor, merged=merged, reason="same person"
    )

    # then
    merged.refresh_from_db()
    assert merged.merged_into == survivor
    assert not merged.is_active
    assert Coverage.objects.get(pk=coverage.pk).patient == survivor
    assert PatientFlag.objects.get(pk=flag.pk).patient == survivor
    aliases = set(
        PatientIdentifier.objects.filter(patient=survivor, is_alias=True).values_list(
            "value", flat=True
        )
    )
    assert aliases == {merged.mrn, "x-1"}
    assert AuditEvent.objects.filter(
        event="patient.merge", patient_public_id=survivor.public_id
    ).exists()
    assert AuditEvent.objects.filter(
        event="patient.merged_away", patient_public_id=merged.public_id
    ).exists()


def test_merge_needs_the_capability(frontdesk: User, main_clinic: Location) -> None:
    a, b = (
        PatientFactory.create(home_location=main_clinic),
        PatientFactory.create(home_location=main_clinic),
    )

    with pytest.raises(PermissionDenied):
        services.patient_merge(actor=frontdesk, survivor=a, merged=b, reason="same person")


def test_a_record_cannot_be_merged_twice(officemanager: User, main_clinic: Location) -> None:
    a, b, c = (PatientFactory.create(home_location=main_clinic) for _ in range(3))
    services.patient_merge(actor=officemanager, survivor=a, merged=b, reason="same person")

    with pytest.raises(ValidationError):
        services.patient_merge(actor=officemanager, survivor=c, merged=b, reason="same person")
