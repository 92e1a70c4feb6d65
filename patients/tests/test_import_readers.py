"""How many processes read files beside the writing one (patients.importers.default_readers)."""

from __future__ import annotations

from unittest import mock

import pytest

from patients import importers


@pytest.mark.parametrize(
    ("cpus", "files", "readers"),
    [
        (1, 5000, 0),  # one CPU: this process reads and writes
        (2, importers.PARALLEL_MIN_FILES - 1, 0),  # a small run: not worth the processes
        (2, importers.PARALLEL_MIN_FILES, 2),  # reading costs more than writing: two readers
        (3, 5000, 2),
        (4, 5000, 3),
        (16, 5000, 3),  # more would outpace the writing
    ],
)
def test_readers_for_a_run(cpus: int, files: int, readers: int) -> None:
    with mock.patch("patients.importers.os.cpu_count", return_value=cpus):
        assert importers.default_readers(files) == readers
