"""Data migration: the billing capabilities join the roles' grants."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import sync_roles

    sync_roles(apps.get_model("accounts", "Role"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_sync_roles_scheduling")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
