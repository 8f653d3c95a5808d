"""`migrate` as the owner role, then the application role's grants (patients/dbroles.py).

With DATABASE_MIGRATE_URL set, the connection's user and password are swapped for the
owner's for the run: the service itself never holds the owner's credentials in use, and
one command both changes the schema and keeps the least-privilege role's grants current
(docs/security.md § Database roles and audit trail).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import DEFAULT_DB_ALIAS, connections

from patients.dbroles import RoleError, app_role_grant


class Command(MigrateCommand):
    help = (
        f"{MigrateCommand.help} Runs as the owner role (DATABASE_MIGRATE_URL) when it is "
        "set, then grants the application role (DATABASE_URL) its privileges."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        database = options["database"]
        owner: dict[str, str] | None = settings.DATABASE_OWNER
        app_role: str | None = settings.DATABASE_APP_ROLE
        connection = connections[database]
        swap = (
            owner is not None
            and database == DEFAULT_DB_ALIAS
            and connection.settings_dict["USER"] != owner["USER"]
        )
        saved = {key: connection.settings_dict.get(key) for key in ("USER", "PASSWORD")}
        if swap:
            assert owner is not None
            connection.close()
            connection.settings_dict.update(owner)
        try:
            super().handle(*args, **options)
            dry = options.get("plan") or options.get("check_unapplied")
            if app_role and database == DEFAULT_DB_ALIAS and not dry:
                try:
                    app_role_grant(role=app_role, using=database)
                except RoleError as exc:
                    raise CommandError(f"Cannot grant the application role: {exc}.") from exc
                if options["verbosity"] >= 1:
                    self.stdout.write(f"Granted the application role {app_role} its privileges.")
        finally:
            if swap:
                connection.close()
                connection.settings_dict.update(saved)
