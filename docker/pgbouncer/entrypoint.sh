#!/bin/sh
# The application role's password from the environment into PgBouncer's auth file.
set -eu
umask 077
printf '"%s" "%s"\n' "rehab_app" "${POSTGRES_APP_PASSWORD:?}" > /tmp/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
