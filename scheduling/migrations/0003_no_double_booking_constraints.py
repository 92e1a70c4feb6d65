"""On PostgreSQL the database itself refuses double booking: exclusion constraints (btree_gist)
over tstzrange(start, end, '[)') for each practitioner and each exclusive (capacity 1) resource,
ignoring rows that no longer block (cancelled, no-show) and recorded overbookings.
Back-to-back bookings ([9:00,9:30) and [9:30,10:00)) do not overlap under '[)'.
On SQLite the same rule is enforced by the booking service inside BEGIN IMMEDIATE transactions."""

from django.db import migrations

FORWARD = [
    """
    ALTER TABLE scheduling_appointmentpractitioner
    ADD CONSTRAINT scheduling_ap_no_overlap
    EXCLUDE USING gist (practitioner_id WITH =, tstzrange("start", "end", '[)') WITH &&)
    WHERE (blocks AND NOT is_overbooked)
    """,
    """
    ALTER TABLE scheduling_appointmentresource
    ADD CONSTRAINT scheduling_ar_no_overlap
    EXCLUDE USING gist (resource_id WITH =, tstzrange("start", "end", '[)') WITH &&)
    WHERE (blocks AND exclusive)
    """,
]
BACKWARD = [
    "ALTER TABLE scheduling_appointmentresource DROP CONSTRAINT IF EXISTS scheduling_ar_no_overlap",
    "ALTER TABLE scheduling_appointmentpractitioner DROP CONSTRAINT IF EXISTS scheduling_ap_no_overlap",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_postgres_extensions"),
        ("scheduling", "0002_appointments_availability_waitlist"),
    ]

    operations = [migrations.RunPython(forward, backward)]
