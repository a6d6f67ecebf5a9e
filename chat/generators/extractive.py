"""A deterministic local answerer: the best sentences of the retrieved passages, cited.

It quotes prose, never a heading; a sentence that introduces code ("...like this:")
brings the code block after it, whole, as code. When no passage is close enough to the
question (ANSWER_MIN_SIMILARITY, calibrated by `make eval` on questions the corpus
cannot answer) it says the documents do not answer, and names the closest sections.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings

from chat.generators.base import NO_PASSAGES, Generator, Passage, Usage
from chat.rendering import markdown_escaped
from documents.textblocks import fenced, text_blocks

NO_LLM_NOTE = "No language model is configured, so this answer quotes the passages that best match the question."
NOT_ANSWERED = "Your documents do not answer this question: no passage in them is close enough to it."
SENTENCE = re.compile(r"(?<=[.!?:])\s+(?=[\"'(\[]?[A-Z0-9])")
SENTENCE_END = re.compile(r"[.!?:…][\"')\]]*$")
WORD = re.compile(r"\w+")
# One line of words reads better than the column a list literal becomes.
STOP_WORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it of on or that the this to was what when "  # noqa: SIM905
    "where which who why will with you your".split()
)
MAX_SENTENCES = 3
MAX_SENTENCE_CHARS = 400
MIN_SENTENCE_CHARS = 20
MAX_SUGGESTIONS = 3  # sections named when declining


@dataclass(frozen=True)
class Quote:
    number: int  # the passage's, from 1
    index: int  # the sentence's position in its passage
    sentence: str
    code: str = ""  # the code block the sentence introduces, if it ends with a colon


def terms(text: str) -> list[str]:
    return [stem(w) for w in WORD.findall(text.lower()) if w not in STOP_WORDS]


def stem(word: str) -> str:
    """A crude English stemmer: enough for "looping" to meet "loop" and "indexes" "index"."""
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def answerable(passages: Sequence[Passage]) -> bool:
    """False when every passage was measured and none is close enough to the question."""
    measured = [p.similarity for p in passages if p.similarity is not None]
    return len(measured) < len(passages) or max(measured, default=0.0) >= settings.ANSWER_MIN_SIMILARITY


class ExtractiveGenerator(Generator):
    name = "extractive"
    model = "extractive-v1"
    prompt_version = "3"  # 3: code brought whole, headings never quoted, declines below a relevance

    @property
    def cache_id(self) -> str:
        # Whether it declines depends on the threshold: answers under another one are not reused.
        return f"{self.name}:{self.model}:s{settings.ANSWER_MIN_SIMILARITY:g}"

    def stream(self, *, question: str, passages: Sequence[Passage]) -> Iterator[str | Usage]:
        if not passages:
            yield NO_PASSAGES
            return
        if not answerable(passages):
            yield from self.decline(passages)
            return
        yield NO_LLM_NOTE
        best = self.best_quotes(question, passages)
        if not best:  # nothing but code and headings: the citations below are the answer
            yield "\n\nNo passage has a sentence to quote; the closest are listed below."
        for quote in best:
            # A document's "__init__" or "a[1]" is quoted as it is, not as emphasis or a citation.
            yield f"\n\n“{markdown_escaped(quote.sentence)}” [{quote.number}]"
            if quote.code:
                yield "\n\n" + fenced(quote.code)

    def decline(self, passages: Sequence[Passage]) -> Iterator[str]:
        yield NOT_ANSWERED
        yield "\n\nYou may look at:\n"
        named: set[str] = set()
        for number, passage in enumerate(passages, start=1):
            if passage.label in named or len(named) == MAX_SUGGESTIONS:
                continue
            named.add(passage.label)
            yield f"\n- {markdown_escaped(passage.label)} [{number}]"

    def best_quotes(self, question: str, passages: Sequence[Passage]) -> list[Quote]:
        """Up to MAX_SENTENCES quotes, in passage order."""
        candidates = [quote for number, passage in enumerate(passages, start=1) for quote in quotes(number, passage)]
        wanted = set(terms(question))
        # Rarer question words weigh more; better ranked passages weigh a little more.
        frequency = Counter(t for quote in candidates for t in set(terms(quote.sentence)))

        def score(quote: Quote) -> tuple[float, int, int]:
            found = wanted & set(terms(quote.sentence))
            weight = sum(1 + math.log(len(candidates) / frequency[t]) for t in found)
            return (-(weight * (1 + 0.5 / quote.number)), quote.number, quote.index)

        ranked = sorted(candidates, key=score)
        # The best-ranked passage with anything to quote is quoted first: it is retrieval's
        # best guess. Then sentences that share a word with the question, the best of other
        # documents before more of the same one: an answer that draws on several pages
        # points to more places to read.
        first = min((quote.number for quote in ranked), default=0)
        lead = [quote for quote in ranked if quote.number == first][:1]
        matching = [quote for quote in ranked if quote not in lead and wanted & set(terms(quote.sentence))]
        document_of = {number: passage.document_id for number, passage in enumerate(passages, start=1)}
        quoted = {document_of[quote.number] for quote in lead}
        others: list[Quote] = []
        for quote in matching:
            if document_of[quote.number] not in quoted:
                others.append(quote)
                quoted.add(document_of[quote.number])
        best = (lead + others + [quote for quote in matching if quote not in others])[:MAX_SENTENCES]
        return sorted(best, key=lambda quote: (quote.number, quote.index))


def quotes(number: int, passage: Passage) -> list[Quote]:
    """The sentences of a passage worth quoting: prose, not headings; a sentence ending in a
    colon only with the code block it introduces."""
    found: list[Quote] = []
    blocks = text_blocks(passage.text)
    for position, block in enumerate(blocks):
        if block.kind != "text":
            continue
        sentences = [s.strip() for s in SENTENCE.split(block.text) if s.strip()]
        following = blocks[position + 1] if position + 1 < len(blocks) else None
        for index, sentence in enumerate(sentences):
            last = index == len(sentences) - 1
            if sentence.endswith(":"):
                if last and following is not None and following.kind == "code":
                    found.append(Quote(number, len(found), _shorten(sentence), code=following.text))
                continue
            if len(sentence) >= MIN_SENTENCE_CHARS and SENTENCE_END.search(sentence):
                found.append(Quote(number, len(found), _shorten(sentence)))
    return found


def _shorten(sentence: str) -> str:
    sentence = " ".join(sentence.split())
    return sentence if len(sentence) <= MAX_SENTENCE_CHARS else sentence[: MAX_SENTENCE_CHARS - 1].rstrip() + "…"
