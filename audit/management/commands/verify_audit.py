"""manage.py verify_audit: prove the audit trail has not been edited or cut."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max
from tqdm import tqdm

from audit.chain import Anchor, VerifyResult, iter_rows, verify_chain
from audit.models import AuditEvent

PROGRESS_THRESHOLD = 20_000  # show a progress bar (on stderr) from this many rows

HELP = """Walk the audit chain in sequence order and check every row: its HMAC (recomputed with
PATIENTDESK_AUDIT_HMAC_KEY), its link to the row before it (prev_hash), and that sequences run
from 1 without gaps. Exits 0 and prints "Audit chain intact: N events (sequence 1..N)"; exits 1
and names the first bad sequence and what is wrong otherwise.

Detected: an edit of any column of any row (hash mismatch); a deleted row anywhere but the tail
(missing sequence and broken link at the first row after the gap); forged, re-numbered or
re-ordered rows (hash mismatch or broken link: forging a row needs the key).

Not detectable from the database alone: removing the newest rows (tail truncation), or emptying
the whole table, leaves a chain that is shorter but still valid. Keep the anchor each run prints
(SEQ:HMAC) somewhere the database's users cannot write, and pass it next time with
--expect-last SEQ:HMAC (or let --anchor-file keep it): rows up to that anchor are then covered,
rows written after it are not. Nothing here protects against someone who holds the HMAC key:
they can rewrite the chain consistently; keep the key outside the database and its backups."""


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        from argparse import RawDescriptionHelpFormatter

        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--expect-last",
            metavar="SEQ:HMAC",
            help="Anchor from an earlier run: that row must still exist with that HMAC.",
        )
        parser.add_argument(
            "--anchor-file",
            metavar="PATH",
            help="Read the anchor from PATH if it exists, and write the new one when intact.",
        )
        parser.add_argument(
            "--chunk-size", type=int, default=5000, help="Rows read per query (default 5000)."
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="Never show the progress bar."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        anchor = self._anchor(options)
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        result = self._verify(anchor, options)
        if options["anchor_file"] and result.intact and result.anchor is not None:
            Path(options["anchor_file"]).write_text(f"{result.anchor}\n", encoding="utf-8")
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
        elif result.intact:
            self.stdout.write(self._intact_message(result))
        else:
            for problem in result.problems:
                self.stderr.write(f"  {problem}")
            if result.problem_count > len(result.problems):
                hidden = result.problem_count - len(result.problems)
                self.stderr.write(f"  ... and {hidden} more")
        if not result.intact:
            first = result.problems[0]
            raise CommandError(
                f"Audit chain BROKEN at sequence {first.sequence}: {first.kind}: {first.detail}. "
                f"{result.problem_count} problem(s) in {result.count} events."
            )

    def _anchor(self, options: dict[str, Any]) -> Anchor | None:
        text = options["expect_last"]
        path = options["anchor_file"]
        if text and path:
            raise CommandError("Give either --expect-last or --anchor-file, not both.")
        if path and Path(path).exists():
            text = Path(path).read_text(encoding="utf-8").strip() or None
        if not text:
            return None
        try:
            return Anchor.parse(text)
        except ValueError as exc:
            raise CommandError(f"--expect-last: {exc}") from exc

    def _verify(self, anchor: Anchor | None, options: dict[str, Any]) -> VerifyResult:
        top = AuditEvent.objects.aggregate(top=Max("sequence"))["top"] or 0
        bar = tqdm(
            total=top,
            unit=" events",
            desc="Verifying audit chain",
            file=cast(TextIO, self.stderr._out),
            disable=options["no_progress"] or top < PROGRESS_THRESHOLD,
        )
        with bar:
            return verify_chain(
                iter_rows(chunk_size=options["chunk_size"]),
                expect_last=anchor,
                on_row=lambda _sequence: bar.update(1),
            )

    @staticmethod
    def _intact_message(result: VerifyResult) -> str:
        if result.count == 0:
            return "Audit chain intact: 0 events (the trail is empty)."
        return (
            f"Audit chain intact: {result.count} events "
            f"(sequence {result.first_sequence}..{result.last_sequence}).\n"
            f"Anchor for the next run: --expect-last {result.anchor}"
        )
