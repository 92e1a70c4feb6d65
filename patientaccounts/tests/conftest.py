"""The shared browser fixtures (headless Chromium, sign-in, axe) for test_browser.py."""

from tests.browser.conftest import axe, browser, page, sign_in

__all__ = ["axe", "browser", "page", "sign_in"]
