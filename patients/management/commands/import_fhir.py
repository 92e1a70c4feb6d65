"""manage.py import_fhir PATH [PATH...] [--json] [--location CODE] [--user USERNAME]
[--warn-duplicates] [--readers N]

Imports FHIR R4 Bundles (e.g. Synthea output): creates or updates patients and their coverages.
See patients/importers.py for what is imported and how a re-run behaves. Progress goes to
stderr; the summary (or, with --json, exactly one JSON object) to stdout. The exit code is
non-zero only when no file could be read.
"""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from patients.importers import ImportReport, import_fhir_files, import_location, service_account


class Command(BaseCommand):
    help = "Import patients and coverages from FHIR R4 Bundle files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="FHIR Bundle JSON files")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--location", metavar="CODE", help="home location of new patients")
        parser.add_argument(
            "--user", metavar="USERNAME", help="act as this user (default: system-import)"
        )
        parser.add_argument(
            "--warn-duplicates",
            action="store_true",
            help="warn when a new patient looks like one registered without its identifier",
        )
        parser.add_argument(
            "--readers",
            type=int,
            metavar="N",
            help=(
                "processes that read and validate files while this one writes (0: none; "
                "default: one fewer than the CPUs but at least 2, at most 3, for 400 files or more)"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["readers"] is not None and options["readers"] < 0:
            raise CommandError("--readers must be 0 or more.")
        actor = self._actor(options["user"])
        try:
            location = import_location(options["location"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        paths: list[str] = options["paths"]
        stream = getattr(self.stderr, "_out", sys.stderr)  # the raw stream: tqdm redraws with \r
        with tqdm(total=len(paths), unit="file", file=stream, desc="import_fhir") as bar:
            patients = itertools.count(1)
            try:
                report = import_fhir_files(
                    paths,
                    actor=actor,
                    location=location,
                    on_file=lambda _path: bar.update(1),
                    on_patient=lambda: bar.set_postfix(patients=next(patients), refresh=False),
                    warn_duplicates=options["warn_duplicates"],
                    readers=options["readers"],
                )
            except (PermissionDenied, ValidationError) as exc:
                message = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
                raise CommandError(" ".join(message)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json()))
        else:
            self._print_summary(report)
        if report.files_read == 0:
            raise CommandError("No file could be read as a FHIR Bundle.")

    def _actor(self, username: str | None) -> Any:
        if not username:
            return service_account()
        from accounts.models import User

        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user '{username}'.")
        return user

    def _print_summary(self, report: ImportReport) -> None:
        self.stdout.write(
            f"Patients created: {report.patients_created}, updated: {report.patients_updated}, "
            f"unchanged (skipped): {report.skipped}; coverages written: {report.coverages}."
        )
        for error in report.errors:
            where = error["path"] + (
                f" entry {error['entry']}" if error["entry"] is not None else ""
            )
            label = "warning" if error["level"] == "warning" else "error"
            self.stdout.write(f"{label}: {where}: {error['reason']}")
