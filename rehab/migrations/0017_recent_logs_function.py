"""The earlier logs a log POST reads for its safety evaluation, as a PL/pgSQL function
(docs/safety-path.md § Decided in the request).

The request reads a patient's six latest logs before the new log's date, within the
31 days before it. As a statement over the partitioned log table, PostgreSQL planned it
afresh on every POST (~0.15-0.25 ms of its CPU, for an execution of ~0.02); a PL/pgSQL
function's statement is planned when first run and kept for the connection, which a
pooler in transaction mode does not disturb. The columns are `rehab.safety.EarlierLog`'s
(tests/rehab/test_safety_record_needs.py holds that list).
"""

from django.db import migrations

FUNCTION = """
CREATE FUNCTION rehab_recent_logs(p uuid, before date, since date, n integer)
RETURNS TABLE(log_date date, log_back_pain smallint, log_sleep varchar)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN QUERY
    SELECT l.date, l.back_pain, l.sleep FROM rehab_dailylog AS l
    WHERE l.patient_id = p AND l.date < before AND l.date >= since
    ORDER BY l.date DESC
    LIMIT n;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("rehab", "0016_caseload_sort_keys"),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION rehab_recent_logs(uuid, date, date, integer);"),
    ]
