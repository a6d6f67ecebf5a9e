"""The one text format every parser writes and everything after it reads.

A document's text is blocks separated by blank lines: paragraphs, headings written as
Markdown ATX headings ("## 7.2 Reading and Writing Files"), and code fenced with
backticks, whose lines and indentation are kept as they are. Markdown uploads are
already in it; the HTML and PDF parsers write it. The chunker reads sections (the
heading path above each block) from it, the answerer tells code from prose by it, and
the source page renders it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
# A backtick fence's info string holds no backtick (CommonMark): "```x``` is code" is text.
FENCE = re.compile(r"^ {0,3}(`{3,}(?=[^`]*$)|~{3,})(.*)$")
# The heading levels that make up a section's path (h1..h4); deeper ones stay in the text.
SECTION_DEPTH = 4
SECTION_SEPARATOR = " › "


@dataclass(frozen=True)
class Block:
    kind: str  # "heading", "code" or "text"
    text: str  # a heading's words, a code block's lines (without fences), a paragraph
    level: int = 0  # a heading's level, 1 to 6
    info: str = ""  # a code block's info string (its language), if any
    # Where `text` starts in the text read; in a normalized text, text[start:start+len(block.text)]
    # is the block's text itself (the source page marks a passage by it).
    start: int = 0


@dataclass(frozen=True)
class Section:
    path: tuple[str, ...]  # the headings above, outermost first
    blocks: tuple[Block, ...]  # code and text blocks only


def text_blocks(text: str) -> list[Block]:
    """The blocks of `text`, in order; a fence left open runs to the end."""
    blocks: list[Block] = []
    paragraph: list[tuple[int, str]] = []

    def close_paragraph() -> None:
        if paragraph:
            blocks.append(Block("text", "\n".join(line for _, line in paragraph), start=paragraph[0][0]))
            paragraph.clear()

    lines = _numbered_lines(text.replace("\r\n", "\n").replace("\r", "\n"))
    for start, line in lines:
        fence = FENCE.match(line)
        heading = HEADING.match(line)
        if fence:
            close_paragraph()
            marker = fence.group(1)
            code = list(_until_fence_closes(lines, marker))
            while code and not code[0][1].strip():
                code.pop(0)
            while code and not code[-1][1].strip():
                code.pop()
            if code:
                lines_text = "\n".join(line for _, line in code)
                blocks.append(Block("code", lines_text, info=fence.group(2).strip(), start=code[0][0]))
        elif heading:
            close_paragraph()
            words = heading.group(2).strip()
            blocks.append(Block("heading", words, level=len(heading.group(1)), start=start + line.find(words)))
        elif line.strip():
            paragraph.append((start, line))
        else:
            close_paragraph()
    close_paragraph()
    return blocks


def _numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """(offset, line) for each line of `text`."""
    offset = 0
    for line in text.split("\n"):
        yield offset, line
        offset += len(line) + 1


def _until_fence_closes(lines: Iterator[tuple[int, str]], marker: str) -> Iterator[tuple[int, str]]:
    for start, line in lines:
        stripped = line.strip()
        if stripped and set(stripped) == {marker[0]} and len(stripped) >= len(marker):
            return
        yield start, line.rstrip()


def blocks_text(blocks: list[Block]) -> str:
    """The canonical text of `blocks`: what text_blocks reads back as the same blocks."""
    return "\n\n".join(_block_text(block) for block in blocks)


def _block_text(block: Block) -> str:
    if block.kind == "heading":
        return f"{'#' * block.level} {block.text}"
    if block.kind == "code":
        return fenced(block.text, info=block.info)
    return block.text


def fenced(code: str, *, info: str = "") -> str:
    """`code` in a fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{code}\n{fence}"


def normalize_blocks(blocks: list[Block]) -> list[Block]:
    """Paragraphs and headings with runs of spaces collapsed, code as it is; empty blocks go."""
    normalized: list[Block] = []
    for block in blocks:
        if block.kind == "code":
            lines = [line.rstrip().replace("\t", "    ") for line in block.text.split("\n")]
            code = "\n".join(lines).strip("\n")
            if code.strip():
                normalized.append(Block("code", code, info=block.info))
            continue
        words = re.sub(r"[ \t\f\v\u00a0]+", " ", block.text)
        lines = [line.strip() for line in words.split("\n") if line.strip()]
        words = "\n".join(_as_prose(line) for line in lines) if block.kind == "text" else " ".join(lines)
        if words:
            normalized.append(Block(block.kind, words, level=block.level, info=block.info))
    return normalized


def prose(text: str) -> str:
    """`text` that is not Markdown (plain text, a PDF's, an HTML paragraph's) with each line
    that would read as a heading or a fence indented so that it reads as text."""
    return "\n".join(_as_prose(line) for line in text.split("\n"))


def _as_prose(line: str) -> str:
    # Four spaces: more than a heading or a fence may be indented.
    return f"    {line.strip()}" if HEADING.match(line) or FENCE.match(line) else line


def text_sections(text: str) -> list[Section]:
    """The text's blocks grouped under the heading path above them (h1..h4)."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    current: list[Block] = []

    def close() -> None:
        if current:
            sections.append(Section(tuple(words for _, words in path), tuple(current)))
            current.clear()

    blocks = text_blocks(text)
    if all(block.kind == "heading" for block in blocks):  # headings alone: they are the text
        return [Section((), tuple(Block("text", block.text) for block in blocks))] if blocks else []
    for block in blocks:
        if block.kind == "heading" and block.level <= SECTION_DEPTH:
            close()
            while path and path[-1][0] >= block.level:
                path.pop()
            path.append((block.level, block.text))
        elif block.kind == "heading":  # a deeper heading reads as a line of the text
            current.append(Block("text", block.text))
        else:
            current.append(block)
    close()
    return sections


def section_label(title: str, path: tuple[str, ...]) -> str:
    """A section's name as citations show it: its heading path, led by the document's title
    unless the top heading already says it ("7. Input and Output › 7.2 Reading and Writing Files")."""
    parts = list(path)
    if title and not (parts and _same_words(parts[0], title)):
        parts.insert(0, title)
    return SECTION_SEPARATOR.join(parts)


def _same_words(heading: str, title: str) -> bool:
    """Sphinx titles add the site's name: "7. Input and Output — Python 3.11.2 documentation"."""
    heading, title = heading.casefold().strip(), title.casefold().strip()
    return bool(heading) and (title == heading or title.startswith(heading + " "))
