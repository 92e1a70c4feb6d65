"""Planning: which messages, by which channel, when, and with which words."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from messaging import services
from messaging.links import Purpose, read_token
from messaging.models import (
    Channel,
    ConsentSource,
    ConsentWithdrawal,
    MessageKind,
    MessageStatus,
    OutboundMessage,
)
from messaging.tests.factories import (
    AppointmentFactory,
    AppointmentTypeFactory,
    ReachablePatientFactory,
    WaitlistOfferFactory,
)
from scheduling.events import AppointmentChange
from scheduling.models import Appointment

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def reminders(appointment: Any) -> list[OutboundMessage]:
    return list(
        OutboundMessage.objects.filter(appointment=appointment, kind=MessageKind.REMINDER).order_by(
            "next_attempt_at"
        )
    )


def test_plans_one_reminder_per_offset_due_at_start_minus_offset() -> None:
    appointment: Appointment = AppointmentFactory(appointment_type__reminder_offsets_hours=[72, 24])

    planned = services.reminders_plan(appointment=appointment)

    assert len(planned) == 2
    assert [m.next_attempt_at for m in reminders(appointment)] == [
        appointment.start - dt.timedelta(hours=72),
        appointment.start - dt.timedelta(hours=24),
    ]
    assert {m.status for m in planned} == {MessageStatus.QUEUED}
    assert {m.channel for m in planned} == {Channel.SMS}
    assert {m.recipient for m in planned} == {"+16175550142"}


def test_skips_offsets_that_are_already_past() -> None:
    appointment: Appointment = AppointmentFactory(start=timezone.now() + dt.timedelta(hours=30))

    services.reminders_plan(appointment=appointment)

    [reminder] = reminders(appointment)
    assert reminder.next_attempt_at == appointment.start - dt.timedelta(hours=24)


def test_planning_again_creates_no_duplicates() -> None:
    appointment: Appointment = AppointmentFactory()
    services.reminders_plan(appointment=appointment)

    again = services.reminders_plan(appointment=appointment)

    assert again == []
    assert len(reminders(appointment)) == 2


def test_rescheduling_cancels_the_old_reminders_and_plans_new_ones() -> None:
    # given
    appointment: Appointment = AppointmentFactory()
    services.reminders_plan(appointment=appointment)
    # when
    appointment.start += dt.timedelta(days=2)
    appointment.end += dt.timedelta(days=2)
    appointment.save()
    services.reminders_plan(appointment=appointment)
    # then
    rows = reminders(appointment)
    cancelled = [m for m in rows if m.status == MessageStatus.CANCELLED]
    queued = [m for m in rows if m.status == MessageStatus.QUEUED]
    assert len(cancelled) == 2
    assert {m.status_reason for m in cancelled} == {"appointment rescheduled"}
    assert sorted(m.next_attempt_at for m in queued) == [
        appointment.start - dt.timedelta(hours=72),
        appointment.start - dt.timedelta(hours=24),
    ]


def test_a_cancelled_appointment_cancels_its_queued_reminders() -> None:
    appointment: Appointment = AppointmentFactory()
    services.reminders_plan(appointment=appointment)
    appointment.status, appointment.cancel_reason = "cancelled", "clinic closed"
    appointment.save()

    services.reminders_plan(appointment=appointment)

    assert {(m.status, m.status_reason) for m in reminders(appointment)} == {
        (MessageStatus.CANCELLED, "appointment cancelled")
    }


def test_a_reminder_names_time_place_and_practitioner_and_carries_signed_links_only() -> None:
    appointment: Appointment = AppointmentFactory(
        location__name="Main Street Clinic",
        location__time_zone="America/New_York",
        start=dt.datetime(2031, 3, 4, 9, 30, tzinfo=NEW_YORK),
        end=dt.datetime(2031, 3, 4, 10, 0, tzinfo=NEW_YORK),
        practitioners=[],
    )
    from scheduling.models import AppointmentPractitioner
    from scheduling.tests.factories import PractitionerFactory

    AppointmentPractitioner.objects.create(
        appointment=appointment,
        practitioner=PractitionerFactory(given_name="Maria", family_name="Lopez"),
        start=appointment.start,
        end=appointment.end,
    )

    [first, *_] = services.reminders_plan(appointment=appointment)

    assert first.body.startswith("Hi Ann, reminder: appointment Tuesday, March 4, 2031 at 9:30 AM")
    assert "Maria Lopez, MD" in first.body
    assert "Main Street Clinic" in first.body
    assert "Reply STOP" in first.body
    assert appointment.reason not in first.body  # no reason for visit, ever
    assert appointment.patient.family_name not in first.body
    assert appointment.patient.mrn not in first.body
    confirm_token = first.body.split("/m/a/")[1].split("/confirm/")[0]
    assert read_token(confirm_token, Purpose.CONFIRM) == appointment.public_id
    assert str(appointment.public_id) not in first.body


def test_an_email_reminder_has_a_subject_and_an_unsubscribe_link() -> None:
    appointment: Appointment = AppointmentFactory(patient__preferred_contact="email")

    [first, *_] = services.reminders_plan(appointment=appointment)

    assert first.channel == Channel.EMAIL
    assert first.recipient == "ann@example.org"
    assert first.subject.startswith("Reminder: your appointment on ")
    assert "/m/u/" in first.body
    assert appointment.reason not in first.body + first.subject


@pytest.mark.parametrize(
    ("patient", "expected"),
    [
        ({"preferred_contact": "sms"}, (Channel.SMS, "+16175550142")),
        ({"preferred_contact": "email"}, (Channel.EMAIL, "ann@example.org")),
        ({"preferred_contact": "phone"}, (Channel.SMS, "+16175550142")),
        ({"preferred_contact": "sms", "consent_sms": False}, (Channel.EMAIL, "ann@example.org")),
        ({"preferred_contact": "sms", "phone_mobile": ""}, (Channel.EMAIL, "ann@example.org")),
        ({"preferred_contact": "email", "consent_email": False}, (Channel.SMS, "+16175550142")),
        ({"preferred_contact": "email", "email": ""}, (Channel.SMS, "+16175550142")),
    ],
)
def test_routes_to_the_preferred_consented_channel_else_the_other_one(
    patient: dict[str, Any], expected: tuple[Channel, str]
) -> None:
    route = services.route_for(ReachablePatientFactory(**patient))

    assert (route.channel, route.recipient) == expected


@pytest.mark.parametrize(
    ("patient", "reason"),
    [
        ({"consent_sms": False, "consent_email": False}, "no SMS consent; no email consent"),
        ({"phone_mobile": "", "email": ""}, "no mobile phone; no email address"),
        ({"consent_sms": False, "email": ""}, "no SMS consent; no email address"),
    ],
)
def test_without_a_consented_channel_the_reminder_is_suppressed_with_the_reason(
    patient: dict[str, Any], reason: str
) -> None:
    appointment: Appointment = AppointmentFactory(patient=ReachablePatientFactory(**patient))

    services.reminders_plan(appointment=appointment)

    rows = reminders(appointment)
    assert len(rows) == 2
    assert {(m.status, m.status_reason) for m in rows} == {(MessageStatus.SUPPRESSED, reason)}
    assert {m.body for m in rows} == {""}
    assert {m.next_attempt_at for m in rows} == {None}


def test_a_patient_who_opted_out_is_suppressed_as_opted_out() -> None:
    patient = ReachablePatientFactory(consent_email=False)
    services.consent_withdraw(patient=patient, channel=Channel.SMS, source=ConsentSource.SMS_STOP)
    appointment: Appointment = AppointmentFactory(patient=patient)

    services.reminders_plan(appointment=appointment)

    assert {m.status_reason for m in reminders(appointment)} == {
        "opted out of SMS; no email consent"
    }


def test_a_reminder_due_in_quiet_hours_is_planned_for_the_end_of_quiet_hours(
    settings: Any,
) -> None:
    settings.QUIET_HOURS = "21:00-08:00"
    start = dt.datetime.combine(
        timezone.localdate() + dt.timedelta(days=6), dt.time(8, 30), tzinfo=NEW_YORK
    )
    appointment: Appointment = AppointmentFactory(
        location__time_zone="America/New_York",
        start=start,
        end=start + dt.timedelta(minutes=30),
        appointment_type__reminder_offsets_hours=[1],
    )

    [reminder] = services.reminders_plan(appointment=appointment)

    assert reminder.status == MessageStatus.QUEUED
    assert reminder.next_attempt_at.astimezone(NEW_YORK) == start.replace(hour=8, minute=0)


def test_ignores_offsets_that_are_not_positive_numbers() -> None:
    appointment: Appointment = AppointmentFactory(
        appointment_type__reminder_offsets_hours=[24, "48", -3, 0, True, 24, None]
    )

    planned = services.reminders_plan(appointment=appointment)

    assert [m.next_attempt_at for m in planned] == [appointment.start - dt.timedelta(hours=24)]


def test_plans_missing_reminders_for_upcoming_appointments_only() -> None:
    upcoming = AppointmentFactory()
    far_away = AppointmentFactory(start=timezone.now() + dt.timedelta(days=40))
    no_offsets = AppointmentFactory(
        appointment_type=AppointmentTypeFactory(reminder_offsets_hours=[])
    )

    planned = services.reminders_plan_missing()

    assert planned == 2
    assert len(reminders(upcoming)) == 2
    assert reminders(far_away) == []
    assert reminders(no_offsets) == []
    assert services.reminders_plan_missing() == 0


def test_cancelling_for_the_patient_sends_a_cancellation_notice() -> None:
    appointment: Appointment = AppointmentFactory(
        status="cancelled", cancelled_by="clinic", cancel_reason="practitioner ill"
    )

    services.appointment_change_notify(
        appointment_id=appointment.pk, change=AppointmentChange.CANCELLED, via="ui"
    )

    [notice] = OutboundMessage.objects.filter(kind=MessageKind.CANCELLATION_NOTICE)
    assert notice.status == MessageStatus.QUEUED
    assert "has been cancelled" in notice.body
    assert "practitioner ill" not in notice.body
    assert not OutboundMessage.objects.filter(kind=MessageKind.STAFF_NOTICE).exists()


def test_a_patient_who_cancelled_through_a_link_gets_no_notice_but_staff_do() -> None:
    appointment: Appointment = AppointmentFactory(
        status="cancelled",
        cancelled_by="patient",
        cancel_reason=services.CANCELLED_BY_PATIENT_REASON,
    )

    services.appointment_change_notify(
        appointment_id=appointment.pk, change=AppointmentChange.CANCELLED, via="patient-link"
    )

    assert not OutboundMessage.objects.filter(kind=MessageKind.CANCELLATION_NOTICE).exists()
    [notice] = OutboundMessage.objects.filter(kind=MessageKind.STAFF_NOTICE)
    assert notice.patient is None
    assert notice.recipient == "frontdesk-team@example.org"
    assert notice.subject.startswith("Appointment cancelled by the patient online")
    assert appointment.patient.given_name not in notice.body
    assert appointment.patient.family_name not in notice.body
    assert appointment.reason not in notice.body


def test_a_booking_through_a_link_confirms_to_the_patient_and_tells_staff() -> None:
    appointment: Appointment = AppointmentFactory()

    services.appointment_change_notify(
        appointment_id=appointment.pk, change=AppointmentChange.BOOKED, via="patient-link"
    )

    kinds = sorted(OutboundMessage.objects.values_list("kind", flat=True))
    assert kinds == ["confirmation", "reminder", "reminder", "staff_notice"]


def test_a_booking_at_the_desk_plans_reminders_and_tells_no_staff() -> None:
    appointment: Appointment = AppointmentFactory()

    services.appointment_change_notify(
        appointment_id=appointment.pk, change=AppointmentChange.BOOKED, via="ui"
    )

    kinds = sorted(OutboundMessage.objects.values_list("kind", flat=True))
    assert kinds == ["reminder", "reminder"]


def test_without_a_staff_address_the_locations_schedulers_are_told(settings: Any) -> None:
    settings.STAFF_NOTIFY_EMAIL = ""
    appointment: Appointment = AppointmentFactory()
    UserFactory(
        username="desk", email="desk@example.org", roles=["patient_service_rep"],
        locations=[appointment.location],
    )  # fmt: skip
    UserFactory(
        username="director", email="dir@example.org", roles=["service_director"],
        locations=[appointment.location],
    )  # fmt: skip

    notices = services.staff_notice_queue(appointment=appointment, event="booked")

    assert [n.recipient for n in notices] == ["desk@example.org"]


def test_a_waitlist_offer_goes_out_with_accept_and_decline_links() -> None:
    offer = WaitlistOfferFactory()

    message = services.waitlist_offer_queue(offer=offer)

    assert message is not None
    assert message.kind == MessageKind.WAITLIST_OFFER
    assert message.patient == offer.entry.patient
    assert "/m/o/" in message.body
    assert "/accept/" in message.body
    assert "/decline/" in message.body
    assert "First to accept gets it" in message.body


def test_a_closed_waitlist_offer_is_not_sent() -> None:
    offer = WaitlistOfferFactory(status="taken")

    assert services.waitlist_offer_queue(offer=offer) is None
    assert not OutboundMessage.objects.exists()


def test_withdrawing_consent_turns_it_off_keeps_evidence_and_audits_without_values() -> None:
    from audit.models import AuditEvent

    patient = ReachablePatientFactory()

    changed = services.consent_withdraw(
        patient=patient, channel=Channel.EMAIL, source=ConsentSource.EMAIL_LINK
    )

    patient.refresh_from_db()
    assert changed is True
    assert patient.consent_email is False
    assert patient.consent_sms is True
    assert ConsentWithdrawal.objects.filter(patient=patient, channel=Channel.EMAIL).count() == 1
    event = AuditEvent.objects.get(event="patient.consent_withdrawn")
    assert event.username == "patient-link"
    assert event.fields == ["consent_email"]
    assert str(event.patient_public_id) == str(patient.public_id)
    assert "ann@example.org" not in str(event.__dict__)
