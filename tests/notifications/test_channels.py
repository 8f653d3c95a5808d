"""The channel registry and the development console channel."""

from __future__ import annotations

import io
import secrets
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured

from notifications.channels.base import Outcome, OutgoingMessage
from notifications.channels.console import ConsoleChannel
from notifications.channels.email import EmailChannel
from notifications.channels.registry import channel_get, email_channel_name
from tests.test_config import _LOAD_SETTINGS, _run_python


def test_it_builds_each_configured_channel_once(settings):
    assert isinstance(channel_get("email"), EmailChannel)
    assert channel_get("email") is channel_get("email")
    assert isinstance(channel_get("console"), ConsoleChannel)
    assert email_channel_name() == "email"
    settings.NOTIFICATION_EMAIL_CHANNEL = "console"
    assert email_channel_name() == "console"


def test_it_refuses_an_unknown_channel(settings):
    settings.NOTIFICATION_CHANNELS = {"email": "notifications.channels.email.EmailChannel"}
    with pytest.raises(ImproperlyConfigured, match="no notification channel 'console'"):
        channel_get("console")


def test_it_prints_a_message_on_the_console_channel():
    stream = io.StringIO()
    message = OutgoingMessage(
        delivery_id=uuid.uuid4(), address="alice@riverside.example", subject="Hi", body="Body"
    )
    result = ConsoleChannel(stream=stream).send(message)
    assert result.outcome == Outcome.SENT
    assert result.provider_id == str(message.delivery_id)
    assert stream.getvalue() == (
        f"--- notification {message.delivery_id} to alice@riverside.example\n"
        "Subject: Hi\n\nBody\n---\n"
    )


def test_it_refuses_the_console_channel_in_production():
    # It prints invitation codes, as the console email backend would.
    result = _run_python(
        _LOAD_SETTINGS,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://x@h/db",
        REDIS_URL="redis://h:6379/0",
        DJANGO_TRUSTED_PROXY_COUNT="0",
        EMAIL_URL="smtp://mail.example.com:25",
        NOTIFICATION_EMAIL_CHANNEL="console",
    )
    assert result.returncode != 0
    assert "NOTIFICATION_EMAIL_CHANNEL=console prints every message" in result.stderr


def test_it_allows_the_console_channel_in_development():
    result = _run_python(
        _LOAD_SETTINGS + "print(settings.NOTIFICATION_EMAIL_CHANNEL)",
        DJANGO_DEBUG="true",
        DATABASE_URL="postgres://x@h/db",
        NOTIFICATION_EMAIL_CHANNEL="console",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "console"
