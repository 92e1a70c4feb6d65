"""Raw INSERTs of new patients, identifiers and coverages: what `Model.save()` and
`QuerySet.bulk_create` write, without preparing every value through Django's field machinery.

For an import, bulk_create's per-value work (pre_save, get_db_prep_save, the compiler's
placeholders) cost more than the database's own; for a single registration on PostgreSQL, so did
building its INSERT with InsertQuery. Here a plan is made once per model and database:

- the columns are the model's concrete fields (a field added later, with its default, is
  written too);
- auto-time fields (auto_now, auto_now_add) get their `pre_save` per row, as in save();
- each value goes to the driver as Django would send it: values of the types a field stores
  as they are (text in a text column, an int in an integer column, ...) pass unchanged, as
  get_db_prep_save would leave them, and any other value goes through the field's own
  get_db_prep_save; dates are converted once per distinct date.

SQLite gets one executemany per table, PostgreSQL one COPY (core.bulk_sql.copy_rows). The ids
of new rows are read back by a unique column (`insert_objects(..., read_ids_by=...)`).
`patients/tests/test_bulk_paths.py` proves the rows equal those bulk_create writes, column by
column over every concrete field.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, models

from core.bulk_sql import copy_rows

BATCH = 2000

Converter = Callable[[Any], Any]


def _prep(field: models.Field[Any, Any]) -> Converter:
    """The field's own conversion (what bulk_create and save() use)."""

    def convert(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    return convert


def _passing(types: tuple[type, ...], field: models.Field[Any, Any]) -> Converter:
    """Values of exactly `types` (and None) as they are: get_db_prep_save returns them
    unchanged; anything else through the field."""
    prep = _prep(field)

    def convert(value: Any) -> Any:
        return value if value is None or type(value) in types else prep(value)

    return convert


def _dates(field: models.Field[Any, Any]) -> Converter:
    """The field's conversion, computed once per distinct value (dates repeat in a batch)."""
    prep = _prep(field)
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        if value is None:
            return None
        try:
            return seen[value]
        except KeyError:
            converted = seen[value] = prep(value)
            return converted
        except TypeError:  # unhashable: let the field deal with it
            return prep(value)

    return convert


def _times(field: models.Field[Any, Any]) -> Converter:
    """An aware datetime needs only the database's adaptation (get_db_prep_save's last step:
    its earlier ones leave it unchanged); anything else goes through the field."""
    adapt = connection.ops.adapt_datetimefield_value
    prep = _prep(field)

    def convert(value: Any) -> Any:
        if type(value) is dt.datetime and value.tzinfo is not None:
            return adapt(value)
        return prep(value)

    return convert


def _uuids(field: models.Field[Any, Any]) -> Converter:
    native = connection.features.has_native_uuid_field
    prep = _prep(field)

    def convert(value: Any) -> Any:
        if type(value) is uuid.UUID:
            return value if native else value.hex
        return prep(value)

    return convert


def _converter(field: models.Field[Any, Any]) -> Converter | None:
    """None when every value of the field can go to the driver as it is; else the converter."""
    if isinstance(field, models.ForeignKey):
        target = field.target_field
        if isinstance(target, models.AutoField | models.BigAutoField | models.IntegerField):
            return _passing((int,), field)
        return _prep(field)
    if isinstance(field, models.BooleanField):
        return _passing((bool,), field)
    if isinstance(field, models.CharField | models.TextField):
        return _passing((str,), field)  # choices' enum members go through the field
    if isinstance(field, models.IntegerField):
        return _passing((int,), field)
    if isinstance(field, models.DateTimeField):
        return _times(field)
    if isinstance(field, models.DateField):
        return _dates(field)
    if isinstance(field, models.UUIDField):
        return _uuids(field)
    return _prep(field)


def _presaves(field: models.Field[Any, Any]) -> bool:
    """Whether the field sets its own value on insert (auto_now / auto_now_add)."""
    return isinstance(field, models.DateField) and bool(field.auto_now or field.auto_now_add)


class InsertPlan:
    """How the rows of one model are written on the current database."""

    def __init__(self, model: type[models.Model], *, with_pk: bool) -> None:
        meta = model._meta
        self.model = model
        self.fields = [
            field for field in meta.local_concrete_fields if field is not meta.auto_field or with_pk
        ]
        quote = connection.ops.quote_name
        self.table = quote(meta.db_table)
        self.columns = ", ".join(quote(str(field.column)) for field in self.fields)
        self.attnames = [str(field.attname) for field in self.fields]
        self.presave = [
            (position, field) for position, field in enumerate(self.fields) if _presaves(field)
        ]
        self.converters = [
            (position, convert)
            for position, field in enumerate(self.fields)
            if (convert := _converter(field)) is not None
        ]
        marks = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        self.sql = f"INSERT INTO {self.table} ({self.columns}) VALUES {marks}"  # noqa: S608

    def row(self, obj: models.Model) -> list[Any]:
        """The values of `obj` for the INSERT (pre_save run, as save() would)."""
        values = obj.__dict__
        line = [values[name] for name in self.attnames]
        for position, field in self.presave:
            line[position] = field.pre_save(obj, True)
        for position, convert in self.converters:
            line[position] = convert(line[position])
        return line


_plans: dict[tuple[type[models.Model], str, bool], InsertPlan] = {}


def plan_for(model: type[models.Model], *, with_pk: bool = False) -> InsertPlan:
    """The (cached) plan of `model` on the default database."""
    key = (model, connection.vendor, with_pk)
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = InsertPlan(model, with_pk=with_pk)
    return plan


def insert_statement(objs: Sequence[models.Model]) -> tuple[str, list[Any]]:
    """One INSERT of `objs` (rows of one model, all with or all without a primary key), as a
    statement to send with others; marks the objects saved."""
    model = type(objs[0])
    plan = plan_for(model, with_pk=objs[0].pk is not None)
    params: list[Any] = []
    for obj in objs:
        params += plan.row(obj)
    marks = plan.sql.partition(" VALUES ")[2]
    sql = plan.sql if len(objs) == 1 else plan.sql + ", " + ", ".join([marks] * (len(objs) - 1))
    _mark_saved(objs)
    return sql, params


def insert_objects(objs: Sequence[models.Model], *, read_ids_by: str | None = None) -> None:
    """INSERT new `objs` (rows of one model without a primary key, related objects saved).
    With `read_ids_by` (a unique field's attname), the new ids are read back by it and set on
    the objects; the objects are marked saved either way."""
    if not objs:
        return
    model = type(objs[0])
    plan = plan_for(model)
    rows = [plan.row(obj) for obj in objs]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            copy_rows(cursor, plan.table, plan.columns, rows)
        else:
            for start in range(0, len(rows), BATCH):
                cursor.executemany(plan.sql, rows[start : start + BATCH])
    if read_ids_by is not None:
        _read_ids(objs, plan, read_ids_by)
    _mark_saved(objs)


def _read_ids(objs: Sequence[models.Model], plan: InsertPlan, attname: str) -> None:
    position = plan.attnames.index(attname)
    field = plan.fields[position]
    convert = _converter(field) or (lambda value: value)
    keys = [convert(getattr(obj, attname)) for obj in objs]
    quote = connection.ops.quote_name
    column = quote(str(field.column))
    pk_column = quote(str(plan.model._meta.pk.column))
    ids: dict[Any, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(keys), BATCH):
            chunk = keys[start : start + BATCH]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"SELECT {column}, {pk_column} FROM {plan.table} "  # noqa: S608
                f"WHERE {column} IN ({marks})",
                chunk,
            )
            ids.update(cursor.fetchall())
    if isinstance(field, models.UUIDField) and not connection.features.has_native_uuid_field:
        ids = {uuid.UUID(key): pk for key, pk in ids.items()}
    for obj in objs:
        obj.pk = ids[getattr(obj, attname)]


def _mark_saved(objs: Sequence[models.Model]) -> None:
    alias = connection.alias
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias
