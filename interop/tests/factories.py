"""Rows for interop tests, built directly (no audit). Use the services for behaviour under test.

Appointments are created with the scheduling models (and their AppointmentPractitioner and
AppointmentResource rows) because the booking services are written in parallel."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from core.tests.factories import LocationFactory
from interop.models import (
    AckCode,
    IcalFeedToken,
    InboundHl7Message,
    InboundStatus,
    OutboundHl7Message,
    OutboundStatus,
    Transport,
    hash_feed_token,
)
from patients.tests.factories import PatientFactory
from scheduling.models import (
    Appointment,
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentType,
    Practitioner,
    Resource,
)
from scheduling.tests.factories import PractitionerFactory


class AppointmentTypeFactory(factory.django.DjangoModelFactory[AppointmentType]):
    class Meta:
        model = AppointmentType
        django_get_or_create = ("code",)

    code = "follow-up"
    name = "Follow-up visit"
    duration_minutes = 20


class ResourceFactory(factory.django.DjangoModelFactory[Resource]):
    class Meta:
        model = Resource

    location = factory.SubFactory(LocationFactory)
    name = factory.Sequence(lambda n: f"Exam room {n}")
    category = "room"
    kind = "exam-room"


def next_day_at(hour: int, minute: int = 0, days: int = 1) -> dt.datetime:
    day = timezone.localdate() + dt.timedelta(days=days)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


class AppointmentFactory(factory.django.DjangoModelFactory[Appointment]):
    class Meta:
        model = Appointment
        skip_postgeneration_save = True

    patient = factory.SubFactory(PatientFactory)
    appointment_type = factory.SubFactory(AppointmentTypeFactory)
    location = factory.LazyAttribute(lambda o: o.patient.home_location)
    start = factory.LazyFunction(lambda: next_day_at(9))
    end = factory.LazyAttribute(lambda o: o.start + dt.timedelta(minutes=20))
    status = "booked"

    @factory.post_generation
    def practitioners(self, create: bool, extracted: list[Practitioner] | None, **kw: object):
        if not create:
            return
        for practitioner in extracted if extracted is not None else [PractitionerFactory()]:
            practitioner.locations.add(self.location)
            AppointmentPractitioner.objects.create(
                appointment=self,
                practitioner=practitioner,
                start=self.start,
                end=self.end,
                blocks=self.status not in ("cancelled", "no_show"),
            )

    @factory.post_generation
    def resources(self, create: bool, extracted: list[Resource] | None, **kw: object):
        if create and extracted:
            for resource in extracted:
                AppointmentResource.objects.create(
                    appointment=self, resource=resource, start=self.start, end=self.end
                )


class InboundMessageFactory(factory.django.DjangoModelFactory[InboundHl7Message]):
    class Meta:
        model = InboundHl7Message

    transport = Transport.MLLP
    sending_application = "ADTApp"
    sending_facility = "GHH"
    message_type = "ADT^A04"
    control_id = factory.Sequence(lambda n: f"IN{n:06d}")
    version = "2.5.1"
    status = InboundStatus.ACCEPTED
    ack_code = AckCode.AA
    payload_sha256 = "0" * 64


class OutboundMessageFactory(factory.django.DjangoModelFactory[OutboundHl7Message]):
    class Meta:
        model = OutboundHl7Message

    transport = Transport.MLLP
    destination = "127.0.0.1:2575"
    control_id = factory.Sequence(lambda n: f"PD{n:08d}")
    message_type = "SIU^S12"
    change = "booked"
    payload = factory.LazyAttribute(
        lambda o: (
            f"MSH|^~\\&|PATIENTDESK|main|||20250301120000||SIU^S12^SIU_S12|{o.control_id}|P|2.5.1"
        )
    )
    status = OutboundStatus.QUEUED
    next_attempt_at = factory.LazyFunction(timezone.now)


class FeedTokenFactory(factory.django.DjangoModelFactory[IcalFeedToken]):
    """Pass `raw=` to know the secret; the row stores only its hash."""

    class Meta:
        model = IcalFeedToken
        exclude = ("raw",)

    raw = factory.LazyFunction(IcalFeedToken.generate)
    practitioner = factory.SubFactory(PractitionerFactory)
    token_hash = factory.LazyAttribute(lambda o: hash_feed_token(o.raw))
    hint = factory.LazyAttribute(lambda o: o.raw[:6])
