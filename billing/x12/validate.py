"""Check an X12 837P text with pyx12 (the 005010X222A1 map) and collect its error lines.

`validate_837(text)` never raises: input pyx12 cannot read (a byte-order mark, non-ASCII bytes,
no fixed-width ISA, an implementation guide pyx12 has no map for) comes back as a failed
`ValidationResult` whose errors say why. The verdict is pyx12's own boolean from
`x12n_document()` (its `x12valid` script's exit status means nothing); the error lines come from
its JSON error tree, plus what it logs for problems it reports only in its log.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

PROFESSIONAL = "005010X222A1"
MAX_ERRORS = 200


@dataclass(frozen=True)
class ValidationResult:
    ok: bool
    errors: list[str] = field(default_factory=list)


class _Collector(logging.Handler):
    """Collects pyx12's log records written by this thread only."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and len(self.messages) < MAX_ERRORS:
            try:
                self.messages.append(record.getMessage())
            except Exception:  # a malformed log call inside pyx12
                self.messages.append(str(record.msg))


def _precheck(text: str) -> str | None:
    """Why pyx12 cannot even start on this text (it would crash or mislead), or None."""
    if text.startswith("\ufeff"):
        return "the file starts with a byte-order mark, which X12 does not allow"
    if not text.isascii():
        offset = next(i for i, char in enumerate(text) if not char.isascii())
        return f"non-ASCII character at offset {offset}"
    isa = text.lstrip()
    if not isa.startswith("ISA") or len(isa) < 106:
        return "the file does not start with a fixed-width ISA segment"
    element, terminator = isa[3], isa[105]
    if element.isalnum() or terminator.isalnum() or element == terminator:
        return "the ISA segment does not have the fixed width of 106 characters"
    segments = [part.strip("\r\n ") for part in isa.split(terminator)]
    versions = set()
    for seg in segments:
        fields = seg.split(element)
        if fields[0] == "ST":
            if len(fields) < 2 or fields[1] != "837":
                return f"not an 837 transaction (ST01={fields[1] if len(fields) > 1 else ''})"
            if len(fields) > 3:
                versions.add(fields[3])
        elif fields[0] == "GS" and len(fields) > 8:
            versions.add(fields[8])
    if not versions:
        return "no ST segment with an implementation guide version"
    if versions != {PROFESSIONAL}:
        found = ", ".join(sorted(versions))
        return f"expected 837P {PROFESSIONAL} in GS08/ST03, found {found}"
    return None


def _lines_from_json(doc: dict[str, Any]) -> list[str]:
    lines: list[str] = []

    def add(prefix: str, errors: list[dict[str, Any]]) -> None:
        for error in errors:
            lines.append(f"{prefix}: {error.get('err_str', '')} (code {error.get('err_cde')})")

    for isa in doc.get("interchanges", []):
        add(f"line {isa.get('cur_line')} ISA {isa.get('isa_trn_set_id')}", isa.get("errors", []))
        for gs in isa.get("groups", []):
            add(f"line {gs.get('cur_line')} GS {gs.get('gs_control_num')}", gs.get("errors", []))
            for st in gs.get("transactions", []):
                st_prefix = f"line {st.get('cur_line')} ST {st.get('trn_set_control_num')}"
                add(st_prefix, st.get("errors", []))
                for seg in st.get("segments", []):
                    prefix = f"line {seg.get('cur_line')} {seg.get('seg_id')}"
                    add(prefix, seg.get("errors", []))
                    for ele in seg.get("elements", []):
                        add(prefix, ele.get("errors", []))
    return lines


def validate_837(text: str) -> ValidationResult:
    """pyx12's verdict on an 837P text, with every error line it reported."""
    try:
        problem = _precheck(text)
    except Exception as exc:  # defensive: the precheck must never be the thing that raises
        return ValidationResult(ok=False, errors=[f"unreadable X12: {exc}"])
    if problem:
        return ValidationResult(ok=False, errors=[problem])

    import pyx12.errors
    import pyx12.params
    import pyx12.x12n_document

    logger = logging.getLogger("pyx12")
    collector = _Collector()
    logger.addHandler(collector)
    previous_level = logger.level
    if logger.getEffectiveLevel() > logging.ERROR:
        logger.setLevel(logging.ERROR)
    fd_json = io.StringIO()
    try:
        ok = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(),
            src_file=io.StringIO(text),
            fd_997=None,
            fd_html=None,
            fd_xmldoc=None,
            fd_json=fd_json,
        )
    except pyx12.errors.EngineError as exc:
        return ValidationResult(ok=False, errors=[f"pyx12 engine error: {exc}"])
    except Exception as exc:  # pyx12 raises on some malformed input instead of reporting it
        return ValidationResult(ok=False, errors=[f"pyx12 could not read the file: {exc!r}"])
    finally:
        logger.removeHandler(collector)
        logger.setLevel(previous_level)

    errors: list[str] = []
    try:
        errors = _lines_from_json(json.loads(fd_json.getvalue() or "{}"))
    except (ValueError, AttributeError, TypeError):
        errors = []
    if not errors:  # problems pyx12 reports only in its log (e.g. an unreadable envelope)
        errors = list(collector.messages)
    errors = errors[:MAX_ERRORS]
    if ok and not errors:
        return ValidationResult(ok=True, errors=[])
    if not errors:
        errors = ["pyx12 reported the file invalid without an error message"]
    return ValidationResult(ok=False, errors=errors)
