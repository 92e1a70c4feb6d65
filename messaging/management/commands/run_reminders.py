"""Process the outbox once: plan missing reminders, then deliver every message due now.

For cron (e.g. every 5 minutes) where no `db_worker` runs, or beside one: delivery is claimed
per message under a row lock, so a cron run and a worker never send the same message twice.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from messaging import services


class Command(BaseCommand):
    help = "Plan missing reminders and deliver every message that is due now, once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the counts as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        planned = services.reminders_plan_missing()
        outcomes = services.deliver_due()
        report = {"planned": planned, "processed": sum(outcomes.values()), **outcomes}
        if options["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
            return
        details = ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items()))
        self.stdout.write(
            f"Planned {planned} reminder(s); processed {report['processed']} due message(s)"
            + (f": {details}." if details else ".")
        )
