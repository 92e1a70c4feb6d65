"""The one SetupVersion row the triggers of 0005 update."""

import uuid

from django.db import migrations


def forward(apps, schema_editor):
    SetupVersion = apps.get_model("scheduling", "SetupVersion")
    if not SetupVersion.objects.exists():
        SetupVersion.objects.create(pk=1, token=uuid.uuid4().hex)


def backward(apps, schema_editor):
    apps.get_model("scheduling", "SetupVersion").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0005_setup_version_triggers")]

    operations = [migrations.RunPython(forward, backward)]
