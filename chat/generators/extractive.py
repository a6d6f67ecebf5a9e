"""A deterministic local answerer: the best sentences of the retrieved passages, cited."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence

from chat.generators.base import Generator, Passage, Usage
from chat.rendering import markdown_escaped

NO_LLM_NOTE = "No language model is configured, so this answer quotes the passages that best match the question."
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n\n+")
WORD = re.compile(r"\w+")
# One line of words reads better than the column a list literal becomes.
STOP_WORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it of on or that the this to was what when "  # noqa: SIM905
    "where which who why will with you your".split()
)
MAX_SENTENCES = 3
MAX_SENTENCE_CHARS = 400


def terms(text: str) -> list[str]:
    return [stem(w) for w in WORD.findall(text.lower()) if w not in STOP_WORDS]


def stem(word: str) -> str:
    """A crude English stemmer: enough for "looping" to meet "loop" and "indexes" "index"."""
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


class ExtractiveGenerator(Generator):
    name = "extractive"
    model = "extractive-v1"
    prompt_version = "2"  # answers are Markdown: the quotations are escaped

    def stream(self, *, question: str, passages: Sequence[Passage]) -> Iterator[str | Usage]:
        if not passages:
            yield "No passage in the selected collections matches the question."
            return
        yield NO_LLM_NOTE
        for number, sentence in self.best_sentences(question, passages):
            # A document's "__init__" or "a[1]" is quoted as it is, not as emphasis or a citation.
            yield f"\n\n“{markdown_escaped(sentence)}” [{number}]"

    def best_sentences(self, question: str, passages: Sequence[Passage]) -> list[tuple[int, str]]:
        """Up to MAX_SENTENCES (passage number, sentence), in passage order."""
        candidates = [
            (number, index, sentence.strip())
            for number, passage in enumerate(passages, start=1)
            for index, sentence in enumerate(SENTENCE.split(passage.text))
            if len(sentence.strip()) > 20
        ]
        wanted = set(terms(question))
        # Rarer question words weigh more; better ranked passages weigh a little more.
        frequency = Counter(t for _, _, s in candidates for t in set(terms(s)))

        def score(candidate: tuple[int, int, str]) -> tuple[float, int, int]:
            number, index, sentence = candidate
            found = wanted & set(terms(sentence))
            weight = sum(1 + math.log(len(candidates) / frequency[t]) for t in found)
            return (-(weight * (1 + 0.5 / number)), number, index)

        best = sorted(candidates, key=score)[:MAX_SENTENCES]
        if not best:
            best = [(1, 0, passages[0].text)]
        return [(number, _shorten(sentence)) for number, _, sentence in sorted(best, key=lambda c: (c[0], c[1]))]


def _shorten(sentence: str) -> str:
    sentence = " ".join(sentence.split())
    return sentence if len(sentence) <= MAX_SENTENCE_CHARS else sentence[: MAX_SENTENCE_CHARS - 1].rstrip() + "…"
