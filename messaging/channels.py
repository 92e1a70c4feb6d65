"""Channels hand a rendered message to the outside world and report whether it was ACCEPTED.

- Email goes through Django's email backend (the SMTP backend in production: EMAIL_HOST,
  EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS/SSL, EMAIL_TIMEOUT,
  DEFAULT_FROM_EMAIL). Accepted means the backend reported one message sent without raising.
- SMS goes through PATIENTDESK_SMS_BACKEND: HttpSmsBackend POSTs JSON {to, body, callback_url}
  with `Authorization: Bearer PATIENTDESK_SMS_GATEWAY_TOKEN` to PATIENTDESK_SMS_GATEWAY_URL and
  counts as accepted only on a 2xx answer carrying a message id; ConsoleSmsBackend (the demo)
  prints the text with the number masked and counts as accepted. ConsoleEmailBackend is the
  demo's email backend, likewise masking the address.

Errors carry no PHI: an exception class, an SMTP or HTTP status code, never an address or text.
"""

from __future__ import annotations

import json
import smtplib
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import make_msgid
from typing import IO, Any, Protocol

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.module_loading import import_string

DEFAULT_SMS_BACKEND = "messaging.channels.ConsoleSmsBackend"
DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class SendResult:
    accepted: bool
    provider_message_id: str = ""
    error: str = ""
    permanent: bool = False  # a retry cannot help (a 5xx SMTP reply, a 4xx HTTP answer)

    @classmethod
    def ok(cls, provider_message_id: str) -> SendResult:
        return cls(accepted=True, provider_message_id=provider_message_id)

    @classmethod
    def failed(cls, error: str, *, permanent: bool = False) -> SendResult:
        return cls(accepted=False, error=error[:200], permanent=permanent)


def mask_recipient(value: str) -> str:
    """'+15552013344' -> '+1•••••••44'; 'ann@example.org' -> 'a•••@example.org'."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}•••@{domain}"
    return value[:2] + "•" * max(0, len(value) - 4) + value[-2:]


# --- email -----------------------------------------------------------------------------------


def _smtp_code(exc: BaseException) -> int | None:
    code = getattr(exc, "smtp_code", None)
    if isinstance(code, int):
        return code
    recipients = getattr(exc, "recipients", None)
    if isinstance(recipients, dict):  # SMTPRecipientsRefused: {address: (code, text)}
        for answer in recipients.values():
            if isinstance(answer, tuple) and answer and isinstance(answer[0], int):
                return answer[0]
    return None


def send_email(
    *, to: str, subject: str, body: str, headers: dict[str, str] | None = None
) -> SendResult:
    domain = str(getattr(settings, "PATIENTDESK_MESSAGE_ID_DOMAIN", "patientdesk.local"))
    message_id = make_msgid(domain=domain)
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": message_id, **(headers or {})},
    )
    timeout = getattr(settings, "EMAIL_TIMEOUT", None) or DEFAULT_TIMEOUT_SECONDS
    try:
        connection = get_connection(fail_silently=False, timeout=timeout)
        sent = connection.send_messages([message])
    except smtplib.SMTPException as exc:
        code = _smtp_code(exc)
        label = f"SMTP {code} ({type(exc).__name__})" if code else f"SMTP {type(exc).__name__}"
        return SendResult.failed(label, permanent=code is not None and 500 <= code < 600)
    except OSError as exc:
        return SendResult.failed(f"mail server unreachable ({type(exc).__name__})")
    if sent != 1:
        return SendResult.failed("the mail backend did not accept the message")
    return SendResult.ok(message_id.strip("<>"))


class ConsoleEmailBackend(BaseEmailBackend):
    """For the demo (EMAIL_BACKEND = "messaging.channels.ConsoleEmailBackend"): prints each email
    with the address masked, where Django's console backend would print the address."""

    def __init__(self, *args: Any, stream: IO[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stream = stream

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        stream = self.stream or sys.stdout
        for message in email_messages:
            recipients = ", ".join(mask_recipient(r) for r in message.recipients())
            message_id = message.extra_headers.get("Message-ID", "")
            stream.write(
                f"[email {message_id} to {recipients}]\nSubject: {message.subject}\n\n"
                f"{message.body}\n"
            )
        stream.flush()
        return len(email_messages)


# --- SMS ---------------------------------------------------------------------------------------


class SmsBackend(Protocol):
    def send(self, *, to: str, body: str, callback_url: str) -> SendResult: ...


class ConsoleSmsBackend:
    """For the demo: writes the text to stdout (the number masked) and counts it as accepted."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def send(self, *, to: str, body: str, callback_url: str) -> SendResult:
        stream = self.stream or sys.stdout
        message_id = f"console-{uuid.uuid4().hex}"
        stream.write(f"[SMS {message_id} to {mask_recipient(to)}]\n{body}\n")
        stream.flush()
        return SendResult.ok(message_id)


class HttpSmsBackend:
    """POST {to, body, callback_url} as JSON with a bearer token; 2xx + an id = accepted."""

    def __init__(
        self, url: str | None = None, token: str | None = None, timeout: float | None = None
    ) -> None:
        self.url = url if url is not None else getattr(settings, "PATIENTDESK_SMS_GATEWAY_URL", "")
        self.token = (
            token if token is not None else getattr(settings, "PATIENTDESK_SMS_GATEWAY_TOKEN", "")
        )
        self.timeout = float(
            timeout
            if timeout is not None
            else getattr(settings, "PATIENTDESK_SMS_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)
        )

    def send(self, *, to: str, body: str, callback_url: str) -> SendResult:
        if not self.url.startswith(("http://", "https://")):
            return SendResult.failed("PATIENTDESK_SMS_GATEWAY_URL is not configured")
        payload = json.dumps({"to": to, "body": body, "callback_url": callback_url}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")  # noqa: S310  (scheme checked above)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status = response.status
                raw = response.read(64 * 1024)
        except urllib.error.HTTPError as exc:
            retryable = exc.code >= 500 or exc.code in (408, 429)
            return SendResult.failed(
                f"SMS gateway answered HTTP {exc.code}", permanent=not retryable
            )
        except TimeoutError:
            return SendResult.failed("SMS gateway timed out")
        except (urllib.error.URLError, OSError) as exc:
            if isinstance(getattr(exc, "reason", None), TimeoutError):
                return SendResult.failed("SMS gateway timed out")
            return SendResult.failed(f"SMS gateway unreachable ({type(exc).__name__})")
        if not 200 <= status < 300:
            return SendResult.failed(f"SMS gateway answered HTTP {status}")
        message_id = _message_id_from(raw)
        if not message_id:
            return SendResult.failed("SMS gateway answered without a message id")
        return SendResult.ok(message_id)


def _message_id_from(raw: bytes) -> str:
    try:
        data = json.loads(raw.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError):
        return ""
    if not isinstance(data, dict):
        return ""
    for key in ("id", "message_id", "sid"):
        value = data.get(key)
        if isinstance(value, str | int) and str(value).strip():
            return str(value).strip()[:200]
    return ""


def default_sms_backend() -> str:
    """The console only for the demo and development: anywhere else an unset backend must not
    count texts as accepted, so the HTTP gateway (failing visibly until configured) is the
    default."""
    if getattr(settings, "DEMO_MODE", False) or settings.DEBUG:
        return DEFAULT_SMS_BACKEND
    return "messaging.channels.HttpSmsBackend"


def sms_backend() -> SmsBackend:
    path = getattr(settings, "PATIENTDESK_SMS_BACKEND", "") or default_sms_backend()
    backend_class = import_string(path)
    backend: SmsBackend = backend_class()
    return backend
