"""The one interface every channel adapter implements (docs/architecture.md,
"Notifications").

A channel gets one `OutgoingMessage` for one address and answers with a `SendResult`; it
never raises for a provider's answer (a dead token, a 429, an auth failure are results),
only for its own bugs. The delivery machinery decides what a result means: retry after a
back-off (at least `retry_after`), drop a dead address, surface an auth failure to
operators. Messages carry ids in `data`, never patient data beyond the text shown."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class OutgoingMessage:
    # The delivery row's id: each provider's idempotency or collapse key, so that a
    # message re-sent after a worker died mid-send is shown once.
    delivery_id: UUID
    # Where to: an email address, a device token, or a Web Push subscription (JSON).
    address: str
    subject: str
    body: str
    # Ids only (kind, alert id...), for the app to open the right screen.
    data: Mapping[str, str] = field(default_factory=dict)
    urgent: bool = False
    ttl_seconds: int = 24 * 3600
    # Extra email headers (List-Unsubscribe, RFC 8058); push channels ignore them.
    headers: Mapping[str, str] = field(default_factory=dict)


class Outcome(enum.Enum):
    SENT = "sent"
    # The provider asks us to come back later (429/503, maybe with Retry-After), or the
    # network failed: try again after a back-off.
    RETRY = "retry"
    # The address is gone for good (FCM UNREGISTERED, APNs 410, Web Push 404/410, a hard
    # bounce): forget the device, never retry.
    DEAD_ADDRESS = "dead_address"
    # Our credentials were refused: nothing to retry until an operator fixes them.
    AUTH_FAILED = "auth_failed"
    # Anything else the provider refused (a malformed request): not retried.
    FAILED = "failed"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    retry_after: float | None = None
    provider_id: str = ""
    # For operators: status codes and the provider's reason, never the message's text.
    detail: str = ""


class Channel(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> SendResult: ...
