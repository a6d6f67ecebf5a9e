"""Is this site ready to serve? The database, Redis, and a worker seen recently.

Each worker writes a heartbeat into Redis every WORKER_HEARTBEAT_SECONDS (one hash,
`rc:workers`, a field per worker). Without PostgreSQL nothing works, and without a worker
uploads are never ingested: the site is unavailable. Without Redis it still answers, more
slowly and without its speed layer: degraded. A worker cannot be seen without Redis, so it
is then unknown rather than gone.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from django.conf import settings
from django.db import connection
from redis.exceptions import RedisError

from ragcache import client, keys
from ragcache.client import CacheUnavailable

_beating = threading.Event()


def readiness() -> dict[str, Any]:
    """{"status": "ok" | "degraded" | "unavailable", "checks": {name: what was found}}."""
    database = _database()
    try:
        seen = worker_last_seen()
        redis, worker = "ok", _worker(seen)
    except CacheUnavailable as exc:
        # Redis's own error names its address: the type is enough for a public page.
        detail = type(exc.__cause__).__name__ if isinstance(exc.__cause__, RedisError) else str(exc)
        redis, worker = f"unreachable: {detail}", "unknown: Redis is unreachable"
    if database != "ok" or not (worker == "ok" or worker.startswith("unknown")):
        status = "unavailable"
    else:
        status = "ok" if redis == "ok" else "degraded"
    return {"status": status, "checks": {"database": database, "redis": redis, "worker": worker}}


def worker_last_seen() -> float | None:
    """Seconds since the most recent heartbeat of any worker, or None if none has beaten."""
    beats: dict[Any, Any] = client.run("health", lambda redis: redis.hgetall(keys.workers()))
    latest = max((float(value) for value in beats.values()), default=None)
    return None if latest is None else max(0.0, time.time() - latest)


def worker_beat(name: str | None = None) -> None:
    """Say that this worker is alive (the heartbeat thread calls it)."""
    field = name or f"{socket.gethostname()}:{threading.get_native_id()}"
    seconds = settings.WORKER_SEEN_SECONDS

    def beat(redis: Any) -> None:
        pipe = redis.pipeline(transaction=False)
        pipe.hset(keys.workers(), field, repr(time.time()))
        pipe.expire(keys.workers(), max(3600, int(seconds) * 10))  # all workers gone for long: the hash goes
        pipe.execute()

    # No resync from PostgreSQL first: a worker is alive without it.
    client.run("health", beat, resync=False)


def heartbeat_start() -> None:
    """This worker's heartbeat, on a daemon thread (once per process)."""
    if _beating.is_set():
        return
    _beating.set()
    name = f"{socket.gethostname()}:{threading.get_native_id()}"
    threading.Thread(target=_beat_forever, args=(name,), name="worker-heartbeat", daemon=True).start()


def _beat_forever(name: str) -> None:
    stop = threading.Event()  # never set: the thread ends with the process
    while True:
        with contextlib.suppress(CacheUnavailable):  # Redis away: readiness says "unknown" meanwhile
            worker_beat(name)
        if stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
            return


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # noqa: BLE001 (any failure to reach the database is the answer)
        connection.close()  # a broken connection must not be reused by the next request
        return f"unreachable: {type(exc).__name__}"


def _worker(seen: float | None) -> str:
    if seen is None:
        return "none seen"
    if seen > settings.WORKER_SEEN_SECONDS:
        return f"last seen {seen:.0f} s ago"
    return "ok"
