from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from interop.mllp import END_BLOCK, START_BLOCK, MllpClient, MllpError, MllpServer, frame


def _echo(text: str, peer: str) -> str:
    return f"ACK:{text}"


@pytest.fixture
def echo_server() -> Iterator[MllpServer]:
    server = MllpServer("127.0.0.1", 0, _echo, idle_timeout=2, max_frame=1024)
    server.serve_in_thread()
    yield server
    server.stop()


def _read_frames(sock: socket.socket, count: int) -> list[bytes]:
    data = b""
    while data.count(END_BLOCK) < count:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return [part.lstrip(START_BLOCK) for part in data.split(END_BLOCK) if part]


def test_frames_a_message_between_start_and_end_blocks() -> None:
    assert frame("MSH|x") == b"\x0bMSH|x\x1c\x0d"


def test_answers_several_messages_on_one_connection_in_order(echo_server: MllpServer) -> None:
    with MllpClient(*echo_server.address, timeout=2) as client:
        assert client.send("one") == "ACK:one"
        assert client.send("two") == "ACK:two"
        assert client.send("Zoë") == "ACK:Zoë"


def test_reassembles_a_frame_that_arrives_in_pieces(echo_server: MllpServer) -> None:
    with socket.create_connection(echo_server.address, timeout=2) as sock:
        for piece in (b"\x0bMSH|pa", b"rt one|", b"end\x1c", b"\x0d"):
            sock.sendall(piece)
            time.sleep(0.05)
        assert _read_frames(sock, 1) == [b"ACK:MSH|part one|end"]


def test_splits_two_frames_that_arrive_together_and_ignores_noise(
    echo_server: MllpServer,
) -> None:
    with socket.create_connection(echo_server.address, timeout=2) as sock:
        sock.sendall(b"\r\nnoise" + frame("first") + b"\n" + frame("second"))
        assert _read_frames(sock, 2) == [b"ACK:first", b"ACK:second"]


def test_closes_a_connection_whose_frame_is_larger_than_the_limit(
    echo_server: MllpServer,
) -> None:
    with socket.create_connection(echo_server.address, timeout=2) as sock:
        sock.sendall(START_BLOCK + b"x" * 5000)
        try:
            answer = sock.recv(100)
        except ConnectionResetError:  # closed with our bytes unread: a reset, not a FIN
            answer = b""
        assert answer == b""  # closed without an answer


def test_closes_idle_connections_after_the_timeout() -> None:
    server = MllpServer("127.0.0.1", 0, _echo, idle_timeout=0.3)
    server.serve_in_thread()
    try:
        with socket.create_connection(server.address, timeout=3) as sock:
            started = time.monotonic()
            assert sock.recv(10) == b""
            assert time.monotonic() - started < 2.5
    finally:
        server.stop()


def test_keeps_serving_after_a_handler_error() -> None:
    def flaky(text: str, peer: str) -> str:
        if text == "boom":
            raise RuntimeError("handler bug")
        return "ok"

    server = MllpServer("127.0.0.1", 0, flaky, idle_timeout=2)
    server.serve_in_thread()
    try:
        with MllpClient(*server.address, timeout=2) as client, pytest.raises(MllpError):
            client.send("boom")
        with MllpClient(*server.address, timeout=2) as client:
            assert client.send("fine") == "ok"
    finally:
        server.stop()


def test_client_gives_up_when_no_ack_comes_in_time() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True)
    thread.start()
    try:
        client = MllpClient(*silent.getsockname(), timeout=0.3)
        with pytest.raises(MllpError, match=r"no ACK within 0\.3 s"):
            client.send("MSH|hello")
    finally:
        for conn in accepted:
            conn.close()
        silent.close()


def test_client_reports_a_refused_connection() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(MllpError, match="cannot connect"):
        MllpClient("127.0.0.1", port, timeout=1).send("MSH|x")


def test_client_reports_a_peer_that_hangs_up_without_answering() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.recv(100)
        conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        with pytest.raises(MllpError, match="without an ACK"):
            MllpClient(*listener.getsockname(), timeout=2).send("MSH|x")
    finally:
        listener.close()
