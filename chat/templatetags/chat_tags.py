from __future__ import annotations

import re
from typing import Any

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()
CITATION = re.compile(r"\[(\d+)\]")


@register.filter
def answer_html(text: str, citations: list[dict[str, Any]]) -> SafeString:
    """The answer escaped, in paragraphs, each [n] a link to the passage it cites."""
    urls = {c["number"]: c["url"] for c in citations or []}

    def link(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if number not in urls:
            return match.group(0)
        return format_html('<a class="cite" href="{}" title="Source {}">[{}]</a>', urls[number], number, number)

    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    html = "".join(f"<p>{CITATION.sub(link, escape(p)).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return mark_safe(html)  # noqa: S308 (every piece above is escaped)


@register.filter
def milliseconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


@register.filter
def usd(value: float | None) -> str:
    if value is None:
        return ""
    return f"${value:.4f}" if value >= 0.0001 else "<$0.0001"
