"""Hit/miss statistics per layer in one-minute buckets, each with its own TTL.

A request's counts are written in the same round trip as its other writes (or, for a
cached answer, inside the lookup script), in its scope's bucket (in the slot of the
scope's entries, so that the lookup script may write it); the summary adds up the
scopes listed in `rc:scopes`. A bucket is a hash of "{layer}:{metric}" ->
amount, plus "simil:{hit|refused|miss}:{bucket}" -> count: the best similarity each
semantic lookup found, in hundredths, for the panel's histogram ("refused": above the
threshold, but every candidate failed a check).
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis
from redis.client import Pipeline

from ragcache import client, keys, scopes
from ragcache.conf import LAYERS, conf
from ragcache.scripts import evaluate

METRICS = ("hit", "miss", "error", "bypass", "corrupt", "saved_ms", "saved_tokens", "saved_cost")
WINDOWS = {"5m": 5, "1h": 60, "1d": 1440}
SIMILARITY = "simil"

CHARTED = 60  # minutes of the per-minute chart

# The statistics of the windows and the chart in one call. The completed minutes never
# change, so their sums are computed once a minute, by whoever asks first, and kept
# under KEYS[1]; only the current minute's bucket is read fresh each time.
# KEYS: where this minute's sums of the completed minutes are kept, then the buckets,
# oldest first, the current minute last. ARGV: minutes charted, seconds to keep the
# sums, then the windows in minutes.
# Returns {JSON {"windows": {minutes: {field: sum}}, "series": [{field: n}, ...]} of the
# completed minutes, the current bucket as HGETALL gives it}.
SUMMARY = """
local done = redis.call('GET', KEYS[1])
if not done then
  local charted = tonumber(ARGV[1])
  local limits, sums = {}, {}
  for i = 3, #ARGV do
    limits[#limits + 1] = tonumber(ARGV[i])
    sums[#sums + 1] = {}
  end
  local series = {}
  for i = 2, #KEYS - 1 do
    local age = #KEYS - i
    local fields = redis.call('HGETALL', KEYS[i])
    local minute = {}
    for j = 1, #fields, 2 do
      local field, value = fields[j], tonumber(fields[j + 1]) or 0
      for w = 1, #limits do
        if age < limits[w] then
          local sum = sums[w]
          sum[field] = (sum[field] or 0) + value
        end
      end
      if age < charted then
        local tail = string.sub(field, -4)
        if tail == ':hit' or tail == 'miss' then minute[field] = value end
      end
    end
    if age < charted then series[#series + 1] = minute end
  end
  local windows = {}
  for w = 1, #limits do windows[ARGV[w + 2]] = sums[w] end
  done = cjson.encode({windows = windows, series = series})
  redis.call('SET', KEYS[1], done, 'EX', ARGV[2])
end
return {done, redis.call('HGETALL', KEYS[#KEYS])}
"""


def current_minute() -> int:
    return int(time.time() // 60)


def similarity_bucket(similarity: float) -> int:
    """Hundredths of a similarity, clamped to 0..100."""
    return min(100, max(0, int(similarity * 100)))


class Tally:
    """One request's counts, waiting for the request's next write, in its scope's bucket
    (the scope of no collection's, until the lookup tells which it is)."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = {}
        self.tag = keys.scope_tag(())

    def add(self, layer: str, metric: str, amount: float = 1) -> None:
        field = f"{layer}:{metric}"
        self.counts[field] = self.counts.get(field, 0) + amount

    def write(self, pipe: Pipeline) -> None:
        for layer, errors in client.breaker.take_unflushed_errors().items():
            self.add(layer, "error", errors)
        if not self.counts:
            return
        key = keys.stats(self.tag, current_minute())
        for field, amount in self.counts.items():
            pipe.hincrbyfloat(key, field, amount)
        pipe.expire(key, conf()["STATS_TTL"])
        self.counts.clear()


def summary() -> dict[str, Any]:
    """Per window (5m, 1h, 1d): each layer's metrics, and the similarity histogram; per
    minute of the last hour, oldest first: each layer's hits and misses. One round trip."""
    now = current_minute()
    longest = max(WINDOWS.values())
    arguments = [CHARTED, 120, *WINDOWS.values()]  # kept past the minute, for a clock slightly behind

    def read(redis: Redis) -> list[Any]:
        # One call per scope, all in one pipeline: a scope's buckets share its slot.
        tags = {keys.scope_tag(()), *scopes.listed(redis)}
        pipe = redis.pipeline(transaction=False)
        for tag in sorted(tags):
            script_keys = [keys.stats_sums(tag, now), *keys.stats_buckets(tag, now - longest + 1, now)]
            evaluate(pipe, SUMMARY, len(script_keys), *script_keys, *arguments)
        return list(pipe.execute())

    windows: dict[str, dict[str, float]] = {name: {} for name in WINDOWS}
    minutes_charted: list[dict[str, float]] = [{} for _ in range(CHARTED)]
    for done_raw, current_raw in client.run("stats", read):
        done = json.loads(done_raw)
        current = {name.decode(): float(value) for name, value in zip(current_raw[::2], current_raw[1::2], strict=True)}
        for name, minutes in WINDOWS.items():
            # {} or [] when empty: Lua cannot tell
            _add(windows[name], done["windows"].get(str(minutes)) or {})
            _add(windows[name], current)
        for charted, minute in zip(
            minutes_charted, [*(minute or {} for minute in done["series"]), current], strict=True
        ):
            _add(charted, minute)
    series = minutes_charted
    return {
        "windows": {name: _by_layer(fields) for name, fields in windows.items()},
        "similarity": {name: _similarity(fields) for name, fields in windows.items()},
        "series": [_by_layer(minute, METRICS[:2]) for minute in series],
    }


def totals(minutes: int) -> dict[str, dict[str, float]]:
    """Sum of each layer's metrics over the last 5, 60 or 1440 minutes."""
    name = next((name for name, length in WINDOWS.items() if length == minutes), None)
    if name is None:
        raise ValueError(f"Statistics are summed over {', '.join(map(str, WINDOWS.values()))} minutes.")
    return dict(summary()["windows"][name])


def hit_ratios() -> dict[str, dict[str, dict[str, float | None]]]:
    """Per window (5m, 1h, 1d) and layer: the counts, and hits / (hits + misses)."""
    return {window: with_ratios(layers) for window, layers in summary()["windows"].items()}


def with_ratios(layers: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    result: dict[str, dict[str, float | None]] = {}
    for layer, metrics in layers.items():
        looked = metrics["hit"] + metrics["miss"]
        result[layer] = {**metrics, "ratio": metrics["hit"] / looked if looked else None}
    return result


def _add(sums: dict[str, float], fields: dict[str, float]) -> None:
    for field, value in fields.items():
        sums[field] = sums.get(field, 0) + float(value)


def _by_layer(fields: dict[str, float], metrics: tuple[str, ...] = METRICS) -> dict[str, dict[str, float]]:
    summed: dict[str, dict[str, float]] = {layer: dict.fromkeys(metrics, 0.0) for layer in LAYERS}
    for field, value in fields.items():
        layer, _, metric = field.partition(":")
        if layer in summed and metric in summed[layer]:
            summed[layer][metric] += float(value)
    return summed


def _similarity(fields: dict[str, float]) -> dict[str, dict[int, int]]:
    """{"hit": {bucket: count}, "refused": {...}, "miss": {...}} from the "simil:..." fields."""
    histogram: dict[str, dict[int, int]] = {"hit": {}, "refused": {}, "miss": {}}
    for field, value in fields.items():
        layer, _, rest = field.partition(":")
        outcome, _, bucket = rest.partition(":")
        if layer == SIMILARITY and outcome in histogram and bucket.isdigit():
            histogram[outcome][int(bucket)] = int(value)
    return histogram
