"""manage.py hl7_send_pending [--json]

Delivers the HL7 SIU messages that are due (file drop and/or MLLP, see interop/services.py),
once, then blanks the payload of messages delivered longer ago than
PATIENTDESK_HL7_PAYLOAD_RETENTION_DAYS. Workers do this on their own (interop.tasks); run this
from cron where no worker runs, or to catch up after an outage.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from interop.services import outbound_purge_payloads, outbound_send_pending


class Command(BaseCommand):
    help = "Send the queued HL7 messages that are due, once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        report = outbound_send_pending()
        purged = outbound_purge_payloads()
        counts = {**report.as_json(), "payloads_purged": purged}
        if options["json"]:
            self.stdout.write(json.dumps(counts))
        else:
            self.stdout.write(
                f"Delivered {counts['delivered']}, will retry {counts['retrying']}, "
                f"failed {counts['failed']}; purged {purged} old payload(s)."
            )
