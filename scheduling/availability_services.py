"""Writes of the schedule's set-up from the management screens: availability rules, a single
occurrence changed or cancelled (RECURRENCE-ID semantics: the others stay as they are),
exceptions (holidays, leave, blocked time), and taking a patient off the waitlist.

Each service is keyword-only with `actor` first, checks the capability, runs in one transaction
and writes its audit row (category "scheduling", field names only) in it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from core.capabilities import Capability
from core.models import Location
from scheduling.availability import validate_rrule
from scheduling.models import (
    AppointmentType,
    AvailabilityException,
    AvailabilityOccurrence,
    AvailabilityRule,
    ExceptionKind,
    OfferStatus,
    Practitioner,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)

if TYPE_CHECKING:
    from accounts.models import User

AUDIT_CATEGORY = "scheduling"
RULE_FIELDS = ("start_date", "until_date", "start_time", "end_time", "rrule", "is_active")


def _require(actor: User, capability: Capability) -> None:
    if not actor.can(capability):
        raise PermissionDenied(f"Your roles do not allow this: {capability.label.lower()}.")


def _require_location(actor: User, location: Location) -> None:
    if location.pk not in actor.location_ids:
        raise PermissionDenied("That location is not one of yours.")


def _audit(actor: User, action: Action, event: str, obj: Any, fields: Iterable[str]) -> None:
    record(
        actor=actor,
        action=action,
        event=event,
        category=AUDIT_CATEGORY,
        obj=obj,
        fields=list(fields),
    )


@transaction.atomic
def availability_rule_save(
    *,
    actor: User,
    practitioner: Practitioner,
    location: Location,
    values: dict[str, Any],
    appointment_types: Iterable[AppointmentType] | None = None,
    rule: AvailabilityRule | None = None,
) -> AvailabilityRule:
    """Create a rule, or change an existing one (changing a rule changes all its occurrences;
    single occurrences are changed with availability_occurrence_change)."""
    _require(actor, Capability.MANAGE_SCHEDULES)
    _require_location(actor, location)
    errors: dict[str, Any] = {}
    text = str(values.get("rrule", "")).strip().removeprefix("RRULE:")
    try:
        validate_rrule(text)
    except ValidationError as exc:
        errors["rrule"] = exc.messages
    start, end = values.get("start_time"), values.get("end_time")
    if start is not None and end is not None and end <= start:
        errors["end_time"] = "The end time must be after the start time."
    until, first = values.get("until_date"), values.get("start_date")
    if until is not None and first is not None and until < first:
        errors["until_date"] = "The last date cannot be before the first date."
    if errors:
        raise ValidationError(errors)
    created = rule is None
    target = rule or AvailabilityRule(practitioner=practitioner, location=location)
    changed = [
        name
        for name in RULE_FIELDS
        if name in values
        and getattr(target, name, None) != (text if name == "rrule" else values[name])
    ]
    for name in RULE_FIELDS:
        if name in values:
            setattr(target, name, text if name == "rrule" else values[name])
    target.practitioner, target.location = practitioner, location
    target.save()
    if appointment_types is not None:
        types = list(appointment_types)
        if created or {t.pk for t in types} != set(
            target.appointment_types.values_list("id", flat=True)
        ):
            changed.append("appointment_types")
        target.appointment_types.set(types)
    _audit(
        actor,
        Action.CREATE if created else Action.UPDATE,
        "availability_rule.create" if created else "availability_rule.update",
        target,
        changed,
    )
    return target


@transaction.atomic
def availability_occurrence_change(
    *,
    actor: User,
    rule: AvailabilityRule,
    original_date: dt.date,
    cancel: bool = False,
    start_time: dt.time | None = None,
    end_time: dt.time | None = None,
    reason: str = "",
) -> AvailabilityOccurrence | None:
    """Change or cancel the rule's occurrence on `original_date` only. With neither `cancel`
    nor new times, the occurrence goes back to the rule's plan (the change is removed)."""
    _require(actor, Capability.MANAGE_SCHEDULES)
    _require_location(actor, rule.location)
    reason = " ".join((reason or "").split())
    errors: dict[str, str] = {}
    if (start_time is None) != (end_time is None):
        errors["end_time" if start_time else "start_time"] = "Give both the start and end times."
    elif start_time is not None and end_time is not None and end_time <= start_time:
        errors["end_time"] = "The end time must be after the start time."
    if cancel and not reason:
        errors["reason"] = "Say why this occurrence is cancelled."
    if len(reason) > 200:
        errors["reason"] = "Keep the reason to 200 characters or fewer."
    if original_date < rule.start_date or (rule.until_date and original_date > rule.until_date):
        errors["original_date"] = "The rule has no occurrence on that date."
    if errors:
        raise ValidationError(errors)
    existing = AvailabilityOccurrence.objects.filter(rule=rule, original_date=original_date).first()
    if not cancel and start_time is None:
        if existing is not None:
            existing.delete()
            _audit(actor, Action.DELETE, "availability_occurrence.restore", rule, ["overrides"])
        return None
    occurrence = existing or AvailabilityOccurrence(rule=rule, original_date=original_date)
    occurrence.is_cancelled = cancel
    occurrence.start_time = None if cancel else start_time
    occurrence.end_time = None if cancel else end_time
    occurrence.reason = reason
    occurrence.save()
    fields = ["is_cancelled"] if cancel else ["start_time", "end_time"]
    _audit(
        actor,
        Action.UPDATE if existing else Action.CREATE,
        "availability_occurrence.cancel" if cancel else "availability_occurrence.change",
        occurrence,
        [*fields, *(["reason"] if reason else [])],
    )
    return occurrence


@transaction.atomic
def availability_exception_add(
    *,
    actor: User,
    location: Location,
    kind: str,
    start: dt.datetime,
    end: dt.datetime,
    reason: str,
    practitioner: Practitioner | None = None,
) -> AvailabilityException:
    """A holiday closes the whole location (no practitioner); leave and blocked time belong to
    one practitioner."""
    _require(actor, Capability.MANAGE_SCHEDULES)
    _require_location(actor, location)
    reason = " ".join((reason or "").split())
    errors: dict[str, str] = {}
    if kind not in ExceptionKind.values:
        errors["kind"] = "Choose holiday, leave or blocked time."
    elif kind == ExceptionKind.HOLIDAY and practitioner is not None:
        errors["practitioner"] = "A holiday closes the whole location: leave the practitioner out."
    elif kind != ExceptionKind.HOLIDAY and practitioner is None:
        errors["practitioner"] = "Choose whose leave or blocked time this is."
    if end <= start:
        errors["end"] = "The end must be after the start."
    if not reason:
        errors["reason"] = "Give a reason (it is shown on the calendar)."
    elif len(reason) > 200:
        errors["reason"] = "Keep the reason to 200 characters or fewer."
    if errors:
        raise ValidationError(errors)
    exception = AvailabilityException.objects.create(
        location=location,
        practitioner=practitioner,
        kind=kind,
        start=start,
        end=end,
        reason=reason,
    )
    _audit(
        actor,
        Action.CREATE,
        "availability_exception.create",
        exception,
        ["kind", "start", "end", "reason", *(["practitioner"] if practitioner else [])],
    )
    return exception


@transaction.atomic
def availability_exception_remove(*, actor: User, exception: AvailabilityException) -> None:
    _require(actor, Capability.MANAGE_SCHEDULES)
    _require_location(actor, exception.location)
    _audit(actor, Action.DELETE, "availability_exception.delete", exception, [])
    exception.delete()


@transaction.atomic
def waitlist_remove(*, actor: User, entry: WaitlistEntry) -> WaitlistEntry:
    """Take a waiting (or offered) patient off the waitlist."""
    _require(actor, Capability.SCHEDULE_APPOINTMENTS)
    locked = WaitlistEntry.objects.select_for_update().select_related("patient").get(pk=entry.pk)
    if locked.status not in (WaitlistStatus.WAITING, WaitlistStatus.OFFERED):
        raise ValidationError(
            {"status": f"This entry is {WaitlistStatus(locked.status).label.lower()} already."}
        )
    locked.status = WaitlistStatus.REMOVED
    locked.save(update_fields=["status", "updated_at"])
    # An offer still open for this patient lapses with the entry.
    WaitlistOffer.objects.filter(entry=locked, status=OfferStatus.OPEN).update(
        status=OfferStatus.EXPIRED, updated_at=timezone.now()
    )
    record(
        actor=actor,
        action=Action.UPDATE,
        event="waitlist.remove",
        category=AUDIT_CATEGORY,
        patient=locked.patient,
        obj=locked,
        fields=["status"],
    )
    entry.status = locked.status
    return locked
