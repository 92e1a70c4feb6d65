"""`python manage.py rebuild_ar_balances [--check | --compact] [--no-progress]`

Rebuilds the running A/R balances (receivables.models: per claim reference, per patient and
service date) from the ledger, and the claim rows' attributes and their database triggers
(receivables.triggers) from the claims, in one transaction; running it again changes nothing
(idempotent). Every posting keeps them in step by itself (patientaccounts.ledger): rebuild after
writing ledger rows some other way (bulk SQL imports, the A/R benchmark's seed) or to repair.

`--compact` only merges the KPI rollups' delta rows (receivables.rollups, PostgreSQL) into one
row per key while postings go on (no table lock): run it nightly from cron on a busy site.

`--check` changes nothing: it compares the running balances with the ledger's sums (and the
claim attributes with the claims, and looks for the triggers), prints
"A/R running balances match the ledger." and exits 0, or lists the first differences and exits 1.
"""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from receivables.balances import differences, rebuild

REBUILD_STEPS = 6


class Command(BaseCommand):
    help = "Rebuild the running A/R balances from the ledger (or --check them against it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="compare the running balances with the ledger; change nothing (exit 1 if not)",
        )
        parser.add_argument(
            "--compact",
            action="store_true",
            help="only merge the KPI rollups' delta rows (online, PostgreSQL)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["compact"]:
            from django.db import connection

            from receivables import rollups

            money_rows, charge_rows = rollups.compact(connection)
            self.stdout.write(
                f"KPI rollups compacted: {money_rows} money rows, {charge_rows} charge rows."
            )
            return
        if options["check"]:
            problems = differences()
            if problems:
                for line in problems:
                    self.stderr.write(line)
                raise CommandError(
                    "A/R running balances differ from the ledger: run rebuild_ar_balances."
                )
            self.stdout.write("A/R running balances match the ledger.")
            return
        bar = tqdm(
            total=REBUILD_STEPS,
            unit=" steps",
            desc="Rebuilding A/R balances",
            file=cast(TextIO, self.stderr._out),
            disable=options["no_progress"],
        )
        with bar:

            def step(label: str) -> None:
                bar.set_postfix_str(label)
                bar.update(1)

            result = rebuild(on_step=step)
            bar.update(REBUILD_STEPS - bar.n)
        self.stdout.write(
            f"A/R running balances rebuilt: {result.claims} claim balances, "
            f"{result.patients} patient balances."
        )
