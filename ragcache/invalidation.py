"""Removing entries: one key, by document (exact, through the document index), by layer,
or all of the app's keys (never Celery's, which share the Redis server); and setting a
key's TTL. Each refuses a key outside the app's prefix."""

from __future__ import annotations

from redis import Redis

from ragcache import client, keys
from ragcache.client import CacheUnavailable
from ragcache.conf import LAYERS
from ragcache.scripts import EXPIRE, INVALIDATE_DOCUMENT

FLUSHABLE = (*LAYERS, "stats", "gen", "doc", "lock")


def invalidate_document(document_id: int, *, fail_open: bool = True) -> int:
    """Delete every ret and ans entry that cited the document; the number deleted. With
    Redis unreachable: 0 when `fail_open` (after a change, whose generation bump has
    made the entries unreachable already), else CacheUnavailable (an admin's flush)."""
    try:
        deleted = client.run(
            "invalidate", lambda redis: redis.eval(INVALIDATE_DOCUMENT, 1, keys.document_index(document_id))
        )
    except CacheUnavailable:
        if fail_open:
            return 0
        raise
    return int(deleted)


def flush_layer(name: str) -> int:
    if name not in FLUSHABLE:
        raise ValueError(f"Unknown cache layer {name!r}; one of {', '.join(FLUSHABLE)}.")
    return _unlink_matching(keys.layer_pattern(name) if name != "gen" else keys.generations())


def flush_all() -> int:
    """Every key of the app but the run-time switches, which are settings, and the workers'
    heartbeats, which are health: neither is cache."""
    return _unlink_matching(keys.all_pattern(), keep=frozenset({keys.switches().encode(), keys.workers().encode()}))


def key_delete(key: str) -> int:
    _check_app_key(key)
    return int(client.run("panel", lambda redis: redis.unlink(key)))


def key_expire(key: str, *, seconds: int, extend: bool = False) -> int | None:
    """Give the key a TTL of `seconds`, or add `seconds` to its TTL; its new TTL, or None
    if the key is gone. Every key of the app keeps a TTL, so `seconds` must be positive."""
    _check_app_key(key)
    if key == keys.switches():
        raise ValueError("The run-time switches are settings: they have no TTL.")
    if seconds < 1:
        raise ValueError("A TTL is at least one second.")
    result = client.run("panel", lambda redis: redis.eval(EXPIRE, 1, key, seconds, int(extend)))
    return None if int(result) < 0 else int(result)


def _check_app_key(key: str) -> None:
    if not keys.kind(key):
        raise ValueError(f"{key!r} is not a key of this app (they start with {keys.prefix()!r}).")


def _unlink_matching(pattern: str, keep: frozenset[bytes] = frozenset()) -> int:
    def unlink(redis: Redis) -> int:
        deleted = 0
        batch: list[bytes] = []
        for key in redis.scan_iter(match=pattern, count=1000):
            if key in keep:
                continue
            batch.append(key)
            if len(batch) == 1000:
                deleted += redis.unlink(*batch)
                batch.clear()
        if batch:
            deleted += redis.unlink(*batch)
        return deleted

    return int(client.run("flush", unlink))
