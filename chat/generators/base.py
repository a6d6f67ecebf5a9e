from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# The answer when retrieval found no passage at all; it reads as a decline.
NO_PASSAGES = "I found nothing about that in the selected collections."


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk as the generator sees it; numbered from 1 in citations."""

    chunk_id: int
    document_id: int
    title: str
    text: str
    content_hash: str
    score: float  # the fused rank score: orders passages, says nothing of relevance
    section: str = ""  # page title and heading path ("7. Input and Output › 7.2 Reading and Writing Files")
    similarity: float | None = None  # cosine similarity of the chunk to the question; None: not measured

    @property
    def label(self) -> str:
        return self.section or self.title


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None when the model has no price in settings
    estimated: bool = False  # counted here with a tokenizer: the server reported none


class GenerationError(Exception):
    """The generator failed (unreachable, timed out, cut off); the message is shown to the user."""


class Generator:
    name: str
    model: str
    # Changes whenever the way the answer is written changes, so older answers are not reused.
    prompt_version: str = "1"
    # True when the same question and context always give the same answer (cacheable).
    deterministic: bool = True

    @property
    def cache_id(self) -> str:
        """What, besides the prompt, decides the answer: part of the answer's cache key."""
        return f"{self.name}:{self.model}"

    def stream(self, *, question: str, passages: Sequence[Passage]) -> Iterator[str | Usage]:
        """Pieces of the answer as they come, then at most one Usage."""
        raise NotImplementedError
