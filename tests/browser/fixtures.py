"""Browser-test fixtures: Debian's headless chromium driven by Playwright against pytest-django's
live server (127.0.0.1). Registered once for the whole suite by the root conftest
(`pytest_plugins`), so one Playwright and one Chromium serve the browser tests of every app: a
second definition of the session-scoped `browser` (e.g. re-imported into an app's conftest)
would start a second Playwright inside the first one's event loop. `scripts/ensure_chromium.sh`
installs chromium when missing."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop

CHROMIUM = os.environ.get("PATIENTDESK_CHROMIUM", "/usr/bin/chromium")
AXE_JS = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run scripts/ensure_chromium.sh (installs chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, locale="en-US")
    context.set_default_timeout(20_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.console_errors = errors
    yield pg
    context.close()


@pytest.fixture
def sign_in(page: Any) -> Callable[..., Any]:
    """sign_in(username, password) fills the real login form."""

    def do(username: str, password: str) -> Any:
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state("networkidle")
        return page

    return do


@pytest.fixture
def axe() -> Callable[[Any], list[dict[str, Any]]]:
    """axe(page) -> the serious and critical accessibility violations on the page."""

    def run(pg: Any) -> list[dict[str, Any]]:
        # Evaluated through the DevTools protocol, so the page's CSP (no inline scripts) stays on.
        pg.evaluate(AXE_JS.read_text() + "\n;true")
        result = pg.evaluate("async () => await axe.run(document)")
        return [
            {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": len(v["nodes"])}
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    return run
