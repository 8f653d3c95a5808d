"""Email through Django's email backends (`EMAIL_URL`: SMTP in production, the console or
memory backends in development and tests); docs/deployment.md, "Notification channels".

SMTP's answers become outcomes: a 4xx is "try again later", a 5xx for the recipient a
dead address, refused credentials an auth failure for operators. The delivery id is the
message's Message-ID, so a copy re-sent after a worker died mid-send can be recognised
as the same message by the receiving systems."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from notifications.channels.base import Outcome, OutgoingMessage, SendResult


def _smtp_outcome(code: int) -> Outcome:
    return Outcome.RETRY if 400 <= code < 500 else Outcome.FAILED


class EmailChannel:
    name = "email"

    def __init__(self, *, backend: str | None = None) -> None:
        # None: settings.EMAIL_BACKEND, read at each send (tests override it).
        self.backend = backend

    def send(self, message: OutgoingMessage) -> SendResult:
        domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].rstrip(">") or "localhost"
        message_id = f"<{message.delivery_id}@{domain}>"
        email = EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.address],
            headers={**message.headers, "Message-ID": message_id},
        )
        try:
            connection = get_connection(self.backend, fail_silently=False)
            sent = connection.send_messages([email])
        except smtplib.SMTPAuthenticationError as exc:
            return SendResult(Outcome.AUTH_FAILED, detail=f"SMTP {exc.smtp_code}: auth refused")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(500 <= code < 600 for code in codes):
                return SendResult(
                    Outcome.DEAD_ADDRESS, detail=f"SMTP {codes[0]}: recipient refused"
                )
            return SendResult(
                Outcome.RETRY, detail=f"SMTP {codes[0] if codes else '?'}: recipient refused"
            )
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            return SendResult(
                _smtp_outcome(exc.smtp_code), detail=f"SMTP {exc.smtp_code}: {type(exc).__name__}"
            )
        except smtplib.SMTPResponseException as exc:
            return SendResult(
                _smtp_outcome(exc.smtp_code), detail=f"SMTP {exc.smtp_code}: {type(exc).__name__}"
            )
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            # Connection refused, reset, timed out, or the server hung up: try later.
            return SendResult(Outcome.RETRY, detail=type(exc).__name__)
        if not sent:
            return SendResult(Outcome.RETRY, detail="the backend sent nothing")
        return SendResult(Outcome.SENT, provider_id=message_id)
