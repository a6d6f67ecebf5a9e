"""Checks a semantic hit must pass besides the similarity threshold.

A bi-encoder puts "drop an index" as close to "create an index" as two wordings of one
question: no threshold tells a paraphrase from a near miss. These checks look at what
tells them apart, and each says why it refuses a pair, for the trace and `make eval`.

- `words`: the words in which the two questions differ. Two wordings of one question
  differ in many words, or in words that carry no subject ("How can I" against "How do
  I"); a near miss is an edit: a word swapped for its opposite or for another word, a
  negation, a name, number or quoted literal, the same words in another order.
- `context`: what retrieval finds for each. The cached answer was written from its
  passages; the new question's retrieval must find the same best passage and most of the
  others.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

CHECKS = ("words", "context")

WORD = re.compile(r"[A-Za-z_][\w.]*\w(?:\(\))?|\d+(?:\.\d+)?|\w")
# A quoted or back-ticked token: a literal, such as a mode, a flag or a format code.
LITERAL = re.compile(r"""(?<!\w)['"`]([^'"`\s]{1,60})['"`](?!\w)""")
NEGATIONS = frozenset({"not", "no", "never", "without", "cannot", "nor", "none"})
# Words that carry no subject: how a question is put, not what it asks.
FUNCTION_WORDS = frozenset(
    """a an the how do does did i me my we you your can could should would will shall may might must to of in on at
    by for with from into onto about as is are was were be been being it its this that these those there what
    which who whom whose when where why way ways and or but if so than then just also any some one each s t get
    gets got make makes made use using used""".split()  # noqa: SIM905 (a table reads better as words)
)
# Words that relate what stands before them to what stands after ("convert A to B").
RELATIONS = frozenset({"to", "into", "from", "for", "of", "as", "than", "by", "onto", "per"})
# A small edit: at most this many content words on one side, and this many on the other.
EDIT_SMALLER, EDIT_LARGER = 2, 4
# Two questions reworded on both sides are told apart by nothing but their embeddings:
# at least this similar, or refused. In `make eval`'s pairs, no reworded paraphrase comes
# this close, and in one scope holding every pair's question no two different questions do.
REWORDED_SIMILARITY = 0.85
# A question that adds more content words than this to another asks something narrower
# ("sort a list" against "sort a list in descending order").
ADDED_WORDS = 1
# The context check: the share of passages two retrievals must have in common, besides
# the best one; and how much of a passage's content hash the sem layer keeps to tell
# five passages apart.
CONTEXT_OVERLAP = 0.5
CONTEXT_ID_CHARS = 16
NEGATING_PREFIXES = ("un", "de", "dis", "non")
# Each pair is symmetric: a question with one word and the other with its opposite ask
# different things, however alike they read. Prefixed opposites (register, unregister)
# need no entry.
OPPOSITES = {
    frozenset(pair.split())
    for pair in """
    create drop, create delete, create remove, create extract, add remove, insert delete, insert remove,
    import export, grant revoke, open close, read write, save load, load dump, loads dumps, encode decode,
    encrypt decrypt, compress decompress, quote unquote, pack unpack, start stop, start end, beginning end,
    push pop, append prepend, up down, min max, minimum maximum, smallest largest, before after, first last,
    rows columns, row column, keys values, key value, value index, ascending descending, upper lower,
    uppercase lowercase, increase decrease, increment decrement, include exclude, get set, input output,
    send receive, upload download, show hide, local remote, local global, left right, top bottom, sync async,
    synchronous asynchronous, mutable immutable, true false, on off, in out, inner outer, older newer,
    oldest newest, earliest latest, shallow deep, attach detach, join split, merge split, parse format,
    enter exit, allow deny, accept reject, commit rollback, commit roll, break continue, list tuple, list set,
    list dict, dict set, bytes str, int float, thread process, threads processes, seconds nanoseconds,
    seconds milliseconds, home working, extension directory, yesterday tomorrow, past future, enable disable
    """.split(",")  # noqa: SIM905 (a table reads better as words)
}


def words(question: str) -> list[str]:
    """The question's words, case-folded; "doesn't" reads as "does not"."""
    text = re.sub(r"n['’]t\b", " not", question.casefold())
    return WORD.findall(text)


def identifier(word: str) -> bool:
    """A name from code: dotted, with an underscore, called, or with a digit after a letter."""
    return "." in word.strip(".") or "_" in word or word.endswith("()") or bool(re.search(r"[a-z]\d", word))


def near_miss_reason(first: str, second: str, similarity: float = 1.0) -> str | None:
    """Why `second` may ask something other than `first` although they read alike, or None.
    `similarity`: of their embeddings; only a reworded pair (many words differ on both
    sides, none an opposite, a name or a literal) needs it, at REWORDED_SIMILARITY."""
    literals_one, literals_two = set(LITERAL.findall(first.casefold())), set(LITERAL.findall(second.casefold()))
    if literals_one != literals_two:
        return f"another literal: {_listed(literals_one - literals_two)} / {_listed(literals_two - literals_one)}"
    one, two = words(first), words(second)
    only_one, only_two = set(one) - set(two), set(two) - set(one)
    for word in sorted(only_one):
        for other in sorted(only_two):
            if _opposites(word, other):
                return f"opposites: {word} / {other}"
    content_one, content_two = _content(one), _content(two)
    differ_one = [w for w in dict.fromkeys(content_one) if not any(_same_word(w, o) for o in content_two)]
    differ_two = [w for w in dict.fromkeys(content_two) if not any(_same_word(w, o) for o in content_one)]
    plain_one, plain_two = [w for w in differ_one if w not in NEGATIONS], [w for w in differ_two if w not in NEGATIONS]
    spelled = {_stem(word): word for word in reversed(one + two)}  # a stem as the question wrote it, for reasons
    plain_one, plain_two = [spelled.get(w, w) for w in plain_one], [spelled.get(w, w) for w in plain_two]
    if NEGATIONS & set(one) != NEGATIONS & set(two) and _small_edit(plain_one, plain_two, both=False):
        return "a negation on one side only"
    if not plain_one and not plain_two:
        return "the same words in another order" if _swapped(one, two) else None
    named = any(identifier(w) or w[0].isdigit() for w in plain_one + plain_two)
    if _small_edit(plain_one, plain_two, both=True):
        kind = "another name or number" if named else "a word in another's place"
        return f"{kind}: {_listed(plain_one)} / {_listed(plain_two)}"
    if named and not (plain_one and plain_two):
        return f"another name or number: {_listed(plain_one)} / {_listed(plain_two)}"
    if plain_one and plain_two and similarity < REWORDED_SIMILARITY:
        return f"reworded, and not close enough to vouch for: {_listed(plain_one)} / {_listed(plain_two)}"
    if not (plain_one and plain_two) and len(plain_one) + len(plain_two) > ADDED_WORDS:
        return f"words on one side only: {_listed(plain_one + plain_two)}"
    return None


def _swapped(one: list[str], two: list[str]) -> bool:
    """Whether words moved across a relation ("a dict to a string" against "a string to
    a dict"): some from before it to after it, and some the other way."""
    for before_one, after_one in _around_relations(one):
        for before_two, after_two in _around_relations(two):
            if before_one & after_two and after_one & before_two:
                return True
    return False


def _around_relations(question_words: list[str]) -> list[tuple[set[str], set[str]]]:
    return [
        (set(_content(question_words[:index])), set(_content(question_words[index + 1 :])))
        for index, word in enumerate(question_words)
        if word in RELATIONS
    ]


def _small_edit(one: Sequence[str], two: Sequence[str], *, both: bool) -> bool:
    """At most EDIT_SMALLER words on one side and EDIT_LARGER on the other (and, with
    `both`, at least one on each side: a word put in another's place)."""
    if both and not (one and two):
        return False
    return min(len(one), len(two)) <= EDIT_SMALLER and max(len(one), len(two)) <= EDIT_LARGER


def _content(question_words: list[str]) -> list[str]:
    return [_stem(word) for word in question_words if word not in FUNCTION_WORDS]


def _stem(word: str) -> str:
    """Plural and -ing/-ed endings off a plain word ("rounding" and "round" match)."""
    word = word.removesuffix("()") if not identifier(word.removesuffix("()")) else word
    if identifier(word) or word.endswith("ss"):
        return word
    for ending, replacement in (("ies", "y"), ("ing", ""), ("es", ""), ("ed", ""), ("s", "")):
        if len(word) > len(ending) + 3 and word.endswith(ending):
            return word[: -len(ending)] + replacement
    return word


def _same_word(word: str, other: str) -> bool:
    """The same word, or one shortened to the other's start (dict and dictionary)."""
    if word == other:
        return True
    plain = not (identifier(word) or identifier(other)) and min(len(word), len(other)) >= 3
    return plain and (word.startswith(other) or other.startswith(word))


def _opposites(word: str, other: str) -> bool:
    for one, two in ((word, other), (_stem(word), _stem(other))):
        if frozenset((one, two)) in OPPOSITES:
            return True
        for plain, prefixed in ((one, two), (two, one)):
            if len(plain) >= 3 and any(prefixed == prefix + plain for prefix in NEGATING_PREFIXES):
                return True
    return False


def _listed(found: Sequence[str] | set[str]) -> str:
    return ", ".join(sorted(found)) or "nothing"


def context_ids(content_hashes: Sequence[str]) -> list[str]:
    """The passages of a retrieval, as the sem layer keeps them: short, in rank order."""
    return [content_hash[:CONTEXT_ID_CHARS] for content_hash in content_hashes]


def same_context(first: Sequence[str], second: Sequence[str], *, overlap: float) -> bool:
    """Whether two retrievals (passages by content hash, in rank order) found the same
    passages: the same best passage, and at least `overlap` of them in common (Jaccard)."""
    if not first or not second or first[0] != second[0]:
        return False
    shared = len(set(first) & set(second)) / len(set(first) | set(second))
    return shared >= overlap
