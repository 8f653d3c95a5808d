"""Write docs/safety-rules.md from the rule definitions, or check that it is current.

    python manage.py rules_reference            # (re)write the reference
    python manage.py rules_reference --check    # exit status 1 when it is stale

Run it after changing a rule in rehab/safety/rules.py and commit the result; the test
suite runs the check, so a stale reference fails the build.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rehab.rules_reference import REFERENCE_PATH, render


class Command(BaseCommand):
    help = "Write docs/safety-rules.md from the rule definitions (--check: fail when stale)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; exit with status 1 when the committed reference is stale",
        )

    def handle(self, *args: Any, check: bool = False, **options: Any) -> None:
        expected = render()
        current = REFERENCE_PATH.read_text() if REFERENCE_PATH.exists() else None
        if check:
            if current != expected:
                raise CommandError(
                    f"{REFERENCE_PATH.name} is stale: run `python manage.py rules_reference` "
                    "and commit the result."
                )
            self.stdout.write(f"{REFERENCE_PATH.name} is current.")
            return
        REFERENCE_PATH.parent.mkdir(exist_ok=True)
        REFERENCE_PATH.write_text(expected)
        self.stdout.write(f"Wrote {REFERENCE_PATH}.")
