"""Copies of the collections' generations. PostgreSQL holds the truth and bumps it in
the transaction of the change; Redis holds a copy that lookups read in the same round
trip as the entries. A missing copy is read back from the database."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.utils.module_loading import import_string
from redis import Redis

from ragcache import catalog, client, keys
from ragcache.client import CacheUnavailable
from ragcache.conf import conf
from ragcache.scripts import GENERATIONS_RAISE

Loader = Callable[[Sequence[int] | None], dict[int, int]]


def load(collection_ids: Sequence[int] | None) -> dict[int, int]:
    """Generations from the database: of these collections, or of all when None."""
    loader: Loader = import_string(conf()["GENERATION_LOADER"])
    return loader(collection_ids)


def raise_copies(redis: Redis, generations: Mapping[int, int]) -> None:
    pairs = [str(value) for cid, generation in generations.items() for value in (cid, generation)]
    redis.eval(GENERATIONS_RAISE, 1, keys.generations(), conf()["GENERATIONS_TTL"], *pairs)


def fill_missing(redis: Redis, collection_ids: Sequence[int]) -> None:
    known = load(collection_ids)
    # A collection that no longer exists gets generation 0: nothing was ever cached for it.
    raise_copies(redis, {cid: known.get(cid, 0) for cid in collection_ids})


def publish(generations: Mapping[int, int]) -> bool:
    """Push bumped generations to Redis (on commit); True when they reached it. The caller
    marks what was published, so a publish lost here is found by the next sweep."""
    if not generations:
        return True
    try:
        client.run("gen", lambda redis: raise_copies(redis, generations))
    except CacheUnavailable:
        return False
    return True


def copies() -> tuple[dict[int, int], int]:
    """The copies in Redis, and their TTL in seconds (-2: there is none)."""

    def read(redis: Redis) -> list[Any]:
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(keys.generations())
        pipe.ttl(keys.generations())
        return list(pipe.execute())

    found, expires = client.run("gen", read)
    return {int(cid): int(generation) for cid, generation in found.items()}, int(expires)


def republish() -> list[int]:
    """Raise every copy that is behind the database (a lost publish) to the database's
    value; the collections it raised."""
    truth = load(None)

    def raise_behind(redis: Redis) -> list[int]:
        held = {int(cid): int(gen) for cid, gen in redis.hgetall(keys.generations()).items()}
        behind = {cid: gen for cid, gen in truth.items() if cid in held and held[cid] < gen}
        if behind:
            raise_copies(redis, behind)
        return sorted(behind)

    return list(client.run("gen", raise_behind))


def resync(redis: Redis) -> None:
    """Bring every copy up to the database's value (never down: a bump published
    meanwhile stays), and drop copies of collections that are gone."""
    generations = load(None)
    catalog.raise_copy(redis, catalog.load())  # a change to the collections may have been missed too
    gone = [cid for cid in redis.hkeys(keys.generations()) if int(cid) not in generations]
    if gone:
        redis.hdel(keys.generations(), *gone)
    if generations:
        raise_copies(redis, generations)


client.resync_hook = resync
