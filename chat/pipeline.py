"""The RAG pipeline: normalize -> embed -> retrieve -> generate, every stage timed.

Each expensive stage is one function (`question_embedding`, `passages_search`,
`answer_generate`): the seams where the speed layer's cache layers plug in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.urls import reverse

from chat.generators import Generator, Passage, Usage, get_generator
from documents.embedding import get_embedder
from documents.selectors import chunks_by_ids, chunks_full_text, chunks_nearest

# Reciprocal-rank fusion: a chunk scores 1 / (RRF_K + rank) on each list it is on.
RRF_K = 60
NO_PASSAGES = "No passage in the selected collections matches the question."
CITATION = re.compile(r"\[(\d+)\]")


@dataclass
class Trace:
    """Milliseconds per stage, and (from the speed layer) each cache layer's outcome."""

    stages: dict[str, float] = field(default_factory=dict)
    cache: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = round((time.perf_counter() - start) * 1000, 2)

    def as_dict(self, **extra: Any) -> dict[str, Any]:
        total = round((time.perf_counter() - self.started) * 1000, 2)
        return {"total_ms": total, "stages": dict(self.stages), "cache": dict(self.cache), **extra}


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[dict[str, Any]]
    trace: dict[str, Any]


def question_normalize(question: str) -> str:
    return " ".join(question.split())


def question_embedding(question: str) -> np.ndarray:
    return get_embedder().embed([question])[0]


def passages_search(
    *, question: str, embedding: Sequence[float] | np.ndarray, collection_ids: Sequence[int], k: int, mode: str
) -> list[Passage]:
    candidates = settings.RETRIEVAL_CANDIDATES
    nearest = chunks_nearest(embedding=embedding, collection_ids=collection_ids, limit=candidates)
    rankings = [list(nearest.values_list("id", flat=True))]
    if mode == "hybrid":
        matching = chunks_full_text(text=question, collection_ids=collection_ids, limit=candidates)
        rankings.append(list(matching.values_list("id", flat=True)))
    scores = reciprocal_rank_fusion(rankings)
    best = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))[:k]
    return [
        Passage(
            chunk_id=chunk.pk,
            document_id=chunk.document_id,
            title=chunk.document.title,
            text=chunk.text,
            content_hash=chunk.content_hash,
            score=round(scores[chunk.pk], 6),
        )
        for chunk in chunks_by_ids(ids=best)
    ]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]]) -> dict[int, float]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    return scores


def answer_generate(*, generator: Generator, question: str, passages: Sequence[Passage]) -> Iterator[str | Usage]:
    if not passages:
        yield NO_PASSAGES
        return
    yield from generator.stream(question=question, passages=passages)


def answer_stream(
    *, question: str, collection_ids: Sequence[int], generator: Generator | None = None
) -> Iterator[tuple[str, Any]]:
    """("token", text) for each piece of the answer as it comes, then ("answer", Answer).

    A failing generator raises GenerationError after the tokens it gave: nothing of a
    failed answer is returned as an answer.
    """
    trace = Trace()
    generator = generator or get_generator()
    with trace.stage("normalize"):
        normalized = question_normalize(question)
    with trace.stage("embed"):
        embedding = question_embedding(normalized)
    with trace.stage("retrieve"):
        passages = passages_search(
            question=normalized,
            embedding=embedding,
            collection_ids=collection_ids,
            k=settings.RETRIEVAL_TOP_K,
            mode=settings.RETRIEVAL_MODE,
        )
    pieces: list[str] = []
    usage: Usage | None = None
    start = time.perf_counter()
    for piece in answer_generate(generator=generator, question=normalized, passages=passages):
        if isinstance(piece, Usage):
            usage = piece
            continue
        pieces.append(piece)
        yield "token", piece
    trace.stages["generate"] = round((time.perf_counter() - start) * 1000, 2)
    text = "".join(pieces)
    yield (
        "answer",
        Answer(
            text=text,
            citations=citations_for(text, passages),
            trace=trace.as_dict(
                generator=generator.name,
                model=generator.model,
                retrieval=settings.RETRIEVAL_MODE,
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=usage.completion_tokens if usage else None,
                cost_usd=usage.cost_usd if usage else None,
            ),
        ),
    )


def answer(*, question: str, collection_ids: Sequence[int], generator: Generator | None = None) -> Answer:
    for kind, value in answer_stream(question=question, collection_ids=collection_ids, generator=generator):
        if kind == "answer":
            return value  # type: ignore[no-any-return]
    raise AssertionError("answer_stream ends with an answer")


def citations_for(text: str, passages: Sequence[Passage]) -> list[dict[str, Any]]:
    """The passages the answer cites, in citation-number order (all of them if it cites none)."""
    cited = sorted({int(n) for n in CITATION.findall(text) if 1 <= int(n) <= len(passages)})
    numbers = cited or list(range(1, len(passages) + 1))
    return [
        {
            "number": number,
            "title": passages[number - 1].title,
            "document_id": passages[number - 1].document_id,
            "chunk_id": passages[number - 1].chunk_id,
            "url": reverse("chat:source", args=[passages[number - 1].document_id])
            + f"?passage={passages[number - 1].content_hash}#passage",
        }
        for number in numbers
    ]
