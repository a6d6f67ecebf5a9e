"""An answer as HTML: its Markdown rendered, its [n] linked to the passages cited, and the
result sanitised, for the text comes from a language model and is untrusted. And a
document's text as the blocks its source page shows."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from documents.textblocks import text_blocks

CITATION = re.compile(r"\[(\d+)\]")
# What could make a run of plain text inline Markdown; a block needs a line to itself.
MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<&~])")
ALLOWED_TAGS = set(
    "a blockquote br code del em h1 h2 h3 h4 h5 h6 hr li ol p pre s strong table tbody td th thead tr ul".split()  # noqa: SIM905
)


def answer_html(*, text: str, citations: Sequence[Mapping[str, Any]]) -> str:
    urls = {citation["number"]: citation["url"] for citation in citations or []}
    return _sanitiser.clean(_markdown.render(text, {"citation_urls": urls}))


def markdown_escaped(text: str) -> str:
    """Plain text (a quotation, say) written so that it renders as itself."""
    return MARKDOWN_INLINE.sub(r"\\\1", text)


def _link_citations(state: StateCore) -> None:
    # Runs before text_join, while an escaped "\[1\]" is still apart from the text around it.
    urls: Mapping[int, str] = state.env.get("citation_urls", {})
    for token in state.tokens:
        if token.type == "inline" and token.children:
            token.children = _cited(token.children, urls)


def _cited(children: list[Token], urls: Mapping[int, str]) -> list[Token]:
    """The inline tokens with each [n] of plain text (not code, not a link's text) a link to source n."""
    result: list[Token] = []
    links_open = 0
    for token in children:
        links_open += {"link_open": 1, "link_close": -1}.get(token.type, 0)
        if token.type != "text" or links_open:
            result.append(token)
            continue
        start = 0
        for match in CITATION.finditer(token.content):
            number = int(match.group(1))
            if number not in urls:
                continue
            result.append(Token("text", "", 0, content=token.content[start : match.start()]))
            attrs: dict[str, str | int | float] = {"href": urls[number], "title": f"Source {number}", "class": "cite"}
            result += [Token("link_open", "a", 1, attrs=attrs), Token("text", "", 0, content=match.group(0)),
                       Token("link_close", "a", -1)]  # fmt: skip
            start = match.end()
        result.append(Token("text", "", 0, content=token.content[start:]))
    return result


def _image_as_alt_text(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # An image loads with the page: a way to send what the page says to another server.
    return renderer.renderInline(tokens[idx].children or [], options, env)


# Raw HTML in the text shows as text; a single line break stays one, as people expect of
# chat. Without link definitions ("[1]: https://..."), a [n] can only be a citation.
_markdown = MarkdownIt("js-default", {"html": False, "breaks": True}).disable("reference")
_markdown.core.ruler.before("text_join", "citations", _link_citations)
_markdown.add_render_rule("image", _image_as_alt_text)

_sanitiser = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    allowed_classes={"a": {"cite"}},
    url_schemes={"http", "https"},  # and relative URLs, which have none
    link_rel="noopener noreferrer nofollow",
)


def source_blocks(text: str, marked: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """A document's text as blocks for its source page (headings, code, paragraphs), each
    as parts that say whether they fall within the `marked` span (the cited passage)."""
    blocks: list[dict[str, Any]] = []
    for block in text_blocks(text):
        start, end = block.start, block.start + len(block.text)
        cuts = sorted({0, len(block.text)} | {p - start for p in (marked or ()) if start < p < end})
        parts = [
            {"text": block.text[a:b], "marked": marked is not None and marked[0] <= start + a < marked[1]}
            for a, b in itertools.pairwise(cuts)
        ]
        # Sections nest under the page's own title, which is the page's h1.
        blocks.append({"kind": block.kind, "level": min(block.level + 1, 6), "parts": parts})
    first = next((part for block in blocks for part in block["parts"] if part["marked"]), None)
    if first is not None:
        first["anchor"] = True  # the page scrolls to it: id="passage"
    return blocks
