#!/bin/sh
# Run by the postgres image on its first start (an empty data volume): the role the
# application connects as. It owns nothing; `manage.py migrate`, run as the owner, grants
# it what it needs (docs/security.md § Database roles and audit trail).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v app_password="$POSTGRES_APP_PASSWORD" <<'SQL'
CREATE ROLE rehab_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
SQL
