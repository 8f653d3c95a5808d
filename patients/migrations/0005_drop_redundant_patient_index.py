"""Drop patients_auditevent's single-column patient index: the (patient, at) index serves
every look-up by patient, and the second index cost every audited request an index entry
(issue 8). Concurrently: the audit table is the largest there is."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "patients_auditevent_patient_id_92f1e078"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("patients", "0004_clinic_unique_name_ci"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="patient",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="patients.patient",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"',
                    reverse_sql=(
                        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{INDEX}" '
                        'ON "patients_auditevent" ("patient_id")'
                    ),
                ),
            ],
        ),
    ]
