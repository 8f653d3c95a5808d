"""What the push adapters share about HTTP answers."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: either form of RFC 9110 (seconds or an HTTP
    date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def host_allowed(url: str, allowed_hosts: list[str] | tuple[str, ...]) -> bool:
    """Whether `url` is an https URL on one of `allowed_hosts` (docs/security.md, "Web
    Push endpoints"). An entry is a host name (`fcm.googleapis.com`, on the default port),
    a wildcard for its subdomains (`*.notify.windows.com`), or `host:port` (a test's fake
    server). No user info, no other scheme, no other port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme != "https" or not host or parts.username or parts.password:
        return False
    for entry in allowed_hosts:
        name, sep, entry_port = entry.lower().partition(":")
        wanted_port = int(entry_port) if sep and entry_port.isdigit() else None
        if (port or 443) != (wanted_port or 443):
            continue
        if name.startswith("*."):
            if host.endswith(name[1:]) and len(host) > len(name) - 1:
                return True
        elif host == name:
            return True
    return False
