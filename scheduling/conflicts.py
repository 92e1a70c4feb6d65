"""What a refused booking clashes with, in words a scheduler can act on.

`BookingConflict` is raised by the booking services (and re-exported from scheduling.services);
the API answers it with 409 problem+json listing `conflicts`, the UI shows `message`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Literal

ConflictKind = Literal[
    "practitioner", "resource", "patient", "availability", "opening_hours", "exception", "past"
]

_LEADS: dict[str, str] = {
    "practitioner": "{label} is already booked",
    "resource": "{label} is in use",
    "patient": "The patient already has {label}",
    "availability": "{label} is not available",
    "opening_hours": "{label} is closed",
    "exception": "{label}",
    "past": "{label}",
}


@dataclass(frozen=True)
class Conflict:
    """One thing a booking clashes with. `object_id` is the public id of the practitioner,
    resource, appointment, location or exception concerned ("" when there is none)."""

    kind: ConflictKind
    label: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    object_id: str = ""
    time_zone: str = "UTC"

    def describe(self) -> str:
        text = _LEADS[self.kind].format(label=self.label)
        if self.start is not None and self.end is not None:
            tz = zoneinfo.ZoneInfo(self.time_zone)
            start, end = self.start.astimezone(tz), self.end.astimezone(tz)
            if start.date() == end.date():
                text += f" {start:%a %d %b %Y}, from {start:%H:%M} to {end:%H:%M}"
            else:
                text += f" from {start:%a %d %b %Y %H:%M} to {end:%a %d %b %Y %H:%M}"
        return text + "."

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "object_id": self.object_id,
        }


class BookingConflict(Exception):  # noqa: N818  (a refusal the caller shows, named as in the contract)
    """The booking clashes with something; `conflicts` lists everything it clashes with."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = list(conflicts)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if not self.conflicts:
            return "This time can no longer be booked."
        return " ".join(conflict.describe() for conflict in self.conflicts)

    def prefixed(self, prefix: str) -> list[Conflict]:
        """The conflicts with `prefix` before each label (series: the occurrence date)."""
        return [
            Conflict(
                kind=c.kind,
                label=f"{prefix}: {c.label}",
                start=c.start,
                end=c.end,
                object_id=c.object_id,
                time_zone=c.time_zone,
            )
            for c in self.conflicts
        ]
