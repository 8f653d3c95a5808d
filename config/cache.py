"""Django's Redis cache, with one client per connection pool instead of one per call."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


class _RedisCacheClient(django_redis.RedisCacheClient):
    """Django builds a new `redis.Redis` for every cache call, and a client sets up some
    170 response callbacks in its constructor: a third of the cost of a cache round trip
    to a local Redis. A client over a pool is safe to reuse (the pool hands out the
    connections), so each pool gets one."""

    # Django's own, untyped in django-stubs.
    _client: Any
    _get_connection_pool: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    _cache: Any  # Django's, untyped in django-stubs

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _RedisCacheClient

    def redis_client(self) -> Any:
        """The `redis.Redis` client of the primary (for commands the cache API lacks)."""
        return self._cache.get_client(write=True)
