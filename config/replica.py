"""Which database a read goes to: the primary, or the read replica for the few heavy reads
marked for it (docs/architecture.md § Which reads go where; docs/deployment.md § Read
replica).

Nothing goes to the replica unless a view says so. A view opts in with `@replica_reads`
(dashboards, progress, exports, reports); inside it the router sends ORM reads to the
`replica` alias, unless:
- no replica is configured (`DATABASE_REPLICA_URL` unset): everything on the primary;
- the model is one the safety path reads (`DATABASE_REPLICA_PRIMARY_MODELS`): alerts and
  their trail, notifications, safety submissions always come from the primary;
- the read is inside a transaction on the primary (it may depend on what that transaction
  wrote);
- the signed-in user wrote something in the last `DATABASE_REPLICA_PIN_SECONDS` (read
  your own writes: `ReplicaPinMiddleware` pins them to the primary for that window), or
  Redis, which holds the pins, cannot say;
- the replica cannot be reached: the read falls back to the primary (and the replica is
  not tried again for `REPLICA_RETRY_SECONDS`), so a replica outage slows the dashboards
  but never takes them down.
Writes, migrations and everything not marked always use the primary (`default`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

REPLICA = "replica"
# After the replica could not be reached, reads stay on the primary this long before the
# replica is tried again: a dead replica costs one connect timeout, not one per request.
REPLICA_RETRY_SECONDS = 5.0

# The alias the marked reads of the current request (or task) go to; None: the primary.
_read_alias: ContextVar[str | None] = ContextVar("replica_read_alias", default=None)
_replica_down_until = 0.0

F = TypeVar("F", bound=Callable[..., Any])


def replica_enabled() -> bool:
    return bool(getattr(settings, "DATABASE_REPLICA_ENABLED", False)) and REPLICA in connections


def _pin_key(user_pk: Any) -> str:
    return cache.make_key(f"replica-pin:{user_pk}")


def _redis() -> Any:
    """The cache's own Redis client. The cache API fails open (a Redis error reads as a
    miss, config/settings.py § CACHES), which here would mean "not pinned": a stale read.
    The client raises instead, and an error means "pinned"."""
    # Duck-typed: `django.core.cache.cache` is a proxy to django-redis' backend.
    return cache.client.get_client(write=True)  # type: ignore[attr-defined]


def _pinned(user: Any) -> bool:
    """Whether `user` wrote recently, so their reads must see the primary. When Redis
    cannot answer, the answer is yes: the primary is always right, only busier."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    try:
        return bool(_redis().exists(_pin_key(user.pk)))
    except Exception:  # noqa: BLE001 (any cache failure: read the primary)
        logger.warning("replica: read-your-writes pin unreadable, reading the primary")
        return True


def pin_to_primary(user: Any) -> None:
    """Send `user`'s marked reads to the primary for DATABASE_REPLICA_PIN_SECONDS."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    try:
        _redis().set(_pin_key(user.pk), 1, ex=settings.DATABASE_REPLICA_PIN_SECONDS)
    except Exception:  # noqa: BLE001 (the write is done; its pin is best effort)
        # With Redis down, _pinned() answers "pinned" for everyone anyway.
        logger.warning("replica: could not pin a writer to the primary")


def _replica_reachable() -> bool:
    """Connect to the replica (or check the kept connection); False if it is down."""
    global _replica_down_until
    if time.monotonic() < _replica_down_until:
        return False
    connection = connections[REPLICA]
    try:
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        connection.ensure_connection()
    except DatabaseError:
        _replica_down_until = time.monotonic() + REPLICA_RETRY_SECONDS
        logger.warning(
            "replica: unreachable, reading the primary for %.0f s", REPLICA_RETRY_SECONDS
        )
        connection.close()
        return False
    return True


def choose_read_alias(user: Any = None) -> str | None:
    """Where the marked reads of a request by `user` go: REPLICA, or None (the primary)."""
    if not replica_enabled() or _pinned(user):
        return None
    return REPLICA if _replica_reachable() else None


def _request_in(args: tuple[Any, ...]) -> Any:
    # A function view gets the request first, a view method after `self`; a DRF Request
    # and a Django HttpRequest both carry `.user` and `.method`.
    for arg in args[:2]:
        if hasattr(arg, "method") and hasattr(arg, "user"):
            return arg
    raise TypeError("@replica_reads decorates views: no request among the arguments")


def replica_reads(view: F) -> F:
    """Mark a read-only view (or a view's `get`) as one whose ORM reads may be served by the
    replica. Its writes (audit events) still go to the primary."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request = _request_in(args)
        token = _read_alias.set(choose_read_alias(request.user))
        try:
            return view(*args, **kwargs)
        finally:
            _read_alias.reset(token)

    return wrapper  # type: ignore[return-value]


def streamed_from_replica(items: Iterable[Any]) -> Iterator[Any]:
    """The body of a streaming response, read where the view's reads went: it is consumed
    after the view returned, outside `@replica_reads`. Call it inside the view."""
    alias = _read_alias.get()  # now, in the view: the generator below runs later

    def body() -> Iterator[Any]:
        iterator = iter(items)
        while True:
            token = _read_alias.set(alias)
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                _read_alias.reset(token)
            yield item

    return body()


class ReplicaRouter:
    """The database router (settings.DATABASE_ROUTERS)."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        alias = _read_alias.get()
        if alias is None:
            return None
        if model._meta.label_lower in settings.DATABASE_REPLICA_PRIMARY_MODELS:
            return DEFAULT_DB_ALIAS
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return alias

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        # The replica holds the same rows as the primary.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        # The replica is read-only and follows the primary's schema by replication.
        return False if db == REPLICA else None


class ReplicaPinMiddleware:
    """After a request that may have written (not GET/HEAD/OPTIONS, answered below 400) by a
    signed-in user, pin that user's marked reads to the primary for a while, so that they
    read their own writes whatever the replica's lag. Costs nothing without a replica."""

    SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.method not in self.SAFE_METHODS
            and response.status_code < 400
            and replica_enabled()
        ):
            # DRF sets the user it authenticated (a token) on the Django request too.
            pin_to_primary(getattr(request, "user", None))
        return response
