"""The questions asked most often of each set of collections, lately: what warming
answers again after a change (chat.tasks.popular_warm).

The lookup script counts each question in its scope's `rc:popular:{tag}:{day}` (a
sorted set per day, kept two days: "lately" is today and yesterday), in the same round
trip, and only while warming is on; `rc:scopes` tells which scopes hold a collection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from redis import Redis

from ragcache import client, keys, scopes
from ragcache.conf import conf

DAY = 86400


def today() -> int:
    return int(time.time() // DAY)


def entry(question: str) -> dict[str, Any]:
    """What the lookup script needs to count a question in today's key, kept two days."""
    return {"question": question, "ttl": 2 * DAY}


def questions_top(collection_ids: Sequence[int], limit: int) -> list[tuple[list[int], str]]:
    """The questions asked most today and yesterday of any set of collections that
    includes one of these, with that set: at most `limit`, the most asked first."""
    recent = (today(), today() - 1)

    def read(redis: Redis) -> dict[tuple[tuple[int, ...], str], float]:
        counts: dict[tuple[tuple[int, ...], str], float] = {}
        wanted = [(tag, tuple(ids), day) for tag, ids in scopes.listed_with(redis, collection_ids).items()
                  for day in recent]  # fmt: skip
        pipe = redis.pipeline(transaction=False)
        for tag, _, day in wanted:
            pipe.zrevrange(keys.popular(tag, day), 0, limit - 1, withscores=True)
        for (_, ids, _), ranked in zip(wanted, pipe.execute(), strict=True):
            for question, score in ranked:
                text = question.decode() if isinstance(question, bytes) else str(question)
                counts[(ids, text)] = counts.get((ids, text), 0.0) + float(score)
        return counts

    counts = client.run("warming", read)
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:limit]
    return [(list(ids), question) for (ids, question), _ in ranked]


def warming_record(*, collection_ids: Sequence[int], questions: int, seconds: float) -> None:
    """What this warming did, for the cache panel."""
    report = {"at": time.time(), "collections": list(collection_ids), "questions": questions,
              "seconds": round(seconds, 2)}  # fmt: skip
    client.run("warming", lambda redis: redis.set(keys.warming(), json.dumps(report), ex=conf()["STATS_TTL"]))


def warming_last() -> dict[str, Any] | None:
    raw = client.run("warming", lambda redis: redis.get(keys.warming()))
    return json.loads(raw) if raw else None


def warming_claim(collection_id: int, *, seconds: float) -> bool:
    """True for the first change of a collection in `seconds`: its warming is queued then."""
    key = keys.warming_pending(collection_id)
    return bool(client.run("warming", lambda redis: redis.set(key, "1", nx=True, ex=max(1, int(seconds)))))
