"""The questions asked most often of each set of collections, lately: what warming
answers again after a change (chat.tasks.popular_warm).

The lookup script counts each question in `rc:popular:{ids}` (a sorted set, TTL
POPULAR_TTL) and lists that key under each of its collections in `rc:popular-sets:{id}`,
in the same round trip, and only while warming is on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from redis import Redis

from ragcache import client, keys
from ragcache.conf import conf


def entry(collection_ids: Sequence[int], question: str) -> dict[str, Any]:
    """What the lookup script needs to count a question."""
    key = keys.popular(collection_ids)
    return {"key": key, "question": question, "ttl": conf()["POPULAR_TTL"],
            "sets": [keys.popular_sets(cid) for cid in collection_ids]}  # fmt: skip


def questions_top(collection_id: int, limit: int) -> list[tuple[list[int], str]]:
    """The most asked questions of any set of collections that includes this one, with
    that set: at most `limit`, the most asked first."""

    def read(redis: Redis) -> list[tuple[float, list[int], str]]:
        found: list[tuple[float, list[int], str]] = []
        for set_key in redis.smembers(keys.popular_sets(collection_id)):  # type: ignore[union-attr]
            name = set_key.decode() if isinstance(set_key, bytes) else str(set_key)
            ids = [int(part) for part in name.rsplit(":", 1)[1].split(",") if part]
            ranked: list[Any] = redis.zrevrange(name, 0, limit - 1, withscores=True)  # type: ignore[assignment]
            for question, score in ranked:
                found.append((float(score), ids, question.decode() if isinstance(question, bytes) else str(question)))
        return found

    ranked = sorted(client.run("warming", read), key=lambda row: -row[0])
    return [(ids, question) for _, ids, question in ranked[:limit]]


def warming_record(*, collection_ids: Sequence[int], questions: int, hits_before: int, seconds: float) -> None:
    """What this warming did, for the cache panel."""
    report = {"at": time.time(), "collections": list(collection_ids), "questions": questions,
              "already_cached": hits_before, "seconds": round(seconds, 2)}  # fmt: skip
    client.run("warming", lambda redis: redis.set(keys.warming(), json.dumps(report), ex=conf()["STATS_TTL"]))


def warming_last() -> dict[str, Any] | None:
    raw = client.run("warming", lambda redis: redis.get(keys.warming()))
    return json.loads(raw) if raw else None


def warming_claim(collection_id: int, *, seconds: float) -> bool:
    """True for the first change of a collection in `seconds`: its warming is queued then."""
    key = keys.warming_pending(collection_id)
    return bool(client.run("warming", lambda redis: redis.set(key, "1", nx=True, ex=max(1, int(seconds)))))
