"""The email channel against a real SMTP server (aiosmtpd on a local port), through
Django's SMTP backend: what SMTP answers becomes the channel's outcome."""

from __future__ import annotations

import email
import email.policy
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from notifications.channels.base import Outcome, OutgoingMessage
from notifications.channels.email import EmailChannel


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mailbox:
    """The server's behaviour per recipient, and what it received."""

    received: list[email.message.EmailMessage] = field(default_factory=list)
    # address -> SMTP reply to RCPT TO
    replies: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.received.append(message)
        return "250 Message accepted"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    def text(value: str | bytes) -> str:
        return value.decode() if isinstance(value, bytes) else value

    ok = isinstance(data, LoginPassword) and (text(data.login), text(data.password)) == (
        "rehab",
        "right",
    )
    # handled=False: the server answers 535 itself.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp(settings: Any) -> Iterator[Mailbox]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        auth_require_tls=False,
        authenticator=_authenticate,
    )
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = "rehab"
    settings.EMAIL_HOST_PASSWORD = "right"
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    try:
        yield mailbox
    finally:
        controller.stop()


def message(address: str = "alice@riverside.example") -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=uuid.uuid4(), address=address, subject="[URGENT] RF-MOT-01", body="Review it"
    )


def test_it_sends_an_email_with_the_delivery_id_as_its_message_id(smtp, settings):
    outgoing = message()
    result = EmailChannel().send(outgoing)
    assert result.outcome == Outcome.SENT
    (received,) = smtp.received
    assert received["To"] == "alice@riverside.example"
    assert received["Subject"] == "[URGENT] RF-MOT-01"
    assert received["Message-ID"] == result.provider_id
    assert received["Message-ID"].startswith(f"<{outgoing.delivery_id}@")
    assert received.get_content().strip() == "Review it"


def test_it_reports_a_recipient_refused_for_good_as_a_dead_address(smtp):
    smtp.replies["gone@riverside.example"] = "550 5.1.1 No such user"
    result = EmailChannel().send(message("gone@riverside.example"))
    assert result.outcome == Outcome.DEAD_ADDRESS
    assert result.detail == "SMTP 550: recipient refused"
    assert smtp.received == []


def test_it_retries_a_recipient_refused_for_now(smtp):
    smtp.replies["busy@riverside.example"] = "451 4.3.0 Try again later"
    result = EmailChannel().send(message("busy@riverside.example"))
    assert result.outcome == Outcome.RETRY
    assert result.detail == "SMTP 451: recipient refused"


def test_it_surfaces_refused_credentials_as_an_auth_failure(smtp, settings):
    settings.EMAIL_HOST_PASSWORD = "wrong"
    result = EmailChannel().send(message())
    assert result.outcome == Outcome.AUTH_FAILED
    assert result.detail == "SMTP 535: auth refused"
    assert "wrong" not in result.detail
    assert smtp.received == []


def test_it_retries_when_the_server_is_down(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nobody listens
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    result = EmailChannel().send(message())
    assert result.outcome == Outcome.RETRY
    assert result.detail == "ConnectionRefusedError"
