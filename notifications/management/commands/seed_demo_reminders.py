from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from notifications.demo import seed_demo_devices, seed_demo_reminders


class Command(BaseCommand):
    help = (
        "Give the demo patients and physiotherapist a signed-in phone each, and make the "
        "demo patients' reminders fall due in the next minutes (make run)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for email, device in seed_demo_devices():
            self.stdout.write(f"  {device.get_platform_display()} phone of {email}")
        for email, at in seed_demo_reminders():
            self.stdout.write(f"  reminder for {email} at {at} (their local time)")
        where = (
            "prints them, pushes included (PUSH_CONSOLE)"
            if settings.PUSH_CONSOLE
            else "sends them (pushes through the configured providers)"
        )
        self.stdout.write(f"Beat plans them and the default worker {where}.")
