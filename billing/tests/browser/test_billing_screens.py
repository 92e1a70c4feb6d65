"""The billing screens in headless Chromium: a charge entered with the keyboard, a claim made
and marked ready (timeline shown), a faulty claim's problems, and axe on each page."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from accounts.tests.factories import PASSWORD
from billing.models import Claim, ClaimStatus, Encounter
from patients.models import Coverage

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


@pytest.fixture
def desk(page: Any, sign_in: Any, billing_user: User) -> Any:
    sign_in(billing_user.username, PASSWORD)
    page.set_default_timeout(30_000)  # the machine is shared: be patient with slow responses
    return page


def _submit(page: Any, name: str) -> None:
    """Click a form's button and wait for the page the server answers with."""
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=True).click()
    page.wait_for_load_state("networkidle")


def test_billing_specialist_codes_a_visit_and_readies_its_claim(
    desk: Any, encounter: Encounter, axe: Any
) -> None:
    # given: the visit's charge page
    desk.goto(f"/billing/encounters/{encounter.public_id}/")
    assert axe(desk) == []

    # when: a charge is typed (the code field has the focus) and the claim is made and readied
    desk.keyboard.type("99213")
    desk.get_by_label("Pointer 2").fill("2")
    _submit(desk, "Add charge")
    _submit(desk, "Create claim for the next coverage")
    assert axe(desk) == []
    _submit(desk, "Mark ready to batch")

    # then
    claim = Claim.objects.get()
    assert claim.status == ClaimStatus.READY
    assert claim.total_charge == 120
    timeline = desk.locator("#claim-timeline").inner_text()
    assert "Draft → Ready to batch" in timeline
    assert desk.console_errors == []


def test_a_faulty_claim_lists_every_problem_with_the_field_to_fix(
    desk: Any, encounter: Encounter, billing_user: User, axe: Any
) -> None:
    # given: a draft claim whose coverage lost its member id
    from billing import services
    from billing.services import LineInput

    services.charge_line_add(actor=billing_user, encounter=encounter, line=LineInput(code="99213"))
    claim = services.claim_create_from_encounter(actor=billing_user, encounter=encounter)
    Coverage.objects.filter(pk=claim.coverage_id).update(member_id="")

    # when
    desk.goto(f"/billing/claims/{claim.public_id}/")
    _submit(desk, "Mark ready to batch")

    # then
    problems = desk.locator(".scrub-problems").inner_text()
    assert "member id is missing" in problems
    assert "coverage.member_id" in problems
    assert desk.locator("#claim-status").inner_text() == "Draft"
    assert axe(desk) == []


def test_a_diagnosis_is_checked_as_the_user_leaves_the_field(
    desk: Any, patient: Any, practitioner: Any, provider: Any, axe: Any
) -> None:
    # given
    desk.goto(f"/billing/patients/{patient.public_id}/encounters/new/")
    assert axe(desk) == []

    # when: a category code is typed and the field is left
    desk.locator("#id_dx1").fill("E11")
    desk.keyboard.press("Tab")

    # then: the problem shows beside it before anything is saved
    check = desk.locator("#dx1-check")
    check.get_by_text("E11 is a category, not a billable code").wait_for()
    assert Encounter.objects.count() == 0

    # when: it is corrected and the form is sent
    desk.locator("#id_dx1").fill("E11.9")
    desk.keyboard.press("Tab")
    check.get_by_text("Type 2 diabetes mellitus without complications").wait_for()
    _submit(desk, "Create encounter")

    # then
    encounter = Encounter.objects.get()
    assert encounter.diagnoses.get().code == "E119"
    assert desk.url.endswith(f"/billing/encounters/{encounter.public_id}/")
    assert desk.console_errors == []
