"""The patient screens in headless Chromium: register (with an inline error fixed), the duplicate
warning, type-ahead search opened with the keyboard, editing, and axe on each page."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlparse

import pytest

from accounts.tests.factories import PASSWORD, UserFactory
from core.models import Location
from core.tests.factories import LocationFactory
from patients.models import Patient
from patients.tests.factories import CoverageFactory, PatientFactory, PatientFlagFactory

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

DETAIL_PATH = re.compile(r"^/patients/[0-9a-f-]{36}/$")


@pytest.fixture
def clinic() -> Location:
    return LocationFactory(code="main", name="Main Street Clinic")


@pytest.fixture
def desk(page: Any, sign_in: Any, clinic: Location) -> Any:
    """The page, signed in as a patient service representative at Main Street Clinic."""
    UserFactory(username="frontdesk", roles=["patient_service_rep"], locations=[clinic])
    sign_in("frontdesk", PASSWORD)
    return page


@pytest.fixture
def joanna(clinic: Location) -> Patient:
    patient = PatientFactory.create(
        home_location=clinic,
        family_name="Smith",
        given_name="Joanna",
        birth_date=dt.date(1980, 4, 12),
        phone_mobile="+16175550142",
    )
    PatientFlagFactory.create(patient=patient, kind="fall_risk", severity="warning")
    CoverageFactory.create(patient=patient)
    return patient


def _path(page: Any) -> str:
    return str(urlparse(page.url).path)


def _submit(page: Any, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    page.wait_for_load_state("networkidle")


def _fill_registration(page: Any, birth_date: str) -> None:
    page.get_by_label("Legal family name").fill("Okafor")
    page.get_by_label("Legal given name").fill("Adaeze")
    page.get_by_label("Date of birth").fill(birth_date)
    page.get_by_label("Sex assigned at birth").select_option("F")
    page.get_by_label("Mobile phone").fill("(413) 555-0199")
    page.get_by_label("Consents to text messages (SMS)").check()
    page.get_by_label("Fall risk").check()


def test_registering_a_patient_after_fixing_an_inline_error(desk: Any) -> None:
    # given the registration form, reached from the home page
    desk.get_by_role("link", name="Register a patient").click()
    desk.wait_for_load_state("networkidle")
    assert _path(desk) == "/patients/register/"
    assert desk.get_by_label("Legal family name").evaluate("el => document.activeElement === el")

    # when the date of birth is in the future
    _fill_registration(desk, "2999-01-01")
    _submit(desk, "Register patient")

    # then the error shows next to the field, which gets the focus
    assert _path(desk) == "/patients/register/"
    error = desk.locator("#id_birth_date_error")
    assert "cannot be in the future" in error.inner_text()
    assert desk.locator("#id_birth_date").evaluate("el => document.activeElement === el")
    assert desk.get_by_label("Legal family name").input_value() == "Okafor"

    # when it is corrected
    desk.get_by_label("Date of birth").fill("1991-07-03")
    _submit(desk, "Register patient")

    # then the patient page opens with the banner and the alert
    assert DETAIL_PATH.match(_path(desk))
    banner = desk.get_by_role("region", name="Patient banner")
    assert "Okafor, Adaeze" in banner.inner_text()
    assert "07/03/1991" in banner.inner_text()
    assert "Fall risk" in banner.inner_text()
    assert Patient.objects.get().phone_mobile == "+14135550199"


def test_registering_the_same_person_again_warns_of_the_duplicate(
    desk: Any, clinic: Location
) -> None:
    # given a patient already on file
    existing = PatientFactory.create(
        home_location=clinic,
        family_name="Okafor",
        given_name="Adaeze",
        birth_date=dt.date(1991, 7, 3),
    )

    # when the same person is registered again
    desk.goto("/patients/register/")
    _fill_registration(desk, "1991-07-03")
    _submit(desk, "Register patient")

    # then the warning lists the existing record, and nothing was created
    warning = desk.get_by_role("region", name=re.compile("Possible duplicate"))
    assert warning.evaluate("el => document.activeElement === el")
    assert existing.mrn in warning.inner_text()
    assert warning.get_by_role("link", name="Open record").is_visible()
    assert Patient.objects.count() == 1

    # when the user confirms it is another person
    _submit(desk, "Register anyway — not the same person")

    # then the new record is created
    assert DETAIL_PATH.match(_path(desk))
    assert Patient.objects.count() == 2


def test_typing_a_name_prefix_and_opening_the_result_with_the_keyboard(
    desk: Any, joanna: Patient
) -> None:
    # given the home page, whose search box has the focus
    box = desk.get_by_role("searchbox", name="Find a patient")
    assert box.evaluate("el => document.activeElement === el")

    # when a name prefix is typed
    box.press_sequentially("smi", delay=30)

    # then the result appears without a page load, and nothing went into the URL
    row = desk.locator("[data-result-url]").first
    row.wait_for()
    assert "Smith, Joanna" in row.inner_text()
    assert "smi" not in desk.url

    # when the user presses arrow down and Enter
    box.press("ArrowDown")
    assert row.get_attribute("aria-selected") == "true"
    box.press("Enter")
    desk.wait_for_load_state("networkidle")

    # then the patient page opens
    assert _path(desk) == f"/patients/{joanna.public_id}/"
    assert [e for e in desk.console_errors if "Content Security Policy" in e] == []


def test_editing_a_field(desk: Any, joanna: Patient) -> None:
    desk.goto(f"/patients/{joanna.public_id}/")
    desk.get_by_role("link", name="Edit details").click()
    desk.wait_for_load_state("networkidle")

    desk.get_by_label("Preferred name").fill("Jo")
    _submit(desk, "Save changes")

    assert _path(desk) == f"/patients/{joanna.public_id}/"
    assert "“Jo”" in desk.get_by_role("region", name="Patient banner").inner_text()
    joanna.refresh_from_db()
    assert joanna.preferred_name == "Jo"


def test_register_search_and_patient_pages_have_no_serious_accessibility_violations(
    desk: Any, joanna: Patient, axe: Any
) -> None:
    desk.goto("/patients/register/")
    assert axe(desk) == []

    _submit(desk, "Register patient")  # the form with its inline errors
    assert desk.locator("#error-summary").is_visible()
    assert axe(desk) == []

    desk.goto("/patients/")
    desk.get_by_role("searchbox", name="Find a patient").fill("smith")
    desk.locator("[data-result-url]").first.wait_for()
    assert axe(desk) == []

    desk.goto(f"/patients/{joanna.public_id}/")
    assert axe(desk) == []
