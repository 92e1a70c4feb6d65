"""The append-only, hash-chained audit trail (HIPAA 164.312(b); ONC 170.315(d)(2), (d)(3), (d)(10)).

Rows are only ever inserted by `audit.services.record`. The model refuses updates and deletes;
on PostgreSQL a trigger (migration 0002) also rejects UPDATE, DELETE and TRUNCATE. Each row
carries the previous row's HMAC and its own HMAC over its content, keyed by a secret kept outside
the database (settings.AUDIT_HMAC_KEY), so `manage.py verify_audit` finds any edit or deletion.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    CREATE = "create", "Create"
    READ = "read", "Read"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    QUERY = "query", "Query"
    PRINT = "print", "Print"
    EXPORT = "export", "Export"
    EXECUTE = "execute", "Execute (security event)"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    DENIED = "denied", "Denied"
    FAILURE = "failure", "Failure"


class Category(models.TextChoices):
    DEMOGRAPHICS = "demographics", "Demographics"
    COVERAGE = "coverage", "Insurance coverage"
    ALERTS = "alerts", "Patient alerts"
    SECURITY = "security", "Security"
    AUDIT = "audit", "Audit trail"
    ADMINISTRATION = "administration", "Administration"
    SCHEDULING = "scheduling", "Scheduling"
    MESSAGING = "messaging", "Messages to patients"
    INTERFACES = "interfaces", "Interfaces (HL7, calendar feeds)"
    BILLING = "billing", "Billing and claims"
    PAYMENTS = "payments", "Patient accounts and payments"


class AppendOnlyQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise PermissionError("Audit events are append-only.")

    def delete(self) -> NoReturn:
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    sequence = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField()
    # no single-column index: audit_event_user_idx (user, -sequence) leads with the user
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    roles = models.CharField(max_length=300, blank=True)
    session_ref = models.CharField(max_length=16, blank=True)
    patient_public_id = models.UUIDField(null=True, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    event = models.CharField(max_length=60)
    category = models.CharField(max_length=20, choices=Category.choices)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    fields = models.JSONField(default=list, blank=True, help_text="Names of fields, never values.")
    prev_hash = models.CharField(max_length=64)
    hmac = models.CharField(max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-sequence"]
        indexes = [
            models.Index(fields=["patient_public_id", "-sequence"], name="audit_event_patient_idx"),
            models.Index(fields=["user", "-sequence"], name="audit_event_user_idx"),
            models.Index(fields=["occurred_at", "sequence"], name="audit_event_time_seq_idx"),
            models.Index(fields=["event", "-sequence"], name="audit_event_event_idx"),
            # The privacy officer's report filters and sorts on these too (audit.selectors).
            models.Index(fields=["username", "-sequence"], name="audit_event_username_idx"),
            models.Index(fields=["action", "-sequence"], name="audit_event_action_idx"),
            models.Index(fields=["outcome", "-sequence"], name="audit_event_outcome_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.event} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError("Audit events are append-only.")
