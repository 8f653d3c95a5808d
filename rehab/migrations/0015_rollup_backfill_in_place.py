"""The rollup trigger adds a backfilled log to the patient's rollup row in place.

Until this migration a new log that was not the patient's newest (a backfill) made the
trigger recompute the row from the patient's logs (rehab_log_rollup_refresh: two reads of
the 7 earliest and 7 latest logs, each a probe of every monthly partition). A log between
the patient's first and last ones changes neither of those nor the latest pain; what it
changes, the baseline sum and count and the 7 kept dates with their running pain totals,
follows from the row itself: the kept pains are the differences of the running totals.
Only the function's body changes (the triggers, the refresh function and the rollup's
definitions stay as rehab/migrations/0013_patientlogrollup.py wrote them); the property
tests (tests/rehab/test_log_rollup.py) hold the row to its definitions after any writes.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION rehab_dailylog_rollup() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r rehab_patientlogrollup%ROWTYPE;
    p uuid;
    n integer;
    k integer;
    dates date[];
    sums integer[];
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
        -- A new log between the patient's first and last ones and among the 7 latest (a
        -- backfill: the phone's queue after days offline, a forgotten day) leaves the
        -- first and last logs and the latest pain as they are: it joins the kept logs
        -- (the oldest of 7 leaves) and, if inside its window, the baseline. The kept
        -- pains are the differences of the running totals, so the row is updated from
        -- itself, reading no log (a recomputation reads the patient's logs in every
        -- partition, twice). Only a row that certainly lacks the log: its date is not
        -- kept, yet it would be (a row computed by an earlier trigger of the same
        -- statement, a bulk insert or a move between partitions, may hold it already).
        n := cardinality(r.recent_dates);
        IF TG_OP = 'INSERT' AND NEW.date > r.first_log_date AND NEW.date < r.last_log_date
            AND (n < 7 OR NEW.date > r.recent_dates[1])
            AND NOT NEW.date = ANY (r.recent_dates)
        THEN
            -- k kept logs come before the new one; the totals from its place on (the new
            -- log's own, then every later one's) grow by its pain.
            k := (SELECT count(*) FROM unnest(r.recent_dates) AS d WHERE d < NEW.date);
            dates := r.recent_dates[1:k] || NEW.date || r.recent_dates[k + 1:n];
            sums := r.recent_pain_sums[1:k + 1] || ARRAY(
                SELECT u.s + NEW.pain
                FROM unnest(r.recent_pain_sums[k + 1:n + 1]) WITH ORDINALITY AS u(s, i)
                ORDER BY u.i
            );
            IF n = 7 THEN
                -- The oldest kept log leaves; its total is the new base.
                dates := dates[2:8];
                sums := sums[2:9];
            END IF;
            UPDATE rehab_patientlogrollup SET
                baseline_sum = baseline_sum
                    + CASE WHEN NEW.date <= first_log_date + 6 THEN NEW.pain ELSE 0 END,
                baseline_n = baseline_n
                    + CASE WHEN NEW.date <= first_log_date + 6 THEN 1 ELSE 0 END,
                recent_dates = dates,
                recent_pain_sums = sums
            WHERE patient_id = p;
            RETURN NULL;
        END IF;
    END IF;
    PERFORM rehab_log_rollup_refresh(p);
    RETURN NULL;
END
$$;
"""

# The function as 0013 wrote it.
PREVIOUS = """
CREATE OR REPLACE FUNCTION rehab_dailylog_rollup() RETURNS trigger
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
"""


class Migration(migrations.Migration):
    dependencies = [("rehab", "0014_dailylogid_date")]

    operations = [migrations.RunSQL(FUNCTION, PREVIOUS)]
