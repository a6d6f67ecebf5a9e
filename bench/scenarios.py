"""What `make bench` measures. Each function takes what it needs and returns plain data."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.test import override_settings

from bench.load import Client, Sampler, load, median
from bench.site import Site
from chat.pipeline import answer, passages_search, question_dense
from documents.chunking import FORMAT as CHUNK_FORMAT
from documents.chunking import TextChunk
from documents.embedding import get_embedder
from documents.models import Chunk, Collection, Document
from documents.services import document_create, document_ingest, document_replace_source, documents_ingest
from ragcache import client as cache_client
from ragcache.invalidation import flush_layer
from ragcache.layers import Policy
from ragcache.stats import hit_ratios

QUESTIONS = [
    "How do I loop over a list with its indexes?",
    "What does the pass statement do?",
    "How do I create a virtual environment?",
    "What is a lambda expression?",
    "How do I read a file line by line?",
    "What is a list comprehension?",
    "How do I handle exceptions?",
    "What does the with statement do?",
    "How do I define a class?",
    "What are keyword arguments?",
    "How do I format strings?",
    "What is a tuple?",
    "How do I import a module?",
    "How are floating point numbers represented?",
    "What does break do in a loop?",
    "How do I sort a list?",
    "What is a dictionary?",
    "How do I write to a file?",
    "What is a generator?",
    "What is the difference between a list and a tuple?",
]
NO_CACHE = Policy(read=False, write=False)


def demo_paraphrases() -> list[dict[str, Any]]:
    """The labelled paraphrases of the demo collection that `make eval` uses (eval/pairs)."""
    pairs_dir = Path(__file__).resolve().parent.parent / "eval" / "pairs"
    pairs = [pair for path in sorted(pairs_dir.glob("*.json")) for pair in json.loads(path.read_text())["pairs"]]
    return [pair for pair in pairs if pair["same"] and pair["corpus"] == "tutorial"]


def staff_login() -> tuple[str, str]:
    """A staff account of the bench's own, with a new password on each run."""
    from django.contrib.auth import get_user_model

    password = secrets.token_urlsafe(16)
    user, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    user.is_staff, user.is_active = True, True
    user.set_password(password)
    user.save()
    return user.get_username(), password


def forget_entries() -> None:
    """Drop the cached entries, keeping the generation and catalog copies, as after TTLs ran out."""
    for layer in ("emb", "ret", "ans", "sem", "doc"):
        flush_layer(layer)


def postgres_connections() -> int:
    """Connections to this database other than the bench's own."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


# -- over HTTP ---------------------------------------------------------------------


def concurrency(site: Site, *, clients: list[int], seconds: float) -> list[dict[str, Any]]:
    """The bare view and a fully cached /api/ask, at each number of concurrent clients."""
    question = {"question": QUESTIONS[0]}
    probe = Client(site.base)
    probe.ask(QUESTIONS[0])  # the entry is there
    assert probe.ask(QUESTIONS[0])[0]["trace"]["from_cache"], "a repeated question must be a full hit"
    probe.close()
    rows = []
    for count in clients:
        bare = load(f"{site.base}/healthz", clients=count, seconds=seconds)
        with Sampler(postgres_connections) as connections:
            cached = load(f"{site.base}/api/ask", clients=count, seconds=seconds, body=question)
        rows.append({"clients": count, "bare": asdict(bare), "cached": asdict(cached),
                     "postgres_connections_max": max(connections.values, default=0)})  # fmt: skip
    return rows


def end_to_end(site: Site, questions: list[str], *, collections: list[str] | None = None) -> dict[str, Any]:
    """Each question uncached (no-store), as a complete miss, then fully cached, over HTTP,
    in `collections` (by default the public ones). The first two are asked as staff (only
    staff may bypass the cache and see the stages); the repeat anonymously, as most repeats are."""
    http = Client(site.base)
    http.sign_in(*staff_login())
    anonymous = Client(site.base)
    # Named, so that staff (who read every collection, the growth scenario's private one
    # too) and anonymous callers ask in the same scope.
    public = collections or list(
        Collection.objects.filter(is_public=True).order_by("pk").values_list("name", flat=True)[:20]
    )
    timings: dict[str, list[float]] = {"uncached": [], "miss": [], "cached": []}
    stages: dict[str, list[float]] = {}
    server: dict[str, list[float]] = {"uncached": [], "miss": [], "cached": []}
    avoided = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "estimated": False}
    http.ask("warm up the model and the connections", "no-store", collections=public)
    for question in questions:
        uncached, elapsed = http.ask(question, "no-store", collections=public)
        timings["uncached"].append(elapsed)
        server["uncached"].append(uncached["trace"]["total_ms"])
        for stage, ms in uncached["trace"]["stages"].items():
            stages.setdefault(stage, []).append(ms)
        forget_entries()
        miss, elapsed = http.ask(question, collections=public)
        timings["miss"].append(elapsed)
        server["miss"].append(miss["trace"]["total_ms"])
        anonymous.keep_alive()  # idle while the staff asks ran
        cached, elapsed = anonymous.ask(question, collections=public)
        if not cached["trace"]["from_cache"]:
            raise RuntimeError(f"the repeat of {question!r} was not a full hit")
        timings["cached"].append(elapsed)
        server["cached"].append(cached["trace"]["total_ms"])
        for field in ("prompt_tokens", "completion_tokens", "cost_usd"):
            avoided[field] += miss["trace"][field] or 0
        avoided["estimated"] = avoided["estimated"] or bool(miss["trace"].get("usage_estimated"))
    http.close()
    anonymous.close()
    medians = {mode: median(values) for mode, values in timings.items()}
    return {
        "questions": len(questions),
        "http_median_ms": medians,
        "server_median_ms": {mode: median(values) for mode, values in server.items()},
        "stage_median_ms": {stage: median(values) for stage, values in stages.items()},
        "first_over_repeat": medians["miss"] / medians["cached"],
        "avoided_per_repeat": {
            k: (v / len(questions) if isinstance(v, int | float) and not isinstance(v, bool) else v)
            for k, v in avoided.items()
        },  # fmt: skip
        "hit_ratios_5m": {layer: values["ratio"] for layer, values in hit_ratios()["5m"].items()},
    }


def semantic(site: Site, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """The sem layer as the reader feels it: for each labelled paraphrase of the demo, its
    first question asked (a complete miss), asked again (an exact hit), then the
    paraphrase (a semantic hit, when the checks let it), each over HTTP, beside the bare
    view; every pair in a fresh cache."""
    http = Client(site.base)
    timings: dict[str, list[float]] = {"bare": [], "miss": [], "exact": [], "semantic": []}
    server: dict[str, list[float]] = {"miss": [], "exact": [], "semantic": []}
    refused = []
    for pair in pairs:
        forget_entries()
        for name, question in (("miss", pair["first"]), ("exact", pair["first"]), ("semantic", pair["second"])):
            reply, elapsed = http.ask(question)
            if name == "semantic" and not reply["trace"].get("similar_question"):
                refused.append(pair["second"])
                continue
            if name != "miss" and not reply["trace"]["from_cache"]:
                raise RuntimeError(f"{question!r} was not answered from the cache")
            timings[name].append(elapsed)
            server[name].append(reply["trace"]["total_ms"])
        status, _, elapsed = http.request("GET", "/healthz")
        timings["bare"].append(elapsed)
    http.close()
    medians = {name: median(values) if values else None for name, values in timings.items()}
    semantic_ms, exact_ms = medians["semantic"], medians["exact"]
    return {
        "pairs": len(pairs),
        "served": len(timings["semantic"]),
        "not served": refused,
        "http_median_ms": medians,
        "server_median_ms": {name: median(values) if values else None for name, values in server.items()},
        "semantic_minus_exact_ms": semantic_ms - exact_ms if semantic_ms is not None and exact_ms else None,
    }


def providers(sites: dict[str, Site], questions: list[str], *, rounds: int) -> dict[str, Any]:
    """An uncached ask (no-store, as staff) on each site (one embedding provider each), with
    the server's embed stage, beside each one's bare view."""
    login = staff_login()  # once: a new password ends the sessions signed in with the old one
    public = list(Collection.objects.filter(is_public=True).order_by("pk").values_list("name", flat=True)[:20])

    def prepare(http: Client) -> None:
        http.sign_in(*login)
        http.ask("warm up the model", "no-store", collections=public)

    def uncached(name: str, http: Client, question: str) -> dict[str, float]:
        reply, elapsed = http.ask(question, "no-store", collections=public)
        return {"uncached": elapsed, "embed": reply["trace"]["stages"]["embed"]}

    medians = _in_turn(sites, questions, rounds=rounds, prepare=prepare, ask=uncached)
    return {"asks": len(questions) * rounds, "http_median_ms": medians}


def cluster(sites: dict[str, Site], questions: list[str], *, rounds: int) -> dict[str, Any]:
    """A fully cached answer on each site (one Redis; a Redis Cluster), beside each one's bare view."""

    def prepare(http: Client) -> None:
        for question in questions:
            http.ask(question)  # cached now

    def cached(name: str, http: Client, question: str) -> dict[str, float]:
        reply, elapsed = http.ask(question)
        if not reply["trace"]["from_cache"]:
            raise RuntimeError(f"{question!r} was not a full hit on the {name} site")
        return {"cached": elapsed}

    medians = _in_turn(sites, questions, rounds=rounds, prepare=prepare, ask=cached)
    return {
        "asks": len(questions) * rounds,
        "http_median_ms": medians,
        "cluster_over_single": medians["cluster"]["cached"] / medians["single"]["cached"],
    }


def _in_turn(
    sites: dict[str, Site],
    questions: list[str],
    *,
    rounds: int,
    prepare: Callable[[Client], None],
    ask: Callable[[str, Client, str], dict[str, float]],
) -> dict[str, dict[str, float]]:
    """Over HTTP, the sites taking turns, so that each sees the same machine at the same
    time: for each question, each site's bare view, then `ask`; the medians per site."""
    clients = {name: Client(site.base) for name, site in sites.items()}
    timings: dict[str, dict[str, list[float]]] = {name: {"bare": []} for name in sites}
    for http in clients.values():
        prepare(http)
    for _ in range(rounds):
        for question in questions:
            for name, http in clients.items():
                http.keep_alive()  # idle while the other sites answered
                _, _, elapsed = http.request("GET", "/healthz")
                timings[name]["bare"].append(elapsed)
                for kind, value in ask(name, http, question).items():
                    timings[name].setdefault(kind, []).append(value)
    for http in clients.values():
        http.close()
    return {name: {kind: median(values) for kind, values in kinds.items()} for name, kinds in timings.items()}


# -- in-process --------------------------------------------------------------------


def miss_overhead(collection_ids: list[int], *, rounds: int) -> dict[str, float]:
    """The speed layer's own cost on a complete miss: the whole answer minus the stages it
    wraps, against the same for an uncached answer (in-process: microseconds matter)."""
    answer(question="warm up", collection_ids=collection_ids, cache_policy=NO_CACHE)
    uncached, missed = [], []
    for _ in range(rounds):
        for question in QUESTIONS:
            trace = answer(question=question, collection_ids=collection_ids, cache_policy=NO_CACHE).trace
            uncached.append(trace["total_ms"] - sum(trace["stages"].values()))
            forget_entries()
            trace = answer(question=question, collection_ids=collection_ids).trace
            missed.append(trace["total_ms"] - sum(trace["stages"].values()))
    return {"miss_overhead_ms": median(missed) - median(uncached), "uncached_overhead_ms": median(uncached)}


class NaiveCache:
    """The cache-aside design of the course: the key is the question's hash, a TTL, nothing
    else. Used only to count the stale answers it serves."""

    def __init__(self, ttl: int = 3600) -> None:
        self.ttl = ttl

    def ask(self, question: str, collection_ids: list[int]) -> str:
        key = "bench-naive:" + hashlib.sha256(question.encode()).hexdigest()
        redis = cache_client.connection()
        cached = redis.get(key)
        if isinstance(cached, bytes):
            return cached.decode()
        text = answer(question=question, collection_ids=collection_ids, cache_policy=NO_CACHE).text
        redis.set(key, text, ex=self.ttl)
        return text

    def clear(self) -> None:
        redis = cache_client.connection()
        for key in redis.scan_iter(match="bench-naive:*"):
            redis.unlink(key)


def staleness(site: Site, *, lockers: int, rounds: int) -> dict[str, Any]:
    """Ask about facts, change some of them between rounds, and count the answers served
    that do not say what the documents say now: ours over HTTP, the naive cache in-process."""
    collection, _ = Collection.objects.get_or_create(name="Bench lockers")
    collection.documents.all().delete()
    codes = {n: f"K{n}{0:03d}" for n in range(lockers)}
    documents = {}
    for n, code in codes.items():
        document = document_create(collection=collection, filename=f"locker-{n}.txt",
                                   data=_locker_text(n, code).encode(), queue=False)  # fmt: skip
        document_ingest(document_id=document.pk)
        documents[n] = document
    http, naive = Client(site.base), NaiveCache()
    naive.clear()
    served = {"ours": 0, "naive": 0}
    stale = {"ours": 0, "naive": 0}
    for round_number in range(rounds):
        if round_number:  # change half the codes, committed as an admin's upload would be
            for n in range(round_number % 2, lockers, 2):
                codes[n] = f"K{n}{round_number:03d}"
                document_replace_source(document=documents[n], filename=f"locker-{n}.txt",
                                        data=_locker_text(n, codes[n]).encode())  # fmt: skip
                document_ingest(document_id=documents[n].pk)
        for n, code in codes.items():
            question = f"What is the access code of locker {n}?"
            ours = _ask_in(http, question, collection)
            served["ours"] += 1
            served["naive"] += 1
            stale["ours"] += code not in ours
            stale["naive"] += code not in naive.ask(question, [collection.pk])
    http.close()
    naive.clear()
    collection.delete()
    return {"asks": served, "stale": stale, "lockers": lockers, "rounds": rounds}


def _ask_in(http: Client, question: str, collection: Collection) -> str:
    status, payload, _ = http.request("POST", "/api/ask", {"question": question, "collections": [collection.name]})
    if status != 200 or payload is None:
        raise RuntimeError(f"/api/ask answered {status}: {payload}")
    return str(payload["answer"])


def _locker_text(number: int, code: str) -> str:
    return f"Locker {number}\n\nThe access code of locker {number} is {code}. Lockers are emptied every Friday."


def growth(*, sizes: list[int], samples: int) -> list[dict[str, Any]]:
    """Retrieval (hybrid and dense) and a complete miss, in-process, as synthetic chunks
    grow the corpus (drawn from the demo's words and embeddings)."""
    _growth_remove()  # one an interrupted run left
    collection = Collection.objects.create(name="Bench growth", is_public=False)
    Collection.objects.filter(pk=collection.pk).update(embedding_space=get_embedder().space)
    document = Document.objects.create(
        collection=collection, title="synthetic chunks", original_filename="synthetic.txt",
        content_type="text/plain", source=b"", size=0, content_hash="synthetic", status=Document.Status.READY,
    )  # fmt: skip
    rng = np.random.default_rng(11)
    rows = []
    for size in sizes:
        present = document.chunks.count()
        if present < size:
            started = time.perf_counter()
            _insert_synthetic(document, present, size - present, rng)
            inserted_in = time.perf_counter() - started
        else:
            inserted_in = 0.0
        ids = [collection.pk]
        questions = QUESTIONS[:samples]
        dense = {q: question_dense(q, ids) for q in questions}
        timings: dict[str, list[float]] = {"hybrid": [], "dense": [], "miss": []}
        for mode in ("hybrid", "dense"):
            for question in questions:  # a first pass, so the index's pages are in memory, as on a site in use
                passages_search(question=question, dense=dense[question], k=5, mode=mode)
            for question in questions:
                started = time.perf_counter()
                passages_search(question=question, dense=dense[question], k=5, mode=mode)
                timings[mode].append((time.perf_counter() - started) * 1000)
        for question in questions:
            forget_entries()
            timings["miss"].append(answer(question=question, collection_ids=ids).trace["total_ms"])
        rows.append({"chunks": document.chunks.count(), "inserted_seconds": round(inserted_in, 1),
                     **{f"{name}_p50_ms": median(values) for name, values in timings.items()}})  # fmt: skip
    _growth_remove()
    return rows


def _growth_remove() -> None:
    """Delete the synthetic chunks, and their entries in the HNSW index. Left in the index,
    live or dead, they crowd the nearest candidates of every later search of the demo: its
    dense retrieval took 82 ms with them in place and 58 ms once deleted, against 15 ms
    before and after. The index is built again (0.2 s) rather than vacuumed (3 minutes)."""
    Collection.objects.filter(name="Bench growth").delete()
    with connection.cursor() as cursor:
        for name, _ in _hnsw_indexes(cursor):
            cursor.execute(f'REINDEX INDEX "{name}"')
        if not connection.in_atomic_block:  # VACUUM cannot run in a transaction (as in tests)
            cursor.execute("VACUUM ANALYZE documents_chunk")


def _hnsw_indexes(cursor: CursorWrapper) -> list[tuple[str, str]]:
    """The chunk table's HNSW indexes: each one's name and definition."""
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'documents_chunk' "
                   "AND indexdef LIKE '%%USING hnsw%%'")  # fmt: skip
    return list(cursor.fetchall())


def _demo_corpus() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The demo's words with their frequencies, and its chunks' embeddings: what synthetic
    chunks are drawn from, so that they look like the demo to both kinds of search."""
    counts: dict[str, int] = {}
    vectors = []
    for text, embedding in Chunk.objects.exclude(embedding_model="synthetic").values_list("text", "embedding")[:2000]:
        vectors.append(np.asarray(embedding, dtype=np.float32))
        for word in text.split():
            word = word.strip(".,:;()[]'\"").lower()
            if word.isalpha():
                counts[word] = counts.get(word, 0) + 1
    words = sorted(counts, key=counts.__getitem__, reverse=True)[:8000]
    weights = np.asarray([counts[w] for w in words], dtype=np.float64)
    return words, weights / weights.sum(), np.stack(vectors)


def _insert_synthetic(document: Document, first: int, count: int, rng: np.random.Generator) -> None:
    """COPY the chunks in with the HNSW index dropped, then build it again in memory: adding
    100,000 vectors one by one to an index larger than shared_buffers takes most of an hour.
    Each chunk: 90 of the demo's words, drawn by frequency; an embedding near a demo chunk's."""
    from pgvector.psycopg import register_vector

    words, weights, demo = _demo_corpus()
    space = get_embedder().space
    vocabulary = np.asarray(words, dtype=object)
    columns = "document_id, ordinal, text, content_hash, token_count, embedding_model, embedding_space, embedding"
    with connection.cursor() as cursor:
        hnsw = _hnsw_indexes(cursor)
        for name, _ in hnsw:
            cursor.execute(f'DROP INDEX "{name}"')
        raw = cursor.connection
        register_vector(raw)
        for start in range(first, first + count, 10_000):
            size = min(10_000, first + count - start)
            picks = rng.choice(len(vocabulary), size=(size, 90), p=weights)
            vectors = demo[rng.integers(len(demo), size=size)] + rng.normal(0, 0.03, size=(size, demo.shape[1]))
            vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
            with raw.cursor().copy(f"COPY documents_chunk ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int4", "text", "varchar", "int4", "varchar", "varchar", "vector"])
                for offset in range(size):
                    ordinal = start + offset
                    copy.write_row((document.pk, ordinal, " ".join(vocabulary[picks[offset]]),
                                    f"synthetic-{ordinal}", 120, "synthetic", space, vectors[offset]))  # fmt: skip
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # in a transaction: check the foreign keys now
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in hnsw:
            cursor.execute(definition)
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("ANALYZE documents_chunk")


def ingestion(paths: list[Path], *, name: str = "Bench ingestion", group: int = 8) -> dict[str, Any]:
    """Ingestion of `paths` as manage.py ingest does it (documents_ingest), `group` documents
    at a time, each group's followed by the embedder alone on the very chunks it made, a
    document's in one call, so that both meet the same moments of a noisy machine: chunks
    per second of each."""
    Collection.objects.filter(name=name).delete()
    collection = Collection.objects.create(name=name)
    documents = [
        document_create(collection=collection, filename=path.name, data=path.read_bytes(), queue=False)
        for path in paths
    ]
    embedder = get_embedder()
    embedder.embed(["warm up"])
    ingest_seconds = alone_seconds = 0.0
    chunks = 0
    for start in range(0, len(documents), group):
        ids = [document.pk for document in documents[start : start + group]]
        started = time.perf_counter()
        failed = [pk for pk, result in documents_ingest(document_ids=ids) if result is None]
        ingest_seconds += time.perf_counter() - started
        if failed:
            raise RuntimeError(f"bench pages failed to ingest: documents {failed}")
        per_document = [_embedded_texts(pk) for pk in ids]
        started = time.perf_counter()
        for texts in per_document:
            embedder.embed(texts)
        alone_seconds += time.perf_counter() - started
        chunks += sum(map(len, per_document))
    collection.delete()
    return {
        "documents": len(documents),
        "chunks": chunks,
        "documents_at_once": settings.INGEST_CONCURRENCY,
        "ingest_chunks_per_s": round(chunks / ingest_seconds, 1),
        "embedder_chunks_per_s": round(chunks / alone_seconds, 1),
        "ratio": round(alone_seconds / ingest_seconds, 3),
    }


def _embedded_texts(document_id: int) -> list[str]:
    rows = Chunk.objects.filter(document_id=document_id).order_by("ordinal").values_list("section", "text")
    return [TextChunk(text=text, token_count=0, section=section).embedded_text for section, text in rows]


def prepare_api_demo(directory: str, name: str, *, base_url: str) -> Collection:
    """`directory`'s files embedded by the endpoint at `base_url`: a collection is searched in
    the space of the model that embedded it, so the API-shaped site embeds its questions
    through the endpoint only for a collection the endpoint embedded. Made anew each run."""
    Collection.objects.filter(name=name).delete()
    with override_settings(
        EMBEDDING_PROVIDER="openai", OPENAI_BASE_URL=base_url, OPENAI_API_KEY="bench", OPENAI_MAX_RETRIES=0
    ):
        get_embedder.cache_clear()
        try:
            call_command("ingest", directory, "--collection", name, verbosity=0, stdout=io.StringIO())
        finally:
            get_embedder.cache_clear()
    return Collection.objects.get(name=name)


def prepare_demo(directory: str, name: str) -> Collection:
    """The collection of `directory`'s files, ingested if it is not, or re-ingested if its
    chunks are of an older format."""
    call_command("migrate", "--noinput", verbosity=0)
    documents = Document.objects.filter(collection__name=name)
    ready = documents.filter(status="ready")
    if not ready.exists() or ready.filter(chunk_format__lt=CHUNK_FORMAT).exists():
        print(f"Ingesting {directory} into {name}…", flush=True)
        call_command("ingest", directory, "--collection", name, verbosity=0)
    return Collection.objects.get(name=name)
