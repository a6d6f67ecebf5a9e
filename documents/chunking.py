"""Split text into chunks measured in the embedder's tokens.

A document is chunked section by section (documents.textblocks): a chunk never spans two
sections, and carries its section's label (page title and heading path), which is
embedded with it and weighs above the body in the full-text search. Chunks are built
from whole sentences and whole code blocks, close at a paragraph break when one is near,
and start with the last sentences of the previous chunk (the overlap). A sentence
longer than a chunk is cut between words, a code block between lines; a sentence that
ends with a colon stays with the code block it introduces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from documents.textblocks import Block, blocks_text, fenced, prose, section_label, text_blocks, text_sections

CountTokens = Callable[[Sequence[str]], list[int]]

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
MAX_PIECE_INFO_CHARS = 20  # a longer info string is not a language: pieces of a cut block go without it
# Close a chunk at a paragraph break once it is this full, rather than split the next paragraph.
PARAGRAPH_BREAK_FILL = 0.6
# A label (page title and heading path) takes at most this share of a chunk's tokens: a
# longer one is cut short, for the chunk's own text must have most of the room.
MAX_LABEL_SHARE = 0.25
FORMAT = 3  # Document.chunk_format: 2 = section-aware chunks, 3 = an API entry a section; older ones are re-ingested


@dataclass(frozen=True)
class TextChunk:
    text: str
    token_count: int  # content tokens (of the label and the text); the embedder adds its special tokens
    section: str = ""  # the section's label: page title and heading path

    @property
    def embedded_text(self) -> str:
        """What is embedded for the chunk: its section's label, then its text."""
        return f"{self.section}\n\n{self.text}" if self.section else self.text


@dataclass(frozen=True)
class _Unit:
    text: str
    tokens: int
    paragraph: int
    last_paragraph: int  # a sentence joined to the code block it introduces ends in the code's


def chunk_document(text: str, *, title: str, count_tokens: CountTokens, size: int, overlap: int) -> list[TextChunk]:
    """The chunks of a document's text, section by section, each labelled with its section."""
    sections = text_sections(text)
    labels = _labels_within([section_label(title, s.path) for s in sections], count_tokens, int(size * MAX_LABEL_SHARE))
    label_tokens = count_tokens(labels) if labels else []
    chunks: list[TextChunk] = []
    for section, label, tokens in zip(sections, labels, label_tokens, strict=True):
        body_size = size - tokens
        body = blocks_text(list(section.blocks))
        for piece in chunk_text(body, count_tokens=count_tokens, size=body_size, overlap=min(overlap, body_size // 2)):
            chunks.append(TextChunk(text=piece.text, token_count=piece.token_count + tokens, section=label))
    return chunks


def chunk_text(text: str, *, count_tokens: CountTokens, size: int, overlap: int) -> list[TextChunk]:
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"Need 0 <= overlap < size, got size={size}, overlap={overlap}.")
    units = _units(text, count_tokens=count_tokens, size=size)
    paragraph_tokens: dict[int, int] = {}
    for unit in units:
        paragraph_tokens[unit.paragraph] = paragraph_tokens.get(unit.paragraph, 0) + unit.tokens

    chunks: list[TextChunk] = []
    current: list[_Unit] = []
    fresh = 0  # units in `current` that no earlier chunk holds
    for unit in units:
        used = sum(u.tokens for u in current)
        starts_paragraph = bool(current) and unit.paragraph != current[-1].last_paragraph
        full = used + unit.tokens > size
        paragraph_break = (
            starts_paragraph and used >= size * PARAGRAPH_BREAK_FILL and used + paragraph_tokens[unit.paragraph] > size
        )
        if fresh and (full or paragraph_break):
            chunks.append(_join(current))
            current = _tail(current, overlap=overlap, room=size - unit.tokens)
            fresh = 0
        current.append(unit)
        fresh += 1
    if fresh:
        chunks.append(_join(current))
    return chunks


def _labels_within(labels: list[str], count_tokens: CountTokens, limit: int) -> list[str]:
    """The labels, each cut short (by characters, then checked) to at most `limit` tokens."""
    counts = count_tokens(labels) if labels else []
    fitted: list[str] = []
    for label, tokens in zip(labels, counts, strict=True):
        while label and tokens > limit:
            label = label[: max(int(len(label) * limit / tokens) - 1, 0)].rstrip()
            tokens = count_tokens([label])[0] if label else 0
        fitted.append(label)
    return fitted


def _units(text: str, *, count_tokens: CountTokens, size: int) -> list[_Unit]:
    pieces: list[tuple[int, str, Block | None]] = []  # (paragraph, text, the code block it fences)
    for number, block in enumerate(text_blocks(text)):
        if block.kind == "code":
            pieces.append((number, fenced(block.text, info=block.info), block))
        else:
            # A sentence that starts a line like a heading or a fence keeps reading as text.
            pieces.extend((number, prose(s.strip()), None) for s in SENTENCE_END.split(block.text) if s.strip())
    counts = count_tokens([piece for _, piece, _ in pieces]) if pieces else []
    units: list[_Unit] = []
    for (paragraph, piece, code), tokens in zip(pieces, counts, strict=True):
        introduces = bool(units) and units[-1].text.endswith(":") and units[-1].paragraph == paragraph - 1
        if code and introduces and units[-1].tokens + tokens <= size:
            before = units.pop()
            units.append(_Unit(f"{before.text}\n\n{piece}", before.tokens + tokens, before.paragraph, paragraph))
        elif tokens <= size:
            units.append(_Unit(piece, tokens, paragraph, paragraph))
        elif code:
            units.extend(_split_code(code, paragraph, count_tokens=count_tokens, size=size))
        else:
            units.extend(_split_long(piece, paragraph, count_tokens=count_tokens, size=size))
    return units


def _split_code(code: Block, paragraph: int, *, count_tokens: CountTokens, size: int) -> list[_Unit]:
    """A code block longer than a chunk, cut between lines into blocks that are each fenced."""
    lines = code.text.split("\n")
    language = code.info if len(code.info) <= MAX_PIECE_INFO_CHARS else ""
    fence = fenced(code.text).split("\n")[-1]  # the whole block's: no piece needs a longer one
    overhead = count_tokens([f"{fence}{language}\n\n{fence}"])[0]
    room = max(size - overhead, 1)
    counts = count_tokens(lines)
    if max(counts) > room:  # a line longer than a chunk: cut into pieces
        lines = [piece for line in lines for piece in (_pieces(line, room) if line else [line])]
        counts = count_tokens(lines)
    fenced_pieces = [fenced("\n".join(window), info=language) for window, _ in _windows(lines, counts, room)]
    return [
        _Unit(piece, tokens, paragraph, paragraph)
        for piece, tokens in zip(fenced_pieces, count_tokens(fenced_pieces), strict=True)
    ]


def _split_long(sentence: str, paragraph: int, *, count_tokens: CountTokens, size: int) -> list[_Unit]:
    words = sentence.split()
    counts = count_tokens(words)
    if max(counts) > size:  # a "word" longer than a chunk (a URL, a blob): cut it into pieces
        words = [piece for word in words for piece in _pieces(word, size)]
        counts = count_tokens(words)
    return [_Unit(" ".join(window), tokens, paragraph, paragraph) for window, tokens in _windows(words, counts, size)]


def _windows(items: list[str], counts: list[int], room: int) -> list[tuple[list[str], int]]:
    """`items` in order, grouped greedily into windows of at most `room` tokens (each holds
    one item at least), with each window's tokens."""
    windows: list[tuple[list[str], int]] = []
    window: list[str] = []
    window_tokens = 0
    for item, tokens in zip(items, counts, strict=True):
        if window and window_tokens + tokens > room:
            windows.append((window, window_tokens))
            window, window_tokens = [], 0
        window.append(item)
        window_tokens += tokens
    if window:
        windows.append((window, window_tokens))
    return windows


def _pieces(word: str, size: int) -> list[str]:
    # A word piece spans at least one character, so `size` characters make at most `size` tokens.
    return [word[start : start + size] for start in range(0, len(word), size)]


def _tail(units: list[_Unit], *, overlap: int, room: int) -> list[_Unit]:
    """The last whole units of a chunk that fit in the overlap and leave room for the next unit."""
    tail: list[_Unit] = []
    total = 0
    for unit in reversed(units):
        if total + unit.tokens > min(overlap, room):
            break
        tail.insert(0, unit)
        total += unit.tokens
    return tail


def _join(units: list[_Unit]) -> TextChunk:
    parts: list[str] = []
    for index, unit in enumerate(units):
        if index:
            parts.append("\n\n" if unit.paragraph != units[index - 1].last_paragraph else " ")
        parts.append(unit.text)
    return TextChunk(text="".join(parts), token_count=sum(u.tokens for u in units))
