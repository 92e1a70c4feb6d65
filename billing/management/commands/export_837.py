"""manage.py export_837 --out PATH [--payer PAYER_ID] [--json] [--user USERNAME] [--test]

Writes the ready claims as X12 837P files, one per payer, into the folder PATH, after pyx12
has validated each file, and marks those claims submitted (billing.export). With --json stdout
holds exactly one JSON object: {"files": [...], "claims": n, "total_charge": "..."}; otherwise a
progress bar goes to stderr and a summary to stdout. A batch that fails validation is kept as a
failed batch (its claims stay ready) and makes the command exit with an error after the report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from billing.export import ExportError, ExportResult, claims_export_837
from billing.models import Payer


class Command(BaseCommand):
    help = "Export ready claims as validated X12 837P files (one per payer)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, metavar="PATH", help="folder for the files")
        parser.add_argument("--payer", metavar="PAYER_ID", help="only this payer (its payer id)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--user", metavar="USERNAME", help="act as this user (audit trail)")
        parser.add_argument(
            "--test", action="store_true", help="mark the files as test data (ISA15 = T)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        out = Path(options["out"])
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"--out: cannot create the folder {out}: {exc.strerror}") from exc
        payer = None
        if options["payer"]:
            payer = Payer.objects.filter(payer_id=options["payer"]).first()
            if payer is None:
                raise CommandError(f"--payer: no payer with payer id '{options['payer']}'.")
        actor = self._actor(options["user"])
        usage = "T" if options["test"] else None
        try:
            if options["json"]:
                result = claims_export_837(
                    actor=actor, payer=payer, out_dir=out, usage_indicator=usage
                )
            else:
                stream = getattr(self.stderr, "_out", sys.stderr)
                with tqdm(total=0, unit="claim", file=stream, desc="export_837") as bar:

                    def progress(done: int, total: int) -> None:
                        bar.total = total
                        bar.update(done - bar.n)

                    result = claims_export_837(
                        actor=actor,
                        payer=payer,
                        out_dir=out,
                        progress=progress,
                        usage_indicator=usage,
                    )
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "files": [str(f.path) for f in result.released],
                        "claims": result.claims,
                        "total_charge": str(result.total_charge),
                    }
                )
            )
        else:
            self._summary(result)
        for pcn, why in result.skipped:
            self.stderr.write(f"skipped claim {pcn}: {why}")
        if result.failed:
            lines = [
                f"payer {f.payer_id}: the file failed pyx12 validation ({len(f.errors)} errors, "
                f"first: {f.errors[0] if f.errors else '?'}); its {f.claims} claims stay ready"
                for f in result.failed
            ]
            raise CommandError("\n".join(lines))

    def _actor(self, username: str | None) -> Any:
        if not username:
            return None
        from accounts.models import User

        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"--user: no active user '{username}'.")
        return user

    def _summary(self, result: ExportResult) -> None:
        if not result.released:
            self.stdout.write("No claims were ready to export.")
        for f in result.released:
            self.stdout.write(f"{f.path}: {f.claims} claims, total {f.total_charge}")
        self.stdout.write(
            f"Exported {result.claims} claims in {len(result.released)} file(s), "
            f"total charge {result.total_charge}."
        )
