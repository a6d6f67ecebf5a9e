"""Removing entries: by document (exact, through the document index), by layer, or all
of the app's keys (never Celery's, which share the Redis server)."""

from __future__ import annotations

from redis import Redis

from ragcache import client, keys
from ragcache.client import CacheUnavailable
from ragcache.conf import LAYERS
from ragcache.scripts import INVALIDATE_DOCUMENT

FLUSHABLE = (*LAYERS, "stats", "gen", "doc", "lock")


def invalidate_document(document_id: int) -> int:
    """Delete every ret and ans entry that cited the document; the number deleted (0 if
    Redis is unreachable: the generation bump has already made them unreachable)."""
    try:
        deleted = client.run(
            "invalidate", lambda redis: redis.eval(INVALIDATE_DOCUMENT, 1, keys.document_index(document_id))
        )
    except CacheUnavailable:
        return 0
    return int(deleted)


def flush_layer(name: str) -> int:
    if name not in FLUSHABLE:
        raise ValueError(f"Unknown cache layer {name!r}; one of {', '.join(FLUSHABLE)}.")
    return _unlink_matching(keys.layer_pattern(name) if name != "gen" else keys.generations())


def flush_all() -> int:
    return _unlink_matching(keys.all_pattern())


def _unlink_matching(pattern: str) -> int:
    def unlink(redis: Redis) -> int:
        deleted = 0
        batch: list[bytes] = []
        for key in redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) == 1000:
                deleted += redis.unlink(*batch)
                batch.clear()
        if batch:
            deleted += redis.unlink(*batch)
        return deleted

    return int(client.run("flush", unlink))
