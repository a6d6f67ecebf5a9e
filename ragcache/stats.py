"""Hit/miss statistics per layer in one-minute buckets, each with its own TTL.

A request's counts are written in the same round trip as its other writes (or, for a
cached answer, inside the lookup script).
"""

from __future__ import annotations

import time
from typing import Any

from redis.client import Pipeline

from ragcache import client, keys
from ragcache.conf import LAYERS, conf

METRICS = ("hit", "miss", "error", "bypass", "saved_ms", "saved_tokens", "saved_cost")
WINDOWS = {"5m": 5, "1h": 60, "1d": 1440}


def current_minute() -> int:
    return int(time.time() // 60)


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


def totals(minutes: int) -> dict[str, dict[str, float]]:
    """Sum of each layer's metrics over the last `minutes` minutes."""
    now = current_minute()

    def read(redis: Any) -> list[dict[bytes, bytes]]:
        pipe = redis.pipeline(transaction=False)
        for minute in range(now - minutes + 1, now + 1):
            pipe.hgetall(keys.stats(minute))
        return list(pipe.execute())

    summed: dict[str, dict[str, float]] = {layer: dict.fromkeys(METRICS, 0.0) for layer in LAYERS}
    for bucket in client.run("stats", read):
        for field, value in bucket.items():
            layer, _, metric = field.decode().partition(":")
            if layer in summed and metric in summed[layer]:
                summed[layer][metric] += float(value)
    return summed


def hit_ratios() -> dict[str, dict[str, dict[str, float | None]]]:
    """Per window (5m, 1h, 1d) and layer: the counts, and hits / (hits + misses)."""
    day = totals(WINDOWS["1d"])
    result: dict[str, dict[str, dict[str, float | None]]] = {}
    for window, minutes in WINDOWS.items():
        window_totals = day if minutes == WINDOWS["1d"] else totals(minutes)
        result[window] = {}
        for layer, metrics in window_totals.items():
            looked = metrics["hit"] + metrics["miss"]
            result[window][layer] = {**metrics, "ratio": metrics["hit"] / looked if looked else None}
    return result
