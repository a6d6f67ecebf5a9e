"""A copy of the catalog of collections (which exist, their names, which are public), so that
an ask resolves its scope without a query.

PostgreSQL holds the catalog and its version, bumped in the transaction of every change
to a collection; Redis holds a copy, published on commit and never lowered; each process
keeps the last copy it read. The process resolves an ask's scope from its copy, and the
lookup script checks that copy's version against Redis's (the copy of it in the scope's
gen copy, ragcache.scopes) in the same round trip as the rest: a copy that is not the
current one is never trusted (ScopeUnverified), so a collection made private is never
read through an old copy.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.module_loading import import_string
from redis import Redis

from ragcache import client, keys, scopes
from ragcache.client import CacheUnavailable
from ragcache.conf import conf
from ragcache.scripts import evaluate


@dataclass(frozen=True)
class Entry:
    collection_id: int
    name: str
    is_public: bool


@dataclass(frozen=True)
class Catalog:
    version: int
    entries: tuple[Entry, ...]


class ScopeUnverified(Exception):
    """The ask's scope came from a catalog copy that is not (or could not be shown to be)
    the current one: resolve it again from a fresh copy or from the database."""


Loader = Callable[[], tuple[int, list[tuple[int, str, bool]]]]

# Set the copy if it is newer than the one held. KEYS: the catalog hash. ARGV: version,
# entries (JSON), TTL. The TTL is set with the copy, so it is re-read from the database at
# least this often, like the generation copies.
PUBLISH = """
local held = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if tonumber(ARGV[1]) > held then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'entries', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""

_lock = threading.Lock()
_copy: Catalog | None = None


def load() -> Catalog:
    """The catalog from the database."""
    loader: Loader = import_string(conf()["CATALOG_LOADER"])
    version, rows = loader()
    return Catalog(version=version, entries=tuple(Entry(cid, name, public) for cid, name, public in rows))


def publish(catalog: Catalog) -> bool:
    """Put `catalog` in Redis unless a newer copy is there; True when it was put."""
    return bool(client.run("gen", lambda redis: raise_copy(redis, catalog)))


def raise_copy(redis: Redis, catalog: Catalog) -> bool:
    """The same on a connection at hand (the resync, which runs inside client.run); then
    every scope's copy of the version is raised to it, which its lookups compare."""
    entries = json.dumps([[e.collection_id, e.name, e.is_public] for e in catalog.entries])
    published = bool(evaluate(redis, PUBLISH, 1, keys.catalog(), catalog.version, entries, conf()["GENERATIONS_TTL"]))
    scopes.raise_all(redis, catalog=catalog.version)
    return published


def version_held(redis: Redis) -> int | None:
    """The version of the catalog copy in Redis, or None when there is none."""
    held = redis.hget(keys.catalog(), "v")
    return int(held) if held is not None else None


def publish_from_database() -> int | None:
    """After a committed change: publish the catalog as the database now holds it; the
    version that reached Redis, or None when Redis could not be reached (the sweep will
    publish it; meanwhile asks whose copy is older than Redis's read the database)."""
    catalog = load()
    try:
        publish(catalog)
    except CacheUnavailable:
        return None
    return catalog.version


def current() -> Catalog:
    """This process's copy; the first time, Redis's copy or else the database's."""
    copy = _copy
    return copy if copy is not None else refresh()


def refresh(*, from_database: bool = False) -> Catalog:
    """Replace this process's copy: from Redis when it holds one, else from the database
    (which is then published). `from_database`: skip Redis."""
    catalog = None if from_database else _read_redis()
    if catalog is None:
        catalog = load()
        with contextlib.suppress(CacheUnavailable):
            publish(catalog)
    _keep(catalog, truth=from_database)
    return catalog


def _read_redis() -> Catalog | None:
    try:
        fields = client.run("gen", lambda redis: redis.hgetall(keys.catalog()))
    except CacheUnavailable:
        return None
    if b"v" not in fields or b"entries" not in fields:
        return None
    rows = json.loads(fields[b"entries"])
    return Catalog(version=int(fields[b"v"]), entries=tuple(Entry(int(c), str(n), bool(p)) for c, n, p in rows))


def _keep(catalog: Catalog, *, truth: bool) -> None:
    """Keep `catalog` unless a newer copy was kept meanwhile (by another thread); what the
    database says (`truth`) is kept whatever."""
    global _copy
    with _lock:
        if truth or _copy is None or catalog.version >= _copy.version:
            _copy = catalog


def forget() -> None:
    """Drop this process's copy (tests; a process that wants to start over)."""
    global _copy
    with _lock:
        _copy = None
