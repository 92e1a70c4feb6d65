"""Indexes for the KPI queries on tables of other apps (PostgreSQL only; receivables.kpis).

* billing_chargeline (service_date) INCLUDE (amount): gross charges of a period are an
  index-only scan instead of a bitmap heap scan over a quarter of a million lines.
* billing_claimevent (claim_id, to_status): the first-pass count's EXISTS probes per claim are
  index-only.

They live here, not in the owning apps' models, because only these reports need them; the
reverse migration drops them. SQLite has no INCLUDE and runs these reports on small data.
"""

from django.db import migrations

INDEXES = {
    "recv_chargeline_date_amount_idx": (
        "billing_chargeline",
        "CREATE INDEX IF NOT EXISTS recv_chargeline_date_amount_idx "
        "ON billing_chargeline (service_date) INCLUDE (amount)",
    ),
    "recv_claimevent_claim_status_idx": (
        "billing_claimevent",
        "CREATE INDEX IF NOT EXISTS recv_claimevent_claim_status_idx "
        "ON billing_claimevent (claim_id, to_status)",
    ),
}


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for _table, sql in INDEXES.values():
            schema_editor.execute(sql, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("receivables", "0001_running_balances"),
        ("billing", "0003_kpi_indexes"),
    ]

    operations = [migrations.RunPython(forward, backward)]
