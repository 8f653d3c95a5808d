from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from notifications.demo import seed_demo_reminders


class Command(BaseCommand):
    help = "Make the demo patients' reminders fall due in the next minutes (make run)."

    def handle(self, *args: Any, **options: Any) -> None:
        for email, at in seed_demo_reminders():
            self.stdout.write(f"  reminder for {email} at {at} (their local time)")
        self.stdout.write(
            "Beat plans them and the default worker prints them (console email backend)."
        )
