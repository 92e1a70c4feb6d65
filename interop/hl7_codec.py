"""HL7 v2 text handling shared by the inbound and outbound sides: decoding bytes, line ends,
splitting a file into messages, escaping, timestamps and a segment builder.

Real interfaces send CR (the standard), but files written by hand or by other tools come with
LF or CRLF line ends and sometimes a UTF-8 byte order mark; python-hl7 splits on CR only, so
everything is normalised to CR here first.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping

SEGMENT_END = "\r"
_LINE_ENDS = re.compile(r"\r\n|\n|\r")
# Batch and file envelopes around messages in a file (FHS/BHS ... BTS/FTS).
ENVELOPE_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})
DEFAULT_ENCODING = "^~\\&"


def decode(raw: bytes) -> str:
    """Bytes from a socket or a file: UTF-8 (with or without a BOM), else Latin-1 (8859/1),
    the two character sets HL7 v2 senders use in practice."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.removeprefix("\ufeff")


def normalise(text: str) -> str:
    """One message or many, with any line ends, to CR-separated segments without blank lines."""
    text = text.removeprefix("\ufeff")
    segments = [line for line in _LINE_ENDS.split(text) if line.strip()]
    return SEGMENT_END.join(segments)


def split_messages(text: str) -> list[str]:
    """Every message in `text` (a file may hold several), each starting with MSH.

    Batch/file envelope segments are dropped; lines before the first MSH are returned as a
    message of their own so that the caller can reject them by name.
    """
    messages: list[list[str]] = []
    for segment in normalise(text).split(SEGMENT_END):
        if not segment:
            continue
        if segment[:3] in ENVELOPE_SEGMENTS:
            continue
        if segment.startswith("MSH") or not messages:
            messages.append([segment])
        else:
            messages[-1].append(segment)
    return [SEGMENT_END.join(parts) for parts in messages]


def escape(value: object, encoding: str = DEFAULT_ENCODING) -> str:
    """Text for an HL7 field: delimiters escaped, line breaks folded to spaces."""
    text = " ".join(str(value or "").split())
    component, repetition, escape_char, subcomponent = (
        encoding[0],
        encoding[1],
        encoding[2],
        (encoding[3]),
    )
    text = text.replace(escape_char, f"{escape_char}E{escape_char}")
    for char, code in (("|", "F"), (component, "S"), (subcomponent, "T"), (repetition, "R")):
        text = text.replace(char, f"{escape_char}{code}{escape_char}")
    return text


def components(*values: object) -> str:
    """Escaped values joined with '^', trailing empty components dropped."""
    parts = [escape(v) for v in values]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts)


def segment(name: str, fields: Mapping[int, str]) -> str:
    """A segment from {field number: already-encoded text}; missing numbers are empty."""
    last = max((n for n, v in fields.items() if v), default=0)
    return "|".join([name] + [fields.get(n, "") for n in range(1, last + 1)])


def timestamp(moment: dt.datetime, time_zone: str | None = None) -> str:
    """DTM with seconds and UTC offset, in the given zone: 20250301140000-0500."""
    if time_zone:
        moment = moment.astimezone(zoneinfo.ZoneInfo(time_zone))
    return moment.strftime("%Y%m%d%H%M%S%z")


_DATE = re.compile(r"^(\d{4})(\d{2})?(\d{2})?")


def parse_date(value: str) -> dt.date | None:
    """The date part of an HL7 DT/DTM/TS (YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]); None if it has no
    full date or is not a calendar date."""
    value = (value or "").strip()
    if not re.fullmatch(r"\d{8}(\d{2}(\d{2}(\d{2}(\.\d{1,4})?)?)?)?([+-]\d{4})?", value):
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None
