"""Hit/miss statistics per layer in one-minute buckets, each with its own TTL.

A request's counts are written in the same round trip as its other writes (or, for a
cached answer, inside the lookup script). A bucket is a hash of "{layer}:{metric}" ->
amount, plus "simil:{hit|miss}:{bucket}" -> count: the best similarity each semantic
lookup found, in hundredths, for the panel's histogram.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.client import Pipeline

from ragcache import client, keys
from ragcache.conf import LAYERS, conf

METRICS = ("hit", "miss", "error", "bypass", "saved_ms", "saved_tokens", "saved_cost")
WINDOWS = {"5m": 5, "1h": 60, "1d": 1440}
SIMILARITY = "simil"

# Sums of every field over windows of the newest buckets, and the hits and misses of
# each of the newest minutes one by one (the chart), in one call however many buckets.
# KEYS: the buckets, oldest first. ARGV: the number of minutes charted, then the windows
# in minutes. Returns JSON: {"windows": {minutes: {field: sum}}, "series": [{field: n}]}.
SUMMARY = """
local charted = tonumber(ARGV[1])
local windows, sums = {}, {}
for i = 2, #ARGV do
  windows[#windows + 1] = tonumber(ARGV[i])
  sums[ARGV[i]] = {}
end
local series = {}
for i = 1, #KEYS do
  local age = #KEYS - i
  local fields = redis.call('HGETALL', KEYS[i])
  local minute = {}
  for j = 1, #fields, 2 do
    local field, value = fields[j], tonumber(fields[j + 1]) or 0
    for _, window in ipairs(windows) do
      if age < window then
        local sum = sums[tostring(window)]
        sum[field] = (sum[field] or 0) + value
      end
    end
    if age < charted and (string.sub(field, -4) == ':hit' or string.sub(field, -5) == ':miss') then
      minute[field] = value
    end
  end
  if age < charted then series[#series + 1] = minute end
end
return cjson.encode({windows = sums, series = series})
"""


def current_minute() -> int:
    return int(time.time() // 60)


def similarity_bucket(similarity: float) -> int:
    """Hundredths of a similarity, clamped to 0..100."""
    return min(100, max(0, int(similarity * 100)))


class Tally:
    """One request's counts, waiting for the request's next write."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = {}

    def add(self, layer: str, metric: str, amount: float = 1) -> None:
        field = f"{layer}:{metric}"
        self.counts[field] = self.counts.get(field, 0) + amount

    def write(self, pipe: Pipeline) -> None:
        for layer, errors in client.breaker.take_unflushed_errors().items():
            self.add(layer, "error", errors)
        if not self.counts:
            return
        key = keys.stats(current_minute())
        for field, amount in self.counts.items():
            pipe.hincrbyfloat(key, field, amount)
        pipe.expire(key, conf()["STATS_TTL"])
        self.counts.clear()


def summary(*, windows: dict[str, int] | None = None, charted: int = 60) -> dict[str, Any]:
    """Per window: each layer's metrics (and the similarity histogram); per charted
    minute, oldest first: each layer's hits and misses. One round trip."""
    windows = windows or WINDOWS
    longest = max([*windows.values(), charted])
    now = current_minute()
    buckets = [keys.stats(minute) for minute in range(now - longest + 1, now + 1)]
    raw = json.loads(
        client.run("stats", lambda redis: redis.eval(SUMMARY, len(buckets), *buckets, charted, *windows.values()))
    )
    sums = raw["windows"]
    return {
        "windows": {name: _by_layer(sums.get(str(minutes)) or {}) for name, minutes in windows.items()},
        "similarity": {name: _similarity(sums.get(str(minutes)) or {}) for name, minutes in windows.items()},
        # An empty minute comes back as {} or [] (Lua cannot tell them apart).
        "series": [_by_layer(minute or {}, METRICS[:2]) for minute in raw["series"]],
    }


def totals(minutes: int) -> dict[str, dict[str, float]]:
    """Sum of each layer's metrics over the last `minutes` minutes."""
    return dict(summary(windows={"window": minutes}, charted=0)["windows"]["window"])


def hit_ratios() -> dict[str, dict[str, dict[str, float | None]]]:
    """Per window (5m, 1h, 1d) and layer: the counts, and hits / (hits + misses)."""
    return {window: with_ratios(layers) for window, layers in summary(charted=0)["windows"].items()}


def with_ratios(layers: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    result: dict[str, dict[str, float | None]] = {}
    for layer, metrics in layers.items():
        looked = metrics["hit"] + metrics["miss"]
        result[layer] = {**metrics, "ratio": metrics["hit"] / looked if looked else None}
    return result


def _by_layer(fields: dict[str, float], metrics: tuple[str, ...] = METRICS) -> dict[str, dict[str, float]]:
    summed: dict[str, dict[str, float]] = {layer: dict.fromkeys(metrics, 0.0) for layer in LAYERS}
    for field, value in fields.items():
        layer, _, metric = field.partition(":")
        if layer in summed and metric in summed[layer]:
            summed[layer][metric] += float(value)
    return summed


def _similarity(fields: dict[str, float]) -> dict[str, dict[int, int]]:
    """{"hit": {bucket: count}, "miss": {...}} from the "simil:..." fields."""
    histogram: dict[str, dict[int, int]] = {"hit": {}, "miss": {}}
    for field, value in fields.items():
        layer, _, rest = field.partition(":")
        outcome, _, bucket = rest.partition(":")
        if layer == SIMILARITY and outcome in histogram and bucket.isdigit():
            histogram[outcome][int(bucket)] = int(value)
    return histogram
