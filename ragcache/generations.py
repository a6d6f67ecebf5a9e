"""Copies of the collections' generations, one per scope. PostgreSQL holds the truth and
bumps it in the transaction of the change; each scope's gen copy in Redis (`rc:gen:{tag}`,
in the slot of the scope's entries) holds its collections' generations, the catalog
version and the run-time switches, which the lookup reads in the same call as the
entries. A missing copy is made from the sources; a change is copied to every scope
listed in `rc:scopes` (ragcache.scripts.META_RAISE says why nothing is lost between them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.utils.module_loading import import_string
from redis import Redis

from ragcache import catalog, client, keys, scopes, switches
from ragcache.client import CacheUnavailable
from ragcache.conf import conf

Loader = Callable[[Sequence[int] | None], dict[int, int]]


def load(collection_ids: Sequence[int] | None) -> dict[int, int]:
    """Generations from the database: of these collections, or of all when None."""
    loader: Loader = import_string(conf()["GENERATION_LOADER"])
    return loader(collection_ids)


def fill(redis: Redis, tag: str, collection_ids: Sequence[int]) -> None:
    """Make the scope's copy: list the scope first, then read the sources, then raise."""
    ids = keys.sorted_ids(collection_ids)
    scopes.list_scope(redis, tag, ids)
    known = load(ids)
    current = catalog.version_held(redis)
    if current is None:  # no catalog copy in Redis: the database's, published (and copied to the scopes)
        loaded = catalog.load()
        catalog.raise_copy(redis, loaded)
        current = loaded.version
    # A collection that no longer exists gets generation 0: nothing was ever cached for it.
    scopes.meta_raise(redis, tag, gens={cid: known.get(cid, 0) for cid in ids}, catalog=current,
               switches=switches.held(redis))  # fmt: skip


def fan_out(redis: Redis, changed: Mapping[int, int]) -> None:
    """Raise the copies of every scope that holds one of these collections."""
    pipe = redis.pipeline(transaction=False)
    for tag, ids in scopes.listed_with(redis, changed).items():
        scopes.meta_raise(pipe, tag, gens={cid: changed[cid] for cid in ids if cid in changed})
    pipe.execute()


def publish(generations: Mapping[int, int]) -> bool:
    """Push bumped generations to Redis (on commit); True when they reached it. The caller
    marks what was published, so a publish lost here is found by the next sweep."""
    if not generations:
        return True
    try:
        client.run("gen", lambda redis: fan_out(redis, generations))
    except CacheUnavailable:
        return False
    return True


def copies() -> tuple[dict[int, int], int]:
    """The lowest generation any scope's copy holds per collection (one behind is what
    matters), and the longest TTL of the copies in seconds (-2: there is none)."""

    def read(redis: Redis) -> tuple[dict[int, int], int]:
        held: dict[int, int] = {}
        longest = -2
        listed = scopes.listed(redis)
        for ids, (found, expires) in zip(listed.values(), _copies_read(redis, listed), strict=True):
            for cid, generation in zip(ids, found, strict=True):
                if generation is not None:
                    held[cid] = min(held.get(cid, int(generation)), int(generation))
            longest = max(longest, int(expires))
        return held, longest

    return client.run("gen", read)


def republish() -> list[int]:
    """Raise every copy that is behind the database (a lost publish) to the database's
    value; the collections it raised."""
    truth = load(None)

    def raise_behind(redis: Redis) -> list[int]:
        raised: set[int] = set()
        listed = scopes.listed(redis)
        for (tag, ids), (found, _) in zip(listed.items(), _copies_read(redis, listed), strict=True):
            behind = {cid: truth[cid] for cid, held in zip(ids, found, strict=True)
                      if held is not None and cid in truth and int(held) < truth[cid]}  # fmt: skip
            if behind:
                scopes.meta_raise(redis, tag, gens=behind)
                raised.update(behind)
        return sorted(raised)

    return list(client.run("gen", raise_behind))


def _copies_read(redis: Redis, listed: dict[str, list[int]]) -> list[tuple[list[Any], int]]:
    """Each listed scope's generations as its copy holds them, and the copy's TTL: one pipeline."""
    pipe = redis.pipeline(transaction=False)
    for tag, ids in listed.items():
        pipe.hmget(keys.meta(tag), [str(cid) for cid in ids])
        pipe.ttl(keys.meta(tag))
    replies = pipe.execute()
    return list(zip(replies[::2], replies[1::2], strict=True))


def resync(redis: Redis) -> None:
    """Bring every scope's copies up to the sources (never down: a change published
    meanwhile stays): after Redis failed, a change may have missed them."""
    generations = load(None)
    catalog.raise_copy(redis, catalog.load())
    held = switches.held(redis)
    pipe = redis.pipeline(transaction=False)
    for tag, ids in scopes.listed(redis).items():
        scopes.meta_raise(pipe, tag, gens={cid: generations.get(cid, 0) for cid in ids}, switches=held)
    pipe.execute()


client.resync_hook = resync
