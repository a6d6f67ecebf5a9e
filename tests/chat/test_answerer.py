"""The offline answerer's rules: code brought whole, no headings, a plain decline."""

from __future__ import annotations

from html import escape

import pytest

from chat.generators.base import NO_PASSAGES, Passage
from chat.generators.extractive import NO_LLM_NOTE, NOT_ANSWERED, ExtractiveGenerator
from chat.generators.openai import SYSTEM_PROMPT, build_messages
from chat.pipeline import answer
from chat.rendering import answer_html
from ragcache.layers import Policy
from tests.chat.factories import document_ingested, handbook

CODE = ">>> from math import pi\n>>> [str(round(pi, i)) for i in range(1, 4)]\n['3.1', '3.14', '3.142']"
COMPREHENSIONS = (
    "Nested List Comprehensions\n\n"
    "List comprehensions can contain complex expressions and nested functions:\n\n"
    f"```\n{CODE}\n```\n\n"
    "The initial expression in a list comprehension can be any arbitrary expression."
)


def passage(text: str, *, number: int = 1, similarity: float | None = None, section: str = "") -> Passage:
    return Passage(chunk_id=number, document_id=number, title=f"page {number}", text=text, content_hash=str(number),
                   score=0.1, section=section, similarity=similarity)  # fmt: skip


def answered(question: str, passages: list[Passage]) -> str:
    return "".join(str(piece) for piece in ExtractiveGenerator().stream(question=question, passages=passages))


def test_a_sentence_ending_with_a_colon_brings_the_code_after_it_whole_as_code():
    text = answered("Can list comprehensions contain nested functions?", [passage(COMPREHENSIONS)])
    assert "“List comprehensions can contain complex expressions and nested functions:” [1]" in text
    assert f"\n\n```\n{CODE}\n```" in text
    html = answer_html(text=text, citations=[])
    assert f"<pre><code>{escape(CODE, quote=False)}\n</code></pre>" in html  # its lines kept


def test_a_sentence_ending_with_a_colon_is_not_quoted_without_its_code():
    text = answered("Can list comprehensions contain nested functions?", [passage(
        "List comprehensions can contain complex expressions and nested functions:"
    )])  # fmt: skip
    assert "nested functions:”" not in text


def test_a_heading_is_never_quoted_as_an_answer():
    text = answered("What are nested list comprehensions?", [passage(COMPREHENSIONS)])
    assert "“Nested List Comprehensions”" not in text
    assert "“The initial expression in a list comprehension can be any arbitrary expression.” [1]" in text


def test_the_best_ranked_passage_is_quoted_first_and_another_page_before_more_of_the_same():
    sorting = (
        "Sorting tuples compares their first items first. Sorting tuples then compares the second items. "
        "Sorting tuples of equal items keeps their order."
    )
    passages = [
        passage("Tuples are immutable sequences of any objects.", number=1),
        passage(sorting, number=2),
        passage("Sorting tuples of strings compares the strings alphabetically.", number=3),
    ]
    text = answered("How does sorting tuples work?", passages)
    assert "“Tuples are immutable sequences of any objects.” [1]" in text
    assert text.count("[2]") == 1 and text.count("[3]") == 1


def test_below_the_calibrated_relevance_it_declines_and_names_the_closest_sections(settings):
    settings.ANSWER_MIN_SIMILARITY = 0.4
    passages = [
        passage("Pickle protocol 5 adds out-of-band buffers.", number=1, similarity=0.31, section="pickle › Protocols"),
        passage("Pickle protocol 4 adds large objects.", number=2, similarity=0.30, section="pickle › Protocols"),
        passage("Email policies control line endings.", number=3, similarity=0.22, section="email › Policies"),
    ]
    text = answered("How does the Zorblax protocol negotiate a session?", passages)
    assert text.startswith(NOT_ANSWERED) and NO_LLM_NOTE not in text
    assert "You may look at:" in text
    assert "- pickle › Protocols \\[1\\]" not in text  # the citation stays a citation
    assert "- pickle › Protocols [1]" in text and "- email › Policies [3]" in text
    assert text.count("pickle › Protocols") == 1 and "“" not in text

    close = [passage("Pickle protocol 5 adds out-of-band buffers.", similarity=0.41)]
    assert answered("Which pickle protocol adds out-of-band buffers?", close).startswith(NO_LLM_NOTE)


def test_a_passage_whose_similarity_was_not_measured_is_answered_from(settings):
    settings.ANSWER_MIN_SIMILARITY = 0.99
    assert answered("Which pickle protocol adds buffers?", [passage("Pickle protocol 5 adds buffers.")]).startswith(
        NO_LLM_NOTE
    )


@pytest.mark.django_db
def test_once_the_only_document_on_a_subject_is_deleted_the_answer_says_the_documents_do_not_answer():
    collection = handbook()
    protocol = document_ingested(collection, "zorblax.txt", (
        "The Zorblax protocol negotiates a session with a three-way handshake of HELLO, OFFER and ACCEPT frames. "
        "Each Zorblax frame carries a sixteen-bit session number."
    ))  # fmt: skip
    question = "How does the Zorblax protocol negotiate a session?"
    uncached = Policy(read=False, write=False)  # the answerer is under test here, not the invalidation
    before = answer(question=question, collection_ids=[collection.pk], cache_policy=uncached)
    assert before.text.startswith(NO_LLM_NOTE) and "HELLO, OFFER and ACCEPT" in before.text

    protocol.delete()
    after = answer(question=question, collection_ids=[collection.pk], cache_policy=uncached)
    assert after.text.startswith(NOT_ANSWERED) and "You may look at:" in after.text
    assert "Zorblax" not in after.text.replace(question, "")
    assert after.citations  # the closest pages, linked


def test_no_passage_at_all_reads_as_a_decline():
    assert "found nothing" in NO_PASSAGES


def test_the_language_model_is_told_to_say_when_the_passages_do_not_answer():
    messages = build_messages("How do I read a file?", [passage("Use open().", section="7. Input › 7.2 Files")])
    assert "do not answer" in SYSTEM_PROMPT and "may look at" in SYSTEM_PROMPT
    assert messages[1]["content"].startswith("Passages:\n\n[1] 7. Input › 7.2 Files\nUse open().")


def test_other_pages_are_quoted_only_where_they_match_the_question():
    passages = [
        passage("The first command-line argument is sys.argv[1]; sys.argv[0] is the script.", number=1),
        passage("Unrelated passage about tea brewing at home.", number=2),
        passage("Another one, about coffee grinders.", number=3),
    ]
    text = answered("How do I read the first command-line argument?", passages)
    assert "[1]" in text and "tea" not in text and "coffee" not in text


def test_an_index_in_quoted_code_is_not_a_citation():
    from chat.pipeline import citations_for

    passages = [passage(f"Passage {n} says something useful here.", number=n) for n in (1, 2, 3)]
    text = "“Read the arguments:” [1]\n\n```\nname = sys.argv[3]\n```"
    assert [c["number"] for c in citations_for(text, passages)] == [1]


def test_answers_given_under_another_decline_threshold_are_not_reused(settings):
    settings.ANSWER_MIN_SIMILARITY = 0.41
    before = ExtractiveGenerator().cache_id
    settings.ANSWER_MIN_SIMILARITY = 0.45
    assert ExtractiveGenerator().cache_id != before
