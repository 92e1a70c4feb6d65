"""The reference data of availability, cached per process: practitioners' availability rules
(with their appointment types and changed occurrences), exceptions (holidays, leave, blocked
time), opening hours and locations.

Booking, the slot finder and the calendars read this on every call; loading it from the
database each time (three or four queries, each built and compiled by the ORM) was most of a
booking's cost. Here it is loaded once per practitioner and per location, and kept until the
setup changes: every call reads the token of scheduling_setupversion (one indexed read), which
database triggers change on any write to those tables (migration 0005), so a change made by
any process, the admin or plain SQL is seen by the next call everywhere. A process that finds
no token row (e.g. a test database just flushed) does not cache at all.

What is cached is shared by the threads of a process and must be treated as read-only.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connections

from core.models import Location
from scheduling.models import (
    AvailabilityException,
    AvailabilityOccurrence,
    AvailabilityRule,
    OpeningHours,
)

CURRENT_VERSION_SQL = "SELECT token FROM scheduling_setupversion ORDER BY id LIMIT 1"


class Override(NamedTuple):
    """One occurrence of a rule changed (new times) or cancelled (AvailabilityOccurrence)."""

    is_cancelled: bool
    start_time: dt.time | None
    end_time: dt.time | None


@dataclass(frozen=True)
class CachedRule:
    """An active rule with its location loaded, the appointment types it is limited to (empty:
    any) and its changed occurrences by original date."""

    rule: AvailabilityRule
    type_ids: frozenset[int]
    overrides: dict[dt.date, Override]


@dataclass
class Setup:
    """What has been loaded for one token; filled practitioner by practitioner and location by
    location as calls ask for them."""

    token: str | None
    rules: dict[int, list[CachedRule]] = field(default_factory=dict)
    practitioner_exceptions: dict[int, list[AvailabilityException]] = field(default_factory=dict)
    locations: dict[int, Location | None] = field(default_factory=dict)
    opening: dict[int, dict[int, list[tuple[dt.time, dt.time]]] | None] = field(
        default_factory=dict
    )
    location_exceptions: dict[int, list[AvailabilityException]] = field(default_factory=dict)

    def load(self, practitioner_ids: Iterable[int], location_ids: Iterable[int]) -> None:
        """Load what is missing for these practitioners and locations (and the locations of
        the practitioners' rules)."""
        missing = sorted(set(practitioner_ids) - set(self.rules))
        if missing:
            self._load_practitioners(missing)
        wanted = set(location_ids)
        for pid in missing:
            wanted.update(cached.rule.location_id for cached in self.rules[pid])
        absent = sorted(wanted - set(self.opening))
        if absent:
            self._load_locations(absent)

    def _load_practitioners(self, ids: list[int]) -> None:
        rules = list(
            AvailabilityRule.objects.filter(practitioner_id__in=ids, is_active=True)
            .select_related("location")
            .order_by("id")
        )
        rule_ids = [rule.pk for rule in rules]
        types: dict[int, set[int]] = defaultdict(set)
        through = AvailabilityRule.appointment_types.through.objects.filter(
            availabilityrule_id__in=rule_ids
        )
        for rule_id, type_id in through.values_list("availabilityrule_id", "appointmenttype_id"):
            types[rule_id].add(type_id)
        overrides: dict[int, dict[dt.date, Override]] = defaultdict(dict)
        for rule_id, day, cancelled, start, end in AvailabilityOccurrence.objects.filter(
            rule_id__in=rule_ids
        ).values_list("rule_id", "original_date", "is_cancelled", "start_time", "end_time"):
            overrides[rule_id][day] = Override(cancelled, start, end)
        by_practitioner: dict[int, list[CachedRule]] = {pid: [] for pid in ids}
        for rule in rules:
            by_practitioner[rule.practitioner_id].append(
                CachedRule(rule, frozenset(types.get(rule.pk, ())), overrides.get(rule.pk, {}))
            )
            self.locations.setdefault(rule.location_id, rule.location)
        exceptions: dict[int, list[AvailabilityException]] = {pid: [] for pid in ids}
        for exc in AvailabilityException.objects.filter(practitioner_id__in=ids).order_by(
            "start", "id"
        ):
            exceptions[exc.practitioner_id].append(exc)  # type: ignore[index]
        self.rules.update(by_practitioner)
        self.practitioner_exceptions.update(exceptions)

    def _load_locations(self, ids: list[int]) -> None:
        unknown = [pk for pk in ids if pk not in self.locations]
        if unknown:
            found = Location.objects.in_bulk(unknown)
            for pk in unknown:
                self.locations[pk] = found.get(pk)
        opening: dict[int, dict[int, list[tuple[dt.time, dt.time]]] | None] = dict.fromkeys(ids)
        for hours in OpeningHours.objects.filter(location_id__in=ids).order_by(
            "location_id", "weekday", "opens"
        ):
            days = opening[hours.location_id]
            if days is None:
                days = opening[hours.location_id] = defaultdict(list)
            days[hours.weekday].append((hours.opens, hours.closes))
        exceptions: dict[int, list[AvailabilityException]] = {pk: [] for pk in ids}
        for exc in AvailabilityException.objects.filter(
            practitioner__isnull=True, location_id__in=ids
        ).order_by("start", "id"):
            exceptions[exc.location_id].append(exc)
        self.opening.update(opening)
        self.location_exceptions.update(exceptions)


_lock = threading.Lock()
_cached: dict[tuple[str, str], Setup] = {}


def current_token(using: str = "default") -> str | None:
    with connections[using].cursor() as cursor:
        cursor.execute(CURRENT_VERSION_SQL)
        row = cursor.fetchone()
    return str(row[0]) if row else None


# `setup_for(token=...)` default: read the token now.
UNREAD = object()


def setup_for(
    practitioner_ids: Iterable[int],
    location_ids: Iterable[int],
    using: str = "default",
    *,
    token: str | object | None = UNREAD,
) -> Setup:
    """The reference data, with these practitioners and locations loaded: the process's cached
    copy while the setup is unchanged, else a fresh one (cached again when there is a token).
    `token`: the token as the caller just read it in the current transaction (with
    CURRENT_VERSION_SQL, sent with its other statements), to save reading it here."""
    token = current_token(using) if token is UNREAD else token
    if token is not None and not isinstance(token, str):
        raise TypeError("token: give the text read with CURRENT_VERSION_SQL, or None")
    key = (using, str(connections[using].settings_dict.get("NAME")))
    practitioner_ids, location_ids = list(practitioner_ids), list(location_ids)
    if token is None:
        setup = Setup(token=None)
        setup.load(practitioner_ids, location_ids)
        return setup
    with _lock:
        cached = _cached.get(key)
        if cached is None or cached.token != token:
            cached = _cached[key] = Setup(token=token)
        cached.load(practitioner_ids, location_ids)
    return cached


def clear() -> None:
    """Forget every cached copy (the next call loads again)."""
    with _lock:
        _cached.clear()
