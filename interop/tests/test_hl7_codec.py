from __future__ import annotations

import datetime as dt

import pytest

from interop.hl7_codec import (
    components,
    decode,
    escape,
    normalise,
    parse_date,
    segment,
    split_messages,
    timestamp,
)

MSG_A = "MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5.1\rPID|1||X^^^AA||Doe^Jane"
MSG_B = "MSH|^~\\&|A|B|C|D|20250101||ADT^A08|2|P|2.5.1\rPID|1||X^^^AA||Doe^Jane"


@pytest.mark.parametrize("line_end", ["\r", "\n", "\r\n"])
def test_splits_a_file_of_two_messages_whatever_its_line_ends(line_end: str) -> None:
    text = (MSG_A + "\r" + MSG_B).replace("\r", line_end) + line_end
    assert split_messages(text) == [MSG_A, MSG_B]


def test_reads_a_utf8_file_with_a_byte_order_mark() -> None:
    raw = "\ufeff".encode() + MSG_A.replace("\r", "\n").encode()
    assert split_messages(decode(raw)) == [MSG_A]


def test_reads_latin1_bytes_that_are_not_utf8() -> None:
    assert decode("PID|1||X||Müller^Zoë".encode("latin-1")) == "PID|1||X||Müller^Zoë"


def test_drops_batch_envelopes_and_blank_lines() -> None:
    text = f"FHS|^~\\&\nBHS|^~\\&\n\n{MSG_A}\n\n{MSG_B}\nBTS|2\nFTS|1\n"
    assert split_messages(text.replace("\r", "\n")) == [MSG_A, MSG_B]


def test_keeps_text_before_the_first_msh_as_its_own_message_to_reject() -> None:
    assert split_messages("garbage line\n" + MSG_A) == ["garbage line", MSG_A]


def test_normalise_joins_segments_with_carriage_returns_only() -> None:
    assert normalise("MSH|a\r\nPID|b\nPV1|c\r") == "MSH|a\rPID|b\rPV1|c"


def test_escape_protects_every_delimiter_and_the_escape_character() -> None:
    assert escape("A|B^C&D~E\\F") == "A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F"


def test_escape_folds_line_breaks_into_spaces() -> None:
    assert escape("first line\nsecond\r\nthird") == "first line second third"


def test_components_drop_trailing_empty_parts() -> None:
    assert components("A", "B^x", "", "") == "A^B\\S\\x"


def test_segment_places_fields_by_number_and_drops_trailing_empties() -> None:
    assert segment("AIS", {1: "1", 3: "X", 5: ""}) == "AIS|1||X"


def test_timestamp_carries_the_zone_offset() -> None:
    moment = dt.datetime(2025, 3, 1, 19, 0, tzinfo=dt.UTC)
    assert timestamp(moment, "America/New_York") == "20250301140000-0500"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("19800102", dt.date(1980, 1, 2)),
        ("198808181126+0215", dt.date(1988, 8, 18)),
        ("20080106120000.5-0500", dt.date(2008, 1, 6)),
    ],
)
def test_parse_date_reads_the_date_part_of_hl7_times(text: str, expected: dt.date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["", "1980", "198013", "19800230", "1980-01-02", "abcdefgh"])
def test_parse_date_refuses_what_is_not_a_full_calendar_date(text: str) -> None:
    assert parse_date(text) is None
