"""manage.py hl7_import (file drop) and hl7_listen (MLLP) end to end."""

from __future__ import annotations

import json
import threading
from io import StringIO
from pathlib import Path

import hl7
import pytest
from django.core.management import CommandError, call_command

from core.models import Location
from interop.management.commands.hl7_listen import Command as ListenCommand
from interop.mllp import MllpClient
from interop.models import InboundHl7Message, Transport
from patients.models import Patient

from .conftest import DATA

A04 = "MSH|^~\\&|REG|CLINIC|PATIENTDESK|main|20250301120000||ADT^A04^ADT_A01|{cid}|P|2.5.1\r" \
      "EVN|A04|20250301120000\rPID|1||{id}^^^REG^MR||{name}||19800102|F\rPV1|1|O"  # fmt: skip


def run_import(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("hl7_import", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_json_report_of_the_three_samples(hl7_location: Location) -> None:
    # when
    out, _ = run_import(
        str(DATA / "msfc_ADT-A04-02.hl7"),
        str(DATA / "msfc_ADT-A08-02.hl7"),
        str(DATA / "msfc_ADT04-28.hl7"),
        "--json",
        "--location",
        "main",
    )
    # then
    report = json.loads(out)
    assert list(report) == ["messages", "accepted", "rejected", "acks"]
    assert (report["messages"], report["accepted"], report["rejected"]) == (3, 3, 0)
    assert [(a["control_id"], a["code"]) for a in report["acks"]] == [
        ("MSG00001", "AA"),
        ("MSG00001", "AA"),
        ("1270326314", "AA"),
    ]
    assert all(set(a) == {"control_id", "code", "text"} for a in report["acks"])
    assert Patient.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("line_end", ["\r", "\n", "\r\n"])
def test_a_file_holding_several_messages_with_any_line_ends(
    line_end: str, hl7_location: Location, tmp_path: Path
) -> None:
    # given
    text = "\r".join(
        [
            A04.format(cid="M1", id="A1", name="Doe^Jane"),
            A04.format(cid="M2", id="A2", name="Roe^Rita").replace("19800102", "19801399"),
            A04.format(cid="M3", id="A3", name="Poe^Paula").replace("ADT^A04", "ADT^A02"),
        ]
    )
    path = tmp_path / "batch.hl7"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\r", line_end).encode())
    # when
    out, _ = run_import(str(path), "--json")
    # then
    report = json.loads(out)
    assert (report["messages"], report["accepted"], report["rejected"]) == (3, 1, 2)
    assert [(a["control_id"], a["code"]) for a in report["acks"]] == [
        ("M1", "AA"),
        ("M2", "AE"),
        ("M3", "AR"),
    ]
    assert report["acks"][1]["text"] == "PID-7 date of birth is not a valid date (YYYYMMDD)"


@pytest.mark.django_db
def test_plain_output_names_each_message_and_sums_up(hl7_location: Location) -> None:
    out, _ = run_import(str(DATA / "msfc_ADT-A08-02.hl7"))
    assert out.splitlines() == [
        "MSG00001 AE no patient has the identifiers in PID-3; register with ADT^A04 first",
        "1 message(s): 0 accepted, 1 not accepted.",
    ]


@pytest.mark.django_db
def test_unreadable_files_are_reported_and_the_rest_processed(
    hl7_location: Location, tmp_path: Path
) -> None:
    out, err = run_import(str(tmp_path / "missing.hl7"), str(DATA / "msfc_ADT04-28.hl7"), "--json")
    assert json.loads(out)["accepted"] == 1
    assert err.startswith(f"cannot read {tmp_path / 'missing.hl7'}")


@pytest.mark.django_db
def test_a_file_without_messages_is_named(hl7_location: Location, tmp_path: Path) -> None:
    empty = tmp_path / "empty.hl7"
    empty.write_text("\n\n")
    out, err = run_import(str(empty), "--json")
    assert json.loads(out) == {"messages": 0, "accepted": 0, "rejected": 0, "acks": []}
    assert err.strip() == f"no HL7 message in {empty}"


@pytest.mark.django_db
def test_an_empty_drop_folder_is_not_an_error(tmp_path: Path) -> None:
    out, _ = run_import(str(tmp_path), "--json")
    assert json.loads(out)["messages"] == 0


@pytest.mark.django_db
def test_fails_when_no_file_can_be_read(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No file could be read"):
        run_import(str(tmp_path / "missing.hl7"))


@pytest.mark.django_db
def test_an_unknown_location_option_is_refused(hl7_location: Location) -> None:
    with pytest.raises(CommandError, match="no active location with code 'nowhere'"):
        run_import(str(DATA / "msfc_ADT04-28.hl7"), "--location", "nowhere")


@pytest.mark.django_db
def test_a_drop_folder_is_processed_and_archived_with_its_acks(
    hl7_location: Location, tmp_path: Path
) -> None:
    # given
    drop, archive = tmp_path / "in", tmp_path / "archive"
    drop.mkdir()
    (drop / "a.hl7").write_text(A04.format(cid="D1", id="A1", name="Doe^Jane"))
    (drop / "b.hl7").write_text(A04.format(cid="D2", id="A2", name="Roe").replace("\r", "\n"))
    (drop / ".partial").write_text("being written")
    # when
    out, _ = run_import(str(drop), "--archive", str(archive), "--json")
    # then
    assert [a["code"] for a in json.loads(out)["acks"]] == ["AA", "AE"]
    assert sorted(p.name for p in drop.iterdir()) == [".partial"]
    assert (archive / "accepted" / "a.hl7").exists()
    assert (archive / "rejected" / "b.hl7").exists()
    ack = (archive / "rejected" / "b.hl7.ack").read_text()
    assert "MSA|AE|D2|PID-5.2 given name is required" in ack


@pytest.mark.django_db(transaction=True)
def test_listener_answers_a_real_mllp_round_trip(hl7_location: Location) -> None:
    # given: the command listening on a free loopback port, in a thread
    command = ListenCommand(stdout=StringIO(), stderr=StringIO())
    thread = threading.Thread(
        target=lambda: call_command(command, "--host", "127.0.0.1", "--port", "0"), daemon=True
    )
    thread.start()
    assert command.ready.wait(10)
    assert command.server is not None
    try:
        # when: two messages over one connection
        with MllpClient(*command.server.address, timeout=10) as client:
            first = hl7.parse(client.send(A04.format(cid="L1", id="A1", name="Doe^Jane")))
            second = hl7.parse(client.send(A04.format(cid="L2", id="A2", name="Roe")))
    finally:
        command.stop()
        thread.join(10)
    # then
    assert (str(first["MSA.F1"]), str(first["MSA.F2"])) == ("AA", "L1"), str(first)
    assert (str(second["MSA.F1"]), str(second["MSA.F2"])) == ("AE", "L2")
    assert str(second["ERR.F3"]) == "101"
    patient = Patient.objects.get()
    assert patient.family_name == "Doe"
    assert set(InboundHl7Message.objects.values_list("transport", "peer")) == {
        (Transport.MLLP, "127.0.0.1")
    }
    assert "Listening for HL7 (MLLP) on 127.0.0.1:" in command.stdout._out.getvalue()
