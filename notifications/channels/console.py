"""The development channel: prints each message to the process's standard output, as
Django's console email backend does (docs/security.md § Secrets: an invitation's code is
printed too, so a production start refuses this channel, as it refuses a console email
backend). Never used by tests as a stand-in for a real channel."""

from __future__ import annotations

import sys
from typing import TextIO

from notifications.channels.base import Outcome, OutgoingMessage, SendResult


class ConsoleChannel:
    name = "console"

    def __init__(self, *, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, message: OutgoingMessage) -> SendResult:
        stream = self.stream or sys.stdout
        stream.write(
            f"--- notification {message.delivery_id} to {message.address}\n"
            f"Subject: {message.subject}\n\n{message.body}\n---\n"
        )
        stream.flush()
        return SendResult(Outcome.SENT, provider_id=str(message.delivery_id))


class ConsolePushChannel(ConsoleChannel):
    """Development's stand-in for the push providers (`PUSH_CONSOLE`, docs/deployment.md,
    "Push notifications"): every push to a registered device is printed, with the ids
    the app would be handed, instead of going to FCM, APNs or a browser. Registered only
    with DJANGO_DEBUG; a production start refuses it."""

    name = "console_push"

    def send(self, message: OutgoingMessage) -> SendResult:
        stream = self.stream or sys.stdout
        data = " ".join(f"{key}={value}" for key, value in sorted(message.data.items()))
        stream.write(
            f"--- push {message.delivery_id} to device {message.address[:24]}...\n"
            f"{message.subject}\n{message.body}\n[{data}]{' urgent' if message.urgent else ''}"
            "\n---\n"
        )
        stream.flush()
        return SendResult(Outcome.SENT, provider_id=str(message.delivery_id))
