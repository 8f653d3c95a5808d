"""The write throttles count in one atomic round trip to Redis (`window_hit`)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from patients.throttling import AtomicWindowThrottle, cache_redis_client, window_hit


def _redis() -> Any:
    return cache_redis_client(cache)


@pytest.fixture
def key() -> Any:
    name = cache.make_and_validate_key(f"test-window-{uuid.uuid4().hex}")
    yield name
    _redis().delete(name)


def test_it_admits_up_to_the_limit_and_does_not_count_refusals(key):
    client = _redis()
    hits = [window_hit(client, key, now=1000.0 + i, duration=60, limit=2) for i in range(4)]

    assert [hit.admitted for hit in hits] == [True, True, False, False]
    assert [hit.earlier for hit in hits] == [0, 1, 2, 2]
    assert hits[2].oldest == 1000.0
    assert client.zcard(key) == 2  # the refused ones were taken out again
    assert 0 < client.ttl(key) <= 61


def test_requests_leave_the_window_after_its_duration(key):
    client = _redis()
    assert window_hit(client, key, now=1000.0, duration=60, limit=1).admitted
    assert not window_hit(client, key, now=1059.9, duration=60, limit=1).admitted
    # As DRF: a request exactly `duration` old no longer counts.
    later = window_hit(client, key, now=1060.0, duration=60, limit=1)
    assert later.admitted
    assert later.earlier == 0


def test_concurrent_requests_are_each_counted_once(key):
    # DRF's read-then-write loses counts when requests race; the window does not.
    start, admitted = threading.Barrier(16), []

    def hit() -> None:
        client = _redis()
        start.wait()
        admitted.append(window_hit(client, key, now=1000.0, duration=60, limit=5).admitted)

    threads = [threading.Thread(target=hit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(admitted) == [False] * 11 + [True] * 5
    assert _redis().zcard(key) == 5


class _Throttle(AtomicWindowThrottle):
    rate = "3/hour"

    def __init__(self, now: list[float]) -> None:
        super().__init__()
        self.times = now

    def timer(self) -> float:
        return self.times.pop(0)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return f"test-drf-{id(self.times)}"


def test_retry_after_is_drfs_for_the_same_requests():
    times = [1000.0, 1010.0, 1020.0, 1030.0]
    ours = _Throttle(list(times))
    theirs: Any = SimpleRateThrottle.__new__(SimpleRateThrottle)
    theirs.num_requests, theirs.duration = 3, 3600
    theirs.history = []
    try:
        results = [ours.allow_request(None, None) for _ in times]  # type: ignore[arg-type]
        # DRF's own state after the same four requests, the last one refused.
        theirs.history, theirs.now = [1020.0, 1010.0, 1000.0], 1030.0

        assert results == [True, True, True, False]
        assert ours.wait() == theirs.wait() == pytest.approx(3600 - 30)
    finally:
        _redis().delete(cache.make_and_validate_key(f"test-drf-{id(ours.times)}:window"))


def test_it_falls_back_to_drfs_counting_on_another_cache(settings):
    from django.core.cache.backends.locmem import LocMemCache

    throttle = _Throttle([1000.0, 1001.0, 1002.0, 1003.0])
    throttle.cache = LocMemCache(f"throttle-{uuid.uuid4().hex}", {})

    assert [throttle.allow_request(None, None) for _ in range(4)] == [True, True, True, False]  # type: ignore[arg-type]
    assert throttle.wait() == pytest.approx(3600 - 3)
