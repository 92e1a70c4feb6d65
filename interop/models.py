"""HL7 v2 message logs (inbound ADT, outbound SIU) and the per-practitioner calendar feed tokens.

What is stored, and why:

* InboundHl7Message logs each message received (control id, type, sender, outcome, the ACK code
  and a problem text written by us that names HL7 fields, never their values). The raw message
  is NOT stored: it is PHI, and the patient record plus the audit trail already hold what was
  applied. A SHA-256 of the message lets a resend of the same message (a sender that lost our
  ACK) be answered without applying it twice.
* OutboundHl7Message keeps the SIU payload (it holds PHI, like the appointment it describes, and
  lives in the same database under the same controls) because it must be resent until the
  receiver acknowledges it; once delivered, payloads are blanked after
  PATIENTDESK_HL7_PAYLOAD_RETENTION_DAYS (`hl7_send_pending`). The interface screen never shows it.
* IcalFeedToken stores only the SHA-256 of the secret in the feed URL (shown once).
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import BaseModel, Location
from patients.models import Patient
from scheduling.models import Appointment, Practitioner


class Transport(models.TextChoices):
    MLLP = "mllp", "MLLP (TCP)"
    FILE = "file", "File drop"


class AckCode(models.TextChoices):
    AA = "AA", "Accepted"
    AE = "AE", "Application error"
    AR = "AR", "Rejected"


class InboundStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    ERROR = "error", "Not applied (application error)"
    REJECTED = "rejected", "Rejected"


ACK_STATUS: dict[str, str] = {
    AckCode.AA: InboundStatus.ACCEPTED,
    AckCode.AE: InboundStatus.ERROR,
    AckCode.AR: InboundStatus.REJECTED,
}


class InboundHl7Message(BaseModel):
    transport = models.CharField(max_length=4, choices=Transport.choices)
    peer = models.CharField(max_length=64, blank=True, help_text="Remote address (MLLP only).")
    sending_application = models.CharField(max_length=100, blank=True)
    sending_facility = models.CharField(max_length=100, blank=True)
    message_type = models.CharField(max_length=20, blank=True, help_text="e.g. ADT^A04")
    control_id = models.CharField(max_length=199, blank=True)
    version = models.CharField(max_length=10, blank=True)
    status = models.CharField(max_length=10, choices=InboundStatus.choices)
    ack_code = models.CharField(max_length=2, choices=AckCode.choices)
    error_text = models.TextField(blank=True, help_text="Names HL7 fields, never their values.")
    payload_sha256 = models.CharField(max_length=64)
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    patient = models.ForeignKey(
        Patient,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="hl7_inbound_messages",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="interop_inbound_recent_idx"),
            models.Index(
                fields=["sending_application", "sending_facility", "control_id"],
                name="interop_inbound_sender_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ack_code__in=AckCode.values), name="interop_inbound_ack_code_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_type or 'HL7'} {self.control_id} {self.ack_code}"


class OutboundStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Written (file drop)"
    ACKED = "acked", "Acknowledged"
    FAILED = "failed", "Failed"


_S = OutboundStatus
OUTBOUND_TRANSITIONS: dict[str, frozenset[str]] = {
    _S.QUEUED: frozenset({_S.QUEUED, _S.SENT, _S.ACKED, _S.FAILED}),
    _S.FAILED: frozenset({_S.QUEUED}),
    _S.SENT: frozenset(),
    _S.ACKED: frozenset(),
}


class OutboundHl7Message(BaseModel):
    transport = models.CharField(max_length=4, choices=Transport.choices)
    destination = models.CharField(max_length=300, help_text="Directory or host:port.")
    control_id = models.CharField(max_length=20)
    message_type = models.CharField(max_length=20, help_text="e.g. SIU^S12")
    change = models.CharField(max_length=20, help_text="The appointment change it reports.")
    appointment = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.TextField(help_text="The HL7 message (PHI); blanked after retention.")
    status = models.CharField(max_length=10, choices=OutboundStatus.choices, default=_S.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_ack_code = models.CharField(max_length=2, blank=True)
    last_ack_text = models.CharField(
        max_length=200, blank=True, help_text="MSA-3 as the receiver wrote it (not shown)."
    )
    last_error = models.CharField(
        max_length=200, blank=True, help_text="What went wrong, in our words (no PHI)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["transport", "status", "id"], name="interop_outbound_queue_idx"),
            models.Index(fields=["-created_at"], name="interop_outbound_recent_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["control_id"], name="interop_outbound_unique_control"),
            models.CheckConstraint(
                condition=Q(status__in=OutboundStatus.values), name="interop_outbound_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_type} {self.control_id} {self.status}"

    @property
    def can_retry(self) -> bool:
        return self.status in (_S.FAILED, _S.QUEUED)


class FeedDetail(models.TextChoices):
    INITIALS = "initials", "Appointment type and patient initials"
    TYPE_ONLY = "type", "Appointment type only"


def hash_feed_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class IcalFeedToken(BaseModel):
    """A secret, revocable calendar subscription URL for one practitioner's appointments."""

    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="ical_tokens"
    )
    token_hash = models.CharField(max_length=64)
    hint = models.CharField(max_length=8, help_text="First characters, to tell links apart.")
    detail = models.CharField(
        max_length=10, choices=FeedDetail.choices, default=FeedDetail.INITIALS
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["token_hash"], name="interop_icalfeedtoken_unique_hash"
            ),
        ]

    def __str__(self) -> str:
        return f"calendar feed {self.hint}… for {self.practitioner_id}"

    @staticmethod
    def generate() -> str:
        return secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
