"""Data migration: seed the roles and the capabilities they grant."""

from django.db import migrations


def seed_roles(apps, schema_editor):
    from accounts.roles import sync_roles

    sync_roles(apps.get_model("accounts", "Role"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(seed_roles, migrations.RunPython.noop)]
