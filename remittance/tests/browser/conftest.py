"""The shared browser fixtures (tests/browser/conftest.py) for the denial screens."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _warm_url_conf() -> None:
    """Load every view module before the live server's first request."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018


@pytest.fixture(autouse=True)
def _reference_codes(transactional_db: None) -> None:
    """The flush after a transactional test empties the CARC/RARC tables: load them again."""
    from django.apps import apps

    from billing.reference_data import load_reference_codes

    load_reference_codes(apps, None)
