"""The caseload's sort keys that do not move with time, kept by the database; and the
log-window fallback as functions (docs/architecture.md § The caseload rollup).

- `rehab.models.PatientAlertTriage`: per patient with an open alert, the most urgent one's
  tier and since when it has waited, and the open counts per severity. A row trigger on
  the alert table recomputes the patient's row in the same statement as any insert,
  deletion, or change of an alert's patient, status, severity or opening, as
  0013's trigger keeps the log rollup: the refresh locks the patient's row first
  (creating it if need be), then reads the alerts in a later statement, hence with a
  snapshot taken after the lock was granted, so two transactions changing one patient's
  alerts queue on that row and the last to commit writes a row computed from every
  committed alert. A patient with no open alert has no row. Filled here for the alerts
  already open.
- `rehab_log_window_count` / `rehab_log_window_pain`: the logs of one patient dated in a
  span, counted and their pains summed, for the rare rows whose rollup may not hold a
  window (rehab.selectors.logs.window). Written in the caseload's SQL as subqueries over
  the partitioned log table, they cost PostgreSQL the planning of every partition's scan
  for every mention, on every request (most of a 500-patient caseload's database time)
  though almost no row ever runs them; a PL/pgSQL function's statement is planned when
  first run, once per connection.

Constants, as this migration wrote them: the severity ranks emergency 0, urgent 1,
routine 2 (rehab.models.alerts.SEVERITY_RANK), 3 for anything else; the tests hold the
table to the alerts, so a change there fails them until a migration follows.
"""

import django.db.models.deletion
from django.db import migrations, models

FUNCTIONS = """
CREATE FUNCTION rehab_log_window_count(p uuid, first_day date, last_day date)
RETURNS integer LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT count(*) FROM rehab_dailylog
        WHERE patient_id = p AND date >= first_day AND date <= last_day
    );
END
$$;

CREATE FUNCTION rehab_log_window_pain(p uuid, first_day date, last_day date)
RETURNS integer LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT coalesce(sum(pain), 0) FROM rehab_dailylog
        WHERE patient_id = p AND date >= first_day AND date <= last_day
    );
END
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION rehab_log_window_pain(uuid, date, date);
DROP FUNCTION rehab_log_window_count(uuid, date, date);
"""

TRIAGE = """
CREATE FUNCTION rehab_alert_triage_refresh(p uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- The patient's lock: their triage row, created if absent (ON CONFLICT waits for a
    -- concurrent inserter and then locks the row it committed).
    PERFORM 1 FROM rehab_patientalerttriage WHERE patient_id = p FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rehab_patientalerttriage AS t (
            patient_id, tier, since, open_emergency, open_urgent, open_routine
        ) VALUES (p, 3, 'epoch', 0, 0, 0)
        ON CONFLICT (patient_id) DO UPDATE SET patient_id = t.patient_id;
    END IF;
    -- A new statement, a new snapshot: every alert committed before the lock is seen.
    UPDATE rehab_patientalerttriage AS t SET
        tier = a.tier,
        since = a.since,
        open_emergency = a.emergency,
        open_urgent = a.urgent,
        open_routine = a.routine
    FROM (
        SELECT (array_agg(o.rank ORDER BY o.rank, o.opened_at))[1] AS tier,
               (array_agg(o.opened_at ORDER BY o.rank, o.opened_at))[1] AS since,
               count(*) FILTER (WHERE o.severity = 'emergency') AS emergency,
               count(*) FILTER (WHERE o.severity = 'urgent') AS urgent,
               count(*) FILTER (WHERE o.severity = 'routine') AS routine
        FROM (
            SELECT severity, opened_at,
                   CASE severity WHEN 'emergency' THEN 0 WHEN 'urgent' THEN 1
                       WHEN 'routine' THEN 2 ELSE 3 END AS rank
            FROM rehab_alert WHERE patient_id = p AND status = 'open'
        ) AS o
    ) AS a
    WHERE t.patient_id = p AND a.tier IS NOT NULL;
    IF NOT FOUND THEN
        DELETE FROM rehab_patientalerttriage WHERE patient_id = p;
    END IF;
END
$$;

CREATE FUNCTION rehab_alert_triage() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only open alerts count: an alert that was not open and is not open now (written
    -- acknowledged, a resolved one deleted with its patient) changes nothing.
    IF TG_OP <> 'INSERT' AND OLD.status = 'open' THEN
        PERFORM rehab_alert_triage_refresh(OLD.patient_id);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'open' AND (
        TG_OP = 'INSERT' OR OLD.status <> 'open' OR NEW.patient_id <> OLD.patient_id
    ) THEN
        PERFORM rehab_alert_triage_refresh(NEW.patient_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER rehab_alert_triage_write
    AFTER INSERT OR DELETE ON rehab_alert
    FOR EACH ROW EXECUTE FUNCTION rehab_alert_triage();

CREATE TRIGGER rehab_alert_triage_edit
    AFTER UPDATE OF patient_id, status, severity, opened_at ON rehab_alert
    FOR EACH ROW
    WHEN (
        OLD.patient_id IS DISTINCT FROM NEW.patient_id
        OR OLD.status IS DISTINCT FROM NEW.status
        OR OLD.severity IS DISTINCT FROM NEW.severity
        OR OLD.opened_at IS DISTINCT FROM NEW.opened_at
    )
    EXECUTE FUNCTION rehab_alert_triage();

-- The patients with an open alert already.
SELECT rehab_alert_triage_refresh(p.patient_id)
FROM (SELECT DISTINCT patient_id FROM rehab_alert WHERE status = 'open') AS p;
"""

DROP_TRIAGE = """
DROP TRIGGER rehab_alert_triage_edit ON rehab_alert;
DROP TRIGGER rehab_alert_triage_write ON rehab_alert;
DROP FUNCTION rehab_alert_triage();
DROP FUNCTION rehab_alert_triage_refresh(uuid);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0011_patient_language"),
        ("rehab", "0015_rollup_backfill_in_place"),
    ]

    operations = [
        migrations.CreateModel(
            name="PatientAlertTriage",
            fields=[
                (
                    "patient",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="alert_triage",
                        serialize=False,
                        to="patients.patient",
                    ),
                ),
                ("tier", models.PositiveSmallIntegerField()),
                ("since", models.DateTimeField()),
                ("open_emergency", models.PositiveIntegerField()),
                ("open_urgent", models.PositiveIntegerField()),
                ("open_routine", models.PositiveIntegerField()),
            ],
            options={
                "default_permissions": ("view",),
            },
        ),
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        migrations.RunSQL(TRIAGE, DROP_TRIAGE),
    ]
