"""`python manage.py ar_aging [--by payer|patient] [--basis service|submission]
[--as-of YYYY-MM-DD] [--user USERNAME] [--json]`

Prints the A/R aging report. `--json` prints:

    {"as_of": "2026-11-23", "basis": "service", "by": "payer",
     "buckets": ["0-30", "31-60", "61-90", "91-120", "120+"],
     "rows": [{"key": "<payer id or patient public id or patient-responsibility>",
               "name": "...", ["mrn": "...",] "0-30": "12.00", ..., "120+": "0.00",
               "insurance": "...", "patient": "...", "total": "..."}],
     "totals": {"0-30": "...", ..., "insurance": "...", "patient": "...", "total": "..."}}

Amounts are decimal strings. With `--user`, the report is that user's (capabilities checked, their
locations only); without it, every location. By patient lists names and MRNs (PHI): every run is
audited as an export.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.models import Action, Category
from audit.services import record
from receivables.aging import BUCKETS, AgingReport, Basis, GroupBy, compute_aging


class Command(BaseCommand):
    help = "Print the A/R aging by payer or by patient (buckets 0-30 ... 120+)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--by", choices=GroupBy.values, default=GroupBy.PAYER)
        parser.add_argument("--basis", choices=Basis.values, default=Basis.SERVICE)
        parser.add_argument("--as-of", dest="as_of", help="YYYY-MM-DD (default: today)")
        parser.add_argument("--user", help="run as this user (their capabilities and locations)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = self._as_of(options.get("as_of"))
        by, basis = options["by"], options["basis"]
        if options.get("user"):
            report = self._as_user(options["user"], by=by, basis=basis, as_of=as_of)
        else:
            report = compute_aging(by=by, basis=basis, as_of=as_of)
            record(
                actor=None,
                username="manage.py ar_aging",
                action=Action.EXPORT,
                event=f"receivables.aging_{by}.export",
                category=Category.BILLING,
                object_type="ar_aging",
                object_id=f"{by}:{basis}:{as_of.isoformat()}",
                fields=["mrn", "name", "balance"]
                if by == GroupBy.PATIENT
                else ["payer", "balance"],
                reason=f"{report.row_count} rows",
            )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self._table(report)

    def _as_of(self, value: str | None) -> dt.date:
        if not value:
            return timezone.localdate()
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise CommandError(f"--as-of: '{value}' is not a date (YYYY-MM-DD).") from exc

    def _as_user(self, username: str, *, by: str, basis: str, as_of: dt.date) -> AgingReport:
        from accounts.models import User
        from receivables.selectors import aging_for_user

        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"--user: no active user '{username}'.")
        try:
            return aging_for_user(user=user, by=by, basis=basis, as_of=as_of, export=True)
        except PermissionDenied as exc:
            raise CommandError(f"--user: {exc}") from exc

    def _table(self, report: AgingReport) -> None:
        self.stdout.write(
            f"A/R aging by {report.by}, aged from the date of {report.basis}, "
            f"as of {report.as_of.isoformat()}"
        )
        width = 34
        self.stdout.write(f"{'':<{width}}" + "".join(f"{b:>13}" for b in (*BUCKETS, "total")))
        for row in [*report.rows, report.totals]:
            label = f"{row.mrn} {row.name}" if row.mrn else row.name
            amounts = [*row.buckets, row.total]
            self.stdout.write(f"{label[:width]:<{width}}" + "".join(f"{a:>13}" for a in amounts))
