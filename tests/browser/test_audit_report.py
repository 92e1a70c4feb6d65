"""The audit report in headless Chromium: htmx filtering by MRN (no PHI in the URL), sorting,
paging, the CSV download, no CSP errors, and no serious accessibility violations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from audit.selectors import PAGE_SIZE
from audit.tests.conftest import add_events
from core.tests.factories import LocationFactory
from patients.tests.factories import PatientFactory

pytestmark = [pytest.mark.browser]


@pytest.fixture
def signed_in_page(page: Any, live_server: Any) -> Any:
    """The page, signed in as a privacy officer with two-factor verified."""
    clinic = LocationFactory(code="main", name="Main Street Clinic")
    officer = UserFactory(username="privacy", roles=["privacy_officer"], locations=[clinic])
    client = _verified_client(officer)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.clinic = clinic
    return page


def _verified_client(user: Any) -> Client:
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def serious_violations(pg: Any, axe: Any, within: str) -> list[str]:
    """axe's serious and critical findings inside `within` (this screen's own content)."""
    axe(pg)  # injects axe-core
    found = pg.evaluate(
        "async (selector) => (await axe.run(selector)).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id)",
        within,
    )
    return list(found)


def test_privacy_officer_filters_sorts_pages_and_exports(
    signed_in_page: Any,
    axe: Callable[[Any], list[dict[str, Any]]],
    transactional_db: None,
) -> None:
    pg = signed_in_page
    # given: a patient with a page and a bit of history, and someone else's events
    patient = PatientFactory(home_location=pg.clinic, family_name="Ibsen", given_name="Kari")
    add_events(PAGE_SIZE + 2, patient=patient, username="zoe")
    add_events(3, username="adam", event="patient.search")

    # when: the report opens, and the officer types the MRN and presses Enter
    failed: list[str] = []
    pg.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    pg.goto("/audit/")
    assert pg.get_by_label("Patient").evaluate("el => el === document.activeElement")
    assert serious_violations(pg, axe, within="#main") == []
    pg.get_by_label("Patient").fill(patient.mrn)
    with pg.expect_response(lambda r: r.url.endswith("/audit/") and r.request.method == "POST"):
        pg.get_by_label("Patient").press("Enter")

    # then: the table swaps in place, and the MRN went in the body, not the URL
    table = pg.locator("#audit-table tbody")
    assert pg.url.endswith("/audit/")
    assert table.locator("tr").count() == PAGE_SIZE
    assert "adam" not in table.inner_text()
    assert f"{patient.mrn} Ibsen, Kari" in table.locator("tr").first.inner_text()

    # when: the next page, then the User column
    with pg.expect_response(lambda r: r.request.method == "POST"):
        pg.get_by_role("button", name="Next page").click()
    assert table.locator("tr").count() == 3  # 2 events and the first report query's own row
    with pg.expect_response(lambda r: r.request.method == "POST"):
        pg.get_by_role("button", name="Sort by user, ascending").click()
    assert pg.locator("th[aria-sort=ascending]").inner_text().startswith("User")
    assert table.locator("tr").count() == PAGE_SIZE

    # when: the export
    with pg.expect_download() as download_info:
        pg.get_by_role("button", name="Export CSV").click()
    body = open(download_info.value.path(), encoding="utf-8-sig").read()  # noqa: SIM115

    # then: every matching event, as a file; the page itself is unchanged and error-free
    assert body.count(patient.mrn) >= PAGE_SIZE + 2
    assert "adam" not in body
    assert pg.url.endswith("/audit/")
    # (base.html links no favicon: the browser's own /favicon.ico request is the one 404)
    assert [e for e in pg.console_errors if not e.startswith("Failed to load resource")] == []
    assert [url for url in failed if not url.endswith("/favicon.ico")] == []
