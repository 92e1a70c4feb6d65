"""Real parts for the messaging tests: an SMTP server (aiosmtpd) and HTTP SMS gateways on
127.0.0.1, each on a free port, started per test and stopped after it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from scheduling.tests.announcing import committed  # noqa: F401  (a fixture)

GATEWAY_TOKEN = "gateway-secret-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _messaging_settings(settings: Any) -> None:
    """No quiet hours unless a test sets them (the suite runs at any hour); links point at
    testserver; the demo SMS backend unless a test starts a gateway."""
    settings.ROOT_URLCONF = "messaging.tests.urls"
    settings.QUIET_HOURS = ""
    settings.PATIENTDESK_BASE_URL = "http://testserver"
    settings.PATIENTDESK_SMS_BACKEND = "messaging.channels.ConsoleSmsBackend"
    settings.PATIENTDESK_SMS_GATEWAY_TOKEN = GATEWAY_TOKEN
    settings.STAFF_NOTIFY_EMAIL = "frontdesk-team@example.org"
    settings.DEFAULT_FROM_EMAIL = "Main Street Clinic <no-reply@example.org>"
    settings.MESSAGE_MAX_ATTEMPTS = 3


# --- SMTP -----------------------------------------------------------------------------------------


class RecordingHandler:
    """Accepts every message and keeps the envelopes."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 2.0.0 Message accepted for delivery"


class RefusingHandler:
    """Answers every message with `reply` (e.g. '451 4.3.0 Try again later')."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.attempts = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.attempts += 1
        return self.reply


@dataclass
class SmtpServer:
    handler: Any
    port: int

    @property
    def envelopes(self) -> list[Any]:
        return list(getattr(self.handler, "envelopes", []))

    def messages(self) -> list[str]:
        return [envelope.content.decode("utf-8", "replace") for envelope in self.envelopes]


@pytest.fixture
def start_smtp(settings: Any) -> Iterator[Callable[..., SmtpServer]]:
    """start_smtp() -> an accepting server; start_smtp(reply='554 ...') -> a refusing one.
    Django's real SMTP backend is pointed at it."""
    controllers: list[Controller] = []

    def start(reply: str | None = None) -> SmtpServer:
        handler: Any = RefusingHandler(reply) if reply else RecordingHandler()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        return SmtpServer(handler=handler, port=port)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_server(start_smtp: Callable[..., SmtpServer]) -> SmtpServer:
    return start_smtp()


# --- SMS gateway ----------------------------------------------------------------------------------


@dataclass
class Gateway:
    """A local SMS gateway. mode: 'accept' (200 + id), 'error' (500), 'timeout' (answers after
    `delay` seconds), 'no-id' (200 without an id), 'reject' (400)."""

    mode: str
    delay: float = 2.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/messages"


class _GatewayHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        gateway: Gateway = self.server.gateway
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        gateway.requests.append({"headers": dict(self.headers.items()), "json": json.loads(raw)})
        if gateway.mode == "timeout":
            time.sleep(gateway.delay)
        status, body = {
            "accept": (200, {"id": f"gw-{len(gateway.requests)}", "status": "queued"}),
            "timeout": (200, {"id": "gw-late"}),
            "no-id": (200, {"status": "queued"}),
            "error": (500, {"error": "internal"}),
            "reject": (400, {"error": "invalid number"}),
        }[gateway.mode]
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout mode)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def start_gateway(settings: Any) -> Iterator[Callable[..., Gateway]]:
    servers: list[ThreadingHTTPServer] = []

    def start(mode: str = "accept", *, timeout: float = 0.5) -> Gateway:
        gateway = Gateway(mode=mode)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _GatewayHandler)
        server.daemon_threads = True
        server.block_on_close = False
        server.gateway = gateway
        gateway.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        settings.PATIENTDESK_SMS_BACKEND = "messaging.channels.HttpSmsBackend"
        settings.PATIENTDESK_SMS_GATEWAY_URL = gateway.url
        settings.PATIENTDESK_SMS_TIMEOUT = timeout
        return gateway

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
