"""Running A/R balances (receivables.models), filled from the ledger already posted.

The fill is the SQL of receivables.balances.rebuild, written out here so that this migration
keeps meaning the same thing when that module changes. Reversing drops the tables (the ledger
is untouched).
"""

import django.db.models.deletion
from django.db import migrations, models

FILL_CLAIMS = """
INSERT INTO receivables_claimarbalance (claim_reference, amount)
SELECT t.claim_reference, SUM(e.amount)
FROM patientaccounts_journalentry e
JOIN patientaccounts_journaltransaction t ON t.id = e.transaction_id
WHERE e.account = 'insurance_ar' AND t.kind <> 'charge' AND t.claim_reference > ''
GROUP BY t.claim_reference
"""

FILL_PATIENTS = """
INSERT INTO receivables_patientarbalance (patient_id, service_date, amount)
SELECT e.patient_id, e.service_date, SUM(e.amount)
FROM patientaccounts_journalentry e
WHERE e.account = 'patient_ar' AND e.patient_id IS NOT NULL
GROUP BY e.patient_id, e.service_date
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("patients", "0003_patient_name_search_indexes"),
        ("patientaccounts", "0003_payments_plans_refunds_statements_disputes"),
    ]

    operations = [
        migrations.CreateModel(
            name="ClaimArBalance",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("claim_reference", models.CharField(max_length=64, unique=True)),
                ("amount", models.DecimalField(decimal_places=2, default=0, max_digits=14)),
            ],
            options={"verbose_name": "claim A/R running balance"},
        ),
        migrations.CreateModel(
            name="PatientArBalance",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("service_date", models.DateField(blank=True, null=True)),
                ("amount", models.DecimalField(decimal_places=2, default=0, max_digits=14)),
                (
                    "patient",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="ar_balances",
                        to="patients.patient",
                    ),
                ),
            ],
            options={
                "verbose_name": "patient A/R running balance",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("patient", "service_date"), name="recv_patient_ar_bal_dated_uniq"
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("service_date__isnull", True)),
                        fields=("patient",),
                        name="recv_patient_ar_bal_undated_uniq",
                    ),
                ],
            },
        ),
        migrations.RunSQL(FILL_CLAIMS, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(FILL_PATIENTS, reverse_sql=migrations.RunSQL.noop),
    ]
