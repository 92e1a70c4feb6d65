from __future__ import annotations

import datetime as dt
from typing import cast

import factory

from core.tests.factories import LocationFactory
from patients.tests.factories import PatientFactory
from scheduling.models import (
    BLOCKING_STATUSES,
    Appointment,
    AppointmentPractitioner,
    AppointmentResource,
    AppointmentStatus,
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    ExceptionKind,
    OpeningHours,
    Practitioner,
    Resource,
    ResourceCategory,
)
from scheduling.validators import make_npi


class PractitionerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Practitioner
        skip_postgeneration_save = True

    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    credentials = "MD"
    npi = factory.Sequence(lambda n: make_npi(f"{123_000_000 + n:09d}"))
    specialty = "Family Medicine"

    @factory.post_generation
    def locations(self, create: bool, extracted: list[object] | None, **kwargs: object) -> None:
        if create and extracted:
            self.locations.set(extracted)


# ---- scheduling: types, resources, availability, appointments ------------------------------
# (rows built directly, without the services' checks and audit; use scheduling.services for
# behaviour under test)


class AppointmentTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AppointmentType
        django_get_or_create = ("code",)
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"type-{n}")
    name = factory.Sequence(lambda n: f"Visit type {n}")
    duration_minutes = 30
    buffer_minutes = 0

    @factory.post_generation
    def allowed_practitioners(
        self, create: bool, extracted: list[Practitioner] | None, **kwargs: object
    ) -> None:
        if create and extracted:
            self.allowed_practitioners.set(extracted)


class ResourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Resource

    location = factory.SubFactory(LocationFactory)
    name = factory.Sequence(lambda n: f"Exam room {n}")
    category = ResourceCategory.ROOM
    kind = "exam-room"
    capacity = 1


class AvailabilityRuleFactory(factory.django.DjangoModelFactory):
    """Weekdays 08:00-17:00 local time since 2024, unless told otherwise."""

    class Meta:
        model = AvailabilityRule
        skip_postgeneration_save = True

    practitioner = factory.SubFactory(PractitionerFactory)
    location = factory.SubFactory(LocationFactory)
    start_date = dt.date(2024, 1, 1)
    start_time = dt.time(8, 0)
    end_time = dt.time(17, 0)
    rrule = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"

    @factory.post_generation
    def appointment_types(
        self, create: bool, extracted: list[AppointmentType] | None, **kwargs: object
    ) -> None:
        if create and extracted:
            self.appointment_types.set(extracted)


class OpeningHoursFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OpeningHours

    location = factory.SubFactory(LocationFactory)
    weekday = 0
    opens = dt.time(8, 0)
    closes = dt.time(18, 0)


class AvailabilityExceptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AvailabilityException

    location = factory.SubFactory(LocationFactory)
    practitioner = None
    kind = ExceptionKind.HOLIDAY
    start = factory.LazyFunction(lambda: dt.datetime(2030, 1, 1, 5, tzinfo=dt.UTC))
    end = factory.LazyAttribute(lambda o: o.start + dt.timedelta(days=1))
    reason = "Clinic closed"


class AppointmentFactory(factory.django.DjangoModelFactory):
    """An appointment row with its practitioner (and resource) rows, without any check: for
    reading tests and for appointments in the past, which the services refuse to book."""

    class Meta:
        model = Appointment
        skip_postgeneration_save = True

    patient = factory.SubFactory(PatientFactory)
    appointment_type = factory.SubFactory(AppointmentTypeFactory)
    location = factory.SubFactory(LocationFactory)
    start = factory.LazyFunction(lambda: dt.datetime(2030, 1, 7, 14, tzinfo=dt.UTC))
    end = factory.LazyAttribute(
        lambda o: o.start + dt.timedelta(minutes=o.appointment_type.duration_minutes)
    )
    status = AppointmentStatus.BOOKED

    @factory.post_generation
    def practitioners(
        self, create: bool, extracted: list[Practitioner] | None, **kwargs: object
    ) -> None:
        if not create:
            return
        appointment = cast(Appointment, self)
        held = appointment.end + dt.timedelta(minutes=appointment.appointment_type.buffer_minutes)
        chosen: list[Practitioner] = extracted or [cast(Practitioner, PractitionerFactory())]
        for practitioner in chosen:
            AppointmentPractitioner.objects.create(
                appointment=appointment,
                practitioner=practitioner,
                start=appointment.start,
                end=held,
                blocks=appointment.status in BLOCKING_STATUSES,
                is_overbooked=appointment.is_overbooked,  # overlaps allowed (PostgreSQL) then
            )

    @factory.post_generation
    def resources(self, create: bool, extracted: list[Resource] | None, **kwargs: object) -> None:
        if not create or not extracted:
            return
        appointment = cast(Appointment, self)
        held = appointment.end + dt.timedelta(minutes=appointment.appointment_type.buffer_minutes)
        for resource in extracted:
            AppointmentResource.objects.create(
                appointment=appointment,
                resource=resource,
                start=appointment.start,
                end=held,
                blocks=appointment.status in BLOCKING_STATUSES,
                exclusive=resource.capacity == 1,
            )
