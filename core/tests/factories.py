from __future__ import annotations

import factory

from core.models import Location


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"loc{n}")
    name = factory.Sequence(lambda n: f"Clinic {n}")
    time_zone = "America/New_York"
