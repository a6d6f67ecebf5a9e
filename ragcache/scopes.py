"""The scopes in use and their copies: each scope's gen copy (`rc:gen:{tag}`) holds what its
lookup needs besides its entries (its collections' generations, the catalog version, the
run-time switches), in the slot of its entries. `rc:scopes` lists every scope, so that a
change reaches each copy (ragcache.scripts.META_RAISE)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from redis import Redis

from ragcache import keys
from ragcache.conf import conf
from ragcache.scripts import META_RAISE, evaluate

# Forget scopes listed long ago, unless listed again meanwhile. KEYS: the list. ARGV: tag,
# the value read, for each.
FORGET = """
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 1
"""


def meta_raise(redis: Any, tag: str, **copies: Any) -> None:
    """Raise the scope's copies (gens, catalog, switches; see META_RAISE). `redis` may be a pipeline."""
    arguments = {
        "ttl": conf()["GENERATIONS_TTL"],
        **{name: value for name, value in copies.items() if value is not None},
    }
    if "gens" in arguments:
        arguments["gens"] = {str(cid): int(generation) for cid, generation in arguments["gens"].items()}
    evaluate(redis, META_RAISE, 1, keys.meta(tag), json.dumps(arguments))


def listed(redis: Redis) -> dict[str, list[int]]:
    """Every scope tag listed, with its collection ids. A scope is listed again each time its
    copy is made (at least every GENERATIONS_TTL while it is asked); one listed longer ago
    than its statistics and popular questions live is forgotten: its copy expired long
    since, and its next ask makes one and lists it again. So the list does not grow with
    every scope ever asked."""
    found = {_text(tag): _text(value) for tag, value in redis.hgetall(keys.scopes()).items()}
    oldest = time.time() - max(conf()["GENERATIONS_TTL"], conf()["STATS_TTL"], 2 * 86400) - 60
    scopes: dict[str, list[int]] = {}
    gone: list[str] = []
    for tag, value in found.items():
        ids, _, listed_at = value.partition("|")
        if float(listed_at or 0) < oldest:
            gone += [tag, value]
        else:
            scopes[tag] = [int(cid) for cid in ids.split(",") if cid]
    if gone:
        evaluate(redis, FORGET, 1, keys.scopes(), *gone)
    return scopes


def listed_with(redis: Redis, collection_ids: Iterable[int]) -> dict[str, list[int]]:
    """The listed scopes that hold any of these collections."""
    wanted = set(collection_ids)
    return {tag: ids for tag, ids in listed(redis).items() if wanted & set(ids)}


def list_scope(redis: Redis, tag: str, collection_ids: Iterable[int]) -> None:
    ids = ",".join(str(cid) for cid in keys.sorted_ids(collection_ids))
    redis.hset(keys.scopes(), tag, f"{ids}|{time.time():.0f}")


def raise_all(redis: Redis, **copies: Any) -> None:
    """Raise the same copies (catalog, switches) in every listed scope: one pipeline."""
    pipe = redis.pipeline(transaction=False)
    for tag in listed(redis):
        meta_raise(pipe, tag, **copies)
    pipe.execute()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
