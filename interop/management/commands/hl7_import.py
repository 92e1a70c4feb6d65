"""manage.py hl7_import PATH [PATH...] [--json] [--location CODE] [--archive DIR]

Processes HL7 v2 ADT^A04/A08 message files the way the file drop does: each file may hold
several messages, with CR, LF or CRLF line ends and an optional UTF-8 BOM; each message is
applied through the patient services and answered with an ACK (see interop/services.py).
A PATH that is a directory means every file in it (not hidden ones), in name order.

--json prints exactly {"messages": n, "accepted": n, "rejected": n, "acks": [{"control_id",
"code", "text"}]}; otherwise one line per message. With --archive DIR each processed file is
moved to DIR/accepted or DIR/rejected (rejected when any of its messages was not AA) with its
ACKs beside it in <name>.ack (run it from cron on the drop folder). Files that cannot be read are
reported on stderr; the exit code is non-zero only when none of the files could be read (an
empty drop folder is not an error).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from interop.models import AckCode
from interop.services import ImportReport, inbound_import_file, location_by_code


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            )
        else:
            found.append(path)
    return found


def _archive(path: Path, acks: list[str], accepted: bool, archive: Path) -> None:
    target_dir = archive / ("accepted" if accepted else "rejected")
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    counter = 1
    while target.exists():
        target = target_dir / f"{path.stem}.{counter}{path.suffix}"
        counter += 1
    shutil.move(str(path), target)
    target.with_name(target.name + ".ack").write_bytes(
        "\n".join(ack.replace("\r", "\n") for ack in acks).encode("utf-8") + b"\n"
    )


class Command(BaseCommand):
    help = "Apply HL7 v2 ADT^A04/A08 message files (register/update patients) and print ACKs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="message files or folders")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--location",
            metavar="CODE",
            help="home location of new patients when MSH-6 names none (a Location code)",
        )
        parser.add_argument(
            "--archive", metavar="DIR", help="move processed files to DIR/accepted|rejected"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        location = None
        if options["location"]:
            try:
                location = location_by_code(options["location"])
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
        archive = Path(options["archive"]) if options["archive"] else None
        report = ImportReport()
        for path in _files(options["paths"]):
            results = inbound_import_file(path, default_location=location, report=report)
            if results is None:
                continue
            if not results:
                self.stderr.write(f"no HL7 message in {path}")
            if archive is not None:
                accepted = bool(results) and all(r.code == AckCode.AA for r in results)
                _archive(path, [r.ack for r in results], accepted, archive)
        for name, reason in report.unreadable:
            self.stderr.write(f"cannot read {name}: {reason}")
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json()))
        else:
            for result in report.results:
                self.stdout.write(f"{result.control_id or '-'} {result.code} {result.text}")
            summary = report.as_json()
            self.stdout.write(
                f"{summary['messages']} message(s): {summary['accepted']} accepted, "
                f"{summary['rejected']} not accepted."
            )
        if report.unreadable and report.files_read == 0:
            raise CommandError("No file could be read.")
