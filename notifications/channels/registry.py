"""Channels by name, as configured (`NOTIFICATION_CHANNELS`, `NOTIFICATION_EMAIL_CHANNEL`;
docs/deployment.md, "Notification channels")."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from notifications.channels.base import Channel


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
    channel: Channel = import_string(path)()
    return channel


def email_channel_name() -> str:
    """The channel that carries messages to email addresses: `email`, or `console` in
    development."""
    return str(settings.NOTIFICATION_EMAIL_CHANNEL)


@receiver(setting_changed)
def _forget_channels(*, setting: str, **kwargs: Any) -> None:
    if setting in {"NOTIFICATION_CHANNELS", "NOTIFICATION_EMAIL_CHANNEL"}:
        channel_get.cache_clear()
