"""Data migration: the scheduling capabilities join the roles' grants."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import sync_roles

    sync_roles(apps.get_model("accounts", "Role"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_seed_roles")]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
