"""The HMAC chain over audit rows, and its verification.

Each row stores the previous row's HMAC (`prev_hash`, GENESIS for sequence 1) and its own
HMAC-SHA256 over every chained field, keyed by settings.AUDIT_HMAC_KEY, which lives outside the
database. `verify_chain` walks the rows in sequence order and reports the first row that breaks
the chain; `manage.py verify_audit` is its command-line face.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

GENESIS = "0" * 64

CHAINED_FIELDS = (
    "sequence",
    "occurred_at",
    "user_id",
    "username",
    "roles",
    "session_ref",
    "patient_public_id",
    "action",
    "event",
    "category",
    "object_type",
    "object_id",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "reason",
    "fields",
    "prev_hash",
)

# Problems a row can have, in the words the command prints.
HASH_MISMATCH = "hash mismatch"
BROKEN_LINK = "broken link"
MISSING_SEQUENCE = "missing sequence"
ANCHOR_MISMATCH = "anchor mismatch"
TAIL_TRUNCATED = "tail truncated"


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)


def compute_hmac(row: dict[str, Any]) -> str:
    payload = json.dumps(
        {name: _canonical(row.get(name)) for name in CHAINED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
    )
    key = settings.AUDIT_HMAC_KEY.encode()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Anchor:
    """A (sequence, HMAC) pair kept outside the database, e.g. printed by the previous run."""

    sequence: int
    hmac: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """'SEQ:HMAC' -> Anchor; ValueError with a readable message otherwise."""
        seq_text, sep, digest = text.strip().partition(":")
        digest = digest.strip().lower()
        if not sep or not seq_text.strip().isdigit() or int(seq_text) < 1:
            raise ValueError(f"'{text.strip()}' is not SEQ:HMAC (e.g. 1200:3fa4...).")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("The HMAC part of the anchor must be 64 hexadecimal characters.")
        return cls(sequence=int(seq_text), hmac=digest)

    def __str__(self) -> str:
        return f"{self.sequence}:{self.hmac}"


@dataclass(frozen=True)
class Problem:
    sequence: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"sequence {self.sequence}: {self.kind}: {self.detail}"


@dataclass
class VerifyResult:
    count: int = 0
    first_sequence: int | None = None
    last_sequence: int | None = None
    last_hmac: str = ""
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def intact(self) -> bool:
        return self.problem_count == 0

    @property
    def first_bad_sequence(self) -> int | None:
        return self.problems[0].sequence if self.problems else None

    @property
    def anchor(self) -> Anchor | None:
        if self.last_sequence is None:
            return None
        return Anchor(sequence=self.last_sequence, hmac=self.last_hmac)

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "events": self.count,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "last_hmac": self.last_hmac or None,
            # An anchor is only worth keeping from a chain that verified.
            "anchor": str(self.anchor) if self.anchor and self.intact else None,
            "first_bad_sequence": self.first_bad_sequence,
            "problem_count": self.problem_count,
            "problems": [
                {"sequence": p.sequence, "problem": p.kind, "detail": p.detail}
                for p in self.problems
            ],
        }


VERIFY_COLUMNS = (*CHAINED_FIELDS, "hmac")


def iter_rows(chunk_size: int = 5000) -> Iterator[dict[str, Any]]:
    """Every audit row in sequence order, fetched in keyset chunks (constant memory)."""
    from audit.models import AuditEvent

    after = 0
    while True:
        chunk = list(
            AuditEvent.objects.filter(sequence__gt=after)
            .order_by("sequence")
            .values(*VERIFY_COLUMNS)[:chunk_size]
        )
        if not chunk:
            return
        yield from chunk
        after = chunk[-1]["sequence"]


def verify_chain(
    rows: Iterator[dict[str, Any]],
    *,
    expect_last: Anchor | None = None,
    max_problems: int = 20,
    on_row: Callable[[int], object] | None = None,
) -> VerifyResult:
    """Check every row: its HMAC, its link to the previous row, and contiguous sequences from 1.

    Problems are listed in sequence order (at most `max_problems`; `problem_count` counts all).
    """
    result = VerifyResult()

    def problem(sequence: int, kind: str, detail: str) -> None:
        result.problem_count += 1
        if len(result.problems) < max_problems:
            result.problems.append(Problem(sequence, kind, detail))

    expected_sequence = 1
    previous_hmac = GENESIS
    anchor_seen = False
    for row in rows:
        sequence = int(row["sequence"])
        if result.first_sequence is None:
            result.first_sequence = sequence
        if sequence != expected_sequence:
            missing = (
                f"{expected_sequence}"
                if sequence - expected_sequence == 1
                else f"{expected_sequence}..{sequence - 1}"
            )
            problem(sequence, MISSING_SEQUENCE, f"sequence {missing} missing before it (deleted)")
        if row["prev_hash"] != previous_hmac:
            problem(
                sequence,
                BROKEN_LINK,
                "prev_hash does not match the HMAC of the row before it",
            )
        if not hmac.compare_digest(compute_hmac(row), str(row["hmac"])):
            problem(sequence, HASH_MISMATCH, "the row's content does not match its HMAC (edited)")
        if expect_last is not None and sequence == expect_last.sequence:
            anchor_seen = True
            if row["hmac"] != expect_last.hmac:
                problem(sequence, ANCHOR_MISMATCH, "the HMAC differs from the expected anchor")
        result.count += 1
        result.last_sequence = sequence
        result.last_hmac = str(row["hmac"])
        expected_sequence = sequence + 1
        previous_hmac = str(row["hmac"])
        if on_row is not None:
            on_row(sequence)
    # A missing anchored row inside the chain already shows as a gap; here, only the tail.
    if expect_last is not None and not anchor_seen:
        last = result.last_sequence or 0
        if last < expect_last.sequence:
            problem(
                last + 1,
                TAIL_TRUNCATED,
                f"the chain ends at sequence {last} but the anchor expects sequence "
                f"{expect_last.sequence}: rows {last + 1}..{expect_last.sequence} are gone",
            )
    return result
