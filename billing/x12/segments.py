"""X12 tokenizer: bytes in, delimiters and segments (lists of element strings) out.

Delimiters come from the interchange header, as the standard defines them:

* the element separator is the character right after ``ISA`` (position 3);
* ISA11 is the repetition separator (5010) when it is not a letter or digit;
* ISA16 is a single character, the component separator; the character right after it is the
  segment terminator. The 16 ISA separators are counted rather than fixed positions used, so a
  header whose fields were not padded to their fixed widths is still read.

Carriage returns and line feeds after a terminator are ignored, and so is a UTF-8 byte order mark.

A file WITHOUT an envelope (a bare ``ST..SE``, as some payer portals hand out) is accepted: the
element separator is the character after ``ST``; the segment terminator is ``~`` when the text
holds one, else a line feed (one segment per line), and the component separator is ``:``. Callers
that need more (such as the 835 parser, which recognises a ``>`` written by mistake inside a
composite) decide that per element.

Every problem raises `X12SyntaxError` naming the segment (1-based position in the file, id) and
the problem; nothing else escapes for any input.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat

_BOM = "\ufeff"
_BLANKS = " \r\n\t"  # around segments: ignored


class X12SyntaxError(ValueError):
    """A refusal that names where: segment position (1-based, 0 = the file), segment id,
    element (e.g. ``BPR16``, or "" for the whole segment) and what is wrong."""

    def __init__(self, segment_index: int, segment_id: str, element: str, message: str) -> None:
        self.segment_index = segment_index
        self.segment_id = segment_id
        self.element = element
        self.message = message
        super().__init__(self.describe())

    def describe(self) -> str:
        if self.segment_index <= 0:
            return self.message
        where = f"segment {self.segment_index} ({self.segment_id or '?'})"
        if self.element:
            where += f" {self.element}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str
    component: str
    segment: str
    repetition: str | None
    enveloped: bool


def _is_delimiter(char: str) -> bool:
    return len(char) == 1 and not char.isalnum() and char not in " "


def decode(data: bytes | str) -> str:
    """The text of an X12 file: BOM removed, refused when it is not UTF-8 text."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise X12SyntaxError(
                0, "", "", f"the file is not text: byte {exc.start + 1} is not valid UTF-8"
            ) from None
    else:
        text = data
    if text.startswith(_BOM):
        text = text[1:]
    return text.lstrip(" \t\r\n")


def detect_delimiters(text: str) -> Delimiters:
    """Delimiters of `text` (already decoded, leading blanks removed)."""
    if text.startswith("ISA"):
        return _isa_delimiters(text)
    if text.startswith("ST") and len(text) > 2:
        element = text[2]
        if not _is_delimiter(element):
            raise X12SyntaxError(1, "ST", "", f"no element separator after ST (found {element!r})")
        if "~" in text and element != "~":
            terminator = "~"
        elif "\n" in text.strip():
            terminator = "\n"
        else:
            raise X12SyntaxError(
                1, "ST", "", "no segment terminator found (expected '~' or one segment per line)"
            )
        component = ":" if element != ":" and terminator != ":" else ">"
        return Delimiters(element, component, terminator, None, enveloped=False)
    if not text:
        raise X12SyntaxError(0, "", "", "the file is empty")
    raise X12SyntaxError(
        1, text[:3].strip(), "", "the file does not start with an ISA or ST segment"
    )


def _isa_delimiters(text: str) -> Delimiters:
    if len(text) < 4:
        raise X12SyntaxError(1, "ISA", "", "the interchange header is truncated")
    element = text[3]
    if not _is_delimiter(element):
        raise X12SyntaxError(1, "ISA", "", f"no element separator after ISA (found {element!r})")
    position = 3  # the first separator; ISA16 follows the sixteenth
    for number in range(2, 17):
        position = text.find(element, position + 1)
        if position < 0 or position > 200:
            raise X12SyntaxError(
                1, "ISA", f"ISA{number:02d}", "the interchange header is truncated or malformed"
            )
    if position + 2 >= len(text):
        raise X12SyntaxError(1, "ISA", "ISA16", "the interchange header is truncated")
    component = text[position + 1]
    terminator = text[position + 2]
    if not _is_delimiter(component):
        raise X12SyntaxError(
            1, "ISA", "ISA16", f"the component separator {component!r} is a letter or digit"
        )
    if terminator.isalnum() or terminator == " ":
        raise X12SyntaxError(
            1, "ISA", "ISA16", "ISA16 must be one character followed by the segment terminator"
        )
    if len({element, component, terminator}) != 3:
        raise X12SyntaxError(
            1, "ISA", "ISA16", "element separator, component separator and terminator must differ"
        )
    fields = text[:position].split(element)
    repetition = fields[11] if len(fields) > 11 else ""
    if not (len(repetition) == 1 and _is_delimiter(repetition)) or repetition in {
        element,
        component,
        terminator,
    }:
        repetition_char: str | None = None
    else:
        repetition_char = repetition
    return Delimiters(element, component, terminator, repetition_char, enveloped=True)


def _is_segment_id(tag: str) -> bool:
    return (
        2 <= len(tag) <= 3
        and tag.isascii()
        and tag.isalnum()
        and tag.isupper()
        and tag[0].isalpha()
    )


def tokenize(data: bytes | str) -> tuple[Delimiters, list[list[str]]]:
    """Split a file into segments; each segment is its list of elements, element 0 the id."""
    text = decode(data)
    delimiters = detect_delimiters(text)
    element = delimiters.element
    pieces = text.split(delimiters.segment)
    # The whole file in two C-level passes; each distinct segment id is checked once. A file
    # with a bad id is read again piece by piece, which names the first bad one.
    segments = [piece.split(element) for piece in map(str.strip, pieces, repeat(_BLANKS)) if piece]
    if not all(map(_is_segment_id, {segment[0] for segment in segments})):
        error = _first_bad_id(pieces, element)
        if error is not None:
            raise error
    if not segments:
        raise X12SyntaxError(0, "", "", "the file holds no segments")
    return delimiters, segments


def _first_bad_id(pieces: list[str], element: str) -> X12SyntaxError | None:
    """The refusal of the first piece whose segment id is not one (None when there is none)."""
    count = 0
    for number, raw in enumerate(pieces, start=1):
        piece = raw.strip(_BLANKS)
        if not piece:
            continue
        tag = piece.split(element, 1)[0]
        if not _is_segment_id(tag):
            shown = tag[:10]
            return X12SyntaxError(
                count + 1,
                shown,
                "",
                f"{shown!r} is not a segment identifier (piece {number} of the file)",
            )
        count += 1
    return None
