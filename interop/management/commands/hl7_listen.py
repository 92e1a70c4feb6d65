"""manage.py hl7_listen [--host 127.0.0.1] [--port 2575] [--location CODE]

An MLLP listener for HL7 v2 ADT^A04/A08: each message is applied through the patient services
and answered with an ACK on the same connection (several messages per connection are fine).
Binds to 127.0.0.1 by default; put it behind a VPN or TLS tunnel (stunnel) rather than exposing
plain MLLP, which has no encryption of its own. Stop it with Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from core.models import Location
from interop.mllp import MllpServer
from interop.models import Transport
from interop.services import inbound_receive, location_by_code


class Command(BaseCommand):
    help = "Listen for HL7 v2 ADT^A04/A08 over MLLP and answer each message with an ACK."

    server: MllpServer | None = None
    ready: threading.Event

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ready = threading.Event()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
        parser.add_argument("--port", type=int, default=2575, help="TCP port (2575; 0 = any free)")
        parser.add_argument(
            "--location",
            metavar="CODE",
            help="home location of new patients when MSH-6 names none (a Location code)",
        )
        parser.add_argument(
            "--idle-timeout", type=float, default=300.0, help="close idle connections (seconds)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        location: Location | None = None
        if options["location"]:
            try:
                location = location_by_code(options["location"])
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc

        def handle_message(text: str, peer: str) -> str:
            host = peer.rsplit(":", 1)[0]
            return inbound_receive(
                text, transport=Transport.MLLP, peer=host, default_location=location
            ).ack

        try:
            self.server = MllpServer(
                options["host"],
                options["port"],
                handle_message,
                idle_timeout=options["idle_timeout"],
                on_connection_end=connections.close_all,
            )
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from exc
        host, port = self.server.address
        self.stdout.write(f"Listening for HL7 (MLLP) on {host}:{port}", ending="\n")
        self.stdout.flush()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=self.stop).start())
        self.ready.set()
        try:
            self.server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.server.server_close()
            self.stdout.write("Stopped.")

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
