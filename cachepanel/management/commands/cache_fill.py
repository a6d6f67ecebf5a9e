"""Fill Redis with N realistic cache entries, to measure the panel against a large cache.

Each synthetic question gets what a real one leaves: a query embedding (float32 bytes),
a retrieval (five passages), an answer (about 1.5 KB, with citations) and a place in the
document indexes (of synthetic documents, with ids no real one has), in one of 50 scopes
(of collections no real one has); every 10th question goes into its scope's semantic
hash. With --statistics, a day of synthetic counts goes into the statistics too. Keys and
values are built as the speed layer builds them, so the panel decodes them like real
ones; their questions start with "synthetic question".
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandParser

from ragcache import client, keys, values
from ragcache.conf import conf, ttl
from ragcache.stats import current_minute

MODEL = "all-MiniLM-L6-v2"
GENERATOR, PROMPT = "extractive:extractive-v1", "1"
DOCUMENTS = 400  # synthetic documents the entries cite ...
FIRST_DOCUMENT = 1_000_000_001  # ... with ids far above any real one, so real documents' indexes stay as they are
WORDS = (
    "cache",
    "answer",
    "question",
    "passage",
    "edit",
    "generation",
    "document",
    "retrieval",
    "embedding",
    "key",
    "context",
    "collection",
    "model",
    "token",
    "stale",
    "fresh",
    "index",
    "chunk",
    "search",
    "lock",
)


class Command(BaseCommand):
    help = "Fill Redis with N realistic cache entries (embeddings, retrievals, answers, document indexes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("entries", type=int, help="how many emb, ret and ans entries to write in all")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--statistics", action="store_true",
            help="also add a day of synthetic hit and miss counts to the statistics (for a test site only: "
            "the panel's ratios and savings then show them for two days)",
        )  # fmt: skip

    def handle(self, *args: Any, entries: int, seed: int, statistics: bool, **options: Any) -> None:
        rng = random.Random(seed)
        vectors = np.random.default_rng(seed)
        started = time.perf_counter()
        questions = max(1, entries // 3)
        written = 0
        for first in range(0, questions, 500):
            batch = range(first, min(first + 500, questions))
            written += client.run("fill", functools.partial(_write_questions, numbers=batch, rng=rng, vectors=vectors))
        if statistics:
            client.run("fill", lambda redis: _write_statistics(redis, rng))
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"Wrote {written:,} entries (emb, ret, ans) for {questions:,} synthetic questions, with their document "
            f"indexes and semantic hashes, in {seconds:.1f} s."
        )


def _write_questions(redis: Any, *, numbers: range, rng: random.Random, vectors: np.random.Generator) -> int:
    pipe = redis.pipeline(transaction=False)
    written = 0
    for number in numbers:
        question = f"synthetic question {number}: how does {rng.choice(WORDS)} relate to {rng.choice(WORDS)}?"
        tag = keys.scope_tag([100_000 + number % 50])  # 50 scopes of collections that do not exist
        scope = hashlib.sha1(f"scope-{number % 50}".encode()).hexdigest()  # noqa: S324 (a name, not a secret)
        vector = vectors.standard_normal(384).astype(np.float32)
        vector /= np.linalg.norm(vector)
        documents = rng.sample(range(FIRST_DOCUMENT, FIRST_DOCUMENT + DOCUMENTS), 5)
        passages = [
            [rng.randint(1, 100_000), doc, f"Synthetic page {doc}",
             hashlib.sha256(f"{number}-{doc}".encode()).hexdigest(), round(1 / (60 + rank), 6),
             f"Synthetic page {doc} › Section {rank}", round(rng.uniform(0.3, 0.8), 4)]
            for rank, doc in enumerate(documents, start=1)
        ]  # fmt: skip
        context = keys.context_digest([[p[3], p[1], p[2]] for p in passages])
        retrieval = {"q": question, "passages": passages, "ctx": context, "ms": round(rng.uniform(12, 40), 2)}
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(120, 320)))
        answer = {
            "q": question, "text": f"{text} [1] [2]",
            "citations": [{"number": n, "title": f"Synthetic page {documents[n - 1]}", "document_id": documents[n - 1],
                           "passage": passages[n - 1][3], "url": f"/sources/{documents[n - 1]}/"} for n in (1, 2)],
            "ms": round(rng.uniform(800, 4000), 1), "prompt_tokens": rng.randint(600, 1500),
            "completion_tokens": rng.randint(80, 300), "cost_usd": round(rng.uniform(0.0002, 0.0009), 6),
            "has_usage": True, "has_cost": True,
        }  # fmt: skip
        cache_question = keys.cache_question(question)
        emb_key = keys.emb(tag, MODEL, cache_question)
        ret_key = keys.ret(tag, MODEL, "hybrid-c20", 5, cache_question)
        ans_key = keys.ans(tag, GENERATOR, PROMPT, cache_question)
        pipe.set(emb_key, vector.tobytes(), ex=ttl("emb"))
        pipe.set(ret_key, values.encode_retrieval(retrieval, scope=scope), ex=ttl("ret"))
        pipe.set(ans_key, values.encode_answer(answer, context=context), ex=ttl("ans"))
        longest = int(max(conf()["TTL"]["ret"], conf()["TTL"]["ans"]) * (1 + conf()["TTL_JITTER"])) + 1  # its entries
        for doc in documents:
            pipe.sadd(keys.document_index(tag, doc), ret_key, ans_key)
            pipe.expire(keys.document_index(tag, doc), longest)
        if number % 10 == 0:  # every 10th question in its scope's semantic hash, as with the layer on
            sem_key = keys.sem(tag, MODEL, GENERATOR, PROMPT)
            entry = values.encode_semantic(answer_key=ans_key, answer_context=context, question=question, vector=vector,
                                           context=[str(p[3]) for p in passages])  # fmt: skip
            pipe.hset(sem_key, mapping={"scope": scope, keys.question_hash(cache_question): entry})
            pipe.expire(sem_key, ttl("sem"))
        written += 3
    pipe.execute()
    return written


def _write_statistics(redis: Any, rng: random.Random) -> None:
    """A day of minute buckets with plausible counts."""
    now = current_minute()
    pipe = redis.pipeline(transaction=False)
    for minute in range(now - 1439, now + 1):
        bucket = keys.stats(keys.scope_tag(()), minute)
        asks = rng.randint(5, 40)
        answered = int(asks * rng.uniform(0.5, 0.8))
        counts = {
            "ret:hit": answered, "ret:miss": asks - answered, "ans:hit": answered - 1, "ans:miss": asks - answered + 1,
            "emb:hit": rng.randint(0, 3), "emb:miss": asks - answered, "ret:saved_ms": answered * 25.0,
            "ans:saved_ms": answered * 1900.0, "ans:saved_tokens": answered * 1100, "ans:saved_cost": answered * 0.0004,
        }  # fmt: skip
        for field, amount in counts.items():
            pipe.hincrbyfloat(bucket, field, amount)
        pipe.expire(bucket, conf()["STATS_TTL"])
    pipe.delete(keys.stats_sums(keys.scope_tag(()), now))  # sums of the minutes before, which these counts change
    pipe.execute()
