"""Channels by name, as configured (`NOTIFICATION_CHANNELS`, `NOTIFICATION_EMAIL_CHANNEL`;
docs/deployment.md, "Notification channels").

Email and console are always there; each push channel (`fcm`, `apns`, `webpush`) is in
`NOTIFICATION_CHANNELS` only when its credentials are set, and is built by its adapter's
`from_settings()`."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from notifications.channels.base import Channel

# The settings a channel is built from: changing one (in a test) builds it again.
_CHANNEL_SETTINGS = ("NOTIFICATION_", "FCM_", "APNS_", "WEBPUSH_", "PUSH_", "EMAIL_")


@cache
def channel_get(name: str) -> Channel:
    """The adapter configured as `name`; one instance per process (adapters keep their
    connections and tokens between sends)."""
    try:
        path = settings.NOTIFICATION_CHANNELS[name]
    except KeyError:
        raise ImproperlyConfigured(
            f"no notification channel {name!r} in NOTIFICATION_CHANNELS"
        ) from None
    adapter = import_string(path)
    from_settings = getattr(adapter, "from_settings", None)
    channel: Channel | None = from_settings() if from_settings is not None else adapter()
    if channel is None:
        raise ImproperlyConfigured(f"notification channel {name!r} has no credentials set")
    return channel


def channel_configured(name: str) -> bool:
    """Whether messages can go out through `name` here (a push channel whose credentials
    are not set is absent)."""
    return name in settings.NOTIFICATION_CHANNELS


def email_channel_name() -> str:
    """The channel that carries messages to email addresses: `email`, or `console` in
    development."""
    return str(settings.NOTIFICATION_EMAIL_CHANNEL)


@receiver(setting_changed)
def _forget_channels(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(_CHANNEL_SETTINGS):
        channel_get.cache_clear()
