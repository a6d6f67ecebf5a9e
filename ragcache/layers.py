"""The cache layers, as one ask uses them: lookup, emb, ret, ans (single-flight), sem.

A CacheRequest lives for one ask. It records each layer's outcome (hit, miss, bypass
or error) and milliseconds for the answer's trace, gathers the statistics, and writes
them with the ask's next write. Once Redis fails during an ask, the rest of that ask
skips the cache: one slow Redis costs an ask one socket timeout, not one per layer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from redis import Redis

from ragcache import client, generations, keys, leases, popular, switches, values
from ragcache.catalog import ScopeUnverified
from ragcache.client import CacheUnavailable
from ragcache.conf import conf, ttl
from ragcache.scripts import GET_OR_LOCK, INDEX_ADD, INDEX_PRUNE, LOOKUP, SEM_ADD, UNLOCK, by_digest, evaluate
from ragcache.semantic import CONTEXT_OVERLAP, context_ids, near_miss_reason, same_context
from ragcache.stats import SIMILARITY, Tally, current_minute, similarity_bucket

LOOKUP_LAYERS = ("emb", "ret", "ans", "sem")  # the layers the lookup script reads
LOOKUP_BY_DIGEST = by_digest(LOOKUP)  # the hot path: its text is sent once, not on every ask
INDEX_PRUNE_SAMPLE = 8  # members of a document's index checked for gone entries as an ask that added to it ends


_PROCESS = secrets.token_hex(6)  # read once: os.urandom on every ask costs a system call
_tokens = itertools.count()


def lock_token() -> str:
    """A single-flight lock's owner: unique across processes and hosts, not secret."""
    return f"{_PROCESS}-{os.getpid()}-{next(_tokens)}"


@dataclass(frozen=True)
class Policy:
    """What an ask may do with the cache: Cache-Control no-cache skips reads, no-store both."""

    read: bool = True
    write: bool = True
    counted: bool = True  # toward the popular questions warming answers again (not warming's own asks)

    @classmethod
    def from_cache_control(cls, header: str) -> Policy:
        directives = {d.strip().lower() for d in header.split(",")}
        if "no-store" in directives:
            return cls(read=False, write=False)
        return cls(read="no-cache" not in directives, write=True)


@dataclass
class Lookup:
    tag: str  # the hash tag of the scope's keys
    scope: str | None  # the scope's digest; None when Redis could not be asked: nothing is written then
    retrieval: dict[str, Any] | None = None
    answer: dict[str, Any] | None = None
    semantic: dict[bytes, bytes] | None = None  # the scope's sem hash, read when the retrieval missed


class _EmbedTimer:
    """A running average of embedding times, the time an emb hit saves."""

    def __init__(self) -> None:
        self.average_ms = 0.0
        self._lock = threading.Lock()

    def observe(self, ms: float) -> None:
        with self._lock:
            self.average_ms = ms if not self.average_ms else 0.8 * self.average_ms + 0.2 * ms


embed_timer = _EmbedTimer()


@dataclass(frozen=True)
class SemanticEntry:
    """What the sem layer keeps of an answered question besides its answer's key."""

    key: str  # the scope's sem hash
    scope: str  # the scope's digest: the hash holds the questions of one
    question: str  # as asked (normalized)
    vector: np.ndarray
    context: Sequence[str]  # the content hashes of the passages the answer was written from


@dataclass(frozen=True)
class SemanticHit:
    value: dict[str, Any]  # the cached answer
    question: str  # the earlier question it answered
    similarity: float


@dataclass
class CacheRequest:
    policy: Policy = field(default_factory=Policy)
    trace: dict[str, dict[str, Any]] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)
    deferred: list[Callable[[Any], None]] = field(default_factory=list)
    holding: str | None = None  # the token of the answer lock this ask holds
    retrieval_lock: tuple[str, str] | None = None  # (ret key, token) while this ask computes it
    embedding_claims: dict[str, _Claim] = field(default_factory=dict)  # made by the lookup script
    unavailable: bool = False
    indexed: set[str] = field(default_factory=set)  # the document indexes this ask added to, pruned as it ends
    overrides: dict[str, str] | None = None  # the run-time switches the lookup read, for the rest of the ask

    def enabled(self, layer: str) -> bool:
        return switches.enabled(layer, self.overrides)

    def threshold(self) -> float:
        return switches.threshold(self.overrides)

    def check_enabled(self, check: str) -> bool:
        return switches.check_enabled(check, self.overrides)

    # -- plumbing -----------------------------------------------------------------

    def _run(self, layer: str, call: Callable[[Redis], Any]) -> Any:
        if self.unavailable:
            client.breaker.record_skip(layer)
            raise CacheUnavailable("Redis already failed during this ask")
        try:
            return client.run(layer, call)
        except CacheUnavailable:
            self.unavailable = True
            raise

    def _note(self, layer: str, outcome: str, started: float | None = None) -> None:
        ms = round((time.perf_counter() - started) * 1000, 2) if started is not None else None
        self.trace[layer] = {"outcome": outcome, "ms": ms}
        if outcome in {"hit", "miss", "bypass"}:
            self.tally.add(layer, outcome)

    def _defer(self, build: Callable[[Any], None]) -> None:
        """Queue writes that travel with the ask's next round trip (or its flush)."""
        self.deferred.append(build)

    def _round_trip(self, layer: str, build: Callable[[Any], None]) -> list[Any]:
        """One pipeline: the deferred writes, `build`'s commands, the statistics. Returns
        the replies of `build`'s commands."""

        def send(redis: Redis) -> list[Any]:
            pipe = redis.pipeline(transaction=False)
            for deferred in self.deferred:
                deferred(pipe)
            first = len(pipe)
            build(pipe)
            last = len(pipe)
            self.tally.write(pipe)
            replies = pipe.execute()
            return list(replies[first:last])

        try:
            return list(self._run(layer, send))
        finally:
            self.deferred.clear()

    def finish(self) -> None:
        """The end of an ask, however it ended: give up the locks it still holds (its
        computation failed or was not needed), then flush."""
        held = [(key, claim.token) for key, claim in self.embedding_claims.items() if claim.token is not None]
        self.embedding_claims.clear()
        if self.retrieval_lock is not None:
            held.append(self.retrieval_lock)
            self.retrieval_lock = None
        if held:
            self._defer(lambda pipe: _unlock_all(pipe, held))
        self.flush()
        if self.indexed and not self.unavailable:
            with contextlib.suppress(CacheUnavailable):
                self._run("ans", lambda redis: _indexes_prune(redis, sorted(self.indexed)))
            self.indexed.clear()

    def flush(self) -> None:
        """Send what is still deferred: writes and statistics (the end of an ask)."""
        if (self.deferred or self.tally.counts) and not self.unavailable:
            with contextlib.suppress(CacheUnavailable):
                self._round_trip("stats", lambda pipe: None)

    # -- the lookup: generations, ret and ans in one round trip ------------------------

    def lookup(
        self,
        *,
        collection_ids: Sequence[int],
        embed_model: str,
        mode: str,
        k: int,
        question: str,
        generator: str,
        prompt_version: str,
        answer_cacheable: bool,
        catalog_version: int | None = None,
    ) -> Lookup:
        """`catalog_version`: the catalog copy the collection ids were resolved from; when it
        is not the current one, or cannot be checked, ScopeUnverified."""
        ids = keys.sorted_ids(collection_ids)
        tag = keys.scope_tag(ids)
        self.tally.tag = tag
        emb_key = keys.emb(tag, embed_model, question)
        token = lock_token()
        started = time.perf_counter()
        script_keys = [
            keys.meta(tag), keys.stats(tag, current_minute()), emb_key, keys.lock(emb_key),
            keys.ret(tag, embed_model, mode, k, question), keys.ans(tag, generator, prompt_version, question),
            keys.sem(tag, embed_model, generator, prompt_version), keys.popular(tag, popular.today()),
        ]  # fmt: skip
        arguments = json.dumps({
            "stats_ttl": conf()["STATS_TTL"], "read": self.policy.read, "answer_cacheable": answer_cacheable,
            "defaults": {layer: bool(conf()["ENABLED"][layer]) for layer in LOOKUP_LAYERS},
            "popular": popular.entry(question) if conf()["WARMING"] and answer_cacheable and self.policy.counted
            else None,
            "token": token, "lock_ttl": conf()["LOCK_TTL"]["emb"], "ids": [str(cid) for cid in ids],
            "catalog": None if catalog_version is None else str(catalog_version),
        })  # fmt: skip

        def call(redis: Redis) -> list[Any]:
            reply = LOOKUP_BY_DIGEST(keys=script_keys, args=[arguments], client=redis)
            if reply[0] == b"meta-missing":
                generations.fill(redis, tag, ids)
                reply = LOOKUP_BY_DIGEST(keys=script_keys, args=[arguments], client=redis)
            return list(reply)

        try:
            reply = self._run("ret", call)
        except CacheUnavailable:
            if catalog_version is not None:
                raise ScopeUnverified("Redis is unreachable: the catalog copy cannot be checked") from None
            self._note("ret", "error", started)
            return Lookup(tag=tag, scope=None)
        if reply[0] == b"catalog-stale":
            raise ScopeUnverified(f"catalog version {catalog_version} is not the current one")
        if reply[0] != b"ok":  # the copies still missing: treat as a miss, write nothing
            self._note("ret", "error", started)
            return Lookup(tag=tag, scope=None)
        self.overrides = switches.observe_json(reply[6])  # the switches the script applied
        read_ret = self.policy.read and self.enabled("ret")
        read_ans = read_ret and answer_cacheable and self.enabled("ans")
        scope = reply[1].decode()
        # On a full hit the script sends the answer alone: the retrieval is not needed.
        answer = values.decode(reply[3], values.ANSWER) if reply[3] else None
        retrieval = values.decode(reply[2], values.RETRIEVAL) if reply[2] else None
        found_retrieval = bool(reply[2] or reply[3])
        # The script counted these outcomes itself; only the trace is noted here.
        self.trace["ret"] = {"outcome": "hit" if found_retrieval else ("miss" if read_ret else "bypass"),
                             "ms": round((time.perf_counter() - started) * 1000, 2)}  # fmt: skip
        if not read_ret:
            self.tally.add("ret", "bypass")
        if found_retrieval:
            if read_ans:
                self.trace["ans"] = {"outcome": "hit" if answer else "miss", "ms": self.trace["ret"]["ms"]}
            else:
                self._note("ans", "bypass")
        emb_status = int(reply[4])
        if emb_status in (1, 2):  # 3: another ask holds the lock; embedding() waits for it
            self.embedding_claims[emb_key] = _Claim(value=bytes(reply[5])) if emb_status == 1 else _Claim(token=token)
        semantic = dict(zip(reply[7][::2], reply[7][1::2], strict=True)) if not found_retrieval else None
        return Lookup(tag=tag, scope=scope, retrieval=retrieval, answer=answer, semantic=semantic)

    # -- emb ---------------------------------------------------------------------

    def embedding(
        self, *, tag: str, model: str, question: str, dimensions: int, compute: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """`dimensions`: the model's; a stored value of another size is damaged: a counted
        miss, overwritten by this ask."""
        key = keys.emb(tag, model, question)
        writes = self.policy.write and self.enabled("emb")
        if not (self.policy.read and self.enabled("emb")):
            self._note("emb", "bypass")
            vector = self._compute_embedding(compute)
            if writes:
                self._defer(lambda pipe: pipe.set(key, vector.tobytes(), ex=ttl("emb")))
            return vector
        started = time.perf_counter()
        claim = self.embedding_claims.get(key) or self._claim("emb", key, start="")
        self.embedding_claims[key] = claim  # until computed: finish() releases its lock if computing fails
        found = values.decode_embedding(claim.value, dimensions) if claim.value is not None else None
        damaged = claim.value is not None and found is None
        if damaged:
            self.tally.add("emb", "corrupt")
        if found is not None:
            del self.embedding_claims[key]
            self._note("emb", "hit", started)
            self.tally.add("emb", "saved_ms", embed_timer.average_ms)
            return found
        self._note("emb", "error" if claim.failed else "miss", started)
        vector = self._compute_embedding(compute)
        del self.embedding_claims[key]
        if claim.token is not None or damaged:
            # Sent with the next round trip; waiters see it then, and the lock goes with it.
            self._defer(lambda pipe: pipe.set(key, vector.tobytes(), ex=ttl("emb")))
        if claim.token is not None:
            self._defer(lambda pipe: evaluate(pipe, UNLOCK, 1, keys.lock(key), claim.token))
        return vector

    def _compute_embedding(self, compute: Callable[[], np.ndarray]) -> np.ndarray:
        started = time.perf_counter()
        vector = np.asarray(compute(), dtype=np.float32)
        embed_timer.observe((time.perf_counter() - started) * 1000)
        return vector

    # -- ret ---------------------------------------------------------------------

    def retrieval_claim(
        self, *, tag: str, scope: str | None, embed_model: str, mode: str, k: int, question: str
    ) -> dict[str, Any] | None:
        """After the lookup missed the retrieval: the entry, when a concurrent ask that
        holds its lock stores it meanwhile; else None, and this ask computes it (holding
        the lock, which retrieval_store or finish releases). Single-flight, as for answers."""
        if scope is None or not (self.policy.read and self.policy.write and self.enabled("ret")):
            return None
        key = keys.ret(tag, embed_model, mode, k, question)
        started = time.perf_counter()
        # A value retrieved for another scope digest (an older generation) is stale: replaced.
        claim = self._claim("ret", key, start=f"{values.RETRIEVAL} {scope} ", before_wait=self._give_up_embedding_locks)
        if claim.token is not None:
            self.retrieval_lock = (key, claim.token)
        entry = values.decode(claim.value, values.RETRIEVAL) if claim.value is not None else None
        if entry is not None:
            # The lookup counted a miss; it arrived meanwhile: the trace says so, and the
            # time it saved counts. The embedding is not needed now: its lock goes at once.
            self.trace["ret"] = {"outcome": "hit", "ms": round((time.perf_counter() - started) * 1000, 2)}
            self.tally.add("ret", "saved_ms", entry.get("ms") or 0)
            self._give_up_embedding_locks(now=False)
        return entry

    def retrieval_store(
        self, *, tag: str, scope: str | None, embed_model: str, mode: str, k: int, question: str, entry: dict[str, Any]
    ) -> None:
        """Sent with the ask's next round trip, with the release of its lock."""
        if scope is None or not (self.policy.write and self.enabled("ret")):
            return  # finish releases a lock still held
        lock, self.retrieval_lock = self.retrieval_lock, None
        key = keys.ret(tag, embed_model, mode, k, question)
        document_ids = {p[1] for p in entry["passages"]}

        def build(pipe: Any) -> None:
            expires = ttl("ret")
            pipe.set(key, values.encode_retrieval(entry, scope=scope), ex=expires)
            self.indexed.update(_index(pipe, tag, key, document_ids, expires))
            if lock is not None:
                evaluate(pipe, UNLOCK, 1, keys.lock(lock[0]), lock[1])

        self._defer(build)

    # -- ans ---------------------------------------------------------------------

    @contextmanager
    def answer_claim(
        self, key: str, *, context: str, cacheable: bool, counted: bool
    ) -> Iterator[dict[str, Any] | None]:
        """Yields the cached answer, or None when this ask must generate it (then answer_store).
        `context`: the digest of the passages; an answer generated from others is stale here.

        Single-flight: of concurrent asks that miss, one holds the lock and generates;
        the others wait for its answer. A holder that fails releases the lock and stores
        nothing; one that dies frees it by expiry. `counted`: the lookup script already
        counted this layer's miss.
        """
        if not (cacheable and self.policy.read and self.enabled("ans")):
            self._note("ans", "bypass")
            self.flush()  # the embedding's value and lock must not wait for the generation
            yield None
            return
        started = time.perf_counter()
        claim = self._claim("ans", key, start=values.answer_start(context))
        value = values.decode(claim.value, values.ANSWER) if claim.value is not None else None
        if value is not None:
            if counted:  # the script saw a miss; another ask's answer arrived meanwhile
                self.trace["ans"]["outcome"] = "hit"
            else:
                self._note("ans", "hit", started)
            self.count_answer_saved("ans", value)
            yield value
            return
        if not counted:
            self._note("ans", "error" if claim.failed else "miss", started)
        self.holding = claim.token
        try:
            yield None
        finally:
            if self.holding is not None:  # not stored: release for the next ask
                token, self.holding = self.holding, None
                self._release("ans", key, token)

    def count_answer_saved(self, layer: str, value: dict[str, Any]) -> None:
        self.tally.add(layer, "saved_ms", value.get("ms") or 0)
        self.tally.add(layer, "saved_tokens", (value.get("prompt_tokens") or 0) + (value.get("completion_tokens") or 0))
        self.tally.add(layer, "saved_cost", value.get("cost_usd") or 0)

    def answer_store(
        self,
        *,
        tag: str,
        key: str,
        context: str,
        value: dict[str, Any],
        document_ids: set[int],
        semantic: SemanticEntry | None,
    ) -> None:
        """Store a finished answer, release its lock, and send the statistics: one round trip."""
        if not (self.policy.write and self.enabled("ans")) or self.unavailable:
            return  # answer_claim releases the lock
        token = self.holding

        def build(pipe: Any) -> None:
            expires = ttl("ans")
            pipe.set(key, values.encode_answer(value, context=context), ex=expires)
            self.indexed.update(_index(pipe, tag, key, document_ids, expires))
            if semantic is not None and self.enabled("sem"):
                field = keys.question_hash(keys.cache_question(semantic.question))
                entry = values.encode_semantic(
                    answer_key=key,
                    answer_context=context,
                    question=semantic.question,
                    vector=semantic.vector,
                    context=context_ids(semantic.context),
                )
                evaluate(
                    pipe, SEM_ADD, 1, semantic.key, field, entry, conf()["SEM_MAX_ENTRIES"], ttl("sem"), semantic.scope
                )
            if token is not None:
                evaluate(pipe, UNLOCK, 1, keys.lock(key), token)

        with contextlib.suppress(CacheUnavailable):
            self._round_trip("ans", build)
            if token is not None:  # stored and released; on failure answer_claim releases it
                leases.drop(keys.lock(key), token)
                self.holding = None

    # -- sem ---------------------------------------------------------------------

    def semantic_answer(
        self,
        *,
        sem_key: str,
        scope: str,
        vector: np.ndarray,
        question: str,
        context: Callable[[], Sequence[str]],
        found: dict[bytes, bytes] | None = None,
    ) -> SemanticHit | None:
        """The cached answer of the most similar earlier question in this scope that is
        above the threshold and passes the checks switched on (ragcache.semantic), or
        None. `found`: the scope's sem hash, when the lookup script read it already.
        `context` gives the content hashes of what retrieval finds for this question; it
        is called only when the context check has a candidate to judge."""
        if not (self.enabled("sem") and self.policy.read):
            self._note("sem", "bypass")
            return None
        started = time.perf_counter()
        if found is None:
            try:
                # SEM_MAX_ENTRIES questions at most (SEM_ADD), of about 1 KB each.
                found = self._run("sem", lambda redis: redis.hgetall(sem_key))
            except CacheUnavailable:
                self._note("sem", "error", started)
                return None
        if found.get(b"scope") != scope.encode():  # the questions of older generations: stale
            found = {}
        scored = _similarities(found, vector)
        candidates = _candidates(scored, self.threshold())
        refused: list[dict[str, Any]] = []  # for the trace: which earlier questions, and why
        passed: list[tuple[dict[str, Any], float]] = []
        for entry, similarity in candidates:
            reason = self._refusal(entry, similarity, question, context)
            if reason is None:
                passed.append((entry, similarity))
            else:
                refused.append({"question": entry.get("q", ""), "similarity": round(similarity, 3), "reason": reason})
        hit = self._first_answer(passed) if passed else None
        self._note("sem", "hit" if hit else "miss", started)
        if refused:
            self.trace["sem"]["refused"] = refused
        nearest = max((similarity for _, similarity in scored if not math.isnan(similarity)), default=None)
        if nearest is not None:
            outcome = "hit" if hit else "refused" if refused and not passed else "miss"
            self.tally.add(SIMILARITY, f"{outcome}:{similarity_bucket(nearest)}")
        if hit is not None:
            self.trace["sem"]["similar"] = {"question": hit.question, "similarity": round(hit.similarity, 3)}
            self.count_answer_saved("sem", hit.value)
        return hit

    def _refusal(
        self, entry: dict[str, Any], similarity: float, question: str, context: Callable[[], Sequence[str]]
    ) -> str | None:
        """Why the earlier question's answer may not serve this one, by the checks on, or None."""
        if self.check_enabled("words"):
            reason = near_miss_reason(str(entry.get("q", "")), question, similarity)
            if reason is not None:
                return reason
        if self.check_enabled("context"):
            earlier = entry.get("c")
            if not isinstance(earlier, list) or not same_context(
                earlier, context_ids(context()), overlap=CONTEXT_OVERLAP
            ):
                return "retrieval finds other passages"
        return None

    def _first_answer(self, passed: list[tuple[dict[str, Any], float]]) -> SemanticHit | None:
        """The answer of the first candidate whose answer is still cached: one round trip."""
        try:
            raw = self._run("sem", lambda redis: redis.mget([entry["a"] for entry, _ in passed]))
        except CacheUnavailable:
            return None
        for (entry, similarity), answer in zip(passed, raw, strict=True):
            # The key may hold an answer of another context by now (written from older
            # passages by a slow ask): only the one the entry was made for is served.
            meant = isinstance(answer, bytes) and answer.startswith(values.answer_start(entry["x"]).encode())
            value = values.decode(answer, values.ANSWER) if meant else None
            if value is not None:
                return SemanticHit(value=value, question=str(entry.get("q", "")), similarity=similarity)
        return None

    # -- single-flight -----------------------------------------------------------

    def _give_up_embedding_locks(self, *, now: bool = True) -> None:
        """The embedding lock the lookup gave this ask, when it may not compute the
        embedding after all: before waiting for another ask's retrieval (`now`: that ask may
        be waiting for this lock), or once the retrieval came from the cache (with the next
        round trip)."""
        held = [(key, claim.token) for key, claim in self.embedding_claims.items() if claim.token is not None]
        for key, _ in held:
            del self.embedding_claims[key]  # embedding() claims it again if it is needed after all
        if held and now:
            self._round_trip("emb", lambda pipe: _unlock_all(pipe, held))
        elif held:
            self._defer(lambda pipe: _unlock_all(pipe, held))

    def _claim(self, layer: str, key: str, *, start: str, before_wait: Callable[[], None] | None = None) -> _Claim:
        """The cached value, or the lock to compute it, in one round trip; when another
        ask holds the lock, wait for its value (or for the lock to go, then try again), for
        LOCK_WAIT at most: then compute without the lock. `start`: what a value fit for this
        ask starts with; another is stale, deleted and computed again."""
        lock_key, token = keys.lock(key), lock_token()
        lock_ttl = conf()["LOCK_TTL"][layer]
        wait_at_most = conf()["LOCK_WAIT"][layer]
        deadline = time.monotonic() + wait_at_most
        try:
            while time.monotonic() < deadline:
                reply = self._round_trip(
                    layer, lambda pipe: evaluate(pipe, GET_OR_LOCK, 2, key, lock_key, token, lock_ttl, start)
                )
                status, value = reply[0]
                if status == 1:
                    return _Claim(value=bytes(value))
                if status == 2:
                    if layer == "ans":  # generating may outlast the TTL: renewed while it runs
                        leases.keep(lock_key, token, ttl=lock_ttl, at_most=wait_at_most)
                    return _Claim(token=token)
                if before_wait is not None:
                    before_wait()
                    before_wait = None
                value = self._wait_for(layer, key, lock_key, deadline, start)
                if value is not None:
                    return _Claim(value=value)
        except CacheUnavailable:
            return _Claim(failed=True)
        return _Claim()  # waited long enough for a holder that did not finish: compute without it

    def _release(self, layer: str, key: str, token: str) -> None:
        """Give up a lock this ask holds and stored nothing under, at once (a failed store,
        a failed generation): tried even when Redis failed earlier in this ask."""
        lock_key = keys.lock(key)
        leases.drop(lock_key, token)
        self.unavailable = False  # one more try: the lock would otherwise block others for its TTL
        with contextlib.suppress(CacheUnavailable):
            self._round_trip(layer, lambda pipe: evaluate(pipe, UNLOCK, 1, lock_key, token))

    def _wait_for(self, layer: str, key: str, lock_key: str, deadline: float, start: str) -> bytes | None:
        """Poll until a value that starts with `start` appears (returned) or the lock is
        gone (None: try to take it)."""
        poll = conf()["LOCK_POLL_SECONDS"]
        while time.monotonic() < deadline:
            time.sleep(poll)

            def peek(redis: Redis) -> list[Any]:
                pipe = redis.pipeline()
                pipe.get(key)
                pipe.exists(lock_key)
                return list(pipe.execute())

            value, locked = self._run(layer, peek)
            if value is not None and bytes(value).startswith(start.encode()):
                return bytes(value)
            if not locked:
                return None
        return None


@dataclass(frozen=True)
class _Claim:
    value: bytes | None = None  # the cached value
    token: str | None = None  # set when this ask holds the lock and must compute
    failed: bool = False  # Redis failed: compute, cache nothing


def _unlock_all(pipe: Any, held: Sequence[tuple[str, str]]) -> None:
    """Release the locks of these (key, token) pairs that their tokens still own."""
    for key, token in held:
        evaluate(pipe, UNLOCK, 1, keys.lock(key), token)


def _indexes_prune(redis: Redis, indexes: list[str]) -> None:
    """A few members of each index, then those whose entries are gone dropped (INDEX_PRUNE:
    the members are declared, and share the index's slot): two round trips, as an ask ends."""
    pipe = redis.pipeline(transaction=False)
    for index in indexes:
        pipe.srandmember(index, INDEX_PRUNE_SAMPLE)
    sampled = pipe.execute()
    pipe = redis.pipeline(transaction=False)
    for index, members in zip(indexes, sampled, strict=True):
        if members:
            evaluate(pipe, INDEX_PRUNE, 1 + len(members), index, *members)
    pipe.execute()


def _index(pipe: Any, tag: str, key: str, document_ids: set[int], expires: int) -> list[str]:
    """Remember which of the scope's entries cited each document, for exact per-document
    invalidation; the indexes added to."""
    indexes = [keys.document_index(tag, document_id) for document_id in sorted(document_ids)]
    for index in indexes:
        evaluate(pipe, INDEX_ADD, 1, index, key, expires)
    return indexes


def _similarities(found: dict[bytes, bytes], vector: np.ndarray) -> list[tuple[dict[str, Any], float]]:
    """Each stored question that decodes (damaged ones are skipped), with its cosine
    similarity to `vector`."""
    decoded = [values.decode_semantic(raw) for name, raw in found.items() if name != b"scope"]
    pairs = [pair for pair in decoded if pair is not None and pair[1].shape == vector.shape]
    if not pairs:
        return []
    matrix = np.stack([entry_vector for _, entry_vector in pairs])
    norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(vector)), 1e-12)
    similarities = matrix @ vector / np.where(norms == 0, 1.0, norms)
    return [(entry, float(similarity)) for (entry, _), similarity in zip(pairs, similarities, strict=True)]


def _candidates(scored: list[tuple[dict[str, Any], float]], threshold: float) -> list[tuple[dict[str, Any], float]]:
    """The stored questions at or above the threshold, the most similar first (NaN never is)."""
    above = [(entry, similarity) for entry, similarity in scored if similarity >= threshold]
    return sorted(above, key=lambda pair: -pair[1])[: conf()["SEM_CANDIDATES"]]
