"""Run-time switches: each layer on or off, the semantic threshold and each of the semantic
layer's checks, as admins set them.

Django settings (RAGCACHE["ENABLED"], ["SEM_THRESHOLD"], ["SEM_CHECKS"]) stay the defaults. An
admin's overrides live in one Redis hash, `rc:switches`, with a version raised on every
change; each change is then copied to every scope's gen copy (ragcache.scopes), which the
lookup script of every ask reads and applies in the same round trip: the ask that follows
a change, in any process, already obeys it. The ask keeps the overrides its lookup read until it
ends; the process keeps the last ones any ask read, for code outside an ask, which
calls `refresh()`.

The hash has no TTL, unlike the app's cache keys: it is configuration, and an eviction
must never silently switch a layer back on. flush_all() leaves it alone, and the panel
does not delete it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from redis import Redis

from ragcache import client, keys, scopes
from ragcache.client import CacheUnavailable
from ragcache.conf import LAYERS, conf
from ragcache.scripts import evaluate
from ragcache.semantic import CHECKS

THRESHOLD = "sem_threshold"
VERSION = "version"  # a field of the hash, not a switch
CHECK = "sem_check:{}"  # a field per check of ragcache.semantic
REFRESH_SECONDS = 5.0

_lock = threading.Lock()
_overrides: dict[str, str] = {}
_seen_at = 0.0


def observe(fields: Mapping[Any, Any]) -> dict[str, str]:
    """Take the overrides as Redis holds them (from a lookup reply, or a refresh); returns
    them, for the ask that read them to keep."""
    global _overrides, _seen_at
    decoded = {_text(name): _text(value) for name, value in fields.items() if _text(name) != VERSION}
    with _lock:
        _overrides, _seen_at = decoded, time.monotonic()
    return decoded


def observe_json(raw: bytes) -> dict[str, str]:
    """The same, from a scope's copy (JSON) in the lookup script's answer."""
    return observe(json.loads(raw))


def held(redis: Redis) -> dict[str, Any]:
    """The overrides in Redis and their version, as a scope's copy holds them."""
    fields = {_text(name): _text(value) for name, value in redis.hgetall(keys.switches()).items()}
    version = int(fields.pop(VERSION, 0))
    return {"version": version, "values": json.dumps(fields, sort_keys=True)}


def refresh(max_age: float = REFRESH_SECONDS) -> None:
    """Re-read the overrides if this process has not seen them for `max_age` seconds."""
    if time.monotonic() - _seen_at < max_age:
        return
    with contextlib.suppress(CacheUnavailable):
        observe(client.run("switches", lambda redis: redis.hgetall(keys.switches())))


def enabled(layer: str, overrides: Mapping[str, str] | None = None) -> bool:
    """Whether the layer is on: by `overrides` (those an ask read), else by the process's copy."""
    override = (_overrides if overrides is None else overrides).get(layer)
    return override == "1" if override is not None else bool(conf()["ENABLED"][layer])


def threshold(overrides: Mapping[str, str] | None = None) -> float:
    override = (_overrides if overrides is None else overrides).get(THRESHOLD)
    return float(override) if override is not None else float(conf()["SEM_THRESHOLD"])


def check_enabled(check: str, overrides: Mapping[str, str] | None = None) -> bool:
    """Whether the semantic layer's check (ragcache.semantic.CHECKS) is on."""
    override = (_overrides if overrides is None else overrides).get(CHECK.format(check))
    return override == "1" if override is not None else bool(conf()["SEM_CHECKS"].get(check, False))


def defaults() -> dict[str, Any]:
    return {
        **{layer: bool(conf()["ENABLED"][layer]) for layer in LAYERS},
        **{CHECK.format(check): bool(conf()["SEM_CHECKS"].get(check, False)) for check in CHECKS},
        THRESHOLD: float(conf()["SEM_THRESHOLD"]),
    }


def current() -> dict[str, Any]:
    """Each switch's value, and whether it is an admin's override or the settings' default."""
    refresh(0)
    return {
        **{layer: {"on": enabled(layer), "overridden": layer in _overrides} for layer in LAYERS},
        **{
            CHECK.format(check): {"on": check_enabled(check), "overridden": CHECK.format(check) in _overrides}
            for check in CHECKS
        },
        THRESHOLD: {"value": threshold(), "overridden": THRESHOLD in _overrides},
    }


def switches_set(
    *, layers: Mapping[str, bool], sem_threshold: float | None, checks: Mapping[str, bool] | None = None
) -> dict[str, str]:
    """Store overrides; a value equal to the settings' default removes its override."""
    base = defaults()
    flags = {**layers, **{CHECK.format(check): on for check, on in (checks or {}).items()}}
    stored: dict[Any, Any] = {name: "1" if on else "0" for name, on in flags.items() if on != base[name]}
    removed = [name for name, on in flags.items() if on == base[name]]
    if sem_threshold is not None:
        if sem_threshold == base[THRESHOLD]:
            removed.append(THRESHOLD)
        else:
            stored[THRESHOLD] = repr(float(sem_threshold))

    def write(redis: Redis) -> dict[bytes, bytes]:
        pipe = redis.pipeline(transaction=True)  # one key: one slot, on a Cluster too
        if removed:
            pipe.hdel(keys.switches(), *removed)
        if stored:
            pipe.hset(keys.switches(), mapping=stored)
        pipe.execute()
        return _copy_to_scopes(redis)

    observe(client.run("switches", write))
    return dict(_overrides)


def switches_reset() -> None:
    """Every override goes; the version stays, and rises, so the scopes' copies follow."""

    def write(redis: Redis) -> dict[bytes, bytes]:
        overrides = [name for name in redis.hkeys(keys.switches()) if _text(name) != VERSION]
        pipe = redis.pipeline(transaction=True)  # one key: one slot, on a Cluster too
        if overrides:
            pipe.hdel(keys.switches(), *overrides)
        pipe.execute()
        return _copy_to_scopes(redis)

    observe(client.run("switches", write))


# A version above every earlier one, even when the hash was lost (deleted, restored from an
# older backup): the clock's microseconds (a change takes a round trip, far longer), or
# one more than the last. KEYS: the hash. ARGV: the time in microseconds (below 2^53,
# which Lua's numbers hold exactly).
VERSION_RAISE = """
local held = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local version = math.max(held + 1, tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'version', string.format('%d', version))
return 1
"""


def _copy_to_scopes(redis: Redis) -> dict[Any, Any]:
    """After a change: a new version, then every scope's copy raised to the overrides as
    they stand then (a change made meanwhile raises the version again, and copies again);
    returns those overrides."""
    evaluate(redis, VERSION_RAISE, 1, keys.switches(), time.time_ns() // 1_000)
    now = held(redis)
    scopes.raise_all(redis, switches=now)
    return dict(json.loads(now["values"]))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value
