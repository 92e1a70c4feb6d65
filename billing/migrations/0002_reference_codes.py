"""Data: place-of-service codes, modifiers, CARC and RARC (see billing/reference_data.py)."""

from django.db import migrations

from billing.reference_data import load_reference_codes, unload_reference_codes


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(load_reference_codes, unload_reference_codes)]
