from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from core.models import Location
from patients.models import Coverage, Patient, PatientFlag, PatientIdentifier
from patients.tests.conftest import HTMX
from patients.tests.factories import CoverageFactory, PatientFactory, PatientFlagFactory

pytestmark = pytest.mark.django_db

URL = reverse("patients:merge")


@pytest.fixture
def pair(main_clinic: Location) -> tuple[Patient, Patient]:
    keep = PatientFactory.create(
        home_location=main_clinic, family_name="Garcia", given_name="Maria"
    )
    old = PatientFactory.create(home_location=main_clinic, family_name="Garcia", given_name="Marie")
    CoverageFactory.create(patient=keep, order=1, payer_name="Aetna")
    CoverageFactory.create(patient=old, order=2, payer_name="Medicaid")
    PatientFlagFactory.create(patient=old, kind="fall_risk")
    PatientIdentifier.objects.create(patient=old, system="urn:oid:synthea", value="abc-123")
    return keep, old


def test_merge_starts_with_two_mrns(client_as: Callable[[str], Client]) -> None:
    html = client_as("officemanager").get(URL).content.decode()

    assert 'name="mrn_a"' in html
    assert 'name="mrn_b"' in html
    assert 'method="post"' in html


def test_comparing_shows_both_records_side_by_side(
    client_as: Callable[[str], Client], pair: tuple[Patient, Patient]
) -> None:
    keep, old = pair

    response = client_as("officemanager").post(URL, {"mrn_a": keep.mrn, "mrn_b": old.mrn})

    html = response.content.decode()
    assert response.status_code == 200
    for text in (keep.mrn, old.mrn, "Aetna", "Medicaid", "Fall risk", "abc-123"):
        assert text in html
    assert 'name="survivor"' in html
    assert 'name="reason"' in html


@pytest.mark.parametrize(
    ("mrn_b", "message"),
    [
        ("12345678", "check digit does not match"),
        ("abc", "digits only"),
    ],
)
def test_bad_mrns_are_named(
    client_as: Callable[[str], Client], pair: tuple[Patient, Patient], mrn_b: str, message: str
) -> None:
    html = (
        client_as("officemanager")
        .post(URL, {"mrn_a": pair[0].mrn, "mrn_b": mrn_b})
        .content.decode()
    )

    assert message in html
    assert 'id="id_mrn_b_error"' in html


def test_a_record_at_another_location_cannot_be_found_for_merge(
    client_as: Callable[[str], Client], pair: tuple[Patient, Patient], riverside: Location
) -> None:
    elsewhere = PatientFactory.create(home_location=riverside)

    html = (
        client_as("officemanager")
        .post(URL, {"mrn_a": pair[0].mrn, "mrn_b": elsewhere.mrn})
        .content.decode()
    )

    assert "No patient with this MRN at your locations." in html


def test_merging_moves_everything_and_leaves_a_pointer(
    client_as: Callable[[str], Client], pair: tuple[Patient, Patient]
) -> None:
    # given
    keep, old = pair
    client = client_as("officemanager")

    # when
    response = client.post(
        URL,
        {
            "step": "merge",
            "mrn_a": keep.mrn,
            "mrn_b": old.mrn,
            "survivor": "a",
            "reason": "Registered twice; confirmed with photo ID",
        },
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:detail", args=[keep.public_id])
    old.refresh_from_db()
    assert old.merged_into == keep
    assert set(Coverage.objects.values_list("patient", flat=True)) == {keep.pk}
    assert set(PatientFlag.objects.values_list("patient", flat=True)) == {keep.pk}
    assert PatientIdentifier.objects.filter(patient=keep, value=old.mrn, is_alias=True).exists()
    assert PatientIdentifier.objects.filter(patient=keep, value="abc-123", is_alias=True).exists()
    merge_event = AuditEvent.objects.get(event="patient.merge")
    assert merge_event.reason == "Registered twice; confirmed with photo ID"

    # and: the old record points to the survivor
    old_page = client.get(reverse("patients:detail", args=[old.public_id])).content.decode()
    assert "was merged" in old_page
    assert keep.mrn in old_page

    # and: searching the old MRN finds the survivor
    found = client.post(reverse("patients:search"), {"q": old.mrn}, **HTMX).content.decode()
    assert reverse("patients:detail", args=[keep.public_id]) in found
    assert f'data-result-url="{reverse("patients:detail", args=[old.public_id])}"' not in found


def test_the_second_record_can_be_the_survivor(
    client_as: Callable[[str], Client], pair: tuple[Patient, Patient]
) -> None:
    keep, old = pair
    data = {"step": "merge", "mrn_a": keep.mrn, "mrn_b": old.mrn, "survivor": "b", "reason": "dup"}

    client_as("officemanager").post(URL, data)

    keep.refresh_from_db()
    assert keep.merged_into == old


def test_a_merge_without_a_reason_or_a_survivor_changes_nothing(
    client_as: Callable[[str], Client], pair: tuple[Patient, Patient]
) -> None:
    keep, old = pair

    response = client_as("officemanager").post(
        URL, {"step": "merge", "mrn_a": keep.mrn, "mrn_b": old.mrn}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_reason_error"' in html
    assert 'id="id_survivor_error"' in html
    old.refresh_from_db()
    assert old.merged_into is None


def test_an_already_merged_record_is_refused(
    client_as: Callable[[str], Client], pair: tuple[Patient, Patient], main_clinic: Location
) -> None:
    keep, old = pair
    client = client_as("officemanager")
    client.post(
        URL,
        {"step": "merge", "mrn_a": keep.mrn, "mrn_b": old.mrn, "survivor": "a", "reason": "dup"},
    )
    third = PatientFactory.create(home_location=main_clinic)

    html = client.post(URL, {"mrn_a": third.mrn, "mrn_b": old.mrn}).content.decode()

    assert f"Already merged into MRN {keep.mrn}" in html


def test_front_desk_cannot_merge(
    client_as: Callable[[str], Client], pair: tuple[Patient, Patient]
) -> None:
    keep, old = pair
    data = {"step": "merge", "mrn_a": keep.mrn, "mrn_b": old.mrn, "survivor": "a", "reason": "dup"}

    response = client_as("frontdesk").post(URL, data)

    assert response.status_code == 403
    old.refresh_from_db()
    assert old.merged_into is None


def test_anonymous_users_are_sent_to_sign_in(client: Client) -> None:
    assert client.get(URL)["Location"].startswith(reverse("accounts:login"))


def test_merge_answers_405_to_other_methods(client_as: Callable[[str], Client]) -> None:
    assert client_as("officemanager").put(URL).status_code == 405
