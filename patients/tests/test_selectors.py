from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from core.models import Location
from patients import selectors, services
from patients.models import BreakGlassGrant, Patient
from patients.mrn import make_mrn
from patients.selectors import SearchCriteria, criteria_from_text
from patients.tests.factories import CoverageFactory, PatientFactory, PatientFlagFactory

# --- Reading the search box -------------------------------------------------------------------

MRN = make_mrn(1_000_000)
MRN_WRONG_CHECK_DIGIT = MRN[:-1] + str((int(MRN[-1]) + 1) % 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smith", SearchCriteria(name="smith")),
        ("Smith, Jo", SearchCriteria(name="Smith, Jo")),
        ("jo smith", SearchCriteria(name="jo smith")),
        ("04/12/1980", SearchCriteria(birth_date=dt.date(1980, 4, 12))),
        ("1980-04-12", SearchCriteria(birth_date=dt.date(1980, 4, 12))),
        ("smith 4/12/1980", SearchCriteria(name="smith", birth_date=dt.date(1980, 4, 12))),
        (MRN, SearchCriteria(mrn=MRN)),
        ("(617) 555-0142", SearchCriteria(phone="6175550142")),
        ("+1 617 555 0142", SearchCriteria(phone="16175550142")),
        ("W100000001", SearchCriteria(member_id="W100000001")),
        (MRN_WRONG_CHECK_DIGIT, SearchCriteria(member_id=MRN_WRONG_CHECK_DIGIT)),
    ],
)
def test_search_box_reads_what_was_typed(text: str, expected: SearchCriteria) -> None:
    assert criteria_from_text(text) == expected


def test_search_box_names_an_impossible_date() -> None:
    with pytest.raises(ValidationError, match="13/45/1980 is not a real date"):
        criteria_from_text("13/45/1980")


def test_criteria_describe_what_was_searched_without_values() -> None:
    criteria = SearchCriteria(name="smith", birth_date=dt.date(1980, 4, 12), mrn=MRN)
    assert criteria.describe() == "name, date of birth and MRN"


# --- Search -----------------------------------------------------------------------------------


@pytest.fixture
def people(main_clinic: Location, riverside: Location) -> dict[str, Patient]:
    return {
        "zoe": PatientFactory.create(
            home_location=main_clinic, family_name="Núñez", given_name="Zoë"
        ),
        "jo": PatientFactory.create(
            home_location=main_clinic,
            family_name="Smith",
            given_name="Joanna",
            birth_date=dt.date(1980, 4, 12),
            phone_mobile="+16175550142",
        ),
        "john": PatientFactory.create(
            home_location=main_clinic, family_name="Smithers", given_name="John"
        ),
        "river": PatientFactory.create(
            home_location=riverside, family_name="Smith", given_name="River"
        ),
    }


def search(user: User, **criteria: object) -> selectors.SearchResult:
    return selectors.patient_search(user=user, criteria=SearchCriteria(**criteria))


@pytest.mark.django_db
def test_name_search_is_a_case_and_accent_insensitive_prefix(
    frontdesk: User, people: dict[str, Patient]
) -> None:
    assert search(frontdesk, name="NUNE").patients == [people["zoe"]]
    assert search(frontdesk, name="zoe").patients == [people["zoe"]]


@pytest.mark.django_db
def test_name_search_understands_family_comma_given_and_given_family(
    frontdesk: User, people: dict[str, Patient]
) -> None:
    assert search(frontdesk, name="smith, jo").patients == [people["jo"], people["john"]]
    assert search(frontdesk, name="jo smith").patients == [people["jo"], people["john"]]
    assert search(frontdesk, name="smith, joa").patients == [people["jo"]]


@pytest.mark.django_db
def test_search_only_returns_patients_of_the_users_locations(
    frontdesk: User, outsider: User, people: dict[str, Patient]
) -> None:
    assert people["river"] not in search(frontdesk, name="smith").patients
    assert search(outsider, name="smith").patients == [people["river"]]


@pytest.mark.django_db
def test_search_by_birth_date_and_phone(frontdesk: User, people: dict[str, Patient]) -> None:
    assert search(frontdesk, birth_date=dt.date(1980, 4, 12)).patients == [people["jo"]]
    assert search(frontdesk, phone="6175550142").patients == [people["jo"]]


@pytest.mark.django_db
def test_search_by_member_id_ignores_case_and_punctuation(
    frontdesk: User, people: dict[str, Patient]
) -> None:
    CoverageFactory.create(patient=people["jo"], member_id="XQZ-123-456")

    assert search(frontdesk, member_id="xqz123456").patients == [people["jo"]]


@pytest.mark.django_db
def test_an_exact_mrn_at_another_location_is_offered_for_break_glass_only(
    frontdesk: User, people: dict[str, Patient]
) -> None:
    result = search(frontdesk, mrn=people["river"].mrn)

    assert result.patients == []
    assert result.outside_scope == [people["river"]]


@pytest.mark.django_db
def test_search_pages_through_results(frontdesk: User, main_clinic: Location) -> None:
    for n in range(5):
        PatientFactory.create(home_location=main_clinic, family_name=f"Page{n}")

    first = selectors.patient_search(
        user=frontdesk, criteria=SearchCriteria(name="page"), page=1, page_size=3
    )
    second = selectors.patient_search(
        user=frontdesk, criteria=SearchCriteria(name="page"), page=2, page_size=3
    )

    assert [p.family_name for p in first.patients] == ["Page0", "Page1", "Page2"]
    assert first.has_more
    assert [p.family_name for p in second.patients] == ["Page3", "Page4"]
    assert not second.has_more


@pytest.mark.django_db
def test_search_records_the_criteria_names_never_the_values(
    frontdesk: User, people: dict[str, Patient]
) -> None:
    search(frontdesk, name="smith")

    event = AuditEvent.objects.get(event="patient.search")
    assert event.fields == ["name"]
    assert "smith" not in f"{event.reason}{event.object_id}".lower()


# --- Reading one record -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_record_at_another_location_is_not_found_and_the_attempt_is_audited(
    outsider: User, main_clinic: Location
) -> None:
    patient = PatientFactory.create(home_location=main_clinic)

    with pytest.raises(Http404):
        selectors.patient_get_for_user(user=outsider, public_id=patient.public_id)

    assert AuditEvent.objects.get(event="patient.view").outcome == "denied"


@pytest.mark.django_db
def test_break_glass_opens_a_record_until_the_grant_expires(
    outsider: User, main_clinic: Location
) -> None:
    # given
    patient = PatientFactory.create(home_location=main_clinic)
    grant = services.break_glass_grant(
        actor=outsider, patient=patient, reason="Unconscious patient transferred to us"
    )

    # when / then: the grant lets the user in, marked as break-glass
    opened = selectors.patient_get_for_user(user=outsider, public_id=patient.public_id)
    assert opened.via_break_glass

    # when the grant has expired / then the record is out of reach again
    BreakGlassGrant.objects.filter(pk=grant.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    with pytest.raises(Http404):
        selectors.patient_get_for_user(user=outsider, public_id=patient.public_id)


@pytest.mark.django_db
def test_break_glass_needs_a_written_reason(outsider: User, main_clinic: Location) -> None:
    patient = PatientFactory.create(home_location=main_clinic)

    with pytest.raises(ValidationError) as caught:
        services.break_glass_grant(actor=outsider, patient=patient, reason="  urgent ")

    assert "reason" in caught.value.message_dict
    assert not BreakGlassGrant.objects.exists()


@pytest.mark.django_db
def test_duplicate_candidates_outside_scope_are_shown_without_details_and_audited(
    frontdesk: User, main_clinic: Location, riverside: Location
) -> None:
    here = PatientFactory.create(home_location=main_clinic)
    there = PatientFactory.create(home_location=riverside)

    shown = selectors.duplicate_candidates_for_user(user=frontdesk, candidates=[here, there])

    assert [(c.patient, c.in_scope) for c in shown] == [(here, True), (there, False)]
    audited = set(
        AuditEvent.objects.filter(event="patient.duplicate_candidate").values_list(
            "patient_public_id", flat=True
        )
    )
    assert audited == {here.public_id, there.public_id}


# --- Counts -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_patient_counts_reflect_what_exists_now(
    main_clinic: Location, riverside: Location, django_assert_num_queries: Callable[..., object]
) -> None:
    # given
    old = PatientFactory.create(home_location=main_clinic)
    Patient.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    today = PatientFactory.create(home_location=main_clinic)
    PatientFactory.create(home_location=riverside)
    PatientFlagFactory.create(patient=today, kind="fall_risk")
    PatientFlagFactory.create(patient=today, kind="allergy", is_active=False)
    CoverageFactory.create(patient=today)
    CoverageFactory.create(patient=old, verified_at=timezone.now())
    merged = PatientFactory.create(home_location=riverside)
    Patient.objects.filter(pk=merged.pk).update(merged_into=today)

    # when
    with django_assert_num_queries(4):
        counts = selectors.patient_counts()

    # then
    assert counts.total == 3
    assert dict(counts.by_location) == {"Main Street Clinic": 2, "Riverside Hospital": 1}
    assert counts.registered_today == 2
    assert counts.registered_this_week >= 2
    assert counts.active_alerts_by_kind == [("Fall risk", 1)]
    assert counts.unverified_coverages == 1


@pytest.mark.django_db
def test_recent_registrations_are_those_of_the_users_locations_newest_first(
    frontdesk: User, main_clinic: Location, riverside: Location
) -> None:
    first = PatientFactory.create(home_location=main_clinic)
    second = PatientFactory.create(home_location=main_clinic)
    PatientFactory.create(home_location=riverside)

    assert selectors.recent_registrations_for_user(user=frontdesk) == [second, first]
    assert AuditEvent.objects.filter(event="patient.recent_list").exists()
