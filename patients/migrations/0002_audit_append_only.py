from __future__ import annotations

from django.db import migrations

# The audit trail must be trustworthy: refuse UPDATE and DELETE on it in the database
# itself, so that neither a bug nor someone with admin access can rewrite who saw what.
FORWARD = """
CREATE FUNCTION patients_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER patients_auditevent_append_only
    BEFORE UPDATE OR DELETE ON patients_auditevent
    FOR EACH ROW EXECUTE FUNCTION patients_auditevent_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS patients_auditevent_append_only ON patients_auditevent;
DROP FUNCTION IF EXISTS patients_auditevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("patients", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
