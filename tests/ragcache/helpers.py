from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django_redis import get_redis_connection
from redis.cluster import RedisCluster

from chat.pipeline import Answer, answer
from ragcache.layers import Policy


def ask(question: str, collection_ids: list[int], **kwargs: Any) -> Answer:
    return answer(question=question, collection_ids=collection_ids, **kwargs)


def fresh(question: str, collection_ids: list[int]) -> Answer:
    """The answer computed from scratch, touching no cache entry."""
    return answer(question=question, collection_ids=collection_ids, cache_policy=Policy(read=False, write=False))


def outcomes(result: Answer) -> dict[str, str]:
    return {layer: entry["outcome"] for layer, entry in result.trace["cache"].items()}


def redis():
    return get_redis_connection("default")


def app_keys() -> list[bytes]:
    return sorted(redis().scan_iter(match="rc:*"))


def servers() -> list[Any]:
    """A client of each Redis server the cache uses: the one, or each primary of a Cluster."""
    client = redis()
    if isinstance(client, RedisCluster):
        return [node.redis_connection or client.get_redis_connection(node) for node in client.get_primaries()]
    return [client]


@contextmanager
def round_trips() -> Iterator[list[str]]:
    """The commands clients send to Redis meanwhile (not those a script runs), from MONITOR
    on every server the cache uses."""
    seen: list[str] = []
    watchers = []
    for server in servers():
        ready = threading.Event()
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(server, seen, ready, stop), daemon=True)
        watcher.start()
        ready.wait(5)
        watchers.append((server, stop, watcher))
    time.sleep(0.05)
    try:
        yield seen
    finally:
        for server, stop, watcher in watchers:
            stop.set()
            server.ping()  # wakes the monitor so it can stop
            watcher.join(5)
        seen[:] = [name for name in seen if name != "PING"]


def _watch(server: Any, seen: list[str], ready: threading.Event, stop: threading.Event) -> None:
    with server.monitor() as monitor:
        ready.set()
        for command in monitor.listen():
            if command["command"] == "PING" and stop.is_set():
                return
            name = command["command"].split()[0].upper()
            # Scripts' own commands and connection handshakes are not round trips of an ask.
            if command.get("client_type") != "lua" and name not in {"HELLO", "CLIENT", "READONLY"}:
                seen.append(name)


def own_redis(redis_server: Any) -> Any:
    """The suite's own redis-server, which the cache uses, for a test that stops it; the
    test is skipped when the suite runs on other servers: the main run of `make test` has it."""
    if redis_server is None:
        pytest.skip("stopping Redis needs the suite's own redis-server (TEST_REDIS_URL is set)")
    if os.environ.get("TEST_REDIS_CLUSTER") == "1":
        pytest.skip("the cache is on a Redis Cluster: this outage test stops the single redis-server")
    return redis_server


def overrides() -> dict[bytes, bytes]:
    """The run-time switches' overrides in Redis (the hash keeps its version when none is left)."""
    from ragcache import keys

    fields = redis().hgetall(keys.switches())
    fields.pop(b"version", None)
    return fields


def generation_copy(collection_id: int, scope: list[int] | None = None) -> int | None:
    """A collection's generation as the copy of a scope (its own, unless told) holds it."""
    from ragcache import keys

    held = redis().hget(keys.meta(keys.scope_tag(scope or [collection_id])), str(collection_id))
    return None if held is None else int(held)
