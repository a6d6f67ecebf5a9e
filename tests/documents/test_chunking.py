from __future__ import annotations

import re

import pytest

from documents.chunking import chunk_text
from documents.embedding.local import LocalEmbedder


def count_words(texts):
    return [len(text.split()) for text in texts]


def sentence(n: int, words: int = 9) -> str:
    return " ".join(f"w{n}x{i}" for i in range(words - 1)).capitalize() + f" end{n}."


def test_short_text_is_one_chunk():
    chunks = chunk_text("One sentence. Another one.", count_tokens=count_words, size=50, overlap=10)
    assert [c.text for c in chunks] == ["One sentence. Another one."]
    assert chunks[0].token_count == 4


def test_chunks_hold_whole_sentences_within_the_size_and_lose_nothing():
    sentences = [sentence(n) for n in range(40)]  # 9 words each
    text = " ".join(sentences)
    chunks = chunk_text(text, count_tokens=count_words, size=50, overlap=0)
    assert all(c.token_count <= 50 for c in chunks)
    assert all(len(c.text.split()) == c.token_count for c in chunks)
    rebuilt = " ".join(c.text for c in chunks)
    assert rebuilt == text  # no overlap: the chunks are the text, in order
    for chunk in chunks:
        assert chunk.text[0].isupper() and chunk.text.endswith(".")  # sentence boundaries


def test_consecutive_chunks_overlap_by_whole_sentences_up_to_the_overlap():
    text = " ".join(sentence(n) for n in range(30))
    chunks = chunk_text(text, count_tokens=count_words, size=50, overlap=20)
    assert len(chunks) > 3
    for previous, following in zip(chunks, chunks[1:], strict=False):
        first_sentences = re.findall(r"W\d+x0 .*? end\d+\.", following.text)
        shared = [s for s in first_sentences if s in previous.text]
        assert shared, "each chunk starts with the end of the previous one"
        assert 0 < sum(len(s.split()) for s in shared) <= 20
        assert following.text.startswith(shared[0])
    every_sentence = {f"end{n}." for n in range(30)}
    assert every_sentence <= {w for c in chunks for w in c.text.split()}


def test_a_chunk_closes_at_a_paragraph_break_instead_of_splitting_the_next_paragraph():
    first = " ".join(sentence(n) for n in range(4))  # 36 words
    second = " ".join(sentence(n) for n in range(10, 13))  # 27 words
    chunks = chunk_text(f"{first}\n\n{second}", count_tokens=count_words, size=50, overlap=0)
    assert [c.text for c in chunks] == [first, second]


def test_small_paragraphs_share_a_chunk_separated_by_a_blank_line():
    chunks = chunk_text("Tea is good.\n\nCoffee too.", count_tokens=count_words, size=50, overlap=0)
    assert [c.text for c in chunks] == ["Tea is good.\n\nCoffee too."]


def test_a_sentence_longer_than_a_chunk_is_cut_between_words():
    long_sentence = " ".join(f"word{i}" for i in range(120)) + "."
    chunks = chunk_text(long_sentence, count_tokens=count_words, size=50, overlap=10)
    assert [c.token_count for c in chunks] == [50, 50, 20]
    assert " ".join(c.text for c in chunks) == long_sentence


def test_a_word_longer_than_a_chunk_is_cut_into_pieces():
    blob = "x" * 500
    chunks = chunk_text(blob, count_tokens=lambda texts: [len(t) for t in texts], size=100, overlap=0)
    assert "".join(c.text for c in chunks) == blob
    assert all(c.token_count <= 100 for c in chunks)


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (50, 50), (50, -1)])
def test_impossible_sizes_are_refused(size, overlap):
    with pytest.raises(ValueError):
        chunk_text("Text.", count_tokens=count_words, size=size, overlap=overlap)


def test_real_chunks_fit_the_embedders_window(embedder: LocalEmbedder):
    prose = " ".join(
        f"Sentence {n} explains how the tokenizer splits unfamiliar words like pgvector, HNSW and Celery's acks_late."
        for n in range(200)
    )
    chunks = chunk_text(prose, count_tokens=embedder.count_tokens, size=254, overlap=40)
    assert len(chunks) > 5
    tokenizer = embedder.model.tokenizer
    for chunk in chunks:
        with_specials = len(tokenizer(chunk.text)["input_ids"])
        assert with_specials == chunk.token_count + embedder.special_tokens
        assert with_specials <= embedder.max_input_tokens
