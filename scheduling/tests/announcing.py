"""A fixture for tests of what happens after a change commits: the on-commit callbacks run (as
django_capture_on_commit_callbacks(execute=True) does) and then the queued announcements of
appointment changes, as the background worker would run them (scheduling.tasks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from scheduling.tasks import announce_queued_changes


@pytest.fixture
def committed(
    django_capture_on_commit_callbacks: Any,
) -> Callable[[], AbstractContextManager[None]]:
    @contextmanager
    def run() -> Iterator[None]:
        with django_capture_on_commit_callbacks(execute=True):
            yield
        with django_capture_on_commit_callbacks(execute=True):  # the receivers' own on-commit work
            announce_queued_changes()

    return run
