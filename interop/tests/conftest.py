"""Interop fixtures: the HL7 samples, a fake remote HL7 system on loopback, appointments."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import hl7
import pytest

from core.models import Location
from interop.hl7_codec import normalise
from interop.mllp import MllpServer
from scheduling.tests.announcing import committed  # noqa: F401  (a fixture)

DATA = Path(__file__).parent / "data"


@pytest.fixture
def sample() -> Callable[[str], str]:
    """sample("msfc_ADT-A04-02.hl7") -> the file's text exactly as shipped (BOM, LF and all)."""

    def read(name: str) -> str:
        return (DATA / name).read_bytes().decode("utf-8")

    return read


def ack_for(message: str, code: str = "AA", text: str = "") -> str:
    """What a remote system answers: an ACK echoing MSH-10 of `message`."""
    parsed = hl7.parse(normalise(message))
    control_id = str(parsed["MSH.F10"])
    return "\r".join(
        [
            "MSH|^~\\&|REMOTE|HOSP|PATIENTDESK|main|20250301120000||ACK^S12^ACK|R1|P|2.5.1",
            f"MSA|{code}|{control_id}|{text}",
        ]
    )


class RemoteSystem:
    """A real MLLP listener on 127.0.0.1 (a free port) that records what it receives and
    answers with `answer(message) -> ack` (AA by default)."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.answer: Callable[[str], str] = ack_for
        self.server = MllpServer("127.0.0.1", 0, self._handle, idle_timeout=5)
        self.host, self.port = self.server.address

    def _handle(self, text: str, peer: str) -> str:
        self.received.append(text)
        return self.answer(text)


@pytest.fixture
def remote() -> Iterator[RemoteSystem]:
    system = RemoteSystem()
    system.server.serve_in_thread()
    yield system
    system.server.stop()


@pytest.fixture
def mllp_destination(settings: object, remote: RemoteSystem) -> RemoteSystem:
    settings.PATIENTDESK_HL7_OUT_HOST = remote.host
    settings.PATIENTDESK_HL7_OUT_PORT = remote.port
    settings.PATIENTDESK_HL7_ACK_TIMEOUT = 2
    settings.PATIENTDESK_HL7_OUT_DIR = ""
    return remote


@pytest.fixture
def file_drop(settings: object, tmp_path: Path) -> Path:
    folder = tmp_path / "hl7-out"
    settings.PATIENTDESK_HL7_OUT_DIR = str(folder)
    settings.PATIENTDESK_HL7_OUT_HOST = ""
    return folder


@pytest.fixture
def no_destinations(settings: object) -> None:
    settings.PATIENTDESK_HL7_OUT_DIR = ""
    settings.PATIENTDESK_HL7_OUT_HOST = ""


@pytest.fixture
def hl7_location(main_clinic: Location, riverside: Location) -> Location:
    """Two locations exist (as in the demo); inbound messages land at Main Street Clinic."""
    return main_clinic
