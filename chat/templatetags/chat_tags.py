from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from chat import rendering
from chat.services import trace_shown

register = template.Library()


@register.filter
def answer_html(text: str, citations: Sequence[Mapping[str, Any]]) -> SafeString:
    return mark_safe(rendering.answer_html(text=text, citations=citations))  # noqa: S308 (sanitised there)


@register.filter
def by_section(citations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Citations grouped by the section they cite ("7. Input and Output › 7.2 Reading and
    Writing Files"), in order of first citation: each section is listed once, with the
    numbers of its passages. Answers saved before sections were known group by document."""
    groups: dict[Any, dict[str, Any]] = {}
    for citation in citations:
        label = citation.get("section") or citation.get("title", "")
        group = groups.setdefault((citation.get("document_id"), label), {"label": label, "citations": []})
        group["citations"].append(citation)
    return list(groups.values())


@register.filter
def shown_to(trace: Mapping[str, Any], user: Any) -> dict[str, Any]:
    """The part of an answer's trace its reader may see (chat.services.trace_shown)."""
    return trace_shown(dict(trace or {}), is_staff=bool(getattr(user, "is_staff", False)))


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
