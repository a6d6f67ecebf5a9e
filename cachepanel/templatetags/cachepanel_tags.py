"""Numbers as an admin reads them: ratios, durations, money, TTLs, times."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f}%"


@register.filter
def duration(seconds: float | None) -> str:
    """3.2 s, 4 min 10 s, 2 h 5 min, 3 d 4 h."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def duration_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:.1f} ms" if ms < 1000 else duration(ms / 1000)


@register.filter
def ttl(ms: int) -> str:
    if ms == -1:
        return "none"
    if ms < 0:
        return "gone"
    return duration(ms / 1000)


@register.filter
def usd(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


@register.filter
def number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


@register.filter
def clock(timestamp: float | None) -> str:
    """A Unix time as HH:MM:SS UTC, with how long ago."""
    if timestamp is None:
        return "—"
    at = datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{at} ({duration(max(0.0, time.time() - timestamp))} ago)"


@register.filter
def ago(timestamp: float | None) -> str:
    return "—" if timestamp is None else duration(max(0.0, time.time() - timestamp))


@register.simple_tag
def stacked_bars(bars: list[dict[str, Any]]) -> SafeString:
    """The bars of a chart from cachepanel.charts: hits below, refusals (if any) on them,
    misses on top, a title each. Built here rather than in a template loop: a day of
    charts is hundreds of bars."""
    return format_html_join(
        "",
        '<g><title>{}</title><rect class="cp-hit" x="{}" y="{}" width="8" height="{}"></rect>{}'
        '<rect class="cp-miss" x="{}" y="{}" width="8" height="{}"></rect></g>',
        (
            (bar["title"], bar["x"], bar["below_y"], bar["below_h"], _refused(bar),
             bar["x"], bar["above_y"], bar["above_h"])
            for bar in bars
            if not bar["empty"]
        ),
    )  # fmt: skip


def _refused(bar: dict[str, Any]) -> SafeString:
    if not bar.get("middle_h"):
        return SafeString("")
    rect = '<rect class="cp-refused" x="{}" y="{}" width="8" height="{}"></rect>'
    return format_html(rect, bar["x"], bar["middle_y"], bar["middle_h"])
