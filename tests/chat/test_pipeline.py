from __future__ import annotations

import pytest

from chat.generators.base import Passage
from chat.generators.extractive import NO_LLM_NOTE, ExtractiveGenerator
from chat.pipeline import (
    NO_PASSAGES,
    answer,
    answer_stream,
    passages_search,
    question_dense,
    reciprocal_rank_fusion,
)
from tests.chat.factories import TEA, document_ingested, handbook

pytestmark = pytest.mark.django_db


def test_a_known_question_retrieves_and_cites_the_chunk_that_answers():
    collection = handbook()
    result = answer(question="How hot should the water be for green tea?", collection_ids=[collection.pk])
    assert result.citations[0]["title"] == "tea"
    assert "Green tea should be brewed with water at eighty degrees for two minutes." in result.text
    assert "[1]" in result.text
    assert result.text.startswith(NO_LLM_NOTE)
    assert result.citations[0]["url"].startswith(f"/sources/{result.citations[0]['document_id']}/?passage=")


def test_a_citation_names_the_section_of_the_passage_it_cites():
    collection = handbook()
    document_ingested(collection, "brewing.md", (
        "# Brewing\n\n## Green tea\n\nSteep sencha for one minute in water well below boiling.\n\n"
        "## Coffee\n\nGrind coffee beans coarsely for a French press."
    ))  # fmt: skip
    result = answer(question="How long should sencha steep?", collection_ids=[collection.pk])
    first = result.citations[0]
    assert first["title"] == "Brewing" and first["section"] == "Brewing › Green tea"
    assert "Steep sencha for one minute" in result.text


def test_a_words_place_in_a_heading_ranks_its_chunk_above_a_passing_mention():
    from documents.selectors import chunks_full_text

    collection = handbook()
    document_ingested(collection, "mention.txt", "Several tools help: gzip, tar, and the zipfile module, among others.")
    document_ingested(collection, "archives.md", "# Archives\n\n## zipfile\n\nRead and write archives of this kind.")
    found = list(chunks_full_text(text="zipfile", scope={"all-MiniLM-L6-v2": [collection.pk]}, limit=2))
    assert [chunk.document.original_filename for chunk in found] == ["archives.md", "mention.txt"]


def test_every_passage_carries_its_cosine_similarity_to_the_question_whichever_side_found_it(settings):
    import numpy as np

    from documents.models import Chunk

    collection = handbook()
    settings.RETRIEVAL_CANDIDATES = 2
    question = "What does error E4127 mean?"  # the release notes are found by the full-text side alone
    vectors = question_dense(question, [collection.pk])
    dense = passages_search(question=question, dense=vectors, k=5, mode="dense")
    found = passages_search(question=question, dense=vectors, k=5, mode="hybrid")
    assert "release-notes" in [p.title for p in found] and "release-notes" not in [p.title for p in dense]
    embedding = vectors[0].vector
    assert embedding is not None
    for passage in found:
        vector = np.asarray(Chunk.objects.get(pk=passage.chunk_id).embedding)
        cosine = float(vector @ embedding / (np.linalg.norm(vector) * np.linalg.norm(embedding)))
        assert passage.similarity == pytest.approx(cosine, abs=1e-3)


def test_a_rare_keyword_is_found_by_the_full_text_side(settings):
    collection = handbook()
    question = "What does error E4127 mean?"
    settings.RETRIEVAL_TOP_K = 3
    vectors = question_dense(question, [collection.pk])

    def titles(mode: str) -> list[str]:
        found = passages_search(question=question, dense=vectors, k=3, mode=mode)
        return [p.title for p in found]

    assert "release-notes" not in titles("dense")  # the embedding alone ranks the look-alikes first
    assert titles("hybrid")[0] == "release-notes"

    settings.RETRIEVAL_MODE = "hybrid"
    hybrid = answer(question=question, collection_ids=[collection.pk])
    assert "release-notes" in [c["title"] for c in hybrid.citations]
    assert "The upgrade tool reports E4127 when the disk is full." in hybrid.text


def test_retrieval_stays_inside_the_asked_collections():
    handbook()
    other = handbook("Other")
    elsewhere = document_ingested(other, "tea-notes.txt", "Oolong tea likes water at ninety degrees. " + TEA)
    result = answer(question="How hot should the water be for tea?", collection_ids=[other.pk])
    assert {c["document_id"] for c in result.citations} <= set(other.documents.values_list("pk", flat=True))
    assert elsewhere.pk in {c["document_id"] for c in result.citations}


def test_the_answer_streams_in_pieces_then_carries_a_trace():
    collection = handbook()
    events = list(answer_stream(question="How do I fix a flat tyre?", collection_ids=[collection.pk]))
    tokens = [value for kind, value in events if kind == "token"]
    assert len(tokens) >= 2
    kind, result = events[-1]
    assert kind == "answer" and result.text == "".join(tokens)
    trace = result.trace
    assert set(trace["stages"]) == {"normalize", "embed", "retrieve", "generate"}
    assert all(ms >= 0 for ms in trace["stages"].values())
    assert trace["total_ms"] >= trace["stages"]["embed"] + trace["stages"]["retrieve"]
    assert (trace["generator"], trace["retrieval"], trace["cost_usd"]) == ("extractive", "hybrid", None)


def test_a_question_in_an_empty_scope_says_nothing_matches():
    result = answer(question="How do I fix a flat tyre?", collection_ids=[])
    assert result.text == NO_PASSAGES and result.citations == []


def test_reciprocal_rank_fusion_rewards_chunks_on_both_lists():
    scores = reciprocal_rank_fusion([[1, 2, 3], [3, 4]])
    assert max(scores, key=scores.__getitem__) == 3
    assert scores[1] == pytest.approx(1 / 61) and scores[3] == pytest.approx(1 / 63 + 1 / 61)


def test_the_extractive_answer_is_deterministic_and_cites_its_sentences():
    passages = [
        Passage(chunk_id=1, document_id=1, title="a", text="Cats sleep a lot. Cats purr when happy.",
                content_hash="x", score=0.1),
        Passage(chunk_id=2, document_id=2, title="b", text="Dogs bark at strangers and chase cars.",
                content_hash="y", score=0.05),
    ]  # fmt: skip
    generator = ExtractiveGenerator()
    first = "".join(str(p) for p in generator.stream(question="Why do dogs bark?", passages=passages))
    again = "".join(str(p) for p in generator.stream(question="Why do dogs bark?", passages=passages))
    assert first == again
    assert "“Dogs bark at strangers and chase cars.” [2]" in first
