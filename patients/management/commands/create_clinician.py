from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.exceptions import ApplicationError
from patients.services import clinician_create_or_update


class Command(BaseCommand):
    help = (
        "Create a clinic (if needed) and a clinician who can sign in. Idempotent for the same "
        "email: running it again updates the password."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--clinic", required=True, help="clinic name")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument(
            "--role", choices=["physiotherapist", "clinic_admin"], default="physiotherapist"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            clinician = clinician_create_or_update(
                email=options["email"],
                password=options["password"],
                clinic_name=options["clinic"],
                first_name=options["first_name"],
                last_name=options["last_name"],
                role=options["role"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        except ValidationError as exc:
            # Nothing was saved (one transaction): say why, on stderr, and exit non-zero.
            raise CommandError("Weak password: " + " ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Clinician {clinician.user.email} at {clinician.clinic.name}")
        )
