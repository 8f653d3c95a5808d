"""Hash chains over the audit trail (docs/security.md § Database roles and audit trail).

The insert trigger puts each event in one of CHAINS chains (by the inserting backend's
pid, so one connection's events share a chain), numbers it there and stores
sha256(previous hash || content), under a transaction-scoped advisory lock on that chain:
concurrent inserts form one chain per key in commit order. One chain for all would hold
a single lock across every auditing transaction's commit (its WAL flush), and writes
would commit one at a time. Existing events go to chain 0 in id order, as the owner (the
append-only trigger is set aside for that one statement).
"""

from django.db import migrations, models

# The content an event's hash covers, column by column: a column added later does not
# change the hashes of the events already chained. Timestamps are written in UTC, whatever
# the session's time zone.
CONTENT = """
CREATE FUNCTION patients_auditevent_chain_content(e patients_auditevent) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', e.id,
        'at', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        'actor_id', e.actor_id,
        'actor_email', e.actor_email,
        'patient_id', e.patient_id,
        'action', e.action,
        'object_type', e.object_type,
        'object_id', e.object_id,
        'changes', e.changes,
        'method', e.method,
        'path', e.path,
        'ip', host(e.ip),
        'user_agent', e.user_agent
    )::text
$$;

CREATE FUNCTION patients_auditevent_chain_hash(prev text, e patients_auditevent) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(coalesce(prev, '') || patients_auditevent_chain_content(e), 'UTF8')), 'hex')
$$;
"""

BACKFILL = """
ALTER TABLE patients_auditevent DISABLE TRIGGER patients_auditevent_append_only;
DO $$
DECLARE
    e patients_auditevent;
    n bigint := 0;
    prev text := NULL;
BEGIN
    FOR e IN SELECT * FROM patients_auditevent ORDER BY id LOOP
        n := n + 1;
        prev := patients_auditevent_chain_hash(prev, e);
        UPDATE patients_auditevent SET chain_key = 0, chain_seq = n, chain_hash = prev
            WHERE id = e.id;
    END LOOP;
END $$;
ALTER TABLE patients_auditevent ENABLE TRIGGER patients_auditevent_append_only;
"""

# The advisory lock is held until the inserting transaction ends, so the next insert into
# the same chain reads a committed predecessor: no forks. Its first key is this
# migration's own constant; 16 chains (patients.models.AuditEvent.CHAINS).
TRIGGER = """
CREATE FUNCTION patients_auditevent_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    key smallint := pg_backend_pid() % 16;
    prev_seq bigint;
    prev_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock(731510041, key);
    SELECT chain_seq, chain_hash INTO prev_seq, prev_hash FROM patients_auditevent
        WHERE chain_key = key AND chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1;
    NEW.chain_key := key;
    NEW.chain_seq := coalesce(prev_seq, 0) + 1;
    NEW.chain_hash := patients_auditevent_chain_hash(prev_hash, NEW);
    RETURN NEW;
END;
$$;

CREATE TRIGGER patients_auditevent_chain
    BEFORE INSERT ON patients_auditevent
    FOR EACH ROW EXECUTE FUNCTION patients_auditevent_chain();
"""

DROP = """
DROP TRIGGER IF EXISTS patients_auditevent_chain ON patients_auditevent;
DROP FUNCTION IF EXISTS patients_auditevent_chain();
DROP FUNCTION IF EXISTS patients_auditevent_chain_hash(text, patients_auditevent);
DROP FUNCTION IF EXISTS patients_auditevent_chain_content(patients_auditevent);
"""


class Migration(migrations.Migration):
    dependencies = [("patients", "0005_drop_redundant_patient_index")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="chain_key",
            field=models.SmallIntegerField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="chain_seq",
            field=models.BigIntegerField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="chain_hash",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                fields=("chain_key", "chain_seq"), name="auditevent_chain_position"
            ),
        ),
        migrations.RunSQL(CONTENT + BACKFILL + TRIGGER, DROP),
        # Failed sign-ins and denied requests are audited too (docs/security.md).
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("read", "Read"),
                    ("create", "Create"),
                    ("update", "Update"),
                    ("delete", "Delete"),
                    ("login", "Sign-in"),
                    ("logout", "Sign-out"),
                    ("login_fail", "Failed sign-in"),
                    ("denied", "Denied"),
                ],
                max_length=10,
            ),
        ),
    ]
