from __future__ import annotations

import pytest

from core.text import fold, prefix_upper_bound


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Zoë O'Brien-Núñez", "zoeobriennunez"),
        ("SMITH", "smith"),
        ("  de la Cruz ", "delacruz"),
        ("Łukasz", "lukasz"),
        ("", ""),
    ],
)
def test_fold_ignores_case_accents_and_punctuation(raw: str, folded: str) -> None:
    assert fold(raw) == folded


def test_prefix_upper_bound_is_just_above_every_string_with_the_prefix() -> None:
    bound = prefix_upper_bound("smi")
    assert bound == "smj"
    assert "smi" <= "smith" < bound
    assert "smizzzz" < bound <= "smjones"
