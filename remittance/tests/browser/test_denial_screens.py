"""The denial queue in headless Chromium: the cause chart drawn under the CSP, tick-all and
bulk assign, a note on the denial page, and axe on each page."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.tests.factories import PASSWORD
from remittance.models import Denial

from ..denial_helpers import deny

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def _submit(page: Any, name: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=True).click()
    page.wait_for_load_state("networkidle")


def test_billing_specialist_bulk_assigns_and_notes_a_denial(
    page: Any, sign_in: Any, make_claim: Any, persona: Any, axe: Any
) -> None:
    # given two denials and a medical director who may work them
    deny(make_claim, "PD00000601")
    deny(make_claim, "PD00000602")
    director = persona("meddirector")
    biller = persona("billing")
    sign_in(biller.username, PASSWORD)
    page.set_default_timeout(30_000)

    # when the queue is opened
    page.goto("/remittances/denials/")
    page.wait_for_load_state("networkidle")

    # then the chart is drawn by static JS (no inline script) and the page passes axe
    drawn = page.evaluate("() => Object.values(window.Chart ? window.Chart.instances : {}).length")
    assert drawn == 1
    assert axe(page) == []

    # when every denial is ticked and assigned to the director
    page.locator("#tick-all").check()
    page.get_by_label("Assign the ticked denials to").select_option(str(director.public_id))
    _submit(page, "Assign")

    # then
    assert set(Denial.objects.values_list("owner", flat=True)) == {director.pk}

    # when a note is added on the first denial's page
    page.get_by_role("link", name="PD00000601").click()
    page.wait_for_load_state("networkidle")
    assert axe(page) == []
    page.get_by_label("Note").fill("Called the payer: records requested.")
    _submit(page, "Add note")

    # then the timeline shows it
    assert "Called the payer: records requested." in page.locator("#timeline").inner_text()
    assert page.console_errors == []
