"""Interface settings, read from django.conf.settings at call time (so tests can override them).

Every value has a default; config/settings.py maps them from the environment (docs/deploy.md):

PATIENTDESK_HL7_SENDING_APPLICATION   MSH-3 of what we send, MSH-5 we expect (default PATIENTDESK)
PATIENTDESK_HL7_SENDING_FACILITY      MSH-4 of what we send (default: the location's code)
PATIENTDESK_HL7_RECEIVING_APPLICATION MSH-5 of the SIU feed (default empty)
PATIENTDESK_HL7_RECEIVING_FACILITY    MSH-6 of the SIU feed (default empty)
PATIENTDESK_HL7_PROCESSING_ID         MSH-11 of the SIU feed: P, T or D (default P)
PATIENTDESK_HL7_MRN_AUTHORITY         assigning authority of our MRN in PID-3 (default PATIENTDESK)
PATIENTDESK_HL7_OUT_DIR               SIU file drop directory; empty = no file drop
PATIENTDESK_HL7_OUT_HOST / _OUT_PORT  SIU MLLP destination; empty host = no MLLP feed
PATIENTDESK_HL7_ACK_TIMEOUT           seconds to wait for a connection and for the ACK (default 10)
PATIENTDESK_HL7_MAX_ATTEMPTS          tries before a message is marked failed (default 6)
PATIENTDESK_HL7_RETRY_SECONDS         first back-off; doubles each try, at most 1 hour (default 30)
PATIENTDESK_HL7_PAYLOAD_RETENTION_DAYS  delivered SIU payloads are blanked after this (default 30)
PATIENTDESK_HL7_DEFAULT_LOCATION      location code for inbound ADT when MSH-6 names none
PATIENTDESK_ICAL_PAST_DAYS / _FUTURE_DAYS  the calendar feed's window (default 30 / 90)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value in (None, "") else value


def sending_application() -> str:
    return str(_get("PATIENTDESK_HL7_SENDING_APPLICATION", "PATIENTDESK"))


def sending_facility() -> str:
    return str(_get("PATIENTDESK_HL7_SENDING_FACILITY", ""))


def receiving_application() -> str:
    return str(_get("PATIENTDESK_HL7_RECEIVING_APPLICATION", ""))


def receiving_facility() -> str:
    return str(_get("PATIENTDESK_HL7_RECEIVING_FACILITY", ""))


def processing_id() -> str:
    value = str(_get("PATIENTDESK_HL7_PROCESSING_ID", "P")).upper()
    return value if value in {"P", "T", "D"} else "P"


def mrn_authority() -> str:
    return str(_get("PATIENTDESK_HL7_MRN_AUTHORITY", "PATIENTDESK"))


def out_dir() -> str:
    return str(_get("PATIENTDESK_HL7_OUT_DIR", ""))


def out_host() -> str:
    return str(_get("PATIENTDESK_HL7_OUT_HOST", ""))


def out_port() -> int:
    return int(_get("PATIENTDESK_HL7_OUT_PORT", 0))


def ack_timeout() -> float:
    return float(_get("PATIENTDESK_HL7_ACK_TIMEOUT", 10))


def max_attempts() -> int:
    return max(1, int(_get("PATIENTDESK_HL7_MAX_ATTEMPTS", 6)))


def retry_seconds() -> float:
    return max(1.0, float(_get("PATIENTDESK_HL7_RETRY_SECONDS", 30)))


def payload_retention_days() -> int:
    return max(0, int(_get("PATIENTDESK_HL7_PAYLOAD_RETENTION_DAYS", 30)))


def default_location_code() -> str:
    return str(_get("PATIENTDESK_HL7_DEFAULT_LOCATION", ""))


def ical_past_days() -> int:
    return max(0, int(_get("PATIENTDESK_ICAL_PAST_DAYS", 30)))


def ical_future_days() -> int:
    return max(1, int(_get("PATIENTDESK_ICAL_FUTURE_DAYS", 90)))
