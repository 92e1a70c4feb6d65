"""Signed links in messages: confirm or cancel an appointment, accept or decline a waitlist
offer, unsubscribe from email. No login and no PHI: the token carries only a purpose and the
object's public UUID, signed with SECRET_KEY (django.core.signing.TimestampSigner).

A token is valid for its purpose only, until the object's own deadline (the appointment start,
the offer's expiry) and never longer than MESSAGE_LINK_MAX_AGE_DAYS (default 120 days; unsubscribe
links: a year).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "patientdesk.messaging.link"
DEFAULT_MAX_AGE_DAYS = 120
UNSUBSCRIBE_MAX_AGE_DAYS = 366


class Purpose(StrEnum):
    CONFIRM = "confirm"
    CANCEL = "cancel"
    OFFER_ACCEPT = "accept"
    OFFER_DECLINE = "decline"
    UNSUBSCRIBE = "unsubscribe"


URL_NAMES = {
    Purpose.CONFIRM: "messaging:appointment_confirm",
    Purpose.CANCEL: "messaging:appointment_cancel",
    Purpose.OFFER_ACCEPT: "messaging:offer_accept",
    Purpose.OFFER_DECLINE: "messaging:offer_decline",
    Purpose.UNSUBSCRIBE: "messaging:unsubscribe",
}


class LinkError(Exception):
    """The link cannot be used; `expired` tells an old link from a broken or altered one."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def max_age(purpose: Purpose) -> dt.timedelta:
    if purpose is Purpose.UNSUBSCRIBE:
        return dt.timedelta(days=UNSUBSCRIBE_MAX_AGE_DAYS)
    days = int(getattr(settings, "MESSAGE_LINK_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))
    return dt.timedelta(days=max(1, days))


def make_token(purpose: Purpose, public_id: uuid.UUID) -> str:
    return _signer().sign_object({"p": str(purpose), "id": public_id.hex})


def read_token(token: str, purpose: Purpose) -> uuid.UUID:
    """The public id the token was made for, or LinkError (tampered, wrong purpose, too old)."""
    try:
        data = _signer().unsign_object(token, max_age=max_age(purpose))
    except signing.SignatureExpired as exc:
        raise LinkError("This link has expired.", expired=True) from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise LinkError("This link is not valid. It may have been altered or cut short.") from exc
    if not isinstance(data, dict) or data.get("p") != str(purpose):
        raise LinkError("This link is not valid for this action.")
    try:
        return uuid.UUID(hex=str(data.get("id")))
    except ValueError as exc:
        raise LinkError("This link is not valid.") from exc


def base_url() -> str:
    """The address patients reach the site at (links in messages), e.g. https://desk.example.org"""
    return str(getattr(settings, "PATIENTDESK_BASE_URL", "http://127.0.0.1:8000")).rstrip("/")


def absolute(path: str) -> str:
    return base_url() + path


def link_url(purpose: Purpose, public_id: uuid.UUID) -> str:
    return absolute(reverse(URL_NAMES[purpose], kwargs={"token": make_token(purpose, public_id)}))
