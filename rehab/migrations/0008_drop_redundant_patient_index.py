"""Drop rehab_dailylog's single-column patient index: the one-per-day constraint's
(patient, date) index serves every look-up by patient, and the second index cost every
log insert and every evaluation update an index entry (issue 8).

Django's own AlterField would drop and re-add the foreign key, which re-validates every
row under a lock that blocks log writes; only the index goes here, concurrently.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "rehab_dailylog_patient_id_13b078a6"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("patients", "0005_drop_redundant_patient_index"),
        ("rehab", "0007_intervention_fever_recheck"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="dailylog",
                    name="patient",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="daily_logs",
                        to="patients.patient",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"',
                    reverse_sql=(
                        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{INDEX}" '
                        'ON "rehab_dailylog" ("patient_id")'
                    ),
                ),
            ],
        ),
    ]
