"""Partition rehab_dailylog by month of the log's date (docs/clinical-record.md § Where the
daily logs are stored), existing rows moved.

What changes in the database, and why Django's state barely moves:
- `rehab_dailylog` becomes a table partitioned by RANGE (date), one partition a month
  (`rehab_dailylog_pYYYY_MM`) plus `rehab_dailylog_default`, which takes a log whose
  month has no partition yet: an insert never fails for want of a partition.
- A partitioned table's primary key must include the partition key, so the database's
  key is (id, date). Django keeps `id` as the model's primary key (the API's
  idempotency key), and "one id, one log" is kept by `rehab_dailylogid`, an unpartitioned
  table of the ids in use, claimed by a BEFORE INSERT trigger: an insert whose id is
  already claimed inserts nothing (as ON CONFLICT DO NOTHING would), so the log POST's
  single `INSERT ... ON CONFLICT DO NOTHING` statement still never raises.
- A foreign key can only reference a unique key that includes the partition key: the
  alerts, occurrences, revisions and safety submissions now reference
  `rehab_dailylogid (id)` instead (same columns, same deferred check, so a log cannot be
  deleted while anything still points at it). Django's state marks those fields
  `db_constraint=False`: Django no longer manages these constraints, this migration does.
- Partitions are created by `rehab_dailylog_partition_create(month)` and, ahead of time,
  `rehab_dailylog_partitions_ensure(months_ahead)`: SECURITY DEFINER functions owned by
  the owner role that the application role may execute (the beat task calls the second;
  the application role has no DDL of its own).
"""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models

# Months ahead of the current one the migration creates (the beat keeps it so).
AHEAD = 3

REFERENCING = (
    ("rehab_alert", "log_id"),
    ("rehab_alertoccurrence", "log_id"),
    ("rehab_dailylogrevision", "log_id"),
    ("rehab_safetysubmission", "log_id"),
)

FUNCTIONS_SQL = r"""
-- One id, one log: the first insert of an id claims it; a second insert of the same id
-- (a retry, a clash, whatever its date) inserts nothing. A row moved to another
-- partition by an edit of its date is a DELETE then an INSERT: the BEFORE DELETE trigger
-- releases the id just before the BEFORE INSERT trigger claims it again.
CREATE FUNCTION rehab_dailylog_id_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rehab_dailylogid (id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION rehab_dailylog_id_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM rehab_dailylogid WHERE id = OLD.id;
    RETURN OLD;
END
$$;

-- The partition of `month` (its first day or any day of it), created if missing. Rows
-- the default partition took for that month move into it. Returns true if created.
CREATE FUNCTION rehab_dailylog_partition_create(month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
SET lock_timeout = '5s' AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    next date := (date_trunc('month', month) + interval '1 month')::date;
    name text := 'rehab_dailylog_p' || to_char(month, 'YYYY_MM');
BEGIN
    IF first < date '2000-01-01' OR first > current_date + interval '3 years' THEN
        RAISE EXCEPTION 'no daily log partition that far from today';
    END IF;
    -- Two beats at once: the second waits here, then finds the partition made.
    PERFORM pg_advisory_xact_lock(hashtext('rehab_dailylog_partition_create'));
    -- A query, not to_regclass(): it sees what the other beat committed while we waited.
    IF EXISTS (SELECT FROM pg_class WHERE relname = name
               AND relnamespace = 'public'::regnamespace) THEN
        RETURN false;
    END IF;
    -- vacuum_truncate off: see the default partition below.
    EXECUTE format('CREATE TABLE %I (LIKE rehab_dailylog INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
                   ' WITH (vacuum_truncate = false)', name);
    -- Logs of that month the default partition holds move in (their ids are released by
    -- the trigger on the way out and claimed again below, in this same transaction).
    EXECUTE format(
        'WITH moved AS (DELETE FROM rehab_dailylog_default WHERE date >= %L AND date < %L'
        ' RETURNING *) INSERT INTO %I SELECT * FROM moved', first, next, name);
    -- ATTACH takes a lighter lock on the parent than CREATE ... PARTITION OF: inserts go
    -- on while it runs. It builds the indexes and clones the triggers and foreign keys.
    EXECUTE format(
        'ALTER TABLE rehab_dailylog ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        name, first, next);
    EXECUTE format(
        'INSERT INTO rehab_dailylogid (id) SELECT id FROM %I ON CONFLICT DO NOTHING', name);
    RETURN true;
END
$$;

-- The partitions of the previous month (a backfilled log, a patient a day ahead of UTC),
-- the current one and `months_ahead` more; returns how many it created. Idempotent.
CREATE FUNCTION rehab_dailylog_partitions_ensure(months_ahead integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    created integer := 0;
BEGIN
    IF months_ahead < 0 OR months_ahead > 24 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 24';
    END IF;
    FOR i IN -1..months_ahead LOOP
        IF rehab_dailylog_partition_create(
            (date_trunc('month', current_date) + make_interval(months => i))::date
        ) THEN
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

-- Only the roles granted it (the application role, patients/dbroles.py) may run DDL
-- through these.
REVOKE ALL ON FUNCTION rehab_dailylog_partition_create(date) FROM PUBLIC;
REVOKE ALL ON FUNCTION rehab_dailylog_partitions_ensure(integer) FROM PUBLIC;
"""


def _forward_sql() -> str:
    drop_fks = "\n".join(
        f"""
DO $$
DECLARE c text;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = '{table}'::regclass AND contype = 'f'
               AND confrelid = 'rehab_dailylog'::regclass LOOP
        EXECUTE format('ALTER TABLE {table} DROP CONSTRAINT %I', c);
    END LOOP;
END
$$;"""  # noqa: S608 - table names from this module
        for table, _ in REFERENCING
    )
    add_fks = "\n".join(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk_dailylog_id"
        f" FOREIGN KEY ({column}) REFERENCES rehab_dailylogid (id)"
        " DEFERRABLE INITIALLY DEFERRED;"
        for table, column in REFERENCING
    )
    return f"""
{drop_fks}

-- The old table steps aside, with its index-backed constraints' names.
ALTER TABLE rehab_dailylog RENAME TO rehab_dailylog_old;
ALTER TABLE rehab_dailylog_old RENAME CONSTRAINT rehab_dailylog_pkey TO rehab_dailylog_old_pkey;
ALTER TABLE rehab_dailylog_old RENAME CONSTRAINT dailylog_one_per_day TO dailylog_old_one_per_day;
ALTER INDEX dailylog_unevaluated RENAME TO dailylog_old_unevaluated;

-- Same columns, defaults, NOT NULLs and checks (named as Django names them).
CREATE TABLE rehab_dailylog (LIKE rehab_dailylog_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (date);
-- No partition's vacuum truncates its empty tail: that takes an ACCESS EXCLUSIVE lock,
-- which a replica replays, and a read replica's dashboards would wait on it while replay
-- lags. An edit moving a log to another month leaves such a tail far more often than an
-- update in place did.
CREATE TABLE rehab_dailylog_default PARTITION OF rehab_dailylog DEFAULT
    WITH (vacuum_truncate = false);
ALTER TABLE rehab_dailylog ADD CONSTRAINT rehab_dailylog_pkey PRIMARY KEY (id, date);
ALTER TABLE rehab_dailylog ADD CONSTRAINT dailylog_one_per_day UNIQUE (patient_id, date);
CREATE INDEX dailylog_unevaluated ON rehab_dailylog (updated_at)
    WHERE evaluated_at IS NULL AND evaluation_failed_at IS NULL;

CREATE TABLE rehab_dailylogid (id uuid PRIMARY KEY);

{FUNCTIONS_SQL}

-- A partition for every month the existing logs fall in, and the months ahead.
SELECT rehab_dailylog_partition_create(m::date)
FROM (SELECT DISTINCT date_trunc('month', date) AS m FROM rehab_dailylog_old) AS months
ORDER BY 1;
SELECT rehab_dailylog_partitions_ensure({AHEAD});

-- The rows move, their ids are claimed, and the triggers start with the next insert.
INSERT INTO rehab_dailylog SELECT * FROM rehab_dailylog_old;
INSERT INTO rehab_dailylogid (id) SELECT id FROM rehab_dailylog_old;
CREATE TRIGGER dailylog_id_claim BEFORE INSERT ON rehab_dailylog
    FOR EACH ROW EXECUTE FUNCTION rehab_dailylog_id_claim();
CREATE TRIGGER dailylog_id_release BEFORE DELETE ON rehab_dailylog
    FOR EACH ROW EXECUTE FUNCTION rehab_dailylog_id_release();

-- The patient's key, as Django named it on the old table.
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'rehab_dailylog_old'::regclass AND contype = 'f' LOOP
        EXECUTE format('ALTER TABLE rehab_dailylog_old DROP CONSTRAINT %I', c.conname);
        EXECUTE format('ALTER TABLE rehab_dailylog ADD CONSTRAINT %I FOREIGN KEY (patient_id)'
                       ' REFERENCES patients_patient (id) DEFERRABLE INITIALLY DEFERRED',
                       c.conname);
    END LOOP;
END
$$;

DROP TABLE rehab_dailylog_old;

{add_fks}
"""  # noqa: S608 - names from this module


def _reverse_sql() -> str:
    drop_fks = "\n".join(
        f"ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_fk_dailylog_id;"
        for table, column in REFERENCING
    )
    add_fks = "\n".join(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk_rehab_dailylog_id"
        f" FOREIGN KEY ({column}) REFERENCES rehab_dailylog (id) DEFERRABLE INITIALLY DEFERRED;"
        for table, column in REFERENCING
    )
    return f"""
{drop_fks}
ALTER TABLE rehab_dailylog RENAME TO rehab_dailylog_parted;
ALTER TABLE rehab_dailylog_parted RENAME CONSTRAINT rehab_dailylog_pkey TO rehab_dailylog_parted_pkey;
ALTER TABLE rehab_dailylog_parted RENAME CONSTRAINT dailylog_one_per_day TO dailylog_parted_one_per_day;
ALTER INDEX dailylog_unevaluated RENAME TO dailylog_parted_unevaluated;
CREATE TABLE rehab_dailylog (LIKE rehab_dailylog_parted INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
INSERT INTO rehab_dailylog SELECT * FROM rehab_dailylog_parted;
ALTER TABLE rehab_dailylog ADD CONSTRAINT rehab_dailylog_pkey PRIMARY KEY (id);
ALTER TABLE rehab_dailylog ADD CONSTRAINT dailylog_one_per_day UNIQUE (patient_id, date);
CREATE INDEX dailylog_unevaluated ON rehab_dailylog (updated_at)
    WHERE evaluated_at IS NULL AND evaluation_failed_at IS NULL;
ALTER TABLE rehab_dailylog ADD CONSTRAINT rehab_dailylog_patient_id_fk_patients_patient_id
    FOREIGN KEY (patient_id) REFERENCES patients_patient (id) DEFERRABLE INITIALLY DEFERRED;
DROP TABLE rehab_dailylog_parted CASCADE;
DROP FUNCTION rehab_dailylog_partitions_ensure(integer);
DROP FUNCTION rehab_dailylog_partition_create(date);
DROP FUNCTION rehab_dailylog_id_claim();
DROP FUNCTION rehab_dailylog_id_release();
DROP TABLE rehab_dailylogid;
{add_fks}
"""  # noqa: S608 - names from this module


def _log_fk(on_delete, related_name: str) -> models.ForeignKey:
    return models.ForeignKey(
        blank=True,
        db_constraint=False,
        null=True,
        on_delete=on_delete,
        related_name=related_name,
        to="rehab.dailylog",
    )


class Migration(migrations.Migration):
    dependencies = [("rehab", "0011_alertevent_follow_up")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL([_forward_sql()], [_reverse_sql()])],
            state_operations=[
                migrations.CreateModel(
                    name="DailyLogId",
                    fields=[("id", models.UUIDField(primary_key=True, serialize=False))],
                ),
                migrations.AlterField(
                    model_name="alert",
                    name="log",
                    field=_log_fk(django.db.models.deletion.SET_NULL, "alerts"),
                ),
                migrations.AlterField(
                    model_name="alertoccurrence",
                    name="log",
                    field=_log_fk(django.db.models.deletion.SET_NULL, "+"),
                ),
                migrations.AlterField(
                    model_name="safetysubmission",
                    name="log",
                    field=_log_fk(django.db.models.deletion.CASCADE, "submissions"),
                ),
                migrations.AlterField(
                    model_name="dailylogrevision",
                    name="log",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="revisions",
                        to="rehab.dailylog",
                    ),
                ),
            ],
        ),
    ]
