"""Patient-account screens in headless Chromium: the account page, taking a payment with an
inline error fixed from the keyboard, and a statement run whose progress htmx polls; axe on each
page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from accounts.tests.factories import PASSWORD, UserFactory
from core.models import Location
from core.tests.factories import LocationFactory
from patientaccounts import services
from patientaccounts.models import PatientPayment, StatementRun
from patientaccounts.tests.factories import post_charge
from patients.models import Patient
from patients.tests.factories import PatientFactory, PatientFlagFactory

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


@pytest.fixture
def clinic() -> Location:
    return LocationFactory(code="main", name="Main Street Clinic")


@pytest.fixture
def owing(clinic: Location) -> Patient:
    patient = PatientFactory.create(home_location=clinic, family_name="Smith", given_name="Joanna")
    PatientFlagFactory.create(patient=patient, kind="fall_risk", severity="warning")
    post_charge(patient, "150.00")
    return patient


def test_take_a_payment_from_the_account_page_fixing_a_card_number_error(
    page: Any, sign_in: Any, axe: Any, clinic: Location, owing: Patient
) -> None:
    # given a front-desk user on the patient's account page
    page.set_default_timeout(30_000)  # the machine is shared: allow for a slow first request
    UserFactory(username="frontdesk", roles=["patient_service_rep"], locations=[clinic])
    sign_in("frontdesk", PASSWORD)
    page.goto(f"/patient-accounts/{owing.public_id}/")
    assert page.get_by_text("Fall risk").is_visible()
    assert axe(page) == []
    # when they open the payment form, the amount has the focus
    page.get_by_role("link", name="Take payment").click()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.activeElement.name") == "amount"
    assert axe(page) == []
    page.keyboard.type("40.00")
    page.get_by_label("Method").select_option("card")
    page.get_by_label("Reference").fill("4111 1111 1111 1111")
    page.get_by_role("button", name="Record payment").click()
    page.wait_for_load_state("networkidle")
    # then the error is next to the field and in the summary, and nothing was saved
    reference = page.get_by_label("Reference")
    assert "is-invalid" in (reference.get_attribute("class") or "")
    assert page.locator("#error-summary").get_by_text("Never enter a full card number").is_visible()
    assert axe(page) == []
    assert not PatientPayment.objects.exists()
    # when they enter only the last four digits and the authorisation code
    reference.fill("x1111 auth 09PQ7Z")
    page.get_by_role("button", name="Record payment").click()
    page.wait_for_load_state("networkidle")
    # then the payment is on the account with its receipt
    payment = PatientPayment.objects.get()
    assert page.get_by_text(f"receipt {payment.receipt_number}").is_visible()
    assert page.get_by_role("link", name=payment.receipt_number).is_visible()
    assert page.console_errors == []


def test_statement_run_progress_updates_without_reloading(
    page: Any, sign_in: Any, axe: Any, clinic: Location, owing: Patient
) -> None:
    # given a billing specialist who starts a run
    page.set_default_timeout(30_000)
    user = UserFactory(username="billing", roles=["billing_specialist"], locations=[clinic])
    sign_in("billing", PASSWORD)
    page.goto("/patient-accounts/statements/")
    assert axe(page) == []
    page.get_by_label("Message on the statements").fill("Thank you for choosing us")
    page.get_by_role("button", name="Run statements").click()
    page.wait_for_load_state("networkidle")
    assert re.search(r"/statements/runs/[0-9a-f-]{36}/$", page.url)
    assert page.get_by_text("0 of 1 statements").is_visible()
    assert axe(page) == []
    # when the background task does the work (here, in the test's thread)
    run = StatementRun.objects.get()
    services.statement_run_execute(run_id=run.pk)
    # then the page shows it within a poll or two, without a reload
    page.get_by_text("1 of 1 statements").wait_for(timeout=8_000)
    assert page.get_by_text("Finished").is_visible()
    assert user.pk == run.started_by_id
    assert page.console_errors == []
