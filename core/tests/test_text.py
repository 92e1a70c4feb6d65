from hypothesis import given
from hypothesis import strategies as st

from core.text import digits, fold, prefix_upper_bound


def test_fold_removes_case_accents_and_punctuation() -> None:
    assert fold("Zoë O'Brien-Núñez") == "zoeobriennunez"
    assert fold("  ÅSTRÖM ") == "astrom"
    assert fold("") == ""


def test_digits_keeps_only_digits() -> None:
    assert digits("+1 (555) 201-3344") == "15552013344"


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", max_size=12),
)
def test_every_string_with_the_prefix_falls_inside_the_prefix_range(prefix: str, rest: str) -> None:
    value = prefix + rest
    assert prefix <= value < prefix_upper_bound(prefix)


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12),
)
def test_strings_without_the_prefix_fall_outside_the_range(prefix: str, other: str) -> None:
    if not other.startswith(prefix):
        assert not (prefix <= other < prefix_upper_bound(prefix))
