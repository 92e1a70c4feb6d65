"""On PostgreSQL, reject UPDATE, DELETE and TRUNCATE on the ledger tables in the database itself.

The one UPDATE let through changes nothing but `patient_id`: a patient merge re-points every
relation to the surviving record (patients.services.patient_merge); the money never changes.
"""

from django.db import migrations

TABLES = ("patientaccounts_journaltransaction", "patientaccounts_journalentry")

FUNCTION = """
CREATE OR REPLACE FUNCTION patientaccounts_ledger_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
        AND (to_jsonb(NEW) - 'patient_id') = (to_jsonb(OLD) - 'patient_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only (% refused): post a reversal', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

TRIGGERS = """
CREATE TRIGGER {table}_no_update_delete
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION patientaccounts_ledger_append_only();
CREATE TRIGGER {table}_no_truncate
    BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION patientaccounts_ledger_append_only();
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)
        for table in TABLES:
            schema_editor.execute(TRIGGERS.format(table=table), params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(DROP_TRIGGERS.format(table=table), params=None)
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS patientaccounts_ledger_append_only();", params=None
        )


class Migration(migrations.Migration):
    dependencies = [("patientaccounts", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
