"""The outbox: every email and SMS to a patient or to staff is a row here first.

A row is planned (queued, or suppressed with a reason), then a worker claims it when it is due,
hands it to a channel and records what the channel answered. Nothing is marked sent unless the
channel accepted it (the SMTP server took the message; the SMS gateway answered 2xx with a
message id). Status changes go through `messaging.services` along ALLOWED_TRANSITIONS.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.models import BaseModel
from patients.models import Patient
from scheduling.models import Appointment, WaitlistOffer


class MessageKind(models.TextChoices):
    REMINDER = "reminder", "Appointment reminder"
    CONFIRMATION = "confirmation", "Booking confirmation"
    CANCELLATION_NOTICE = "cancellation_notice", "Cancellation notice"
    WAITLIST_OFFER = "waitlist_offer", "Waitlist offer"
    STAFF_NOTICE = "staff_notice", "Notice to staff"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "Text message (SMS)"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent (accepted by the channel)"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    SUPPRESSED = "suppressed", "Suppressed (not sent)"


M = MessageStatus
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    M.QUEUED: frozenset({M.SENT, M.FAILED, M.CANCELLED, M.SUPPRESSED}),
    # A delivery receipt may still report failure after the gateway accepted the message.
    M.SENT: frozenset({M.DELIVERED, M.FAILED}),
    M.DELIVERED: frozenset(),
    M.FAILED: frozenset(),
    M.CANCELLED: frozenset(),
    M.SUPPRESSED: frozenset(),
}
# A message is created in one of these.
INITIAL_STATUSES = frozenset({M.QUEUED, M.SUPPRESSED})
PATIENT_KINDS = frozenset(
    {
        MessageKind.REMINDER,
        MessageKind.CONFIRMATION,
        MessageKind.CANCELLATION_NOTICE,
        MessageKind.WAITLIST_OFFER,
    }
)


class OutboundMessage(BaseModel):
    """One email or SMS. `recipient` and `body` are PHI: never log them."""

    patient = models.ForeignKey(
        Patient,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="outbound_messages",
        help_text="Empty for notices to staff.",
    )
    appointment = models.ForeignKey(
        Appointment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outbound_messages",
    )
    waitlist_offer = models.ForeignKey(
        WaitlistOffer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outbound_messages",
    )
    kind = models.CharField(max_length=20, choices=MessageKind.choices)
    channel = models.CharField(max_length=5, choices=Channel.choices)
    recipient = models.CharField(
        max_length=254, blank=True, help_text="Email address or E.164 phone number."
    )
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=M.QUEUED)
    status_reason = models.CharField(
        max_length=120,
        blank=True,
        help_text="Why it was cancelled or suppressed, e.g. 'no SMS consent' (never PHI).",
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the next delivery attempt is due (UTC)."
    )
    last_error = models.CharField(max_length=200, blank=True, help_text="Never PHI.")
    provider_message_id = models.CharField(max_length=200, blank=True)
    dedupe_key = models.CharField(max_length=200)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="messaging_outbox_due_idx"),
            models.Index(fields=["appointment", "kind"], name="messaging_outbox_appt_idx"),
            models.Index(
                fields=["channel", "provider_message_id"], name="messaging_outbox_provider_idx"
            ),
            models.Index(fields=["patient", "-created_at"], name="messaging_outbox_patient_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"], name="messaging_outboundmessage_unique_dedupe_key"
            ),
            models.CheckConstraint(
                condition=Q(kind=MessageKind.STAFF_NOTICE) | Q(patient__isnull=False),
                name="messaging_outboundmessage_patient_kinds_need_patient",
            ),
            models.CheckConstraint(
                condition=~Q(status=M.QUEUED) | Q(next_attempt_at__isnull=False),
                name="messaging_outboundmessage_queued_has_due_time",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[M.SENT, M.DELIVERED]) | Q(sent_at__isnull=False),
                name="messaging_outboundmessage_sent_has_sent_at",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[M.CANCELLED, M.SUPPRESSED]) | ~Q(status_reason=""),
                name="messaging_outboundmessage_reason_when_not_sent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.channel} ({self.status})"


class ConsentSource(models.TextChoices):
    SMS_STOP = "sms-stop", "Replied STOP to a text message"
    EMAIL_LINK = "email-link", "Unsubscribe link in an email"


class ConsentWithdrawal(BaseModel):
    """Evidence that a patient opted out of a channel (kept after staff turn consent back on)."""

    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="consent_withdrawals"
    )
    channel = models.CharField(max_length=5, choices=Channel.choices)
    source = models.CharField(max_length=12, choices=ConsentSource.choices)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["patient", "channel", "-created_at"], name="messaging_optout_patient_idx"
            )
        ]

    def __str__(self) -> str:
        return f"opt-out {self.channel} ({self.source})"
