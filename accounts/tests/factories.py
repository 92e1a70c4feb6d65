from __future__ import annotations

import factory
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role, User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            self.roles.set(Role.objects.filter(slug__in=extracted))

    @factory.post_generation
    def locations(self, create: bool, extracted: list[object] | None, **kwargs: object) -> None:
        if create and extracted:
            self.locations.set(extracted)


class TOTPDeviceFactory(factory.django.DjangoModelFactory):
    """A confirmed authenticator; compute its codes with `totp_code(device)`."""

    class Meta:
        model = TOTPDevice

    user = factory.SubFactory(UserFactory)
    name = "Authenticator app"
    confirmed = True


def totp_code(device: TOTPDevice, *, offset_steps: int = 0) -> str:
    """The 6-digit code `device` accepts now (or `offset_steps` time steps away)."""
    from django_otp.oath import totp

    return str(
        totp(
            device.bin_key,
            step=device.step,
            t0=device.t0,
            digits=device.digits,
            drift=device.drift + offset_steps,
        )
    ).zfill(6)


def wrong_totp_code(device: TOTPDevice) -> str:
    """A 6-digit code that `device` rejects now (not valid at any nearby time step)."""
    nearby = {totp_code(device, offset_steps=k) for k in range(-3, 4)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in nearby)
