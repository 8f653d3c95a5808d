"""The database roles and the audit trail's hash chain (docs/security.md § Database roles
and audit trail).

The owner role (DATABASE_MIGRATE_URL) owns every table and runs the migrations; the
application role (DATABASE_URL) reads and writes rows and nothing more. Privileges are
granted here, after each `migrate`, on every table and as default privileges, so a table
a later migration creates is covered too. The audit table is the exception: the
application may read and append to it, never change, delete or truncate it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections

from config.db import table
from patients.models import AuditEvent

PARTITION_FUNCTIONS = (
    "rehab_dailylog_partitions_ensure(integer)",
    "rehab_dailylog_partition_create(date)",
)


class RoleError(Exception):
    """The roles are not set up so that the application role is least-privileged."""


def app_role_grant(*, role: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Grant `role` what the running service needs, as the owner (the connection's user).

    Idempotent: `manage.py migrate` runs it after every migration run.
    """
    connection = connections[using]
    quoted = connection.ops.quote_name(role)
    audit = table(AuditEvent)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (owner,) = cursor.fetchone()
        if owner == role:
            raise RoleError(f"the migrations ran as {role}, the application role itself")
        cursor.execute(
            "SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND pg_get_userbyid(c.relowner) = %s",
            [role],
        )
        (owned,) = cursor.fetchone()
        if owned:
            # An owner may ALTER, TRUNCATE and DISABLE TRIGGER whatever it was granted.
            raise RoleError(
                f"the application role {role} owns {owned}: "
                f"ALTER ... OWNER TO {owner} (as a superuser) first"
            )
        for statement in (
            # Only the owner creates objects (PostgreSQL 15+ already refuses PUBLIC).
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            f"GRANT USAGE ON SCHEMA public TO {quoted}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}",
            f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {quoted}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
            f"REVOKE UPDATE, DELETE ON {audit} FROM {quoted}",
            # Tables and sequences the owner creates later get the same grants.
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public"
            f" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public"
            f" GRANT USAGE, SELECT ON SEQUENCES TO {quoted}",
        ):
            cursor.execute(statement)
        # The daily log partitions' functions (rehab migration 0012): the only DDL the
        # application may cause, a month's partition of that one table, made by the owner.
        for function in PARTITION_FUNCTIONS:
            cursor.execute("SELECT to_regprocedure(%s)", [function])
            if cursor.fetchone()[0] is not None:
                cursor.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {quoted}")


@dataclass(frozen=True)
class ChainBreak:
    """An audit event whose link to its predecessor does not hold."""

    id: int
    chain_key: int | None
    chain_seq: int | None
    problem: str


@dataclass(frozen=True)
class ChainHead:
    """The last event of one chain: recorded outside the database, it is an anchor."""

    key: int
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.key}:{self.seq}:{self.hash}"


@dataclass(frozen=True)
class ChainReport:
    events: int
    heads: list[ChainHead]
    breaks: list[ChainBreak]


# Each event's link, checked against the stored predecessor in its chain in one pass: an
# edited event fails its own hash, a deleted one leaves a gap in the numbering (and its
# successor's hash fails), reordered ones fail their hashes. Events outside the chains (a
# trigger disabled by a superuser) have no number.
_VERIFY_SQL = """
WITH links AS (
    SELECT e.id, e.chain_key, e.chain_seq, e.chain_hash,
           lag(e.chain_seq) OVER w AS prev_seq,
           patients_auditevent_chain_hash(lag(e.chain_hash) OVER w, e) AS expected
    FROM {audit} e
    WINDOW w AS (PARTITION BY e.chain_key ORDER BY e.chain_seq NULLS LAST, e.id)
)
SELECT id, chain_key, chain_seq,
       CASE
           WHEN chain_seq IS NULL OR chain_key IS NULL THEN 'not in the chain'
           WHEN chain_seq <> coalesce(prev_seq, 0) + 1 THEN
               'events ' || coalesce(prev_seq, 0) + 1 || ' to ' || chain_seq - 1 || ' are missing'
           ELSE 'hash does not match its content and predecessor'
       END
FROM links
WHERE chain_seq IS NULL OR chain_key IS NULL OR chain_seq <> coalesce(prev_seq, 0) + 1
   OR chain_hash IS DISTINCT FROM expected
ORDER BY chain_key NULLS LAST, chain_seq NULLS LAST, id
LIMIT %s
"""


def audit_chain_verify(*, limit: int = 50, using: str = DEFAULT_DB_ALIAS) -> ChainReport:
    """Recompute the audit trail's hash chains in the database; list the first breaks."""
    connection = connections[using]
    audit = table(AuditEvent)
    with connection.cursor() as cursor:
        cursor.execute(_VERIFY_SQL.format(audit=audit), [limit])
        breaks = [
            ChainBreak(id=row[0], chain_key=row[1], chain_seq=row[2], problem=row[3])
            for row in cursor
        ]
        cursor.execute(f"SELECT count(*) FROM {audit}")  # noqa: S608
        (events,) = cursor.fetchone()
        cursor.execute(
            f"SELECT DISTINCT ON (chain_key) chain_key, chain_seq, chain_hash FROM {audit}"  # noqa: S608
            " WHERE chain_key IS NOT NULL AND chain_seq IS NOT NULL"
            " ORDER BY chain_key, chain_seq DESC"
        )
        heads = [ChainHead(key=row[0], seq=row[1], hash=row[2] or "") for row in cursor]
    return ChainReport(events=events, heads=heads, breaks=breaks)


def audit_chain_hash_at(*, key: int, seq: int, using: str = DEFAULT_DB_ALIAS) -> str | None:
    """The stored hash of event number `seq` of chain `key`, to compare with an anchor."""
    row = (
        AuditEvent.objects.using(using)
        .filter(chain_key=key, chain_seq=seq)
        .values_list("chain_hash")
        .first()
    )
    return row[0] if row else None
