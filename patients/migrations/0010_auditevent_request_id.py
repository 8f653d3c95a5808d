"""Each audit event records its request's id (config/audit.py, X-Request-ID), and the hash
chain covers it.

The id joins the chained content only when there is one, so events written before (and
events written outside a request) hash exactly as they did: `manage.py verify_audit`
still accepts the chains already written.
"""

from django.db import migrations, models

_COLUMNS = """
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
"""

WITH_REQUEST_ID = f"""
CREATE OR REPLACE FUNCTION patients_auditevent_chain_content(e patients_auditevent)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT (
        jsonb_build_object({_COLUMNS})
        || CASE WHEN coalesce(e.request_id, '') = '' THEN '{{}}'::jsonb
                ELSE jsonb_build_object('request_id', e.request_id) END
    )::text
$$;
"""

WITHOUT_REQUEST_ID = f"""
CREATE OR REPLACE FUNCTION patients_auditevent_chain_content(e patients_auditevent)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object({_COLUMNS})::text
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("patients", "0009_patient_restricted_at")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="request_id",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.RunSQL(WITH_REQUEST_ID, WITHOUT_REQUEST_ID),
    ]
