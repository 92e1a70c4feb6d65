"""INSERT statements for model rows without building an ORM query per row.

`insert_statement(objs)` is the INSERT Django's `save(force_insert=True)` / `bulk_create` would
send for `objs` (rows of one model): each field's `pre_save(obj, add=True)` (auto_now stamps;
defaults are set by the model's __init__) and `get_db_prep_save`, the columns in the model's
order. Only the SQL text is made once per database vendor, model and row count instead of being
compiled by the ORM each time, and the two field calls are skipped where they cannot change the
value: `pre_save` of fields that do not override it (it reads the attribute), and
`get_db_prep_save` of text, integer, boolean and foreign-key (integer key) fields given a value
of exactly that Python type or None, and of date, time-stamp, UUID and decimal fields given None
(their preparation returns it as it is on SQLite and PostgreSQL); on PostgreSQL also of UUID
fields given a UUID and time-stamp fields given an aware datetime (native columns). The
statement can travel with others in one round trip (audit.services.run_statements). Used by the
booking's write path (scheduling.services), the schedule's hottest write; the objects are
marked saved.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Model

Statement = tuple[str, list[Any]]

# Field classes whose get_db_prep_save returns a value of these exact types unchanged.
_PLAIN_FIELDS: dict[type[models.Field[Any, Any]], tuple[type, ...]] = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.IntegerField: (int,),
    models.BigIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.PositiveBigIntegerField: (int,),
    models.BooleanField: (bool,),
}
_INTEGER_KEYS = (models.AutoField, models.BigAutoField, models.SmallAutoField)


# Field classes whose get_db_prep_save(None) is None (JSONField's is not: it is left to it).
_NONE_AS_NULL = (models.DateTimeField, models.DateField, models.UUIDField, models.DecimalField)


class _Column:
    __slots__ = ("attname", "aware", "field", "none_as_null", "plain", "pre_save")

    def __init__(self, field: models.Field[Any, Any], vendor: str) -> None:
        self.field = field
        self.attname = str(field.attname)
        self.pre_save = type(field).pre_save is not models.Field.pre_save
        plain: tuple[type, ...] = _PLAIN_FIELDS.get(type(field), ())
        if isinstance(field, models.ForeignKey) and type(field.target_field) in _INTEGER_KEYS:
            plain = (int,)
        if vendor == "postgresql" and type(field) is models.UUIDField:
            plain = (uuid.UUID,)  # a native uuid column: the UUID object is passed as it is
        self.plain = plain
        # PostgreSQL takes an aware datetime as it is (timestamptz); SQLite needs it as text.
        self.aware = vendor == "postgresql" and type(field) is models.DateTimeField
        self.none_as_null = bool(plain) or isinstance(field, _NONE_AS_NULL)


_texts: dict[tuple[str, type[Model], bool, int], tuple[str, list[_Column]]] = {}


def insert_statement(objs: Sequence[Model], *, with_pk: bool = True) -> Statement:
    """The INSERT of `objs` (one model, at least one row). `with_pk` False leaves the primary
    key to the database (an auto field); True writes the objects' own (set beforehand)."""
    model = type(objs[0])
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself, not the per-thread proxy
    key = (db.vendor, model, with_pk, len(objs))
    cached = _texts.get(key)
    if cached is None:
        meta = model._meta
        fields = [f for f in meta.local_concrete_fields if with_pk or f is not meta.auto_field]
        quote = db.ops.quote_name
        marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = (
            f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608
            f"({', '.join(quote(str(f.column)) for f in fields)}) "
            f"VALUES {', '.join([marks] * len(objs))}"
        )
        cached = _texts[key] = (sql, [_Column(f, db.vendor) for f in fields])
    sql, columns = cached
    params: list[Any] = []
    alias = db.alias
    for obj in objs:
        values = obj.__dict__
        for column in columns:
            value = column.field.pre_save(obj, True) if column.pre_save else values[column.attname]
            if (
                type(value) in column.plain
                or (value is None and column.none_as_null)
                or (column.aware and type(value) is dt.datetime and value.tzinfo is not None)
            ):
                params.append(value)
            else:
                params.append(column.field.get_db_prep_save(value, db))
        obj._state.adding, obj._state.db = False, alias
    return sql, params
