"""Interface reads with access checks and audit: the interface status screen, calendar feed
tokens, and the calendar feed itself (no login: the secret token is the credential).

Missing and out-of-scope rows both answer 404 (audited as denied). Scope is the user's locations:
a message belongs to the location it was received for or the appointment's location; rows with
no location (rejected before one was known) are shown to every interface manager.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from audit.models import Action, Outcome
from audit.services import record
from core.capabilities import Capability
from interop import conf
from interop.models import (
    IcalFeedToken,
    InboundHl7Message,
    OutboundHl7Message,
    OutboundStatus,
    hash_feed_token,
)
from interop.services import INTERFACES, SCHEDULING, can_manage_feeds
from scheduling.models import BLOCKING_STATUSES, Appointment, Practitioner

if TYPE_CHECKING:
    from accounts.models import User

RECENT = 50


def _denied(user: User, event: str, object_type: str, object_id: str, reason: str) -> None:
    record(
        actor=user,
        action=Action.READ,
        event=event,
        category=INTERFACES,
        outcome=Outcome.DENIED,
        object_type=object_type,
        object_id=object_id,
        reason=reason,
    )


def require_interface_manager(user: User, *, event: str) -> None:
    if not user.can(Capability.MANAGE_INTERFACES):
        _denied(user, event, "url", event, "missing capability manage_interfaces")
        raise PermissionDenied("Your roles do not allow managing interfaces.")


def require_feed_manager(user: User, *, event: str) -> None:
    if not can_manage_feeds(user):
        _denied(user, event, "url", event, "missing capability manage_interfaces/schedules")
        raise PermissionDenied("Your roles do not allow managing calendar feeds.")


def _in_scope(user: User) -> Q:
    return Q(location__in=user.location_ids) | Q(location__isnull=True)


@dataclass
class InterfaceStatus:
    inbound: Sequence[InboundHl7Message]
    outbound: Sequence[OutboundHl7Message]
    outbound_counts: dict[str, int]
    inbound_counts: dict[str, int]


def interface_status(*, user: User) -> InterfaceStatus:
    """Recent inbound and outbound messages (control id, type, time, status: no PHI)."""
    require_interface_manager(user, event="interfaces.status")
    scope = _in_scope(user)
    since = timezone.now() - dt.timedelta(hours=24)
    inbound = list(InboundHl7Message.objects.filter(scope).order_by("-created_at", "-id")[:RECENT])
    outbound = list(
        OutboundHl7Message.objects.filter(scope)
        .defer("payload", "last_ack_text")
        .annotate(payload_kept=ExpressionWrapper(~Q(payload=""), output_field=BooleanField()))
        .order_by("-created_at", "-id")[:RECENT]
    )
    outbound_counts = dict(
        OutboundHl7Message.objects.filter(scope)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    inbound_counts = dict(
        InboundHl7Message.objects.filter(scope, created_at__gte=since)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    record(
        actor=user,
        action=Action.QUERY,
        event="interfaces.status",
        category=INTERFACES,
        object_type="interop.status",
    )
    return InterfaceStatus(
        inbound=inbound,
        outbound=outbound,
        outbound_counts={s.value: outbound_counts.get(s.value, 0) for s in OutboundStatus},
        inbound_counts=inbound_counts,
    )


def outbound_get_for_user(*, user: User, public_id: uuid.UUID) -> OutboundHl7Message:
    require_interface_manager(user, event="hl7.outbound_view")
    message = OutboundHl7Message.objects.filter(_in_scope(user), public_id=public_id).first()
    if message is None:
        _denied(
            user,
            "hl7.outbound_view",
            "interop.OutboundHl7Message",
            str(public_id),
            "not found or outside the user's locations",
        )
        raise Http404("No such message.")
    return message


# --- calendar feeds ----------------------------------------------------------------------------


def practitioners_for_feeds(*, user: User) -> QuerySet[Practitioner]:
    return (
        Practitioner.objects.filter(is_active=True, locations__in=user.location_ids)
        .distinct()
        .order_by("family_name", "given_name", "id")
    )


def ical_tokens_for_user(*, user: User) -> list[IcalFeedToken]:
    require_feed_manager(user, event="ical.token_list")
    practitioners = practitioners_for_feeds(user=user).values("pk")
    return list(
        IcalFeedToken.objects.filter(practitioner__in=practitioners)
        .select_related("practitioner", "created_by")
        .order_by("-created_at", "-id")
    )


def ical_token_get_for_user(*, user: User, public_id: uuid.UUID) -> IcalFeedToken:
    require_feed_manager(user, event="ical.token_view")
    practitioners = practitioners_for_feeds(user=user).values("pk")
    token = (
        IcalFeedToken.objects.filter(public_id=public_id, practitioner__in=practitioners)
        .select_related("practitioner")
        .first()
    )
    if token is None:
        _denied(
            user,
            "ical.token_view",
            "interop.IcalFeedToken",
            str(public_id),
            "not found or outside the user's locations",
        )
        raise Http404("No such calendar feed.")
    return token


@dataclass
class FeedContent:
    token: IcalFeedToken
    appointments: list[Appointment]
    now: dt.datetime


def ical_feed_open(*, raw_token: str) -> FeedContent | None:
    """The feed for a raw token, or None (audited) when it is unknown or revoked.

    The token itself never reaches the audit trail or the logs: rows name the token's public id.
    """
    token = (
        IcalFeedToken.objects.select_related("practitioner")
        .filter(token_hash=hash_feed_token(raw_token))
        .first()
        if raw_token
        else None
    )
    if token is None or not token.is_active or not token.practitioner.is_active:
        record(
            actor=None,
            username="calendar-feed",
            action=Action.READ,
            event="ical.fetch",
            category=SCHEDULING,
            outcome=Outcome.DENIED,
            object_type="interop.IcalFeedToken",
            object_id=str(token.public_id) if token else "",
            reason="revoked" if token else "unknown token",
        )
        return None
    now = timezone.now()
    start = now - dt.timedelta(days=conf.ical_past_days())
    end = now + dt.timedelta(days=conf.ical_future_days())
    appointments = list(
        Appointment.objects.filter(
            practitioners=token.practitioner,
            status__in=BLOCKING_STATUSES,
            start__lt=end,
            end__gt=start,
        )
        .select_related("appointment_type", "location", "room", "patient")
        .only(
            "public_id",
            "start",
            "end",
            "status",
            "updated_at",
            "appointment_type__name",
            "location__name",
            "room__name",
            "patient__given_name",
            "patient__family_name",
        )
        .order_by("start", "id")
    )
    record(
        actor=None,
        username="calendar-feed",
        action=Action.READ,
        event="ical.fetch",
        category=SCHEDULING,
        object_type="interop.IcalFeedToken",
        object_id=str(token.public_id),
        reason=f"{len(appointments)} appointment(s) of practitioner {token.practitioner.public_id}",
    )
    if token.last_fetched_at is None or (now - token.last_fetched_at).total_seconds() > 60:
        IcalFeedToken.objects.filter(pk=token.pk).update(last_fetched_at=now)
    return FeedContent(token=token, appointments=appointments, now=now)
