"""Rows for messaging tests, built directly (no audit, no events). Behaviour under test goes
through the services (messaging.services, scheduling.services)."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from core.tests.factories import LocationFactory
from messaging.models import Channel, MessageKind, MessageStatus, OutboundMessage
from patients.tests.factories import PatientFactory
from scheduling.models import (
    Appointment,
    AppointmentPractitioner,
    AppointmentType,
    AvailabilityRule,
    WaitlistEntry,
    WaitlistOffer,
)
from scheduling.tests.factories import PractitionerFactory


class ReachablePatientFactory(PatientFactory):
    """A patient who agreed to texts and email, preferring texts."""

    given_name = "Ann"
    family_name = "Example"
    phone_mobile = "+16175550142"
    email = "ann@example.org"
    consent_sms = True
    consent_email = True
    preferred_contact = "sms"


class AppointmentTypeFactory(factory.django.DjangoModelFactory[AppointmentType]):
    class Meta:
        model = AppointmentType
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"type-{n}")
    name = factory.Sequence(lambda n: f"Follow-up visit {n}")
    duration_minutes = 30
    reminder_offsets_hours = factory.LazyFunction(lambda: [72, 24])


class AppointmentFactory(factory.django.DjangoModelFactory[Appointment]):
    """A booked appointment five days from now with one practitioner (direct rows)."""

    class Meta:
        model = Appointment
        skip_postgeneration_save = True

    location = factory.SubFactory(LocationFactory)
    patient = factory.SubFactory(
        ReachablePatientFactory, home_location=factory.SelfAttribute("..location")
    )
    appointment_type = factory.SubFactory(AppointmentTypeFactory)
    start = factory.LazyFunction(
        lambda: (timezone.now() + dt.timedelta(days=5)).replace(second=0, microsecond=0)
    )
    end = factory.LazyAttribute(lambda o: o.start + dt.timedelta(minutes=30))
    status = "booked"
    reason = "Chest pain follow-up"  # clinical text that must never reach a message

    @factory.post_generation
    def practitioners(self, create: bool, extracted: list[object] | None, **kwargs: object):
        if not create:
            return
        for practitioner in extracted or [PractitionerFactory(locations=[self.location])]:
            AppointmentPractitioner.objects.create(
                appointment=self, practitioner=practitioner, start=self.start, end=self.end
            )


class AlwaysAvailableRuleFactory(factory.django.DjangoModelFactory[AvailabilityRule]):
    """The practitioner works at the location every day, all day (so real bookings succeed)."""

    class Meta:
        model = AvailabilityRule

    practitioner = factory.SubFactory(PractitionerFactory)
    location = factory.SubFactory(LocationFactory)
    start_date = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=1))
    start_time = dt.time(0, 0)
    end_time = dt.time(23, 59)
    rrule = "FREQ=DAILY"


class WaitlistEntryFactory(factory.django.DjangoModelFactory[WaitlistEntry]):
    class Meta:
        model = WaitlistEntry

    location = factory.SubFactory(LocationFactory)
    patient = factory.SubFactory(
        ReachablePatientFactory, home_location=factory.SelfAttribute("..location")
    )
    appointment_type = factory.SubFactory(AppointmentTypeFactory)
    earliest = factory.LazyFunction(timezone.now)
    latest = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))
    status = "offered"


class WaitlistOfferFactory(factory.django.DjangoModelFactory[WaitlistOffer]):
    class Meta:
        model = WaitlistOffer

    entry = factory.SubFactory(WaitlistEntryFactory)
    practitioner = factory.SubFactory(PractitionerFactory)
    start = factory.LazyFunction(
        lambda: (timezone.now() + dt.timedelta(days=2)).replace(second=0, microsecond=0)
    )
    end = factory.LazyAttribute(lambda o: o.start + dt.timedelta(minutes=30))
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=2))
    status = "open"


class OutboundMessageFactory(factory.django.DjangoModelFactory[OutboundMessage]):
    """A queued staff notice due now (no patient, so no consent or quiet hours apply)."""

    class Meta:
        model = OutboundMessage

    kind = MessageKind.STAFF_NOTICE
    channel = Channel.EMAIL
    recipient = "frontdesk@example.org"
    subject = "Appointment cancelled by the patient online"
    body = "An appointment was cancelled by the patient through a link in a message.\n"
    status = MessageStatus.QUEUED
    next_attempt_at = factory.LazyFunction(timezone.now)
    dedupe_key = factory.Sequence(lambda n: f"test:{n}")
