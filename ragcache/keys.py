"""The key schema of the speed layer: every key the app writes is built here.

    {p}gen:{tag}                                     hash: the scope's generations, catalog version, switches (copies)
    {p}emb:{tag}:{embed model}:{question}            raw float32 bytes
    {p}ret:{tag}:{embed model}:{mode}:{k}:{question} "r3 {scope} {context} {ms}" + JSON: passages
    {p}ans:{tag}:{generator}:{prompt}:{question}     "a2 {context} {ms} {tokens} {cost}" + JSON: text, citations
    {p}sem:{tag}:{embed model}:{generator}:{prompt}  hash: question -> vector + answer key; "scope" -> scope
    {p}doc:{tag}:{document id}                       set: the scope's ret/ans keys that cited the document
    {p}stats:{tag}:{minute}                          hash: "{layer}:{metric}" -> count
    {p}stats:sums:{tag}:{minute}                     JSON: sums of the minutes before, kept a minute
    {p}popular:{tag}:{day}                           sorted set: the scope's questions asked that day
    {p}lock:{key}                                    single-flight lock for one key (in the key's slot)
    {p}scopes                                        hash: tag -> collection ids (no TTL: the fan-out's list)
    {p}catalog                                       hash: the collections' catalog and its version (a copy)
    {p}switches                                      hash: run-time switches and their version (no TTL)
    {p}census                                        JSON: keys and bytes per layer, counted lately

{p} is RAGCACHE["PREFIX"] followed by a colon. {tag} is a Redis Cluster hash tag, the
braces included: "{" + 12 hex digits of the SHA-1 of the scope's sorted collection ids +
"}". Every key one ask touches carries its scope's tag, so on a Cluster they share a slot
(the lookup script reads them in one call) while different scopes spread over the shards;
on one Redis the braces are only characters. {question} is the SHA-256 of the normalized,
case-folded question (32 hex digits). {scope} is the SHA-1 of "id:generation" for every
collection of the scope, sorted by id, computed by the lookup script from the gen copy: a
retrieval stored under another scope digest (an older generation) is a miss. {context} is
the SHA-256 of the exact passages an answer was generated from (chunk content hashes,
documents and titles, in rank order): an answer is served only for the context it came from.
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


def scope_tag(collection_ids: Iterable[int]) -> str:
    """The hash tag of a scope's keys (the braces included): one slot per set of collections."""
    ids = ",".join(str(cid) for cid in sorted_ids(collection_ids))
    return "{" + hashlib.sha1(ids.encode()).hexdigest()[:12] + "}"  # noqa: S324


def meta(tag: str) -> str:
    """The scope's copies: a generation per collection, the catalog version, the switches."""
    return f"{prefix()}gen:{tag}"


def scopes() -> str:
    """Every scope tag in use, with its collection ids: where changes are copied to."""
    return f"{prefix()}scopes"


def emb(tag: str, model: str, question: str) -> str:
    return f"{prefix()}emb:{tag}:{model}:{question_hash(question)}"


def ret(tag: str, model: str, mode: str, k: int, question: str) -> str:
    return f"{prefix()}ret:{tag}:{model}:{mode}:{k}:{question_hash(question)}"


def ans(tag: str, generator: str, prompt_version: str, question: str) -> str:
    return f"{prefix()}ans:{tag}:{generator}:{prompt_version}:{question_hash(question)}"


def sem(tag: str, model: str, generator: str, prompt_version: str) -> str:
    return f"{prefix()}sem:{tag}:{model}:{generator}:{prompt_version}"


def catalog() -> str:
    return f"{prefix()}catalog"


def switches() -> str:
    return f"{prefix()}switches"


def popular(tag: str, day: int) -> str:
    """How often each question was asked of the scope on this day (warming)."""
    return f"{prefix()}popular:{tag}:{day}"


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


def document_index(tag: str, document_id: int) -> str:
    return f"{prefix()}doc:{tag}:{document_id}"


def lock(key: str) -> str:
    return f"{prefix()}lock:{key}"


def stats(tag: str, minute: int) -> str:
    return f"{prefix()}stats:{tag}:{minute}"


def stats_buckets(tag: str, first: int, last: int) -> list[str]:
    """The scope's statistics buckets of the minutes from `first` to `last`, both included."""
    stem = f"{prefix()}stats:{tag}:"
    return [f"{stem}{minute}" for minute in range(first, last + 1)]


def stats_sums(tag: str, minute: int) -> str:
    """The sums of the scope's completed minutes, as of `minute` (see stats.summary)."""
    return f"{prefix()}stats:sums:{tag}:{minute}"


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
