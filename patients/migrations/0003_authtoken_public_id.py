"""A public id for each API token (the devices endpoints), filled in for existing rows."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import migrations, models


def fill_public_ids(apps: Any, schema_editor: Any) -> None:
    AuthToken = apps.get_model("patients", "AuthToken")
    for token in AuthToken.objects.filter(public_id__isnull=True).only("pk").iterator():
        AuthToken.objects.filter(pk=token.pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("patients", "0002_audit_append_only")]

    operations = [
        migrations.AddField(
            model_name="authtoken",
            name="public_id",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="authtoken",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
