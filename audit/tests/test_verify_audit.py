"""manage.py verify_audit: an intact chain passes; any raw-SQL edit or deletion is named."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.chain import Anchor
from audit.management.commands import verify_audit
from audit.models import AuditEvent
from audit.tests.conftest import add_events, tampering


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("verify_audit", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args: str) -> tuple[str, str, str]:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    return str(excinfo.value), out.getvalue(), err.getvalue()


def test_reports_an_intact_chain_with_its_count_and_range(events: list[AuditEvent]) -> None:
    out, _ = run()

    assert "Audit chain intact: 9 events (sequence 1..9)" in out
    assert f"--expect-last 9:{events[-1].hmac}" in out


def test_reports_an_empty_trail_as_intact(db: None) -> None:
    out, _ = run()

    assert "Audit chain intact: 0 events" in out


def test_names_the_edited_row_after_a_raw_sql_update_of_a_middle_row(
    events: list[AuditEvent],
) -> None:
    # given
    with tampering() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'nothing happened' WHERE sequence = 5")

    # when
    message, _, err = run_failing()

    # then
    assert "sequence 5" in message
    assert "hash mismatch" in message
    assert "sequence 5: hash mismatch" in err


def test_names_the_edited_row_when_its_hmac_is_rewritten_too(events: list[AuditEvent]) -> None:
    # given: an attacker without the key re-hashes with a guess
    with tampering() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET username = 'nobody', hmac = %s WHERE sequence = 4",
            ["f" * 64],
        )

    # when
    message, _, err = run_failing()

    # then: row 4 no longer matches, and row 5 no longer links to it
    assert "BROKEN at sequence 4: hash mismatch" in message
    assert "sequence 5: broken link" in err


def test_names_the_first_sequence_after_a_deleted_middle_row(events: list[AuditEvent]) -> None:
    # given
    with tampering() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 6")

    # when
    message, _, err = run_failing()

    # then
    assert "BROKEN at sequence 7: missing sequence" in message
    assert "sequence 6 missing" in message
    assert "sequence 7: broken link" in err


def test_names_the_range_when_several_rows_are_deleted(events: list[AuditEvent]) -> None:
    with tampering() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence BETWEEN 2 AND 4")

    message, _, _ = run_failing()

    assert "BROKEN at sequence 5: missing sequence: sequence 2..4 missing" in message


def test_detects_a_deleted_first_row(events: list[AuditEvent]) -> None:
    with tampering() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 1")

    message, _, _ = run_failing()

    assert "BROKEN at sequence 2" in message


def test_detects_renumbered_rows(events: list[AuditEvent]) -> None:
    # given: the gap left by a deleted row is closed by renumbering the rows after it
    with tampering() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 9")
        cursor.execute("UPDATE audit_auditevent SET sequence = 9 WHERE sequence = 8")
        cursor.execute("UPDATE audit_auditevent SET sequence = 8 WHERE sequence = 7")

    # when
    message, _, _ = run_failing()

    # then: the sequence is part of each row's HMAC
    assert "BROKEN at sequence 8" in message


def test_a_deleted_last_row_passes_without_an_anchor(events: list[AuditEvent]) -> None:
    # given: the one thing the chain alone cannot see (documented in the command's help)
    with tampering() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 9")

    # when
    out, _ = run()

    # then
    assert "Audit chain intact: 8 events (sequence 1..8)" in out


def test_detects_a_deleted_last_row_with_the_anchor_from_the_previous_run(
    events: list[AuditEvent],
) -> None:
    # given: the anchor printed by an earlier run, kept outside the database
    out, _ = run()
    anchor = out.split("--expect-last ")[1].strip()
    with tampering() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 9")

    # when
    message, _, _ = run_failing("--expect-last", anchor)

    # then
    assert "BROKEN at sequence 9: tail truncated" in message


def test_detects_a_replaced_last_row_with_the_anchor(events: list[AuditEvent]) -> None:
    # given: the last row deleted, and a new (genuinely chained) event appended in its place
    anchor = f"9:{events[-1].hmac}"
    with tampering() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 9")
    add_events(1, username="somebody else")

    # when
    message, _, _ = run_failing("--expect-last", anchor)

    # then
    assert "BROKEN at sequence 9: anchor mismatch" in message


def test_accepts_an_anchor_when_rows_were_appended_after_it(events: list[AuditEvent]) -> None:
    anchor = f"5:{events[4].hmac}"

    out, _ = run("--expect-last", anchor)

    assert "Audit chain intact: 9 events" in out


@pytest.mark.parametrize(
    ("anchor", "message"),
    [
        ("nine", "is not SEQ:HMAC"),
        ("0:" + "a" * 64, "is not SEQ:HMAC"),
        ("9:abc", "64 hexadecimal characters"),
        ("9:" + "z" * 64, "64 hexadecimal characters"),
    ],
)
def test_rejects_a_malformed_anchor_with_a_clear_message(
    events: list[AuditEvent], anchor: str, message: str
) -> None:
    error, _, _ = run_failing("--expect-last", anchor)

    assert message in error


def test_anchor_file_is_written_when_intact_and_checked_next_time(
    events: list[AuditEvent], tmp_path: Path
) -> None:
    # given: a first run stores the anchor
    anchor_file = tmp_path / "audit.anchor"
    run("--anchor-file", str(anchor_file))
    assert Anchor.parse(anchor_file.read_text()) == Anchor(9, events[-1].hmac)

    # when: the tail is cut and the command runs again
    with tampering() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence >= 8")
    message, _, _ = run_failing("--anchor-file", str(anchor_file))

    # then: the cut is found and the stored anchor is kept
    assert "BROKEN at sequence 8: tail truncated" in message
    assert anchor_file.read_text().startswith("9:")


def test_json_output_for_an_intact_chain(events: list[AuditEvent]) -> None:
    out, _ = run("--json")

    result = json.loads(out)
    assert result["intact"] is True
    assert result["events"] == 9
    assert (result["first_sequence"], result["last_sequence"]) == (1, 9)
    assert result["anchor"] == f"9:{events[-1].hmac}"
    assert result["problems"] == []


def test_json_output_names_the_first_bad_sequence_and_exits_non_zero(
    events: list[AuditEvent],
) -> None:
    with tampering() as cursor:
        cursor.execute("UPDATE audit_auditevent SET outcome = 'success' WHERE sequence = 3")
        cursor.execute("UPDATE audit_auditevent SET event = 'auth.login' WHERE sequence = 3")

    _, out, _ = run_failing("--json")

    result = json.loads(out)
    assert result["intact"] is False
    assert result["first_bad_sequence"] == 3
    assert result["anchor"] is None
    assert result["problems"][0] == {
        "sequence": 3,
        "problem": "hash mismatch",
        "detail": "the row's content does not match its HMAC (edited)",
    }


def test_reads_the_chain_in_chunks(events: list[AuditEvent], django_assert_num_queries) -> None:
    # 9 rows in chunks of 2: 1 query for the progress total, 5 full or partial chunks, 1 empty
    with django_assert_num_queries(7):
        out, _ = run("--chunk-size", "2")

    assert "Audit chain intact: 9 events (sequence 1..9)" in out


def test_shows_a_progress_bar_on_stderr_for_long_chains(
    events: list[AuditEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_audit, "PROGRESS_THRESHOLD", 5)

    out, err = run()

    assert "Verifying audit chain" in err
    assert "9/9" in err
    assert "Verifying" not in out


def test_shows_no_progress_bar_for_short_chains(events: list[AuditEvent]) -> None:
    _, err = run()

    assert err == ""


def test_exits_non_zero_from_the_command_line(events: list[AuditEvent]) -> None:
    # given
    with tampering() as cursor:
        cursor.execute("UPDATE audit_auditevent SET ip = '10.9.9.9' WHERE sequence = 2")

    # when / then: CommandError is what manage.py turns into exit status 1
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit", stdout=StringIO(), stderr=StringIO())
    assert excinfo.value.returncode == 1


def test_help_says_what_is_and_is_not_detectable() -> None:
    text = verify_audit.Command().create_parser("manage.py", "verify_audit").format_help()

    assert "tail truncation" in text
    assert "--expect-last SEQ:HMAC" in text
    assert "holds the HMAC key" in text
