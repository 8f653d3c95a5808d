"""The bearer token's look-up as a PL/pgSQL function (docs/architecture.md § Statements
planned once per connection).

Every API request reads its token with the user and both role rows: one four-table query
whose planning cost PostgreSQL ~0.25 ms, five times its execution, on every request (it
was ~0.4 ms of the database's CPU per request, where a token and its user alone cost
~0.1). A PL/pgSQL function's statement is planned when first run and kept for the
connection, which a pooler in transaction mode does not disturb (no prepared statement
is sent). Each row comes back as the four tables' own row types, so the function follows
any column added to them; `patients.authentication` selects the ORM's columns out of
them, in the ORM's order.
"""

from django.db import migrations

FUNCTION = """
CREATE FUNCTION patients_token_roles(key varchar)
RETURNS TABLE(
    token_row patients_authtoken,
    user_row patients_user,
    clinician_row patients_clinician,
    patient_row patients_patient
)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN QUERY
    SELECT t, u, c, p
    FROM patients_authtoken AS t
    JOIN patients_user AS u ON u.id = t.user_id
    LEFT JOIN patients_clinician AS c ON c.user_id = u.id
    LEFT JOIN patients_patient AS p ON p.user_id = u.id
    WHERE t.token_key = key;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0011_patient_language"),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION patients_token_roles(varchar);"),
    ]
