"""Geometry of the panel's server-rendered SVG charts: plain numbers for the templates."""

from __future__ import annotations

from typing import Any

from ragcache.stats import current_minute

SLOT = 10  # width of one bar's slot in the viewBox
BAR = 8
HEIGHT = 100  # of the viewBox; bars use all but the top few units
TOP = 4


def _stack(x: float, below: float, above: float, scale: float, middle: float = 0) -> dict[str, Any]:
    """A bar of two or three parts: `below` (hits) at the bottom, `middle` (refused) on
    it, `above` (misses) on top."""
    below_h, middle_h, above_h = round(below * scale, 2), round(middle * scale, 2), round(above * scale, 2)
    return {
        "x": x,
        "below_y": round(HEIGHT - below_h, 2),
        "below_h": below_h,
        "middle_y": round(HEIGHT - below_h - middle_h, 2),
        "middle_h": middle_h,
        "above_y": round(HEIGHT - below_h - middle_h - above_h, 2),
        "above_h": above_h,
        "empty": not (below or middle or above),
    }


def hits_and_misses(series: list[dict[str, dict[str, float]]], layer: str, label: str) -> dict[str, Any]:
    """Hits (bottom) and misses (top) per minute, oldest first, the newest minute last."""
    counts = [(int(minute[layer]["hit"]), int(minute[layer]["miss"])) for minute in series]
    peak = max((hits + misses for hits, misses in counts), default=0)
    scale = (HEIGHT - TOP) / peak if peak else 0.0
    first = current_minute() - len(counts) + 1
    bars = []
    for index, (hits, misses) in enumerate(counts):
        minute_of_day = (first + index) % 1440  # Unix minutes: UTC
        title = f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d} UTC: {hits} hits, {misses} misses"
        bars.append({**_stack(index * SLOT + (SLOT - BAR) / 2, hits, misses, scale), "title": title})
    return {
        "layer": layer,
        "label": label,
        "bars": bars,
        "width": len(counts) * SLOT,
        "height": HEIGHT,
        "peak": peak,
        "hits": sum(hits for hits, _ in counts),
        "misses": sum(misses for _, misses in counts),
    }


LOWEST = 50  # similarities below 0.50 share the first bin
OUTCOMES = ("hit", "refused", "miss")  # of a semantic lookup, bottom to top in a bar


def similarity_histogram(histogram: dict[str, dict[int, int]], threshold: float) -> dict[str, Any]:
    """Nearest-neighbour similarities of semantic lookups: served (hits), refused by a
    check although above the threshold, and not served (misses), one bin per hundredth
    from 0.50 up, and where the threshold lies."""
    bins: list[dict[str, Any]] = []
    for index, bucket in enumerate(range(LOWEST - 1, 101)):
        if bucket < LOWEST:
            hits, refused, misses = (sum(n for b, n in histogram[o].items() if b < LOWEST) for o in OUTCOMES)
            label = f"below {LOWEST / 100:.2f}"
        else:
            hits, refused, misses = (histogram[outcome].get(bucket, 0) for outcome in OUTCOMES)
            label = f"{bucket / 100:.2f}" if bucket == 100 else f"{bucket / 100:.2f} to {(bucket + 1) / 100:.2f}"
        title = f"{label}: {hits} served, {refused} refused by a check, {misses} not served"
        bins.append({"index": index, "hits": hits, "refused": refused, "misses": misses, "title": title})
    peak = max((b["hits"] + b["refused"] + b["misses"] for b in bins), default=0)
    scale = (HEIGHT - TOP) / peak if peak else 0.0
    for b in bins:
        b.update(_stack(b["index"] * SLOT + (SLOT - BAR) / 2, b["hits"], b["misses"], scale, middle=b["refused"]))
    # The threshold's position: bin k starts at k * SLOT and covers bucket LOWEST - 1 + k.
    threshold_x = (min(max(threshold * 100, LOWEST), 101) - (LOWEST - 1)) * SLOT
    return {
        "bins": bins,
        "width": len(bins) * SLOT,
        "height": HEIGHT,
        "peak": peak,
        "threshold": threshold,
        "threshold_x": threshold_x,
        "hits": sum(b["hits"] for b in bins),
        "refused": sum(b["refused"] for b in bins),
        "misses": sum(b["misses"] for b in bins),
        "ticks": [
            {"percent": round((bucket - (LOWEST - 1)) * 100 / len(bins), 2), "label": f"{bucket / 100:.1f}"}
            for bucket in range(LOWEST, 101, 10)
        ],
    }
