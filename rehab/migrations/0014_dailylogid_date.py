"""Keep each daily log's `date` beside its id in `rehab_dailylogid`, so that a read of a
log by id finds its month first (one probe of the ids' primary key) and then reads that
month's partition alone, planned over one partition instead of all of them
(docs/clinical-record.md § Where the daily logs are stored; `DailyLogQuerySet.by_id`).

Who writes the date: the same triggers that keep the ids.
- The claim (BEFORE INSERT) writes the log's date with its id.
- An edit of a log's date within its month is an UPDATE in place: a new AFTER UPDATE
  trigger, fired only when the date changed (its WHEN clause, checked without calling
  PL/pgSQL, so the worker's evaluation updates pay nothing), writes the new date.
- An edit moving a log to another month is, in PostgreSQL, a DELETE from the old
  partition then an INSERT into the new one (BEFORE UPDATE, BEFORE DELETE, BEFORE
  INSERT triggers fire; AFTER UPDATE does not): the release and the claim, as before,
  and the claim writes the new date.
- `rehab_dailylog_partition_create` moves a month's logs out of the default partition
  into a table it then attaches, without triggers: its own re-claim now copies the dates.

Not atomic, on purpose (docs/clinical-record.md § Migration 0014 on a large table): each
step commits on its own, so no lock is held longer than its step.
1. One short transaction: the column (nullable, no default: a catalogue change, no
   rewrite; ACCESS EXCLUSIVE on the ids' table for an instant), the trigger functions,
   the new trigger (SHARE ROW EXCLUSIVE on the log table for an instant). From its
   commit every write keeps the date, whatever runs next. `lock_timeout` makes it fail,
   not queue the log POSTs behind it, if a long transaction holds the tables.
2. The fill, set-based, one UPDATE ... FROM per partition, each its own transaction:
   it only row-locks the ids of that month's logs for the few seconds its statement
   takes (an insert of a new log is never blocked; deleting or re-dating a log of that
   month waits for it), and never touches an id whose date is already set.
3. Claims left by no log (a crash between a refused POST and its release) have no date
   to be given: they are released, as `log_id_release_unused` would.
4. NOT NULL, without a long ACCESS EXCLUSIVE lock: a CHECK added NOT VALID, validated
   (a scan under SHARE UPDATE EXCLUSIVE: writes go on), then SET NOT NULL, which uses the
   valid CHECK instead of scanning again, and the CHECK dropped.
A step that fails (its lock_timeout) leaves the migration unrecorded and the steps
before it done: every step may be run again, so `migrate` is simply run again.
"""

from __future__ import annotations

import importlib

from django.db import migrations, models, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

FUNCTIONS_SQL = r"""
-- Every step may be run again (a step that failed on its lock_timeout, `migrate` rerun).
ALTER TABLE rehab_dailylogid ADD COLUMN IF NOT EXISTS date date;

-- One id, one log (migration 0012), and now the log's date beside its id.
CREATE OR REPLACE FUNCTION rehab_dailylog_id_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rehab_dailylogid (id, date) VALUES (NEW.id, NEW.date) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

-- A log re-dated within its month (an UPDATE in place; a move to another month is a
-- release and a claim instead).
CREATE OR REPLACE FUNCTION rehab_dailylog_id_redate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rehab_dailylogid SET date = NEW.date WHERE id = NEW.id;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS dailylog_id_redate ON rehab_dailylog;
CREATE TRIGGER dailylog_id_redate AFTER UPDATE OF date ON rehab_dailylog
    FOR EACH ROW WHEN (OLD.date IS DISTINCT FROM NEW.date)
    EXECUTE FUNCTION rehab_dailylog_id_redate();

-- As in migration 0012, but the logs moved in from the default partition are claimed
-- again with their dates.
CREATE OR REPLACE FUNCTION rehab_dailylog_partition_create(month date) RETURNS boolean
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
    PERFORM pg_advisory_xact_lock(hashtext('rehab_dailylog_partition_create'));
    IF EXISTS (SELECT FROM pg_class WHERE relname = name
               AND relnamespace = 'public'::regnamespace) THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE rehab_dailylog INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
                   ' WITH (vacuum_truncate = false)', name);
    EXECUTE format(
        'WITH moved AS (DELETE FROM rehab_dailylog_default WHERE date >= %L AND date < %L'
        ' RETURNING *) INSERT INTO %I SELECT * FROM moved', first, next, name);
    EXECUTE format(
        'ALTER TABLE rehab_dailylog ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        name, first, next);
    EXECUTE format(
        'INSERT INTO rehab_dailylogid (id, date) SELECT id, date FROM %I ON CONFLICT DO NOTHING',
        name);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION rehab_dailylog_partition_create(date) FROM PUBLIC;
"""

STALE_CLAIMS_SQL = r"""
-- Claims held by no log have no date to take: released (nothing references them, or
-- the log they named could not have been deleted).
DELETE FROM rehab_dailylogid k WHERE k.date IS NULL
    AND NOT EXISTS (SELECT FROM rehab_dailylog l WHERE l.id = k.id)
"""

NOT_NULL_SQL = (
    "ALTER TABLE rehab_dailylogid DROP CONSTRAINT IF EXISTS dailylogid_date_not_null;"
    " ALTER TABLE rehab_dailylogid ADD CONSTRAINT dailylogid_date_not_null"
    " CHECK (date IS NOT NULL) NOT VALID",
    "ALTER TABLE rehab_dailylogid VALIDATE CONSTRAINT dailylogid_date_not_null",
    "ALTER TABLE rehab_dailylogid ALTER COLUMN date SET NOT NULL",
    "ALTER TABLE rehab_dailylogid DROP CONSTRAINT dailylogid_date_not_null",
)


def _in_transaction(
    schema_editor: BaseDatabaseSchemaEditor, sql: str, *, lock_timeout: bool = True
) -> None:
    """One step of the migration, committed on its own."""
    connection = schema_editor.connection
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if lock_timeout:
            # A long transaction holding the table makes the step fail, rather than
            # queue every log write behind its lock request.
            cursor.execute("SET LOCAL lock_timeout = '5s'")
        cursor.execute(sql)


def _functions(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _in_transaction(schema_editor, FUNCTIONS_SQL)


def _functions_reverse(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _in_transaction(schema_editor, _reverse_sql())


def _fill_dates(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Each partition's ids get their logs' dates, one statement and one transaction a
    partition (the migration is not atomic: see the module's docstring)."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relid::regclass::text FROM pg_partition_tree('rehab_dailylog')"
            " WHERE isleaf ORDER BY 1"
        )
        partitions = [row[0] for row in cursor.fetchall()]
    for partition in partitions:
        _in_transaction(
            schema_editor,
            f"UPDATE rehab_dailylogid k SET date = p.date FROM {partition} p"  # noqa: S608 - a partition's name from the catalogue
            " WHERE k.id = p.id AND k.date IS NULL",
            lock_timeout=False,
        )


def _not_null(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _in_transaction(schema_editor, STALE_CLAIMS_SQL, lock_timeout=False)
    add, validate, set_not_null, drop = NOT_NULL_SQL
    _in_transaction(schema_editor, add)
    # A scan under SHARE UPDATE EXCLUSIVE: the log writes go on meanwhile.
    _in_transaction(schema_editor, validate, lock_timeout=False)
    # Uses the valid CHECK instead of a scan: ACCESS EXCLUSIVE for an instant.
    _in_transaction(schema_editor, f"{set_not_null}; {drop}")


def _not_null_reverse(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _in_transaction(schema_editor, "ALTER TABLE rehab_dailylogid ALTER COLUMN date DROP NOT NULL")


def _reverse_sql() -> str:
    # Migration 0012's functions as they were (CREATE OR REPLACE keeps the owner and grants).
    before = importlib.import_module("rehab.migrations.0012_dailylog_partitioned")
    functions = before.FUNCTIONS_SQL.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    return f"""
DROP TRIGGER dailylog_id_redate ON rehab_dailylog;
DROP FUNCTION rehab_dailylog_id_redate();
{functions}
ALTER TABLE rehab_dailylogid DROP COLUMN date;
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("rehab", "0013_patientlogrollup")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(_functions, _functions_reverse),
                migrations.RunPython(_fill_dates, migrations.RunPython.noop),
                migrations.RunPython(_not_null, _not_null_reverse),
            ],
            state_operations=[
                migrations.AddField(
                    model_name="dailylogid",
                    name="date",
                    field=models.DateField(),
                    preserve_default=False,
                ),
            ],
        ),
    ]
