"""`manage.py announce_changes`: send the queued announcements of appointment changes now (the
other apps' reminders and HL7 SIU messages), for cron where no background worker runs, or to
catch up after one was stopped. Idempotent beside a running worker: each row is claimed once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from scheduling.tasks import announce_queued_changes


class Command(BaseCommand):
    help = "Send the queued announcements of appointment changes (cron, when no worker runs)."

    def handle(self, *args: Any, **options: Any) -> None:
        done = announce_queued_changes()
        self.stdout.write(f"{done} appointment change(s) announced")
