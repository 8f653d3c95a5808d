"""Rate limits. Rates come from settings.THROTTLE_RATES (`THROTTLE_RATES` in the env)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from redis.commands.core import Script
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView

from config.audit import client_ip
from config.rates import parse_rate
from patients.models import SignInFailure

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowHit:
    admitted: bool
    earlier: int  # requests counted in the window before this one
    oldest: float | None  # the oldest of them, as a timestamp


# KEYS[1]: the window (a sorted set of request timestamps); ARGV: now, duration, limit,
# a unique member, the key's expiry in seconds. Returns {admitted, earlier, oldest}.
_WINDOW_HIT = Script(
    cast(Any, None),  # no client of its own: each call names the cache's client
    b"""
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
    local earlier = redis.call('ZCARD', KEYS[1])
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or false
    if earlier >= tonumber(ARGV[3]) then
        return {0, earlier, oldest}
    end
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
    redis.call('EXPIRE', KEYS[1], ARGV[5])
    return {1, earlier, oldest}
    """,
)


def window_hit(client: Any, key: str, *, now: float, duration: float, limit: int) -> WindowHit:
    """Count a request in a sliding window of `duration` seconds, unless `limit` are in
    it already, atomically and in one round trip to Redis (a Lua script).

    DRF's own throttle reads its history, then writes it back: two round trips on every
    request, and two requests at once both read the same history so one of them is never
    counted (a phone replaying its offline queue sends several at once). As in DRF,
    a refused request is not counted, and a request exactly `duration` old has left.
    """
    admitted, earlier, oldest = _WINDOW_HIT(
        keys=[key],
        args=[repr(now), repr(float(duration)), limit, uuid.uuid4().hex, int(duration) + 1],
        client=client,
    )
    return WindowHit(
        admitted=bool(admitted),
        earlier=int(earlier),
        oldest=float(oldest) if oldest is not None else None,
    )


def cache_redis_client(cache: Any) -> Any | None:
    """The `redis.Redis` client of a django-redis cache (pooled, shared by every call),
    for the commands the cache API lacks; None for any other cache."""
    # Duck-typed: `django.core.cache.cache` is a proxy, not the backend itself.
    get_client = getattr(getattr(cache, "client", None), "get_client", None)
    return get_client(write=True) if callable(get_client) else None


class AtomicWindowThrottle(SimpleRateThrottle):
    """DRF's SimpleRateThrottle (rates, keys, `wait`) counting with `window_hit` when the
    cache is our Redis cache; DRF's own read-then-write on any other cache."""

    _hit: WindowHit | None = None
    # SimpleRateThrottle's, untyped in the stubs.
    num_requests: int | None
    duration: int | None
    now: float

    def allow_request(self, request: Request, view: APIView) -> bool:
        client = cache_redis_client(self.cache)
        if client is None or self.rate is None:
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        assert self.num_requests is not None
        assert self.duration is not None
        self.now = self.timer()
        self._hit = window_hit(
            client,
            self.cache.make_and_validate_key(f"{self.key}:window"),
            now=self.now,
            duration=self.duration,
            limit=self.num_requests,
        )
        return self._hit.admitted

    def wait(self) -> float | None:
        hit = self._hit
        if hit is None:
            return super().wait()
        # DRF's formula over the same window: its history is our `earlier` requests.
        assert self.num_requests is not None
        assert self.duration is not None
        remaining = self.duration - (self.now - hit.oldest) if hit.oldest else self.duration
        available = self.num_requests - hit.earlier + 1
        return remaining / available if available > 0 else None


class ScopedThrottle(ScopedRateThrottle, AtomicWindowThrottle):
    """DRF's scoped throttle on the Redis cache (counted atomically, `window_hit`), with
    multipliers, failing open.

    When Redis is down the cache raises; a rate limit is not worth refusing a patient's
    log (and its safety advice) over, so the request goes through and we log it.
    """

    def get_rate(self) -> str | None:
        # DRF binds its rate table once, at import; reading settings.THROTTLE_RATES per
        # request keeps the one source of rates (THROTTLE_RATES in the env) and lets
        # override_settings change it in tests.
        rates: dict[str, str] = getattr(settings, "THROTTLE_RATES", {})
        if self.scope in rates:
            return rates[self.scope]
        return super().get_rate()

    def parse_rate(self, rate: str | None) -> tuple[int | None, int | None]:
        if rate is None:
            return None, None
        return parse_rate(rate)

    def get_ident(self, request: Request) -> str:
        # DRF's default keys anonymous callers on the whole X-Forwarded-For header, which a
        # client can change on every request.
        return client_ip(request) or "unknown"

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("throttle cache unavailable; allowing request", exc_info=True)
            return True


def _login_limit() -> tuple[int, timedelta]:
    count, seconds = parse_rate(settings.THROTTLE_RATES["login"])
    return count, timedelta(seconds=seconds)


def sign_in_blocked(*, email: str, ip: str | None) -> int | None:
    """Seconds to wait when this client, or this email from this client, has too many
    recent failures (docs/app-developers.md, sign-in; docs/security.md).

    Never per email alone: then anyone, from anywhere, could lock the account's owner out
    with ten wrong passwords, possibly while an emergency alert waits for them. Failures
    from other addresses therefore never refuse a sign-in from an address with none. An
    unknown address (None) is one address of its own.
    """
    limit, window = _login_limit()
    since = timezone.now() - window
    address = Q(ip=ip) if ip else Q(ip__isnull=True)
    recent = SignInFailure.objects.filter(address, at__gte=since)
    for scope in (Q(), Q(email=email.lower())):
        times = list(recent.filter(scope).order_by("-at").values_list("at", flat=True)[:limit])
        if len(times) >= limit:
            # Free again once the oldest of the last `limit` failures leaves the window.
            wait = times[-1] + window - timezone.now()
            return max(1, int(wait.total_seconds()) + 1)
    return None


def sign_in_failed(*, email: str, ip: str | None) -> None:
    SignInFailure.objects.create(email=email.lower(), ip=ip)


def purge_sign_in_failures() -> int:
    _, window = _login_limit()
    deleted, _ = SignInFailure.objects.filter(at__lt=timezone.now() - window).delete()
    return deleted
