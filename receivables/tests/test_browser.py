"""The receivables screens in headless Chromium: the chart draws (Chart.js loads under the
strict CSP), the basis switch works through htmx, no console errors, and no serious or critical
accessibility violations (axe)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from billing.tests.factories import ClaimFactory, EncounterFactory, PayerFactory
from core.tests.factories import LocationFactory

pytestmark = [pytest.mark.browser]


@pytest.fixture
def billing_page(page: Any, live_server: Any) -> Any:
    """Signed in as a billing specialist at Main Street, with two payers' claims."""
    clinic = LocationFactory(code="main", name="Main Street Clinic")
    user = UserFactory(username="billing", roles=["billing_specialist"], locations=[clinic])
    today = timezone.localdate()
    for name, age in (("Aetna", 10), ("Cigna", 75)):
        ClaimFactory(
            payer=PayerFactory(name=name),
            encounter=EncounterFactory(
                location=clinic, date_of_service=today - dt.timedelta(days=age)
            ),
        )
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return page


def _serious(pg: Any, run_axe: Callable[[Any], list[dict[str, Any]]]) -> list[str]:
    run_axe(pg)  # injects axe-core
    found = pg.evaluate(
        "async () => (await axe.run('main')).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id)"
    )
    return list(found)


def test_aging_page_draws_its_chart_switches_basis_and_is_accessible(
    billing_page: Any,
    axe: Callable[[Any], list[dict[str, Any]]],
) -> None:
    pg = billing_page
    # given
    pg.goto("/receivables/")
    pg.wait_for_load_state("networkidle")
    # then: the table, and a chart drawn on the canvas by static/js/receivables.js
    assert pg.get_by_role("cell", name="Aetna").count() + pg.locator("th", has_text="Aetna").count()
    assert pg.evaluate("() => Chart.getChart(document.querySelector('canvas[data-chart]')) != null")
    assert pg.evaluate("() => document.activeElement.id") == "id_by"
    assert _serious(pg, axe) == []
    # when: aging from the date of submission, through htmx
    pg.get_by_label("Age from").select_option("submission")
    pg.get_by_role("button", name="Update").click()
    # then: the report area changed, the chart is redrawn, the URL holds the (non-PHI) switches
    expect(pg.locator("#aging-report h2")).to_contain_text("date of submission")
    pg.wait_for_function(
        "() => Chart.getChart(document.querySelector('canvas[data-chart]')) != null"
    )
    assert "basis=submission" in pg.url
    assert pg.console_errors == []


def test_kpi_page_shows_definitions_and_trend_and_is_accessible(
    billing_page: Any,
    axe: Callable[[Any], list[dict[str, Any]]],
) -> None:
    pg = billing_page
    pg.goto("/receivables/kpis/")
    pg.wait_for_load_state("networkidle")
    assert pg.get_by_role("heading", name="Denial rate").is_visible()
    assert pg.get_by_text("claims denied ÷ claims adjudicated").is_visible()
    assert pg.evaluate("() => Chart.getChart(document.querySelector('canvas[data-chart]')) != null")
    assert _serious(pg, axe) == []
    assert pg.console_errors == []
