"""Writes for the outbox: planning messages, delivering them, receipts, consent and the actions
behind the signed links. Each write is atomic; status changes go through `_transition` along
messaging.models.ALLOWED_TRANSITIONS. Sending, failing and delivery are audited (category
"messaging", the patient, never the address or the text); a cancelled or suppressed message keeps
its reason on the row. Consent withdrawals are audited as the patient ("patient-link" for the
unsubscribe link, "patient-sms" for a STOP reply).

Delivery is claim → send → record:
1. claim (a short transaction, row locked): re-check the appointment, consent and quiet hours,
   render the text, count the attempt and push `next_attempt_at` out by a lease so no other
   worker takes the same message while it is on the wire;
2. send (no transaction open, so no lock is held while a mail server or gateway answers);
3. record (a short transaction): SENT only if the channel accepted it; otherwise retry with
   exponential back-off, or FAILED after MESSAGE_MAX_ATTEMPTS or on a permanent refusal.
A worker that dies between 1 and 3 leaves the message queued; it is retried when the lease ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, Category
from audit.services import record
from messaging import channels, links, rendering, timing
from messaging.models import (
    ALLOWED_TRANSITIONS,
    PATIENT_KINDS,
    Channel,
    ConsentSource,
    ConsentWithdrawal,
    MessageKind,
    MessageStatus,
    OutboundMessage,
)
from patients.models import ContactMethod, Patient
from patients.validators import normalize_phone
from scheduling.events import AppointmentChange
from scheduling.models import (
    Appointment,
    AppointmentStatus,
    CancelledBy,
    OfferStatus,
    WaitlistOffer,
)

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

AUDIT_CATEGORY = "messaging"
SYSTEM = "system"
PATIENT_LINK = "patient-link"
PATIENT_SMS = "patient-sms"
CANCELLED_BY_PATIENT_REASON = "cancelled by patient via reminder link"
# How long a claimed message stays invisible to other workers while it is being sent.
CLAIM_LEASE = dt.timedelta(minutes=10)
ACTIVE_APPOINTMENT_STATUSES = frozenset({AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED})
# CTIA opt-out keywords.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})

S = MessageStatus
# Audited: the moments PHI left (or failed to leave) the building. Planning, cancelling and
# suppressing keep their reason on the row itself.
AUDITED_STATUSES = frozenset({S.SENT, S.FAILED, S.DELIVERED})


class InvalidTransition(Exception):  # noqa: N818  (reads as what happened)
    pass


# --- channel choice -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where a patient message goes, or why it cannot go anywhere (`reason`)."""

    channel: Channel | None
    recipient: str = ""
    reason: str = ""


def _opted_out(patient: Patient) -> set[str]:
    return set(ConsentWithdrawal.objects.filter(patient=patient).values_list("channel", flat=True))


def route_for(patient: Patient) -> Route:
    """SMS needs consent and a mobile number, email needs consent and an address. The patient's
    preferred contact method goes first; otherwise the other consented channel; else none."""
    usable = {
        Channel.SMS: patient.consent_sms and bool(patient.phone_mobile),
        Channel.EMAIL: patient.consent_email and bool(patient.email),
    }
    order = (
        [Channel.EMAIL, Channel.SMS]
        if patient.preferred_contact == ContactMethod.EMAIL
        else [Channel.SMS, Channel.EMAIL]
    )
    for channel in order:
        if usable[channel]:
            recipient = patient.phone_mobile if channel == Channel.SMS else patient.email
            return Route(channel=channel, recipient=recipient)
    opted_out = _opted_out(patient)
    reasons = []
    if not patient.consent_sms:
        reasons.append("opted out of SMS" if Channel.SMS in opted_out else "no SMS consent")
    elif not patient.phone_mobile:
        reasons.append("no mobile phone")
    if not patient.consent_email:
        reasons.append("opted out of email" if Channel.EMAIL in opted_out else "no email consent")
    elif not patient.email:
        reasons.append("no email address")
    return Route(channel=None, reason="; ".join(reasons))


def _patient_zone(patient: Patient | None) -> str | None:
    return patient.home_location.time_zone if patient is not None else None


# --- transitions and audit ----------------------------------------------------------------------


def _audit(
    message: OutboundMessage, event: str, *, reason: str = "", actor: User | None = None
) -> None:
    record(
        actor=actor,
        username="" if actor else SYSTEM,
        action=Action.EXECUTE if event in ("message.sent", "message.failed") else Action.UPDATE,
        event=event,
        category=AUDIT_CATEGORY,
        patient_public_id=message.patient.public_id if message.patient is not None else None,
        obj=message,
        reason=reason,
        fields=["status"],
    )


def _transition(
    message: OutboundMessage, to: MessageStatus, *, reason: str = "", **changes: Any
) -> OutboundMessage:
    if to not in ALLOWED_TRANSITIONS[message.status]:
        raise InvalidTransition(f"A {message.status} message cannot become {to}.")
    message.status = to
    if to in (S.CANCELLED, S.SUPPRESSED):
        message.status_reason = reason[:120]
    if to in (S.SENT, S.FAILED, S.CANCELLED, S.SUPPRESSED, S.DELIVERED):
        message.next_attempt_at = None
    for name, value in changes.items():
        setattr(message, name, value)
    message.save()
    if to in AUDITED_STATUSES:
        _audit(message, f"message.{to}", reason=message.last_error)
    return message


# --- scheduling the worker ----------------------------------------------------------------------


def _schedule_on_commit(message: OutboundMessage) -> None:
    if message.status != S.QUEUED or message.next_attempt_at is None:
        return
    message_id, due = message.pk, message.next_attempt_at

    def schedule() -> None:
        from messaging import tasks

        try:
            tasks.schedule_delivery(message_id=message_id, due=due)
        except Exception as exc:  # the cron sweep (run_reminders) still finds it
            logger.warning(
                "could not enqueue delivery of message %s: %s", message_id, type(exc).__name__
            )

    transaction.on_commit(schedule)


# --- planning -----------------------------------------------------------------------------------


def _create(
    *,
    kind: MessageKind,
    dedupe_key: str,
    due: dt.datetime,
    patient: Patient | None = None,
    appointment: Appointment | None = None,
    offer: WaitlistOffer | None = None,
    recipient: str = "",
    event: str = "",
    checked: bool = False,
) -> OutboundMessage | None:
    """Plan one message unless its dedupe key exists (`checked`: the caller looked already).
    Returns the new row, or None."""
    if not checked and OutboundMessage.objects.filter(dedupe_key=dedupe_key).exists():
        return None
    message = OutboundMessage(
        kind=kind,
        dedupe_key=dedupe_key,
        patient=patient,
        appointment=appointment,
        waitlist_offer=offer,
        channel=Channel.EMAIL,
        recipient=recipient,
    )
    if patient is not None:
        route = route_for(patient)
        if route.channel is None:
            message.status = S.SUPPRESSED
            message.status_reason = route.reason[:120]
        else:
            message.channel, message.recipient = route.channel, route.recipient
            message.next_attempt_at = timing.defer_for_quiet_hours(due, _patient_zone(patient))
    else:
        message.next_attempt_at = due
    if message.status == S.QUEUED:
        text = rendering.render(message, event=event)
        message.subject, message.body = text.subject, text.body
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        return None  # planned concurrently by another process: the dedupe key did its job
    _schedule_on_commit(message)
    return message


def _offsets(raw: object) -> list[float]:
    values: set[float] = set()
    if isinstance(raw, list | tuple):
        for item in raw:
            if isinstance(item, int | float) and not isinstance(item, bool) and 0 < item < 24 * 60:
                values.add(float(item))
    return sorted(values, reverse=True)


def _offset_label(hours: float) -> str:
    return f"{int(hours)}h" if hours == int(hours) else f"{hours:g}h"


def reminder_key(appointment: Appointment, hours: float) -> str:
    start = appointment.start.astimezone(dt.UTC)
    return f"reminder:{appointment.pk}:{_offset_label(hours)}:{start:%Y%m%dT%H%MZ}"


def _stale_reason(appointment: Appointment) -> str:
    status = appointment.status
    if status == AppointmentStatus.CANCELLED:
        return "appointment cancelled"
    if status == AppointmentStatus.NO_SHOW:
        return "appointment marked no-show"
    if status in (
        AppointmentStatus.ARRIVED,
        AppointmentStatus.IN_ROOM,
        AppointmentStatus.COMPLETED,
    ):
        return "patient has arrived"
    if appointment.start <= timezone.now():
        return "appointment time has passed"
    return "appointment rescheduled"


def _appointment(appointment_id: int) -> Appointment | None:
    return (
        Appointment.objects.select_related("patient__home_location", "location", "appointment_type")
        .prefetch_related("practitioners")
        .filter(pk=appointment_id)
        .first()
    )


@transaction.atomic
def reminders_plan(*, appointment: Appointment) -> list[OutboundMessage]:
    """(Re)plan the reminders of one appointment; safe to call any number of times.

    One reminder per offset of the appointment type (start - offset), skipping offsets already
    past. Queued reminders that no longer fit (rescheduled, cancelled, type changed) are cancelled.
    """
    fresh = _appointment(appointment.pk)
    return _plan_reminders(fresh) if fresh is not None else []


def _plan_reminders(appointment: Appointment) -> list[OutboundMessage]:
    """reminders_plan for an appointment fetched by `_appointment` (inside a transaction)."""
    now = timezone.now()
    wanted: dict[str, dt.datetime] = {}
    if appointment.status in ACTIVE_APPOINTMENT_STATUSES and appointment.start > now:
        for hours in _offsets(appointment.appointment_type.reminder_offsets_hours):
            due = appointment.start - dt.timedelta(hours=hours)
            if due > now:
                wanted[reminder_key(appointment, hours)] = due
    existing = list(
        OutboundMessage.objects.select_for_update().filter(
            appointment=appointment, kind=MessageKind.REMINDER
        )
    )
    reason = _stale_reason(appointment)
    for message in existing:
        if message.status == S.QUEUED and message.dedupe_key not in wanted:
            _transition(message, S.CANCELLED, reason=reason)
    known = {message.dedupe_key for message in existing}
    created = []
    for key, due in wanted.items():
        if key in known:
            continue
        planned = _create(
            kind=MessageKind.REMINDER,
            dedupe_key=key,
            due=due,
            patient=appointment.patient,
            appointment=appointment,
            checked=True,
        )
        if planned is not None:
            created.append(planned)
    return created


def reminders_plan_missing(*, horizon: dt.timedelta | None = None) -> int:
    """Plan reminders for upcoming appointments that have none yet (booked before messaging was
    on, imported, or seeded). Returns how many reminders were planned."""
    now = timezone.now()
    horizon = horizon or dt.timedelta(days=8)
    has_reminder = OutboundMessage.objects.filter(
        appointment=OuterRef("pk"), kind=MessageKind.REMINDER
    )
    upcoming = (
        Appointment.objects.filter(
            status__in=ACTIVE_APPOINTMENT_STATUSES, start__gt=now, start__lte=now + horizon
        )
        .exclude(appointment_type__reminder_offsets_hours=[])
        .filter(~Exists(has_reminder))
        .order_by("start")
    )
    return sum(len(reminders_plan(appointment=a)) for a in upcoming.iterator(chunk_size=200))


def _cancel_queued(appointment: Appointment, kinds: set[MessageKind], reason: str) -> None:
    queued = OutboundMessage.objects.select_for_update().filter(
        appointment=appointment, kind__in=kinds, status=S.QUEUED
    )
    for message in queued:
        _transition(message, S.CANCELLED, reason=reason)


def _start_key(appointment: Appointment) -> str:
    return f"{appointment.start.astimezone(dt.UTC):%Y%m%dT%H%MZ}"


@transaction.atomic
def cancellation_notice_queue(*, appointment: Appointment) -> OutboundMessage | None:
    return _create(
        kind=MessageKind.CANCELLATION_NOTICE,
        dedupe_key=f"cancellation:{appointment.pk}:{_start_key(appointment)}",
        due=timezone.now(),
        patient=appointment.patient,
        appointment=appointment,
    )


@transaction.atomic
def confirmation_queue(*, appointment: Appointment) -> OutboundMessage | None:
    return _create(
        kind=MessageKind.CONFIRMATION,
        dedupe_key=f"confirmation:{appointment.pk}:{_start_key(appointment)}",
        due=timezone.now(),
        patient=appointment.patient,
        appointment=appointment,
    )


@transaction.atomic
def waitlist_offer_queue(*, offer: WaitlistOffer) -> OutboundMessage | None:
    offer = (
        WaitlistOffer.objects.select_related(
            "entry__patient__home_location", "entry__location", "practitioner"
        )
        .filter(pk=offer.pk)
        .get()
    )
    if offer.status != OfferStatus.OPEN:
        return None
    return _create(
        kind=MessageKind.WAITLIST_OFFER,
        dedupe_key=f"waitlist_offer:{offer.pk}",
        due=timezone.now(),
        patient=offer.entry.patient,
        offer=offer,
    )


def staff_recipients(appointment: Appointment) -> list[str]:
    """STAFF_NOTIFY_EMAIL (one address or a comma-separated list); when unset, the active staff
    of the appointment's location who can schedule appointments."""
    configured = getattr(settings, "STAFF_NOTIFY_EMAIL", "") or ""
    if isinstance(configured, list | tuple):
        addresses = [str(a).strip() for a in configured]
    else:
        addresses = [a.strip() for a in str(configured).split(",")]
    addresses = [a for a in addresses if a]
    if addresses:
        return sorted(set(addresses))
    from accounts.models import User
    from core.capabilities import Capability

    staff = (
        User.objects.filter(locations=appointment.location, is_active=True)
        .exclude(email="")
        .prefetch_related("roles")
    )
    return sorted({u.email for u in staff if u.can(Capability.SCHEDULE_APPOINTMENTS)})


@transaction.atomic
def staff_notice_queue(*, appointment: Appointment, event: str) -> list[OutboundMessage]:
    """Tell staff that a patient booked or cancelled through a link. No patient name in it."""
    created = []
    for address in staff_recipients(appointment):
        digest = hashlib.sha256(address.lower().encode()).hexdigest()[:16]
        message = _create(
            kind=MessageKind.STAFF_NOTICE,
            dedupe_key=f"staff:{event}:{appointment.pk}:{_start_key(appointment)}:{digest}",
            due=timezone.now(),
            appointment=appointment,
            recipient=address,
            event=event,
        )
        if message is not None:
            created.append(message)
    return created


@transaction.atomic
def appointment_change_notify(*, appointment_id: int, change: str, via: str = "ui") -> None:
    """What the messaging app does when scheduling reports a change (see receivers.py)."""
    appointment = _appointment(appointment_id)
    if appointment is None:
        return
    _plan_reminders(appointment)
    if change == AppointmentChange.CANCELLED:
        _cancel_queued_after_cancel(appointment)
        if appointment.cancelled_by != CancelledBy.PATIENT:
            cancellation_notice_queue(appointment=appointment)
        if via == PATIENT_LINK:
            staff_notice_queue(appointment=appointment, event="cancelled")
    elif change == AppointmentChange.BOOKED and via == PATIENT_LINK:
        confirmation_queue(appointment=appointment)
        staff_notice_queue(appointment=appointment, event="booked")


@transaction.atomic
def _cancel_queued_after_cancel(appointment: Appointment) -> None:
    _cancel_queued(appointment, {MessageKind.CONFIRMATION}, "appointment cancelled")


# --- delivery -----------------------------------------------------------------------------------


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    DEFERRED = "deferred"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"


def _reason_to_stop(message: OutboundMessage, now: dt.datetime) -> str:
    """Why a queued patient message should no longer go out, or ''."""
    if message.kind == MessageKind.WAITLIST_OFFER:
        offer = message.waitlist_offer
        if offer is None or offer.status != OfferStatus.OPEN:
            return "offer no longer open"
        if offer.expires_at <= now or offer.start <= now:
            return "offer expired"
        return ""
    appointment = message.appointment
    if appointment is None:
        return "appointment removed"
    if message.kind == MessageKind.CANCELLATION_NOTICE:
        return ""
    if appointment.status not in ACTIVE_APPOINTMENT_STATUSES:
        return _stale_reason(appointment)
    if appointment.start <= now:
        return "appointment time has passed"
    return ""


@dataclass
class _Claim:
    message: OutboundMessage
    headers: dict[str, str]


def _locked(message_id: int) -> OutboundMessage | None:
    # Lock only the message row (PostgreSQL refuses FOR UPDATE on the nullable side of a join).
    return OutboundMessage.objects.select_for_update().filter(pk=message_id).first()


@transaction.atomic
def _claim(message_id: int, now: dt.datetime) -> _Claim | Outcome:
    message = _locked(message_id)
    if message is None or message.status != S.QUEUED:
        return Outcome.SKIPPED
    if message.next_attempt_at is not None and message.next_attempt_at > now:
        return Outcome.SKIPPED  # not due, or claimed by another worker
    headers: dict[str, str] = {}
    if message.kind in PATIENT_KINDS and message.patient_id is not None:
        patient = Patient.objects.select_related("home_location").get(pk=message.patient_id)
        message.patient = patient
        stop = _reason_to_stop(message, now)
        if stop:
            _transition(message, S.CANCELLED, reason=stop)
            return Outcome.CANCELLED
        route = route_for(patient)
        if route.channel is None:
            _transition(message, S.SUPPRESSED, reason=route.reason)
            return Outcome.SUPPRESSED
        later = timing.defer_for_quiet_hours(now, _patient_zone(patient))
        if later > now:
            message.next_attempt_at = later
            message.save(update_fields=["next_attempt_at", "updated_at"])
            _schedule_on_commit(message)
            return Outcome.DEFERRED
        # Consent may have changed since planning, and the appointment may have moved: the text
        # and the route are decided now, at the moment of sending.
        message.channel, message.recipient = route.channel, route.recipient
        text = rendering.render(message)
        message.subject, message.body, headers = text.subject, text.body, text.headers
    message.attempts += 1
    message.next_attempt_at = now + CLAIM_LEASE
    message.save()
    return _Claim(message=message, headers=headers)


def _send(claim: _Claim) -> channels.SendResult:
    message = claim.message
    try:
        if message.channel == Channel.EMAIL:
            return channels.send_email(
                to=message.recipient,
                subject=message.subject,
                body=message.body,
                headers=claim.headers,
            )
        return channels.sms_backend().send(
            to=message.recipient,
            body=message.body,
            callback_url=links.absolute(reverse("messaging:sms_status")),
        )
    except Exception as exc:  # a misconfigured or broken backend must not lose the message
        return channels.SendResult.failed(f"channel error ({type(exc).__name__})")


@transaction.atomic
def _record(message_id: int, attempt: int, result: channels.SendResult) -> Outcome:
    now = timezone.now()
    message = _locked(message_id)
    if message is None:
        return Outcome.SKIPPED
    if message.status != S.QUEUED or message.attempts != attempt:
        # Cancelled while on the wire: keep its status, but record what the channel did.
        if result.accepted and message.sent_at is None:
            message.sent_at, message.provider_message_id = now, result.provider_message_id
            message.save(update_fields=["sent_at", "provider_message_id", "updated_at"])
        return Outcome.SKIPPED
    if result.accepted:
        _transition(
            message,
            S.SENT,
            sent_at=now,
            provider_message_id=result.provider_message_id,
            last_error="",
        )
        return Outcome.SENT
    message.last_error = result.error[:200]
    if result.permanent or message.attempts >= timing.max_attempts():
        _transition(message, S.FAILED, failed_at=now)
        return Outcome.FAILED
    retry_at = now + timing.retry_delay(message.attempts)
    if message.patient_id:
        patient = Patient.objects.select_related("home_location").get(pk=message.patient_id)
        retry_at = timing.defer_for_quiet_hours(retry_at, _patient_zone(patient))
    message.next_attempt_at = retry_at
    message.save(update_fields=["last_error", "next_attempt_at", "updated_at"])
    _schedule_on_commit(message)
    return Outcome.RETRY


@transaction.atomic
def _record_crash(message_id: int, exc: Exception) -> Outcome:
    """Preparing the message raised (a template or data problem): count it as a failed attempt
    so one broken message cannot stall the outbox."""
    message = _locked(message_id)
    if message is None or message.status != S.QUEUED:
        return Outcome.SKIPPED
    message.attempts += 1
    message.save(update_fields=["attempts", "updated_at"])
    return _record(
        message_id,
        message.attempts,
        channels.SendResult.failed(f"could not prepare the message ({type(exc).__name__})"),
    )


def message_deliver(*, message_id: int) -> Outcome:
    """Deliver one message if it is queued and due. Never holds a transaction while sending."""
    try:
        claim = _claim(message_id, timezone.now())
    except Exception as exc:
        logger.error("message %s could not be prepared: %s", message_id, type(exc).__name__)
        return _record_crash(message_id, exc)
    if isinstance(claim, Outcome):
        return claim
    result = _send(claim)
    return _record(message_id, claim.message.attempts, result)


def due_message_ids(*, now: dt.datetime | None = None, limit: int = 200) -> list[int]:
    now = now or timezone.now()
    return list(
        OutboundMessage.objects.filter(status=S.QUEUED, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def deliver_due(*, batch_size: int = 200) -> dict[str, int]:
    """Deliver every message due now, once each. Returns counts per outcome."""
    counts: Counter[str] = Counter()
    seen: set[int] = set()
    started = timezone.now()
    while True:
        batch = [i for i in due_message_ids(now=started, limit=batch_size) if i not in seen]
        if not batch:
            break
        for message_id in batch:
            seen.add(message_id)
            counts[message_deliver(message_id=message_id)] += 1
    return dict(counts)


def next_due_at() -> dt.datetime | None:
    first = (
        OutboundMessage.objects.filter(status=S.QUEUED, next_attempt_at__isnull=False)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return first


# --- delivery receipts and inbound SMS ----------------------------------------------------------

RECEIPT_DELIVERED = frozenset({"delivered"})
RECEIPT_FAILED = frozenset({"failed", "undelivered", "rejected", "expired"})
RECEIPT_STATUSES = RECEIPT_DELIVERED | RECEIPT_FAILED


@transaction.atomic
def delivery_receipt_record(
    *, provider_message_id: str, status: str, error_code: str = ""
) -> OutboundMessage:
    """Apply a gateway's delivery receipt. Raises OutboundMessage.DoesNotExist when unknown."""
    message = (
        OutboundMessage.objects.select_for_update()
        .filter(channel=Channel.SMS, provider_message_id=provider_message_id)
        .exclude(provider_message_id="")
        .get()
    )
    if message.status != S.SENT:
        return message  # a repeated receipt, or one for a message already settled
    now = timezone.now()
    if status in RECEIPT_DELIVERED:
        return _transition(message, S.DELIVERED, delivered_at=now)
    error = f"gateway reported {status}" + (f" (code {error_code[:20]})" if error_code else "")
    return _transition(message, S.FAILED, failed_at=now, last_error=error)


@transaction.atomic
def consent_withdraw(*, patient: Patient, channel: Channel, source: ConsentSource) -> bool:
    """A patient opts out of a channel (STOP reply, unsubscribe link). Records the evidence,
    turns the consent off and audits it as the patient acting ("patient-link"/"patient-sms").
    Returns whether the consent was on."""
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    field = "consent_sms" if channel == Channel.SMS else "consent_email"
    was_on = bool(getattr(locked, field))
    ConsentWithdrawal.objects.create(patient=locked, channel=channel, source=source)
    if was_on:
        setattr(locked, field, False)
        locked.save(update_fields=[field])
    record(
        actor=None,
        username=PATIENT_SMS if source == ConsentSource.SMS_STOP else PATIENT_LINK,
        action=Action.UPDATE,
        event="patient.consent_withdrawn",
        category=Category.DEMOGRAPHICS,
        patient=locked,
        obj=locked,
        fields=[field] if was_on else [],
        reason=ConsentSource(source).label,
    )
    return was_on


def sms_inbound(*, from_number: str, body: str) -> str:
    """An inbound SMS from the gateway. A STOP keyword turns SMS consent off for every patient
    with that mobile number. Returns 'opted-out' or 'ignored' (nothing else is acted on)."""
    words = body.strip().split()
    if not words or words[0].upper().strip(".!") not in STOP_WORDS:
        return "ignored"
    try:
        number = normalize_phone(from_number)
    except ValidationError:
        return "ignored"
    patients = list(Patient.objects.filter(phone_mobile=number, is_active=True))
    for patient in patients:
        consent_withdraw(patient=patient, channel=Channel.SMS, source=ConsentSource.SMS_STOP)
    return "opted-out" if patients else "ignored"


# --- the actions behind signed links -------------------------------------------------------------


class LinkOutcome(StrEnum):
    DONE = "done"
    ALREADY = "already"  # nothing to do: it was already confirmed / cancelled / accepted
    TAKEN = "taken"  # the offered slot went to someone else
    CLOSED = "closed"  # the offer was declined or has expired
    NOT_POSSIBLE = "not-possible"  # e.g. confirming a cancelled appointment


def appointment_confirm_by_patient(*, appointment: Appointment) -> LinkOutcome:
    from scheduling import services as scheduling_services

    if appointment.status == AppointmentStatus.CONFIRMED:
        return LinkOutcome.ALREADY
    if appointment.status != AppointmentStatus.BOOKED:
        return LinkOutcome.NOT_POSSIBLE
    try:
        scheduling_services.appointment_confirm(
            actor=None, appointment=appointment, via=PATIENT_LINK
        )
    except ValidationError:
        return LinkOutcome.NOT_POSSIBLE
    return LinkOutcome.DONE


def appointment_cancel_by_patient(*, appointment: Appointment) -> LinkOutcome:
    from scheduling import services as scheduling_services

    if appointment.status == AppointmentStatus.CANCELLED:
        return LinkOutcome.ALREADY
    if appointment.status not in ACTIVE_APPOINTMENT_STATUSES | {AppointmentStatus.PROPOSED}:
        return LinkOutcome.NOT_POSSIBLE
    try:
        scheduling_services.appointment_cancel(
            actor=None,
            appointment=appointment,
            cancelled_by=CancelledBy.PATIENT,
            reason=CANCELLED_BY_PATIENT_REASON,
            via=PATIENT_LINK,
        )
    except ValidationError:
        return LinkOutcome.NOT_POSSIBLE
    return LinkOutcome.DONE


def waitlist_offer_accept_by_patient(*, offer: WaitlistOffer) -> LinkOutcome:
    """First to accept gets it; a late acceptor hears the slot has just been taken."""
    from scheduling import services as scheduling_services

    if offer.status == OfferStatus.ACCEPTED:
        return LinkOutcome.ALREADY
    if offer.status == OfferStatus.TAKEN:
        return LinkOutcome.TAKEN
    if offer.status != OfferStatus.OPEN or offer.expires_at <= timezone.now():
        return LinkOutcome.CLOSED
    try:
        scheduling_services.waitlist_offer_accept(offer=offer, via=PATIENT_LINK)
    except scheduling_services.BookingConflict:
        return LinkOutcome.TAKEN
    except ValidationError:
        offer.refresh_from_db(fields=["status"])
        return LinkOutcome.ALREADY if offer.status == OfferStatus.ACCEPTED else LinkOutcome.TAKEN
    return LinkOutcome.DONE


def waitlist_offer_decline_by_patient(*, offer: WaitlistOffer) -> LinkOutcome:
    from scheduling import services as scheduling_services

    if offer.status == OfferStatus.DECLINED:
        return LinkOutcome.ALREADY
    if offer.status != OfferStatus.OPEN:
        return LinkOutcome.CLOSED
    try:
        scheduling_services.waitlist_offer_decline(offer=offer)
    except ValidationError:
        return LinkOutcome.CLOSED
    return LinkOutcome.DONE


def email_unsubscribe_by_patient(*, patient: Patient) -> LinkOutcome:
    changed = consent_withdraw(
        patient=patient, channel=Channel.EMAIL, source=ConsentSource.EMAIL_LINK
    )
    return LinkOutcome.DONE if changed else LinkOutcome.ALREADY
