"""Checks a semantic hit must pass besides the similarity threshold.

A bi-encoder puts "drop an index" as close to "create an index" as two wordings of one
question: no threshold tells a paraphrase from a near miss. These checks look at what
tells them apart, and each says why it refuses a pair, for the trace and `make eval`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

WORD = re.compile(r"[A-Za-z_][\w.]*\w(?:\(\))?|\d+(?:\.\d+)?|\w")
NEGATIONS = frozenset({"not", "no", "never", "without", "cannot", "nor", "none"})
SMALL_DIFFERENCE = 2  # words on a side: beyond, two questions are reworded, not edited
# Each pair is symmetric: a question with one word and the other with its opposite ask
# different things, however alike they read.
OPPOSITES = {
    frozenset(pair.split())
    for pair in """
    create drop, create delete, create remove, create extract, add remove, insert delete, insert remove,
    import export, grant revoke, enable disable, open close, read write, save load, load dump, loads dumps,
    encode decode, encrypt decrypt, compress decompress, serialize deserialize, escape unescape, quote unquote,
    pack unpack, start stop, start end, beginning end, push pop, append prepend, up down, min max,
    minimum maximum, smallest largest, before after, first last, rows columns, keys values, value index,
    ascending descending, upper lower, uppercase lowercase, increase decrease, increment decrement,
    include exclude, lock unlock, get set, input output, send receive, upload download, show hide,
    local remote, local global, left right, top bottom, sync async, synchronous asynchronous, mutable immutable,
    true false, on off, in out, inner outer, older newer, oldest newest, earliest latest, shallow deep,
    attach detach, connect disconnect, join split, merge split, parse format, enter exit, install uninstall,
    subscribe unsubscribe, allow deny, accept reject, commit rollback, commit roll, break continue,
    list tuple, list set, list dict, dict set, bytes str, int float, thread process, threads processes,
    seconds nanoseconds, seconds milliseconds, home working, extension directory
    """.split(",")  # noqa: SIM905 (a table reads better as words)
}


def words(question: str) -> list[str]:
    """The question's words, case-folded; "doesn't" reads as "does not"."""
    text = re.sub(r"n['’]t\b", " not", question.casefold())
    return WORD.findall(text)


def identifier(word: str) -> bool:
    """A name from code: dotted, with an underscore, called, or with a digit after a letter."""
    return "." in word.strip(".") or "_" in word or word.endswith("()") or bool(re.search(r"[a-z]\d", word))


def near_miss_reason(first: str, second: str) -> str | None:
    """Why `second` may ask something other than `first` although they read alike, or None:
    a word against its opposite; or, where the two differ by a word or two only (a
    reworded paraphrase differs by many), a negation, a name from code or a number put in
    another's place; or the same words in another order ("A to B" against "B to A")."""
    one, two = words(first), words(second)
    only_one, only_two = set(one) - set(two), set(two) - set(one)
    for word in sorted(only_one):
        for other in sorted(only_two):
            if frozenset((_singular(word), _singular(other))) in OPPOSITES or frozenset((word, other)) in OPPOSITES:
                return f"opposites: {word} / {other}"
    if not only_one and not only_two:
        return "the same words in another order" if _content(one) != _content(two) else None
    plain_one, plain_two = only_one - NEGATIONS, only_two - NEGATIONS
    if len(plain_one) > SMALL_DIFFERENCE or len(plain_two) > SMALL_DIFFERENCE:
        return None  # reworded: what differs is wording
    if (NEGATIONS & only_one) or (NEGATIONS & only_two):
        return "a negation on one side only"
    if {w.removesuffix("()") for w in plain_one} == {w.removesuffix("()") for w in plain_two}:
        return None  # print against print(): the same name
    if any(identifier(w) or w[0].isdigit() for w in plain_one | plain_two):
        return f"another name or number: {', '.join(sorted(plain_one))} / {', '.join(sorted(plain_two))}"
    return None


def _content(question_words: list[str]) -> list[str]:
    return [word for word in question_words if len(word) > 2]


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def same_context(first: Sequence[str], second: Sequence[str], *, overlap: float) -> bool:
    """Whether two retrievals (passages by content hash, in rank order) found the same
    passages: the same best passage, and at least `overlap` of them in common (Jaccard)."""
    if not first or not second or first[0] != second[0]:
        return False
    shared = len(set(first) & set(second)) / len(set(first) | set(second))
    return shared >= overlap
