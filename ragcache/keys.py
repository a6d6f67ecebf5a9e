"""The key schema of the speed layer: every key the app writes is built here.

    {p}emb:{embed model}:{sha256 of the question}            raw float32 bytes
    {p}ret:{scope}:{embed model}:{mode}:{k}:{question}         JSON: passages, context digest, ms
    {p}ans:{generator}:{prompt version}:{question}:{context}   JSON: text, citations, usage, ms
    {p}sem:{scope}:{embed model}:{generator}:{prompt version}  hash: question -> vector + answer key
    {p}gen                                                     hash: collection id -> generation (a copy)
    {p}catalog                                                 hash: the collections' catalog and its version (a copy)
    {p}switches                                                hash: run-time switches (no TTL: configuration)
    {p}census                                                  JSON: keys and bytes per layer, counted lately
    {p}doc:{document id}                                       set: ret/ans keys that cited the document
    {p}lock:{key}                                              single-flight lock for one key
    {p}stats:{minute}                                          hash: "{layer}:{metric}" -> count
    {p}stats:sums:{minute}                                     JSON: sums of the minutes before, kept a minute

{p} is RAGCACHE["PREFIX"] followed by a colon. {question} is the SHA-256 of the
normalized, case-folded question (32 hex digits). {scope} is the SHA-1 of
"id:generation" for every collection in the asker's scope, sorted by id: a committed
change bumps a generation and so makes every older ret entry of that collection
unreachable at once. {context} is the SHA-256 of the exact passages an answer was
generated from (chunk content hashes, documents and titles, in rank order), so an
answer can only be found again for the very context it came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence

from ragcache.conf import conf


def prefix() -> str:
    return f"{conf()['PREFIX']}:"


def cache_question(question: str) -> str:
    """The question as the cache knows it: spaces collapsed and case folded, so that "How do
    I sort a list?" and "how do I  sort a list ?" share their entries."""
    return " ".join(question.split()).casefold()


def question_hash(question: str) -> str:
    # surrogatepass: any Python string has a key, even one that is not valid text (the
    # views refuse such questions; the key layer does not depend on it).
    return hashlib.sha256(question.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def scope_digest(generations: Mapping[int, int]) -> str:
    # The lookup script computes the same digest in Redis (redis.sha1hex); keep them in step.
    return hashlib.sha1(",".join(f"{cid}:{generations[cid]}" for cid in sorted(generations)).encode()).hexdigest()  # noqa: S324


def context_digest(passages: Sequence[Sequence[object]]) -> str:
    """Digest of (content hash, document id, title) of each passage, in rank order."""
    return hashlib.sha256(json.dumps([list(p) for p in passages], separators=(",", ":")).encode()).hexdigest()[:32]


def emb(model: str, question: str) -> str:
    return f"{prefix()}emb:{model}:{question_hash(question)}"


def ret_suffix(model: str, mode: str, k: int, question: str) -> str:
    return f":{model}:{mode}:{k}:{question_hash(question)}"


def ret(scope: str, model: str, mode: str, k: int, question: str) -> str:
    return f"{prefix()}ret:{scope}{ret_suffix(model, mode, k, question)}"


def ans_stem(generator: str, prompt_version: str, question: str) -> str:
    """The answer key without its context digest, which the lookup script appends."""
    return f"{generator}:{prompt_version}:{question_hash(question)}:"


def ans(generator: str, prompt_version: str, question: str, context: str) -> str:
    return f"{prefix()}ans:{ans_stem(generator, prompt_version, question)}{context}"


def sem(scope: str, model: str, generator: str, prompt_version: str) -> str:
    return f"{prefix()}sem:{scope}{sem_suffix(model, generator, prompt_version)}"


def sem_suffix(model: str, generator: str, prompt_version: str) -> str:
    """What follows the scope in a sem key (the lookup script builds the key from it)."""
    return f":{model}:{generator}:{prompt_version}"


def generations() -> str:
    return f"{prefix()}gen"


def catalog() -> str:
    return f"{prefix()}catalog"


def switches() -> str:
    return f"{prefix()}switches"


def popular(collection_ids: Iterable[int], day: int) -> str:
    """How often each question was asked of this set of collections on this day (warming)."""
    return f"{prefix()}popular:{','.join(str(cid) for cid in sorted_ids(collection_ids))}:{day}"


def popular_sets(collection_id: int) -> str:
    """The popular-question keys whose sets include this collection."""
    return f"{prefix()}popular-sets:{collection_id}"


def warming_pending(collection_id: int) -> str:
    return f"{prefix()}warming:{collection_id}"


def warming() -> str:
    """What the last warming did, for the cache panel."""
    return f"{prefix()}warming"


def workers() -> str:
    """The workers' heartbeats (ragsite.health)."""
    return f"{prefix()}workers"


def census() -> str:
    return f"{prefix()}census"


def document_index(document_id: int) -> str:
    return f"{prefix()}doc:{document_id}"


def lock(key: str) -> str:
    return f"{prefix()}lock:{key}"


def stats(minute: int) -> str:
    return f"{prefix()}stats:{minute}"


def stats_buckets(first: int, last: int) -> list[str]:
    """The statistics' buckets of the minutes from `first` to `last`, both included."""
    stem = f"{prefix()}stats:"
    return [f"{stem}{minute}" for minute in range(first, last + 1)]


def stats_sums(minute: int) -> str:
    """The sums of the statistics' completed minutes, as of `minute` (see stats.summary)."""
    return f"{prefix()}stats:sums:{minute}"


def layer_pattern(layer: str) -> str:
    return f"{glob_escape(prefix())}{glob_escape(layer)}:*"


def kind(key: str) -> str:
    """What a key of the app holds: a layer (emb, ret, ans, sem) or doc, gen, lock, stats,
    switches, census; "" for a key outside the app's prefix."""
    if not key.startswith(prefix()):
        return ""
    return key[len(prefix()) :].split(":", 1)[0]


def glob_escape(text: str) -> str:
    """`text` as a SCAN MATCH pattern that matches it literally."""
    return "".join(f"\\{char}" if char in "*?[]\\^" else char for char in text)


def all_pattern() -> str:
    return f"{glob_escape(prefix())}*"


def sorted_ids(ids: Iterable[int]) -> list[int]:
    return sorted(set(ids))
