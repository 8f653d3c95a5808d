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
