from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand

from rehab.demo import seed_demo


class Command(BaseCommand):
    help = "Load the demo clinic, physiotherapist and patients (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = seed_demo()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready ({result['created']} new patients) at {result['clinic']}."
            )
        )
        port = os.environ.get("PORT", "8000")
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Demo sign-ins (password for all: " + result["password"] + ")",
                    f"  physiotherapist  {result['clinician']}   dashboard/API",
                    f"  operator         {result['admin']}    http://localhost:{port}/admin/",
                    *(
                        f"  patient          {email}"
                        + (
                            f"   (reads the app in {result['languages'][email]})"
                            if email in result["languages"]
                            else ""
                        )
                        for email in result["patients"]
                    ),
                    "",
                    "Two-factor sign-in: "
                    + (
                        "required by the demo clinic; the physiotherapist sets it up at "
                        "the first dashboard sign-in."
                        if result["two_factor_required"]
                        else "not required (DJANGO_DEBUG=true); set it up from the "
                        "dashboard's menu, Two-factor sign-in."
                    ),
                    "",
                    f"API docs: http://localhost:{port}/api/docs/",
                    "",
                ]
            )
        )
