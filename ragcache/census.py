"""How many keys each layer holds and how much memory they take, counted in the background.

A count means visiting every key of the app (SCAN, then MEMORY USAGE of each): at
100,000 keys that is most of a second of work, too slow for a page that refreshes every
5 s. A count kept up to date on every write would drift, since Redis expires and evicts
keys without telling anyone. So a census is taken in a background thread, by one
process at a time (a lock in Redis), in batches that each hold Redis for about a
millisecond, and stored in Redis for every process to read. The panel shows its age.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from typing import Any

from redis import Redis
from redis.cluster import RedisCluster

from ragcache import client, keys
from ragcache.client import CacheUnavailable
from ragcache.conf import conf
from ragcache.scripts import UNLOCK, evaluate, evaluate_on, primaries

logger = logging.getLogger(__name__)
BATCH = 1000
KEEP_SECONDS = 3600
LOCK_SECONDS = 300

# One batch of the census: SCAN, then the kind and memory of each key found, but the
# census's own keys. ARGV: cursor, match pattern, count, length of the prefix, then the
# keys not to count. Returns {next cursor, JSON {kind: [keys, bytes]}}.
CENSUS_BATCH = """
local reply = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local skipped = {}
for i = 5, #ARGV do skipped[ARGV[i]] = true end
local kinds = {}
for _, key in ipairs(reply[2]) do
  if not skipped[key] then
    local kind = string.match(string.sub(key, tonumber(ARGV[4]) + 1), '^[^:]*')
    local entry = kinds[kind]
    if not entry then
      entry = {0, 0}
      kinds[kind] = entry
    end
    entry[1] = entry[1] + 1
    entry[2] = entry[2] + (redis.call('MEMORY', 'USAGE', key) or 0)
  end
end
return {reply[1], cjson.encode(kinds)}
"""

_running = threading.Lock()


def _own_keys() -> tuple[str, str]:
    return keys.census(), keys.lock(keys.census())


def take(redis: Redis) -> dict[str, Any]:
    """Count every key of the app now, store the result and return it."""
    started = time.perf_counter()
    kinds: dict[str, dict[str, int]] = {}
    for server in primaries(redis):  # the one Redis, or each primary of a Cluster
        cursor = "0"
        while True:
            cursor_raw, batch = evaluate_on(
                redis, server, CENSUS_BATCH, cursor, keys.all_pattern(), BATCH, len(keys.prefix()), *_own_keys()
            )
            for kind, (count, size) in json.loads(batch or "{}").items():
                entry = kinds.setdefault(kind, {"keys": 0, "bytes": 0})
                entry["keys"] += int(count)
                entry["bytes"] += int(size)
            cursor = cursor_raw.decode()
            if cursor == "0":
                break
    result = {
        "taken_at": time.time(),
        "ms": round((time.perf_counter() - started) * 1000, 1),
        "kinds": kinds,
        "keys": sum(entry["keys"] for entry in kinds.values()),
        "bytes": sum(entry["bytes"] for entry in kinds.values()),
    }
    redis.set(keys.census(), json.dumps(result), ex=KEEP_SECONDS)
    return result


SUMMED = ("used_memory", "maxmemory", "evicted_keys", "expired_keys", "keyspace_hits", "keyspace_misses",
          "connected_clients", "instantaneous_ops_per_sec")  # fmt: skip


def server_info(redis: Redis) -> dict[str, Any]:
    """INFO of the one Redis, or of a Cluster's primaries: their memory and counts summed,
    the version, policy and uptime of the first."""
    if not isinstance(redis, RedisCluster):
        return dict(redis.info())
    each = redis.info(target_nodes=RedisCluster.PRIMARIES)
    infos = [each[name] for name in sorted(each)]
    return {**infos[0], **{field: sum(int(info.get(field, 0)) for info in infos) for field in SUMMED}}


def latest(*, max_age: float | None = None) -> dict[str, Any] | None:
    """The last census (None before the first); starts a new one in the background when
    it is older than `max_age` seconds (RAGCACHE["CENSUS_MAX_AGE"] by default)."""
    max_age = conf()["CENSUS_MAX_AGE"] if max_age is None else max_age
    stored = client.run("panel", lambda redis: redis.get(keys.census()))
    result: dict[str, Any] | None = json.loads(stored) if stored else None
    if result is None or time.time() - result["taken_at"] > max_age:
        start_in_background()
    return result


def start_in_background() -> None:
    if _running.locked():  # this process is counting already
        return
    threading.Thread(target=_take_once, name="cache-census", daemon=True).start()


def _take_once() -> None:
    if not _running.acquire(blocking=False):
        return
    (_, lock), token = _own_keys(), secrets.token_hex(8)
    try:
        # One census at a time across every process that shows the panel.
        if not client.run("panel", lambda redis: redis.set(lock, token, nx=True, ex=LOCK_SECONDS)):
            return
        try:
            client.run("panel", take)
        finally:
            client.run("panel", lambda redis: evaluate(redis, UNLOCK, 1, lock, token))
    except CacheUnavailable:
        pass  # counted and logged by the client; the panel says Redis is unreachable
    except Exception:
        logger.exception("The cache census failed")
    finally:
        _running.release()
