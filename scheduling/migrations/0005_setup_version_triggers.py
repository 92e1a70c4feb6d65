"""Triggers that give scheduling_setupversion a new random token whenever the reference data
of availability changes (rules, their appointment types, changed occurrences, exceptions,
opening hours, locations), whatever writes it. Per-process caches compare the token
(scheduling.setup_cache). A random token, not a counter: a rolled-back change must not leave a
value that a later, different change could repeat."""

from django.db import migrations

TABLES = [
    "scheduling_availabilityrule",
    "scheduling_availabilityrule_appointment_types",
    "scheduling_availabilityoccurrence",
    "scheduling_availabilityexception",
    "scheduling_openinghours",
    "core_location",
]
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION scheduling_setup_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE scheduling_setupversion SET token = md5(random()::text || clock_timestamp()::text);
    RETURN NULL;
END
$$
"""
NEW_SQLITE_VALUE = "lower(hex(randomblob(16)))"


def _name(table: str, operation: str = "") -> str:
    return f"{table}_setup_changed{'_' + operation if operation else ''}"


def forward(apps, schema_editor):
    execute = schema_editor.execute
    if schema_editor.connection.vendor == "postgresql":
        execute(PG_FUNCTION, params=None)
        for table in TABLES:
            execute(
                f"CREATE TRIGGER {_name(table)} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION scheduling_setup_changed()",
                params=None,
            )
        return
    for table in TABLES:
        for operation in ("insert", "update", "delete"):
            statement = (  # built from the constants above only
                f"CREATE TRIGGER {_name(table, operation)} AFTER {operation.upper()} ON {table} "  # noqa: S608
                f"BEGIN UPDATE scheduling_setupversion SET token = {NEW_SQLITE_VALUE}; END"
            )
            execute(statement, params=None)


def backward(apps, schema_editor):
    execute = schema_editor.execute
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            execute(f"DROP TRIGGER IF EXISTS {_name(table)} ON {table}", params=None)
        execute("DROP FUNCTION IF EXISTS scheduling_setup_changed()", params=None)
        return
    for table in TABLES:
        for operation in ("insert", "update", "delete"):
            execute(f"DROP TRIGGER IF EXISTS {_name(table, operation)}", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("scheduling", "0004_setup_version"),
    ]

    operations = [migrations.RunPython(forward, backward)]
