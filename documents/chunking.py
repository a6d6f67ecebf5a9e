"""Split text into chunks measured in the embedder's tokens.

Chunks are built from whole sentences, close at a paragraph break when one is near,
and start with the last sentences of the previous chunk (the overlap). A sentence
longer than a chunk is cut between words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CountTokens = Callable[[Sequence[str]], list[int]]

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
# Close a chunk at a paragraph break once it is this full, rather than split the next paragraph.
PARAGRAPH_BREAK_FILL = 0.6


@dataclass(frozen=True)
class TextChunk:
    text: str
    token_count: int  # content tokens; the embedder adds its special tokens


@dataclass(frozen=True)
class _Unit:
    text: str
    tokens: int
    paragraph: int


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
        starts_paragraph = bool(current) and unit.paragraph != current[-1].paragraph
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


def _units(text: str, *, count_tokens: CountTokens, size: int) -> list[_Unit]:
    sentences: list[tuple[int, str]] = []
    for number, block in enumerate(p for p in text.split("\n\n") if p.strip()):
        sentences.extend((number, s.strip()) for s in SENTENCE_END.split(block) if s.strip())
    counts = count_tokens([s for _, s in sentences]) if sentences else []
    units: list[_Unit] = []
    for (paragraph, sentence), tokens in zip(sentences, counts, strict=True):
        if tokens <= size:
            units.append(_Unit(sentence, tokens, paragraph))
        else:
            units.extend(_split_long(sentence, paragraph, count_tokens=count_tokens, size=size))
    return units


def _split_long(sentence: str, paragraph: int, *, count_tokens: CountTokens, size: int) -> list[_Unit]:
    words = sentence.split()
    counts = count_tokens(words)
    if max(counts) > size:  # a "word" longer than a chunk (a URL, a blob): cut it into pieces
        words = [piece for word in words for piece in _pieces(word, size)]
        counts = count_tokens(words)
    units: list[_Unit] = []
    window: list[str] = []
    window_tokens = 0
    for word, tokens in zip(words, counts, strict=True):
        if window and window_tokens + tokens > size:
            units.append(_Unit(" ".join(window), window_tokens, paragraph))
            window, window_tokens = [], 0
        window.append(word)
        window_tokens += tokens
    if window:
        units.append(_Unit(" ".join(window), window_tokens, paragraph))
    return units


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
            parts.append("\n\n" if unit.paragraph != units[index - 1].paragraph else " ")
        parts.append(unit.text)
    return TextChunk(text="".join(parts), token_count=sum(u.tokens for u in units))
