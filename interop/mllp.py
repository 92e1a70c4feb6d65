"""MLLP (Minimal Lower Layer Protocol, HL7 v2 over TCP): framing, a client and a threaded server.

A frame is 0x0B <message> 0x1C 0x0D. One connection may carry many frames; TCP may deliver a
frame in pieces or several frames at once, so the reader buffers bytes until a whole frame is
there. Bytes outside a frame are discarded; a frame larger than `max_frame` closes the
connection (a peer must not be able to make the server buffer without limit).

Nothing here knows Django: the server calls `handler(message_text, peer) -> ack_text` for each
message and `on_connection_end()` when a connection closes (the listener command closes the
thread's database connections there).
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator

from interop.hl7_codec import decode

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
DEFAULT_MAX_FRAME = 4 * 1024 * 1024

logger = logging.getLogger(__name__)


class MllpError(Exception):
    """The connection broke, timed out, or the peer sent something that is not MLLP."""


def frame(message: str, encoding: str = "utf-8") -> bytes:
    return START_BLOCK + message.encode(encoding) + END_BLOCK


class FrameReader:
    """Collects bytes from a socket and yields whole frames' payloads."""

    def __init__(self, sock: socket.socket, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.sock = sock
        self.max_frame = max_frame
        self.buffer = bytearray()

    def _next_from_buffer(self) -> bytes | None:
        start = self.buffer.find(START_BLOCK)
        if start < 0:
            self.buffer.clear()  # nothing but noise so far
            return None
        if start:
            del self.buffer[:start]
        end = self.buffer.find(END_BLOCK, 1)
        if end < 0:
            if len(self.buffer) > self.max_frame:
                raise MllpError(f"frame larger than {self.max_frame} bytes")
            return None
        payload = bytes(self.buffer[1:end])
        del self.buffer[: end + len(END_BLOCK)]
        return payload

    def read(self) -> bytes | None:
        """The next frame's payload; None when the peer closed the connection cleanly.
        Raises socket.timeout (TimeoutError) when nothing arrives within the socket timeout."""
        while True:
            payload = self._next_from_buffer()
            if payload is not None:
                return payload
            chunk = self.sock.recv(65536)
            if not chunk:
                if self.buffer.strip(b"\r\n\t "):
                    raise MllpError("the connection closed in the middle of a frame")
                return None
            self.buffer.extend(chunk)

    def __iter__(self) -> Iterator[bytes]:
        while (payload := self.read()) is not None:
            yield payload


class MllpClient:
    """Sends messages over one connection and returns each ACK's text.

    with MllpClient(host, port, timeout=10) as client:
        ack = client.send(message)
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.reader: FrameReader | None = None

    def __enter__(self) -> MllpClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except TimeoutError as exc:
            raise MllpError(f"no connection within {self.timeout:g} s") from exc
        except OSError as exc:
            raise MllpError(f"cannot connect ({exc.strerror or type(exc).__name__})") from exc
        self.sock.settimeout(self.timeout)
        self.reader = FrameReader(self.sock)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self.reader = None

    def send(self, message: str) -> str:
        """Send one message and wait for the reply frame (the ACK); its text is returned."""
        if self.sock is None or self.reader is None:
            self.connect()
        if self.sock is None or self.reader is None:
            raise MllpError("not connected")
        try:
            self.sock.sendall(frame(message))
            reply = self.reader.read()
        except TimeoutError as exc:
            self.close()
            raise MllpError(f"no ACK within {self.timeout:g} s") from exc
        except OSError as exc:
            self.close()
            raise MllpError(f"connection error ({exc.strerror or type(exc).__name__})") from exc
        except MllpError:
            self.close()
            raise
        if reply is None:
            self.close()
            raise MllpError("the receiver closed the connection without an ACK")
        return decode(reply)


Handler = Callable[[str, str], str]


class _ConnectionHandler(socketserver.BaseRequestHandler):
    server: MllpServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(self.server.idle_timeout)
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        reader = FrameReader(sock, max_frame=self.server.max_frame)
        try:
            for payload in reader:
                ack = self.server.handler(decode(payload), peer)
                sock.sendall(frame(ack))
        except TimeoutError:
            logger.info(
                "MLLP connection from %s idle for %ss; closed", peer, self.server.idle_timeout
            )
        except MllpError as exc:
            logger.warning("MLLP connection from %s closed: %s", peer, exc)
        except OSError as exc:
            logger.warning("MLLP connection from %s broke: %s", peer, type(exc).__name__)
        except Exception as exc:  # a handler bug must not kill the listener or log PHI
            logger.error(
                "MLLP handler failed for %s: %s; connection closed", peer, type(exc).__name__
            )

    def finish(self) -> None:
        if self.server.on_connection_end is not None:
            self.server.on_connection_end()


class MllpServer(socketserver.ThreadingTCPServer):
    """A threaded MLLP listener: one thread per connection, frames answered in order.

    Port 0 picks a free port (see `address`). `serve_in_thread()` starts it in the background
    (tests); `serve_forever()` blocks (the hl7_listen command); `shutdown()` stops either.
    """

    allow_reuse_address = True
    daemon_threads = True

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        idle_timeout: float = 300.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        on_connection_end: Callable[[], None] | None = None,
    ) -> None:
        self.handler = handler
        self.idle_timeout = idle_timeout
        self.max_frame = max_frame
        self.on_connection_end = on_connection_end
        super().__init__((host, port), _ConnectionHandler)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return str(host), int(port)

    _thread: threading.Thread | None = None

    def serve_in_thread(self) -> threading.Thread:
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="mllp-server",
            daemon=True,
        )
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Stop serving (when started in a thread) and close the listening socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread = None
        self.server_close()
