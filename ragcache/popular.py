"""The questions asked most often of each set of collections, lately: what warming
answers again after a change (chat.tasks.popular_warm).

The lookup script counts each question in `rc:popular:{ids}:{day}` (a sorted set per
day, kept two days: "lately" is today and yesterday) and lists that key under each of its
collections in `rc:popular-sets:{id}`, in the same round trip, and only while warming is
on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from redis import Redis

from ragcache import client, keys
from ragcache.conf import conf

DAY = 86400


def today() -> int:
    return int(time.time() // DAY)


def entry(collection_ids: Sequence[int], question: str) -> dict[str, Any]:
    """What the lookup script needs to count a question: today's key, kept two days."""
    key = keys.popular(collection_ids, today())
    return {"key": key, "question": question, "ttl": 2 * DAY,
            "sets": [keys.popular_sets(cid) for cid in collection_ids]}  # fmt: skip


def questions_top(collection_ids: Sequence[int], limit: int) -> list[tuple[list[int], str]]:
    """The questions asked most today and yesterday of any set of collections that
    includes one of these, with that set: at most `limit`, the most asked first."""
    recent = {today(), today() - 1}

    def read(redis: Redis) -> dict[tuple[tuple[int, ...], str], float]:
        counts: dict[tuple[tuple[int, ...], str], float] = {}
        for collection_id in collection_ids:
            for member in redis.smembers(keys.popular_sets(collection_id)):  # type: ignore[union-attr]
                name = member.decode() if isinstance(member, bytes) else str(member)
                ids_part, day = name.rsplit(":", 2)[1:]  # rc:popular:{ids}:{day}
                if int(day) not in recent:  # an older day's key: expired, or about to
                    redis.srem(keys.popular_sets(collection_id), member)
                    continue
                ids = tuple(int(part) for part in ids_part.split(",") if part)
                ranked: list[Any] = redis.zrevrange(name, 0, limit - 1, withscores=True)  # type: ignore[assignment]
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
