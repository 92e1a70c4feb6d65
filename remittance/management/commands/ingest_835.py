"""manage.py ingest_835 PATH [PATH...] [--dry-run] [--json] [--user USERNAME]

Ingests X12 835 remittance files (see remittance/services.py for matching, posting and the
idempotency rules). Each file is handled on its own: a file that is refused or quarantined is
reported (stderr) and the others go on. With --json, stdout holds exactly one JSON object:

    {"files": n, "payments": [{"trace", "payer", "paid"}], "claims": n, "matched": n,
     "unmatched": n, "total_paid": "...", "total_adjusted": "...", "denied": n,
     "claim_details": [{"patient_control_number", "status_code", "charge", "paid",
                        "patient_responsibility"}]}

Amounts are decimal strings. The figures cover the files posted (or, with --dry-run, parsed) in
this run; a file already posted adds nothing. The exit code is 1 when any file was refused,
quarantined or unreadable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from remittance.services import IngestReport, ingest_summary, remittance_ingest


class Command(BaseCommand):
    help = "Ingest X12 835 remittance files: match claims, post payments and adjustments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="835 files")
        parser.add_argument("--dry-run", action="store_true", help="parse and report only")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--user", metavar="USERNAME", help="act as this user")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = self._actor(options["user"])
        reports: list[IngestReport] = []
        failed: list[str] = []
        for name in options["paths"]:
            path = Path(name)
            try:
                data = path.read_bytes()
            except OSError as exc:
                failed.append(f"{name}: cannot be read ({exc.strerror})")
                self.stderr.write(failed[-1])
                continue
            report = remittance_ingest(
                actor=actor, data=data, file_name=path.name, dry_run=options["dry_run"]
            )
            reports.append(report)
            line = f"{name}: {report.message}"
            if not report.ok:
                failed.append(line)
            self.stderr.write(line)
            for warning in report.warnings:
                self.stderr.write(f"{name}: warning: {warning}")
        result = ingest_summary(reports, len(options["paths"]))
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(
                f"Files: {result['files']}; claim payments: {result['claims']} "
                f"({result['matched']} matched, {result['unmatched']} unmatched, "
                f"{result['denied']} denied); paid {result['total_paid']}, "
                f"adjusted {result['total_adjusted']}."
            )
        if failed:
            raise CommandError(f"{len(failed)} of {len(options['paths'])} file(s) not posted.")

    def _actor(self, username: str | None) -> Any:
        if not username:
            return None
        from accounts.models import User

        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user '{username}'.")
        return user
