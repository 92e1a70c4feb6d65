"""The HMAC chain over audit rows."""

from __future__ import annotations

import hashlib
import hmac
import json
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
