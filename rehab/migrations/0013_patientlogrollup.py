"""The per-patient log rollup (rehab.models.PatientLogRollup), kept by the database.

A row trigger on the daily log table recomputes the patient's rollup row from their logs
in the same statement as the write: the log POST's single INSERT statement (or any
insert, delete, or change of a log's patient, date or pain, from the ORM, a bulk update
or psql) keeps it, in the same transaction, with no round trip of its own. The worker's
evaluation updates other columns and fires nothing (the WHEN clause).

Concurrency (READ COMMITTED): the refresh locks the patient's rollup row first (creating
it if need be), then reads the logs in a later statement, hence with a snapshot taken
after the lock was granted: whoever held the lock before has committed, and their logs
are read. Two transactions writing logs of one patient queue on that row, and the last
to commit writes a row computed from every committed log. A patient who has no log left
has no row. Under the lock, the common write, a log dated after the patient's last one,
is added to the row with no read of the logs; a log after the baseline window and older
than the 7 kept ones changes nothing (a bulk load of a year costs a recomputation per
patient for its ends, not per log); anything else (a backfill into those, an edit, a
deletion) recomputes.

Row triggers, not statement triggers with transition tables: PostgreSQL refuses
transition tables on column-filtered (UPDATE OF) triggers, and a row moved between
partitions by an UPDATE fires row triggers (DELETE and INSERT on the partitions), not
the INSERT or DELETE statement triggers.

Written as a row trigger on the table by its name, so that it also serves a
declaratively partitioned log table: PostgreSQL clones a partitioned table's row
triggers onto every partition, present and future (a row moved between partitions fires
the DELETE and INSERT triggers, which recompute the same patient).

Constants, as this migration wrote them: baseline window 7 days from the first log
(rehab.progress.BASELINE_DAYS), the 7 latest logs (ROLLUP_RECENT_LOGS); the tests hold
the rollup to rehab.progress, so a change there fails them until a migration follows.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models

REFRESH = """
CREATE FUNCTION rehab_log_rollup_refresh(p uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- The patient's lock: their rollup row, created if absent (ON CONFLICT waits for a
    -- concurrent inserter and then locks the row it committed).
    PERFORM 1 FROM rehab_patientlogrollup WHERE patient_id = p FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rehab_patientlogrollup AS r (
            patient_id, first_log_date, last_log_date, latest_pain, baseline_sum,
            baseline_n, recent_dates, recent_pain_sums
        ) VALUES (p, 'epoch', 'epoch', 0, 0, 0, '{}', '{}')
        ON CONFLICT (patient_id) DO UPDATE SET patient_id = r.patient_id;
    END IF;
    -- A new statement, a new snapshot: every log committed before the lock is seen.
    UPDATE rehab_patientlogrollup AS r SET
        first_log_date = b.first_date,
        last_log_date = l.dates[cardinality(l.dates)],
        latest_pain = l.latest_pain,
        baseline_sum = b.total,
        baseline_n = b.n,
        recent_dates = l.dates,
        recent_pain_sums = '{0}' || l.sums
    FROM (
        -- The 7 latest logs, oldest first, and their running pain totals.
        SELECT array_agg(d.date ORDER BY d.date) AS dates,
               array_agg(d.running ORDER BY d.date) AS sums,
               (array_agg(d.pain ORDER BY d.date DESC))[1] AS latest_pain
        FROM (
            SELECT date, pain, sum(pain) OVER (ORDER BY date) AS running FROM (
                SELECT date, pain FROM rehab_dailylog
                WHERE patient_id = p ORDER BY date DESC LIMIT 7
            ) AS k
        ) AS d
    ) AS l, (
        -- The baseline window has at most 7 dates: the 7 earliest logs hold it.
        SELECT min(f.first_date) AS first_date, sum(f.pain) AS total, count(*) AS n
        FROM (
            SELECT date, pain, min(date) OVER () AS first_date FROM (
                SELECT date, pain FROM rehab_dailylog
                WHERE patient_id = p ORDER BY date ASC LIMIT 7
            ) AS e
        ) AS f
        WHERE f.date <= f.first_date + 6
    ) AS b
    WHERE r.patient_id = p AND l.dates IS NOT NULL;
    IF NOT FOUND THEN
        DELETE FROM rehab_patientlogrollup WHERE patient_id = p;
    END IF;
END
$$;

CREATE FUNCTION rehab_dailylog_rollup() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r rehab_patientlogrollup%ROWTYPE;
    p uuid;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.patient_id <> OLD.patient_id THEN
        PERFORM rehab_log_rollup_refresh(OLD.patient_id);
        PERFORM rehab_log_rollup_refresh(NEW.patient_id);
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        p := NEW.patient_id;
        -- The common write, the patient's newest log, is added to the row in one UPDATE
        -- that reads no log. Correct under concurrency as a counter's increment is: it
        -- waits for the row's lock, then re-checks its WHERE and computes its SET from
        -- the latest committed version. The running totals keep their base (only
        -- differences are read): the oldest kept log's leaves with the first element.
        UPDATE rehab_patientlogrollup SET
            last_log_date = NEW.date,
            latest_pain = NEW.pain,
            baseline_sum = baseline_sum
                + CASE WHEN NEW.date <= first_log_date + 6 THEN NEW.pain ELSE 0 END,
            baseline_n = baseline_n
                + CASE WHEN NEW.date <= first_log_date + 6 THEN 1 ELSE 0 END,
            recent_dates
                = (recent_dates || NEW.date)[greatest(1, cardinality(recent_dates) - 5):],
            recent_pain_sums = (
                recent_pain_sums
                || (recent_pain_sums[cardinality(recent_pain_sums)] + NEW.pain)
            )[greatest(1, cardinality(recent_dates) - 5):]
        WHERE patient_id = p AND last_log_date < NEW.date;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        p := OLD.patient_id;
    ELSE
        p := NEW.patient_id;
    END IF;
    -- The patient's lock; the row read is the latest committed version (READ COMMITTED
    -- re-reads a row it waited for), so what is decided below is decided on it.
    SELECT * INTO r FROM rehab_patientlogrollup WHERE patient_id = p FOR UPDATE;
    IF FOUND THEN
        -- A log after the baseline window and before the 7 kept ones changes nothing the
        -- row holds, whether it comes, goes or changes pain (a bulk load of a year, a
        -- deletion of old logs): nothing to do.
        IF cardinality(r.recent_dates) = 7
            AND (TG_OP = 'INSERT'
                OR (OLD.date > r.first_log_date + 6 AND OLD.date < r.recent_dates[1]))
            AND (TG_OP = 'DELETE'
                OR (NEW.date > r.first_log_date + 6 AND NEW.date < r.recent_dates[1]))
        THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM rehab_log_rollup_refresh(p);
    RETURN NULL;
END
$$;

CREATE TRIGGER rehab_dailylog_rollup_write
    AFTER INSERT OR DELETE ON rehab_dailylog
    FOR EACH ROW EXECUTE FUNCTION rehab_dailylog_rollup();

CREATE TRIGGER rehab_dailylog_rollup_edit
    AFTER UPDATE OF patient_id, date, pain ON rehab_dailylog
    FOR EACH ROW
    WHEN (
        OLD.patient_id IS DISTINCT FROM NEW.patient_id
        OR OLD.date IS DISTINCT FROM NEW.date
        OR OLD.pain IS DISTINCT FROM NEW.pain
    )
    EXECUTE FUNCTION rehab_dailylog_rollup();

-- The patients who already logged.
SELECT rehab_log_rollup_refresh(p.patient_id)
FROM (SELECT DISTINCT patient_id FROM rehab_dailylog) AS p;
"""

DROP = """
DROP TRIGGER rehab_dailylog_rollup_edit ON rehab_dailylog;
DROP TRIGGER rehab_dailylog_rollup_write ON rehab_dailylog;
DROP FUNCTION rehab_dailylog_rollup();
DROP FUNCTION rehab_log_rollup_refresh(uuid);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0011_patient_language"),
        ("rehab", "0012_dailylog_partitioned"),
    ]

    operations = [
        migrations.CreateModel(
            name="PatientLogRollup",
            fields=[
                (
                    "patient",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="log_rollup",
                        serialize=False,
                        to="patients.patient",
                    ),
                ),
                ("first_log_date", models.DateField()),
                ("last_log_date", models.DateField()),
                ("latest_pain", models.PositiveSmallIntegerField()),
                ("baseline_sum", models.PositiveIntegerField()),
                ("baseline_n", models.PositiveSmallIntegerField()),
                (
                    "recent_dates",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.DateField(), size=None
                    ),
                ),
                (
                    "recent_pain_sums",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.PositiveIntegerField(), size=None
                    ),
                ),
            ],
            options={
                "default_permissions": ("view",),
            },
        ),
        migrations.RunSQL(REFRESH, DROP),
    ]
