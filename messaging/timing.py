"""When messages go out: retry back-off and quiet hours. Pure functions (no database).

Settings (read with defaults):
- MESSAGE_MAX_ATTEMPTS (int, default 5): attempts before a message is marked failed.
- MESSAGE_RETRY_BASE_SECONDS (default 60) and MESSAGE_RETRY_MAX_SECONDS (default 4 hours):
  the n-th retry waits base * 5**(n-1), capped: 1, 5, 25, 125 minutes, then 4 hours.
- QUIET_HOURS (default "21:00-08:00"): no message reaches a patient between these local times
  (the patient's home location time zone); "" or None turns quiet hours off.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.conf import settings

RETRY_FACTOR = 5
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_BASE_SECONDS = 60
DEFAULT_RETRY_MAX_SECONDS = 4 * 60 * 60
DEFAULT_QUIET_HOURS = "21:00-08:00"


def max_attempts() -> int:
    return max(1, int(getattr(settings, "MESSAGE_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)))


def retry_delay(
    attempt: int,
    *,
    base_seconds: float | None = None,
    cap_seconds: float | None = None,
) -> dt.timedelta:
    """How long to wait after failed attempt number `attempt` (1 = the first attempt)."""
    base = float(
        base_seconds
        if base_seconds is not None
        else getattr(settings, "MESSAGE_RETRY_BASE_SECONDS", DEFAULT_RETRY_BASE_SECONDS)
    )
    cap = float(
        cap_seconds
        if cap_seconds is not None
        else getattr(settings, "MESSAGE_RETRY_MAX_SECONDS", DEFAULT_RETRY_MAX_SECONDS)
    )
    exponent = max(0, attempt - 1)
    # Compare exponents rather than computing huge powers for large attempt numbers.
    seconds = cap if exponent > 60 else min(cap, base * RETRY_FACTOR**exponent)
    return dt.timedelta(seconds=max(0.0, seconds))


@dataclass(frozen=True)
class QuietHours:
    """[start, end) in local time; wraps past midnight when start > end (21:00-08:00)."""

    start: dt.time
    end: dt.time

    def contains(self, local_time: dt.time) -> bool:
        t = local_time.replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def is_quiet(self, when: dt.datetime, tz: dt.tzinfo) -> bool:
        return self.contains(when.astimezone(tz).time())

    def defer(self, when: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
        """`when` itself if it is outside quiet hours, else the first moment after them.

        A message is deferred, never dropped: the result is never earlier than `when` and never
        inside quiet hours in `tz` (daylight-saving gaps and repeated hours included).
        """
        if not self.is_quiet(when, tz):
            return when
        local = when.astimezone(tz)
        candidates = []
        for days in (0, 1):
            day = local.date() + dt.timedelta(days=days)
            for fold in (0, 1):
                candidate = dt.datetime.combine(day, self.end, tzinfo=tz).replace(fold=fold)
                candidates.append(candidate.astimezone(dt.UTC))
        for candidate in sorted(candidates):
            if candidate > when and not self.is_quiet(candidate, tz):
                return candidate.astimezone(when.tzinfo)
        # Unusual zones (a transition right at the end of quiet hours): walk forward.
        probe = when
        for _ in range(24 * 60):
            probe += dt.timedelta(minutes=1)
            if not self.is_quiet(probe, tz):
                return probe
        return probe  # pragma: no cover  (a day always has time outside quiet hours)


def _parse_time(value: object) -> dt.time:
    if isinstance(value, dt.time):
        return value
    return dt.time.fromisoformat(str(value).strip())


def parse_quiet_hours(value: object) -> QuietHours | None:
    """'21:00-08:00', ('21:00', '08:00') or (time, time); '' or None means no quiet hours."""
    if value in (None, "", ()):
        return None
    if isinstance(value, str):
        start_text, sep, end_text = value.replace("\u2013", "-").partition("-")
        if not sep:
            raise ValueError("QUIET_HOURS must look like '21:00-08:00'.")
        start, end = _parse_time(start_text), _parse_time(end_text)
    else:
        pair = list(value)  # type: ignore[call-overload]
        if len(pair) != 2:
            raise ValueError("QUIET_HOURS must be a start and an end time.")
        start, end = _parse_time(pair[0]), _parse_time(pair[1])
    if start == end:
        return None
    return QuietHours(start=start, end=end)


def quiet_hours() -> QuietHours | None:
    return parse_quiet_hours(getattr(settings, "QUIET_HOURS", DEFAULT_QUIET_HOURS))


def zone(name: str | None) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def defer_for_quiet_hours(when: dt.datetime, time_zone: str | None) -> dt.datetime:
    hours = quiet_hours()
    return hours.defer(when, zone(time_zone)) if hours else when
