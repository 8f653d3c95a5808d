"""Clinic names unique whatever their case, as create_clinician matches them.

Clinics that already differ only in case would make the new index fail with a bare
IntegrityError; the check below stops the migration first and names them, so that an
operator merges (or renames) them knowingly: clinics hold patients, and merging them
is not a migration's decision. The new constraint is added before the old, case-sensitive
unique index is dropped, so names are never without a uniqueness guarantee.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import Lower


def check_no_names_differ_only_in_case(apps: Any, schema_editor: Any) -> None:
    Clinic = apps.get_model("patients", "Clinic")
    clashes = list(
        Clinic.objects.using(schema_editor.connection.alias)
        .values(lowered=Lower("name"))
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("lowered", flat=True)
    )
    if clashes:
        names = sorted(
            Clinic.objects.using(schema_editor.connection.alias)
            .alias(lowered=Lower("name"))
            .filter(lowered__in=clashes)
            .values_list("name", flat=True)
        )
        raise RuntimeError(
            "Clinic names that differ only in case must be merged or renamed before this "
            "migration: " + ", ".join(repr(name) for name in names)
        )


class Migration(migrations.Migration):
    dependencies = [("patients", "0003_authtoken_public_id")]

    operations = [
        migrations.RunPython(check_no_names_differ_only_in_case, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="clinic",
            constraint=models.UniqueConstraint(
                Lower("name"),
                name="clinic_unique_name_ci",
                violation_error_message="A clinic with this name exists (whatever its case).",
            ),
        ),
        migrations.AlterField(
            model_name="clinic",
            name="name",
            field=models.CharField(max_length=200),
        ),
    ]
