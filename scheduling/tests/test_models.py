from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.tests.factories import LocationFactory
from scheduling.models import Practitioner
from scheduling.tests.factories import PractitionerFactory

pytestmark = pytest.mark.django_db


def test_shows_name_with_credentials() -> None:
    practitioner = PractitionerFactory(given_name="Ana", family_name="Núñez", credentials="NP")
    assert str(practitioner) == "Ana Núñez, NP"


def test_two_practitioners_cannot_share_an_npi() -> None:
    # given
    PractitionerFactory(npi="1234567893")
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        PractitionerFactory(npi="1234567893")


def test_full_clean_rejects_an_npi_with_a_wrong_check_digit() -> None:
    practitioner = PractitionerFactory.build(npi="1234567890")
    with pytest.raises(ValidationError) as caught:
        practitioner.full_clean()
    assert "npi" in caught.value.message_dict
    assert "check digit" in caught.value.message_dict["npi"][0]


def test_full_clean_rejects_an_unknown_credential() -> None:
    practitioner = PractitionerFactory.build(credentials="XYZ")
    with pytest.raises(ValidationError) as caught:
        practitioner.full_clean()
    assert "credentials" in caught.value.message_dict


def test_new_practitioners_are_active_and_accept_new_patients() -> None:
    practitioner = PractitionerFactory()
    assert practitioner.is_active
    assert practitioner.accepts_new_patients


def test_practitioner_works_at_several_locations() -> None:
    # given
    main = LocationFactory(code="main")
    riverside = LocationFactory(code="riverside")
    # when
    practitioner = PractitionerFactory(locations=[main, riverside])
    # then
    assert set(practitioner.locations.all()) == {main, riverside}
    assert list(main.practitioners.all()) == [practitioner]


def test_practitioners_are_listed_by_family_then_given_name() -> None:
    PractitionerFactory(given_name="Zoe", family_name="Adams")
    PractitionerFactory(given_name="Amir", family_name="Brown")
    PractitionerFactory(given_name="Alice", family_name="Adams")
    names = [(p.family_name, p.given_name) for p in Practitioner.objects.all()]
    assert names == [("Adams", "Alice"), ("Adams", "Zoe"), ("Brown", "Amir")]
