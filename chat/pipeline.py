"""The RAG pipeline: normalize -> embed -> retrieve -> generate, every stage timed.

Each expensive stage is one function (`question_embedding`, `passages_search`,
`answer_generate`): the seams where the speed layer's cache layers plug in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.urls import reverse

from chat.generators import Generator, Passage, Usage, get_generator
from chat.generators.base import NO_PASSAGES
from documents.embedding import Embedder, embedder_for_space, get_embedder
from documents.selectors import (
    chunk_distances,
    chunks_by_ids,
    chunks_full_text,
    chunks_nearest,
    collections_by_space,
    one_snapshot,
)
from documents.textblocks import text_blocks
from ragcache import keys
from ragcache.layers import CacheRequest, Policy, SemanticEntry, SemanticHit
from ragsite import metrics

# Reciprocal-rank fusion: a chunk scores weight / (RRF_K + rank) on each list it is on.
RRF_K = 60
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


@dataclass(frozen=True)
class DenseQuery:
    """The collections searched in one embedding space, and the question's vector in it
    (None where no provider of that space runs here: they are searched by their words)."""

    space: str
    collection_ids: list[int]
    vector: np.ndarray | None


def question_embedding(question: str, embedder: Embedder | None = None) -> np.ndarray:
    return (embedder or get_embedder()).embed([question])[0]


def question_dense(
    question: str, collection_ids: Sequence[int], embed: Callable[[Embedder], np.ndarray] | None = None
) -> list[DenseQuery]:
    """The question embedded in each space the collections are searched in (one, but while a
    model change is under way), by `embed` (the pipeline's goes through the emb layer)."""
    embed = embed or (lambda embedder: question_embedding(question, embedder))
    return [
        DenseQuery(space, ids, embed(embedder) if embedder else None)
        for space, ids in collections_by_space(collection_ids).items()
        for embedder in [embedder_for_space(space)]
    ]


def passages_search(*, question: str, dense: Sequence[DenseQuery], k: int, mode: str) -> list[Passage]:
    """The k best passages of the collections of `dense`: the nearest chunks in each space,
    fused with the full-text search over all of them in hybrid mode."""
    candidates = settings.RETRIEVAL_CANDIDATES
    embedded = [(q, q.vector) for q in dense if q.vector is not None]
    with one_snapshot():
        found = [
            chunks_nearest(embedding=vector, space=q.space, collection_ids=q.collection_ids, limit=candidates)
            for q, vector in embedded
        ]
        weights = [1.0] * len(found)
        if mode == "hybrid" or len(embedded) < len(dense):
            scope = {q.space: q.collection_ids for q in dense}
            found.append(list(chunks_full_text(text=question, scope=scope, limit=candidates)))
            weights.append(settings.RETRIEVAL_FULL_TEXT_WEIGHT)
        by_id = {chunk.pk: chunk for chunks in reversed(found) for chunk in chunks}  # the dense side's: measured
        scores = reciprocal_rank_fusion([[chunk.pk for chunk in chunks] for chunks in found], weights)
        best = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))[:k]
        chunks = [by_id[chunk_id] for chunk_id in best]
        # Found by their words alone, these have no distance yet: the answerer needs it.
        distances: dict[int, float] = {}
        for query, vector in embedded:
            unmeasured = [
                chunk.pk for chunk in chunks
                if getattr(chunk, "distance", None) is None and chunk.document.collection_id in query.collection_ids
            ]  # fmt: skip
            distances.update(chunk_distances(ids=unmeasured, embedding=vector))
    return [
        Passage(
            chunk_id=chunk.pk,
            document_id=chunk.document_id,
            title=chunk.document.title,
            text=chunk.text,
            content_hash=chunk.content_hash,
            score=round(scores[chunk.pk], 6),
            section=chunk.section,
            similarity=round(1.0 - distances.get(chunk.pk, getattr(chunk, "distance", 1.0)), 4),
        )
        for chunk in chunks
    ]


def retrieval_settings() -> str:
    """Everything besides the question and the scope that changes what retrieval returns:
    part of its cache key."""
    mode = settings.RETRIEVAL_MODE
    weight = f"-w{settings.RETRIEVAL_FULL_TEXT_WEIGHT:g}" if mode == "hybrid" else ""
    return f"{mode}-c{settings.RETRIEVAL_CANDIDATES}{weight}"


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], weights: Sequence[float] | None = None
) -> dict[int, float]:
    """A chunk scores weight / (RRF_K + rank) on each ranking it is on (weights default to 1)."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank)
    return scores


def answer_generate(*, generator: Generator, question: str, passages: Sequence[Passage]) -> Iterator[str | Usage]:
    if not passages:
        yield NO_PASSAGES
        return
    yield from generator.stream(question=question, passages=passages)


def answer_stream(
    *,
    question: str,
    collection_ids: Sequence[int],
    generator: Generator | None = None,
    cache_policy: Policy | None = None,
    catalog_version: int | None = None,
) -> Iterator[tuple[str, Any]]:
    """("token", text) for each piece of the answer as it comes, then ("answer", Answer).

    The speed layer answers what it can: one Redis round trip for a fully cached answer,
    which replays through this same stream. A failing generator raises GenerationError
    after the tokens it gave; nothing of a failed answer is cached or returned as one.
    """
    trace = Trace()
    cache = CacheRequest(policy=cache_policy or Policy())
    try:
        yield from _answer_steps(
            question=question, collection_ids=collection_ids, generator=generator or get_generator(),
            catalog_version=catalog_version, trace=trace, cache=cache,
        )  # fmt: skip
    finally:  # locks this ask still holds go now, not at their TTL
        cache.finish()
        metrics.cache_observe(cache.trace)


def _answer_steps(
    *,
    question: str,
    collection_ids: Sequence[int],
    generator: Generator,
    catalog_version: int | None,
    trace: Trace,
    cache: CacheRequest,
) -> Iterator[tuple[str, Any]]:
    with trace.stage("normalize"):
        normalized = question_normalize(question)
        cache_question = keys.cache_question(normalized)
    embed_model = get_embedder().model_name
    k, mode = settings.RETRIEVAL_TOP_K, settings.RETRIEVAL_MODE
    retrieval_config = retrieval_settings()
    cacheable = generator.deterministic
    found = cache.lookup(
        collection_ids=collection_ids, embed_model=embed_model, mode=retrieval_config, k=k, question=cache_question,
        generator=generator.cache_id, prompt_version=generator.prompt_version, answer_cacheable=cacheable,
        catalog_version=catalog_version,
    )  # fmt: skip
    if found.answer is not None:
        yield from _replay(found.answer, trace, cache, generator)
        return

    embedding: np.ndarray | None = None
    sem_key = None
    # A retrieval missed by the lookup may be on its way from a concurrent ask: wait for it.
    retrieval = found.retrieval or cache.retrieval_claim(
        tag=found.tag, scope=found.scope, embed_model=embed_model, mode=retrieval_config, k=k, question=cache_question
    )
    passages = None
    if retrieval is not None:
        with trace.stage("retrieve"):
            passages = _passages_from_entry(retrieval)
    if passages is None:

        def embed(embedder: Embedder) -> np.ndarray:
            def compute() -> np.ndarray:
                with trace.stage("embed"):  # the model's time only; the emb layer's is in the trace's cache part
                    return question_embedding(cache_question, embedder)

            return cache.embedding(tag=found.tag, model=embedder.model_name, question=cache_question,
                                   dimensions=embedder.dimensions, compute=compute)  # fmt: skip

        dense = question_dense(cache_question, collection_ids, embed)
        # The semantic layer compares questions in one space: the scope's, but mid-change.
        embedding = dense[0].vector if len(dense) == 1 else None
        searched: list[list[Passage]] = []  # retrieval, once: for the semantic layer's context check or the answer

        def search() -> list[Passage]:
            if not searched:
                with trace.stage("retrieve"):
                    searched.append(passages_search(question=normalized, dense=dense, k=k, mode=mode))
            return searched[0]

        near = None
        if found.scope is not None and cacheable and embedding is not None:
            sem_key = keys.sem(found.tag, embed_model, generator.cache_id, generator.prompt_version)
            near = cache.semantic_answer(sem_key=sem_key, scope=found.scope, vector=embedding, question=normalized,
                                         found=found.semantic,
                                         context=lambda: [p.content_hash for p in search()])  # fmt: skip
        if near is None or searched:  # a retrieval made for the context check is kept too
            cache.retrieval_store(
                tag=found.tag, scope=found.scope, embed_model=embed_model, mode=retrieval_config, k=k,
                question=cache_question,
                entry=_retrieval_entry(search(), question=normalized,
                                       ms=trace.stages.get("embed", 0) + trace.stages["retrieve"]),
            )  # fmt: skip
        if near is not None:
            yield from _replay(near.value, trace, cache, generator, similar=near)
            return
        passages = search()

    context = keys.context_digest(_context(passages))
    answer_key = keys.ans(found.tag, generator.cache_id, generator.prompt_version, cache_question)
    # The lookup script counted the answer's miss when it found the retrieval.
    counted = cache.trace.get("ans", {}).get("outcome") == "miss"
    with cache.answer_claim(answer_key, context=context, cacheable=cacheable, counted=counted) as cached:
        if cached is not None:
            yield from _replay(cached, trace, cache, generator)
            return
        pieces: list[str] = []
        usage: Usage | None = None
        start = time.perf_counter()
        for piece in answer_generate(generator=generator, question=normalized, passages=passages):
            if isinstance(piece, Usage):
                usage = piece
                continue
            pieces.append(piece)
            yield "token", piece
        generate_ms = round((time.perf_counter() - start) * 1000, 2)
        trace.stages["generate"] = generate_ms
        text = "".join(pieces)
        value = {
            "q": normalized,  # shown in the cache panel beside the answer
            "text": text,
            "citations": citations_for(text, passages),
            "ms": generate_ms,
            "prompt_tokens": (usage.prompt_tokens or 0) if usage else 0,
            "completion_tokens": (usage.completion_tokens or 0) if usage else 0,
            "cost_usd": (usage.cost_usd or 0.0) if usage else 0.0,
            "has_usage": usage is not None,
            "has_cost": bool(usage and usage.cost_usd is not None),
            "usage_estimated": bool(usage and usage.estimated),
        }
        if cacheable and passages and text.strip():
            semantic = None
            if sem_key and found.scope is not None and embedding is not None:
                semantic = SemanticEntry(key=sem_key, scope=found.scope, question=normalized, vector=embedding,
                                         context=[p.content_hash for p in passages])  # fmt: skip
            cache.answer_store(tag=found.tag, key=answer_key, context=context, value=value,
                               document_ids={p.document_id for p in passages}, semantic=semantic)  # fmt: skip
    cache.flush()
    yield "answer", _answer(value, trace, cache, generator, from_cache=False)


def _replay(
    value: dict[str, Any], trace: Trace, cache: CacheRequest, generator: Generator, similar: SemanticHit | None = None
) -> Iterator[tuple[str, Any]]:
    """A cached answer, through the same stream as a fresh one: all of it at once."""
    cache.flush()
    yield "token", value["text"]
    yield "answer", _answer(value, trace, cache, generator, from_cache=True, similar=similar)


def _answer(
    value: dict[str, Any],
    trace: Trace,
    cache: CacheRequest,
    generator: Generator,
    *,
    from_cache: bool,
    similar: SemanticHit | None = None,
) -> Answer:
    trace.cache = cache.trace
    has_usage = value.get("has_usage", False)
    return Answer(
        text=value["text"],
        citations=value["citations"],
        trace=trace.as_dict(
            generator=generator.name,
            model=generator.model,
            retrieval=settings.RETRIEVAL_MODE,
            from_cache=from_cache,
            # The earlier question whose answer this is, when it was a similar one.
            similar_question=similar.question if similar else None,
            prompt_tokens=value["prompt_tokens"] if has_usage else None,
            completion_tokens=value["completion_tokens"] if has_usage else None,
            cost_usd=value["cost_usd"] if value.get("has_cost") else None,
            usage_estimated=bool(value.get("usage_estimated")),
        ),
    )


def _context(passages: Sequence[Passage]) -> list[list[Any]]:
    """What an answer depends on besides the question: the passages, in rank order."""
    return [[p.content_hash, p.document_id, p.title] for p in passages]


def _retrieval_entry(passages: Sequence[Passage], *, question: str, ms: float) -> dict[str, Any]:
    return {
        "q": question,
        "passages": [
            [p.chunk_id, p.document_id, p.title, p.content_hash, p.score, p.section, p.similarity] for p in passages
        ],
        "ctx": keys.context_digest(_context(passages)),
        "ms": ms,
    }


def _passages_from_entry(entry: dict[str, Any]) -> list[Passage] | None:
    """Passages of a cached retrieval, with their text from the database (needed only to
    generate); None if a chunk has gone since, which a generation bump normally prevents."""
    rows = entry["passages"]
    chunks = {c.pk: c for c in chunks_by_ids(ids=[row[0] for row in rows])}
    if len(chunks) != len(rows):
        return None
    return [
        Passage(
            chunk_id=cid,
            document_id=did,
            title=title,
            text=chunks[cid].text,
            content_hash=chash,
            score=score,
            section=section,
            similarity=similarity,
        )
        for cid, did, title, chash, score, section, similarity in rows
    ]


def answer(
    *,
    question: str,
    collection_ids: Sequence[int],
    generator: Generator | None = None,
    cache_policy: Policy | None = None,
    catalog_version: int | None = None,
) -> Answer:
    """The whole answer. ScopeUnverified when `catalog_version` (the catalog copy the
    collection ids came from) is not the current one."""
    events = answer_stream(
        question=question, collection_ids=collection_ids, generator=generator, cache_policy=cache_policy,
        catalog_version=catalog_version,
    )  # fmt: skip
    for kind, value in events:
        if kind == "answer":
            return value  # type: ignore[no-any-return]
    raise AssertionError("answer_stream ends with an answer")


def citations_for(text: str, passages: Sequence[Passage]) -> list[dict[str, Any]]:
    """The passages the answer cites, in citation-number order (all of them if it cites none)."""
    # An index in quoted code ("sys.argv[3]") is not a citation.
    prose = " ".join(block.text for block in text_blocks(text) if block.kind != "code")
    cited = sorted({int(n) for n in CITATION.findall(prose) if 1 <= int(n) <= len(passages)})
    numbers = cited or list(range(1, len(passages) + 1))
    return [
        {
            "number": number,
            "title": passages[number - 1].title,
            "section": passages[number - 1].label,
            "document_id": passages[number - 1].document_id,
            # The passage by content, not by row: chunk rows are replaced on every ingestion.
            "passage": passages[number - 1].content_hash,
            "url": reverse("chat:source", args=[passages[number - 1].document_id])
            + f"?passage={passages[number - 1].content_hash}#passage",
        }
        for number in numbers
    ]
