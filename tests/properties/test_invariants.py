"""Invariants that hold for any input, checked on many generated ones (hypothesis)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from chat.pipeline import question_normalize
from chat.services import first_non_text
from documents.chunking import chunk_text
from ragcache import keys

WORDS = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Zs", "Cc"]), min_size=1, max_size=12)
SENTENCES = st.lists(WORDS, min_size=1, max_size=30).map(lambda words: " ".join(words) + ".")
TEXTS = st.lists(SENTENCES, min_size=1, max_size=40).map(lambda sentences: " ".join(sentences))


def count_words(texts: Sequence[str]) -> list[int]:
    return [len(text.split()) for text in texts]


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, size=st.integers(min_value=4, max_value=60), overlap_share=st.floats(0, 0.9))
def test_every_word_of_the_text_lands_in_a_chunk_in_order_and_chunks_keep_their_size(text, size, overlap_share):
    overlap = min(int(size * overlap_share), size - 1)
    chunks = chunk_text(text, count_tokens=count_words, size=size, overlap=overlap)
    assert all(chunk.token_count <= size for chunk in chunks)
    # Read in order, each chunk minus what it repeats of the previous one gives the text back.
    words = text.split()
    position = 0
    for chunk in chunks:
        chunk_words = chunk.text.split()
        start = _resume(words, position, chunk_words)
        assert start is not None, (chunk.text, words[position : position + 5])
        assert position - start <= overlap  # it repeats at most the overlap
        position = start + len(chunk_words)
    assert position == len(words)


def _resume(words: list[str], position: int, chunk_words: list[str]) -> int | None:
    """Where `chunk_words` sits in `words`, starting at or before `position` (its overlap)."""
    for start in range(position, -1, -1):
        if words[start : start + len(chunk_words)] == chunk_words:
            return start
    return None


@given(st.text())
def test_normalizing_a_question_twice_changes_nothing(question):
    once = question_normalize(question)
    assert question_normalize(once) == once
    cached = keys.cache_question(once)
    assert keys.cache_question(cached) == cached


ANY_CHARACTER = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))  # lone surrogates too


@given(st.text(alphabet=ANY_CHARACTER))
def test_any_string_builds_a_key_surrogates_included(question):
    digest = keys.question_hash(keys.cache_question(question))
    assert re.fullmatch(r"[0-9a-f]{32}", digest)
    assert keys.emb(keys.scope_tag([1]), "model", keys.cache_question(question)).endswith(digest)


@given(st.text(alphabet=ANY_CHARACTER))
def test_a_question_is_text_exactly_when_it_has_no_surrogate_nul_or_control(question):
    bad = first_non_text(question)
    encodable = all(not 0xD800 <= ord(c) <= 0xDFFF for c in question)
    controls = any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 0x7F for c in question)
    assert (bad is None) == (encodable and not controls)
