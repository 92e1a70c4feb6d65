"""patients.bulk writes exactly the rows Django's own paths write (bulk_create, save()), column
by column over every concrete field as stored, so a field added to a model later is compared
too; and the batch services that use it return saved objects with their database ids."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

import pytest
from django.db import connection, models
from django.utils import timezone

from accounts.models import User
from core.models import Location
from patients import bulk, services
from patients.models import Coverage, Patient, PatientIdentifier, SexAtBirth
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)


def stored_rows(model: type[models.Model], ids: Sequence[Any]) -> list[dict[str, Any]]:
    """The rows as the database holds them (every column, no conversion by Django), by id."""
    table = connection.ops.quote_name(model._meta.db_table)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id IN ({marks}) ORDER BY id", list(ids))  # noqa: S608
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def without_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{name: value for name, value in row.items() if name != "id"} for row in rows]


def written_twice(
    make: Callable[[], list[models.Model]], fast: Callable[[list[models.Model]], None]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows `make()`'s objects become through bulk_create, then (those deleted) the rows
    the same objects become through `fast`; the clock stands still meanwhile."""
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        slow_objs = make()
        model = type(slow_objs[0])
        model._default_manager.bulk_create(slow_objs)
        slow = stored_rows(model, [obj.pk for obj in slow_objs])
        model._default_manager.filter(pk__in=[obj.pk for obj in slow_objs]).delete()
        fast_objs = make()
        fast(fast_objs)
        fast_ids = [obj.pk for obj in fast_objs]
        assert None not in fast_ids
        assert all(not obj._state.adding for obj in fast_objs)
        return without_id(slow), without_id(stored_rows(model, fast_ids))


def patients(location: Location) -> list[models.Model]:
    """Varied rows: defaults left alone, enum members, values of another type than the column's
    (converted by the field), empty and filled optional columns."""
    return [
        Patient(
            public_id=uuid.UUID(int=1),
            mrn="M-1",
            home_location=location,
            family_name="Okafor",
            given_name="Ada",
            family_fold="okafor",
            given_fold="ada",
            birth_date=dt.date(1984, 2, 29),
            sex_at_birth=SexAtBirth.FEMALE,
            phone_mobile="+16175550177",
            phone_mobile_digits="16175550177",
        ),
        Patient(
            public_id=uuid.UUID(int=2),
            mrn="M-2",
            home_location_id=location.pk,
            family_name="Müller",
            given_name="Zoë",
            family_fold="muller",
            given_fold="zoe",
            middle_name="Q",
            suffix=3,  # not text: the field turns it into "3"
            birth_date=dt.date(1990, 12, 31),
            sex_at_birth="M",
            gender_identity="non-binary",
            state="MA",
            postal_code="02139",
            email="zoe@example.org",
            preferred_language="German",
            interpreter_needed=True,
            preferred_contact="email",
            consent_sms=True,
            consent_email=True,
            guarantor_relationship="parent",
            guarantor_name="Hans Müller",
            is_active=False,
        ),
    ]


def test_patients_are_stored_as_bulk_create_stores_them(main_clinic: Location) -> None:
    slow, fast = written_twice(
        lambda: patients(main_clinic), lambda objs: bulk.insert_objects(objs, read_ids_by="mrn")
    )

    assert fast == slow
    assert len(fast) == 2


def test_coverages_are_stored_as_bulk_create_stores_them(main_clinic: Location) -> None:
    owner = PatientFactory.create(home_location=main_clinic)

    def make() -> list[models.Model]:
        return [
            Coverage(
                public_id=uuid.UUID(int=11),
                patient=owner,
                payer_name="Aetna",
                member_id="W123",
                member_id_fold="w123",
                effective_start=dt.date(2025, 1, 1),
                source_identifier="urn:x|1",
            ),
            Coverage(
                public_id=uuid.UUID(int=12),
                patient_id=owner.pk,
                payer_name="Medicare",
                payer_identifier="CMS",
                plan_name="Part B",
                member_id="1EG4-TE5-MK73",
                member_id_fold="1eg4te5mk73",
                group_number="G-7",
                subscriber_name="Someone Else",
                subscriber_birth_date=dt.date(1950, 6, 1),
                relationship="spouse",
                effective_start=dt.date(2024, 1, 1),
                effective_end=dt.date(2026, 12, 31),
                order=Coverage.Order.SECONDARY,
                is_active=False,
            ),
        ]

    slow, fast = written_twice(
        make, lambda objs: bulk.insert_objects(objs, read_ids_by="public_id")
    )

    assert fast == slow


def test_identifiers_are_stored_as_bulk_create_stores_them(main_clinic: Location) -> None:
    owner = PatientFactory.create(home_location=main_clinic)

    def make() -> list[models.Model]:
        return [
            PatientIdentifier(public_id=uuid.UUID(int=21), patient=owner, system="s", value="1"),
            PatientIdentifier(public_id=uuid.UUID(int=22), patient=owner, system="s", value="2"),
        ]

    def fast(objs: list[models.Model]) -> None:
        bulk.insert_objects(objs)
        for obj in objs:  # written without reading ids back
            assert obj.pk is None
            obj.pk = PatientIdentifier.objects.get(public_id=obj.public_id).pk

    slow, written = written_twice(make, fast)

    assert written == slow


def test_every_concrete_field_is_written_including_ones_added_later() -> None:
    for model in (Patient, Coverage, PatientIdentifier):
        meta = model._meta
        plan = bulk.plan_for(model)

        assert plan.attnames == [
            field.attname for field in meta.local_concrete_fields if field is not meta.auto_field
        ]
    # A field with a default that the services never set is written with its default.
    assert "medicare_secondary_type" in bulk.plan_for(Coverage).attnames


def test_a_coverage_added_in_bulk_keeps_the_defaults_of_fields_it_does_not_set(
    frontdesk: User, main_clinic: Location
) -> None:
    owner = PatientFactory.create(home_location=main_clinic)

    (added,) = services.coverage_add_many(
        actor=frontdesk,
        items=[services.NewCoverage(owner, {"payer_name": "Aetna", "member_id": "A1"})],
    )

    assert isinstance(added, Coverage)
    stored = Coverage.objects.get(pk=added.pk)
    for field in Coverage._meta.concrete_fields:
        if field.has_default() and not callable(field.default):
            assert getattr(stored, field.attname) == field.default, field.name
    assert (stored.public_id, stored.member_id_fold) == (added.public_id, "a1")


def test_one_insert_statement_stores_what_save_stores(main_clinic: Location) -> None:
    """The registration's INSERT (sent with other statements on PostgreSQL), with an id drawn
    beforehand, and the identifiers' multi-row INSERT."""
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        (saved, *_) = patients(main_clinic)
        saved.save(force_insert=True)
        slow = stored_rows(Patient, [saved.pk])
        new_id = saved.pk + 1000
        Patient.objects.filter(pk=saved.pk).delete()
        (fresh, *_) = patients(main_clinic)
        fresh.pk = new_id
        sql, params = bulk.insert_statement([fresh])
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

        assert not fresh._state.adding
        assert without_id(stored_rows(Patient, [new_id])) == without_id(slow)

        keys = [PatientIdentifier(patient=fresh, system="s", value=str(n)) for n in range(3)]
        sql, params = bulk.insert_statement(keys)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    stored = PatientIdentifier.objects.filter(patient_id=new_id).order_by("value")
    assert [(key.public_id, key.created_at) for key in stored] == [
        (key.public_id, NOW) for key in keys
    ]


def test_registered_in_bulk_patients_and_coverages_have_their_stored_ids(
    frontdesk: User, main_clinic: Location
) -> None:
    rows = [
        services.NewPatient(
            {
                "family_name": f"Family{n}",
                "given_name": "Given",
                "birth_date": dt.date(1980, 1, 1 + n),
                "sex_at_birth": "F",
            },
            [("urn:example", f"E-{n}")],
        )
        for n in range(5)
    ]
    registered = services.patient_register_many(
        actor=frontdesk, home_location=main_clinic, rows=rows
    )
    created = [p for p in registered if isinstance(p, Patient)]
    assert len(created) == 5
    by_mrn = dict(Patient.objects.values_list("mrn", "id"))
    assert [p.pk for p in created] == [by_mrn[p.mrn] for p in created]
    assert {
        (i.patient_id, i.system) for i in PatientIdentifier.objects.filter(system="urn:example")
    } == {(p.pk, "urn:example") for p in created}

    coverages = services.coverage_add_many(
        actor=frontdesk,
        items=[
            services.NewCoverage(p, {"payer_name": "Aetna", "member_id": p.mrn}) for p in created
        ],
    )
    by_public_id = dict(Coverage.objects.values_list("public_id", "id"))
    assert [c.pk for c in coverages] == [
        by_public_id[c.public_id] for c in coverages if isinstance(c, Coverage)
    ]
    assert all(isinstance(c, Coverage) and c.created_at <= timezone.now() for c in coverages)
