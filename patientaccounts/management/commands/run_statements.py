"""Make patient statements for every patient whose own balance is above zero (no worker needed).

    python manage.py run_statements [--date YYYY-MM-DD] [--location CODE] [--message TEXT] [--json]

Runs in this process with a progress bar on stderr; `--json` prints
`{"run": "<uuid>", "statement_date": "...", "total": n, "statements": n}` on stdout. A statement
already made for a patient on that date is not made again, so a rerun is safe.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from core.models import Location
from patientaccounts import services


class Command(BaseCommand):
    help = "Make patient statements for every patient with a balance due, with a progress bar."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--date", help="Statement date (YYYY-MM-DD); default today.")
        parser.add_argument("--location", help="Only patients of this location (its code).")
        parser.add_argument("--message", default="", help="Message printed on every statement.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = dt.date.fromisoformat(options["date"]) if options["date"] else None
        except ValueError as exc:
            raise CommandError("--date must be a date such as 2026-11-30.") from exc
        location = None
        if options["location"]:
            location = Location.objects.filter(code=options["location"]).first()
            if location is None:
                raise CommandError(f"--location: no location with code '{options['location']}'.")
        if len(options["message"]) > 300:
            raise CommandError("--message must be at most 300 characters.")
        run = services.statement_run_start(
            actor=None,
            location=location,
            statement_date=day or timezone.localdate(),
            message=options["message"],
            enqueue=False,
        )
        with tqdm(total=run.total, unit="statement", desc="Statements", file=sys.stderr) as bar:
            run = services.statement_run_execute(
                run_id=run.pk, progress=lambda done, total: bar.update(1)
            )
        result = {
            "run": str(run.public_id),
            "statement_date": run.statement_date.isoformat(),
            "total": run.total,
            "statements": run.done,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True))
        else:
            self.stdout.write(f"Made {run.done} statement(s) dated {result['statement_date']}.")
