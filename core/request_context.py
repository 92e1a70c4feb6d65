"""Per-request context (request id, client address, user agent, session) for the audit trail."""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""
    session_ref: str = ""


_EMPTY = RequestContext()
_current: ContextVar[RequestContext] = ContextVar("patientdesk_request", default=_EMPTY)


def current() -> RequestContext:
    return _current.get()


def set_current(ctx: RequestContext) -> object:
    return _current.set(ctx)


def reset(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def session_reference(session_key: str | None) -> str:
    """A stable, non-reversible reference to a session (the key itself is a credential)."""
    if not session_key:
        return ""
    return hashlib.sha256(session_key.encode()).hexdigest()[:16]


def update(**changes: str) -> None:
    """Fill in fields learnt later in the request (the session, once sessions are loaded)."""
    from dataclasses import replace

    _current.set(replace(_current.get(), **changes))
