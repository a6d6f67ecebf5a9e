"""Redis access that fails open: an unreachable or slow Redis is a fast miss, never an error page.

Socket timeouts are short (CACHES OPTIONS), and a circuit breaker stops trying for
BREAKER_OPEN_SECONDS after BREAKER_FAILURES consecutive errors. Errors are counted and
logged. When Redis answers again, the generation copies are resynced from PostgreSQL
before any cache entry is served, so a bump lost during the outage cannot bring a
stale retrieval back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError
from django_redis import get_redis_connection
from redis import Redis
from redis.exceptions import RedisClusterException, RedisError

from ragcache.conf import conf

logger = logging.getLogger(__name__)
T = TypeVar("T")


class CacheUnavailable(Exception):
    """Redis could not be used for this call; the caller treats it as a miss."""


class CircuitBreaker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failures = 0
        self.open_until = 0.0
        self.needs_resync = False
        self.errors: Counter[str] = Counter()  # since the process started, per layer
        self.unflushed_errors: Counter[str] = Counter()  # not yet in the Redis statistics
        self.failure_count = 0  # every failure since the process started: a resync that saw
        # a new one while it ran must not mark itself done
        self.last_error = ""  # the last Redis error this process met, and when (Unix time)
        self.last_error_at: float | None = None
        self.failing_since: float | None = None  # the first failure since Redis last answered

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def record_success(self) -> None:
        with self._lock:
            self.failures = 0
            self.failing_since = None

    def record_failure(self, layer: str, error: str = "") -> None:
        with self._lock:
            self.failures += 1
            self.failure_count += 1
            self.last_error, self.last_error_at = error, time.time()
            if self.failing_since is None:
                self.failing_since = self.last_error_at
            self.errors[layer] += 1
            self.unflushed_errors[layer] += 1
            # Anything may have been missed while Redis failed: resync before serving again.
            self.needs_resync = True
            if self.failures >= conf()["BREAKER_FAILURES"]:
                self.open_until = time.monotonic() + conf()["BREAKER_OPEN_SECONDS"]
                self.failures = 0
                logger.warning(
                    "Redis failed repeatedly: cache calls are misses for %ss", conf()["BREAKER_OPEN_SECONDS"]
                )

    def record_skip(self, layer: str) -> None:
        with self._lock:
            self.errors[layer] += 1
            self.unflushed_errors[layer] += 1
            self.failure_count += 1  # a resync running meanwhile must not clear the flag
            self.needs_resync = True  # what was skipped may have been a bump's publish

    def take_unflushed_errors(self) -> Counter[str]:
        with self._lock:
            taken, self.unflushed_errors = self.unflushed_errors, Counter()
            return taken

    def reset(self) -> None:
        with self._lock:
            self.failures = 0
            self.open_until = 0.0
            self.needs_resync = False
            self.errors.clear()
            self.unflushed_errors.clear()
            self.last_error, self.last_error_at, self.failing_since = "", None, None
            self.failure_count = 0


breaker = CircuitBreaker()
_resync_lock = threading.Lock()
# Set by ragcache.generations, which knows how to rebuild the copies from PostgreSQL.
resync_hook: Callable[[Redis], None] | None = None


def connection() -> Redis:
    return get_redis_connection(conf()["CACHE_ALIAS"])


def run(layer: str, call: Callable[[Redis], T], *, resync: bool = True) -> T:
    """Run `call` against Redis, or raise CacheUnavailable (counted, logged) at once.
    `resync=False`: a call that reads no cache entry (a worker's heartbeat) need not wait
    for the generation copies to be rewritten after a Redis error."""
    if breaker.is_open:
        breaker.record_skip(layer)
        raise CacheUnavailable("the circuit is open")
    try:
        client = connection()  # a Cluster client reaches its nodes as it is made
        if resync and breaker.needs_resync:
            try:
                _resync(client)
            except DatabaseError as exc:  # the flag stays set: no cache until the copies are rewritten
                raise CacheUnavailable("the database did not answer to resync the copies") from exc
        result = call(client)
    except (RedisError, RedisClusterException) as exc:
        breaker.record_failure(layer, f"{type(exc).__name__}: {exc}")
        logger.warning("Redis error in the %s layer: %s", layer, exc)
        raise CacheUnavailable(str(exc)) from exc
    breaker.record_success()
    return result


def _resync(client: Redis) -> None:
    """Rewrite the copies before anything is read. Other threads that find the flag set
    wait here for it; it is cleared only once the copies are rewritten, and not when Redis
    failed again meanwhile (that failure may have missed a bump too)."""
    with _resync_lock:
        if not breaker.needs_resync:
            return
        failures_before = breaker.failure_count
        if resync_hook is not None:
            resync_hook(client)  # raises: the flag stays set
            logger.info("Redis is back: generation copies resynced from the database")
        if breaker.failure_count == failures_before:
            breaker.needs_resync = False
