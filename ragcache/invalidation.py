"""Removing entries: one key, by document (exact, through the document index), by layer,
or all of the app's keys (never Celery's, which share the Redis server); and setting a
key's TTL. Each refuses a key outside the app's prefix."""

from __future__ import annotations

from redis import Redis

from ragcache import client, keys, scopes
from ragcache.client import CacheUnavailable
from ragcache.conf import LAYERS
from ragcache.scripts import EXPIRE, evaluate

FLUSHABLE = (*LAYERS, "stats", "gen", "doc", "lock")


def invalidate_document(document_id: int, *, fail_open: bool = True) -> int:
    """Delete every ret and ans entry that cited the document; the number deleted. With
    Redis unreachable: 0 when `fail_open` (after a change, whose generation bump has
    made the entries unreachable already), else CacheUnavailable (an admin's flush)."""
    try:
        deleted = client.run("invalidate", lambda redis: _unlink_indexed(redis, document_id))
    except CacheUnavailable:
        if fail_open:
            return 0
        raise
    return int(deleted)


def _unlink_indexed(redis: Redis, document_id: int) -> int:
    """In each scope: the entries its index of the document lists, then those members of
    the index (an entry indexed meanwhile stays listed, for the next invalidation). The
    members are read first and then named: a script would touch keys it did not declare."""
    tags = list(scopes.listed(redis))
    pipe = redis.pipeline(transaction=False)
    for tag in tags:
        pipe.smembers(keys.document_index(tag, document_id))
    listed = pipe.execute()
    deleted = 0
    for tag, members in zip(tags, listed, strict=True):
        members = sorted(members)
        for start in range(0, len(members), 500):
            batch = members[start : start + 500]
            deleted += int(redis.unlink(*batch))
            redis.srem(keys.document_index(tag, document_id), *batch)
    return deleted


def flush_layer(name: str) -> int:
    if name not in FLUSHABLE:
        raise ValueError(f"Unknown cache layer {name!r}; one of {', '.join(FLUSHABLE)}.")
    return _unlink_matching(keys.layer_pattern(name))


def flush_all() -> int:
    """Every key of the app but the run-time switches, which are settings, the workers'
    heartbeats, which are health, and the list of scopes, which changes are copied to:
    none is cache."""
    keep = frozenset(key.encode() for key in (keys.switches(), keys.workers(), keys.scopes()))
    return _unlink_matching(keys.all_pattern(), keep=keep)


def key_delete(key: str) -> int:
    _check_app_key(key)
    if key in (keys.switches(), keys.scopes()):  # a flush keeps them too
        raise ValueError(f"{key} is not cache: the run-time switches, and the scopes every change is copied to.")
    return int(client.run("panel", lambda redis: redis.unlink(key)))


def key_expire(key: str, *, seconds: int, extend: bool = False) -> int | None:
    """Give the key a TTL of `seconds`, or add `seconds` to its TTL; its new TTL, or None
    if the key is gone. Every key of the app keeps a TTL, so `seconds` must be positive."""
    _check_app_key(key)
    if key == keys.switches():
        raise ValueError("The run-time switches are settings: they have no TTL.")
    if key == keys.scopes():
        raise ValueError("The list of scopes in use has no TTL: every change is copied to the scopes it lists.")
    if seconds < 1:
        raise ValueError("A TTL is at least one second.")
    result = client.run("panel", lambda redis: evaluate(redis, EXPIRE, 1, key, seconds, int(extend)))
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
