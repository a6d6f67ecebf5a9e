"""Reads: documents, their progress, and nearest-neighbour search over chunks."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from pgvector.django import CosineDistance

from documents.chunking import FORMAT as CHUNK_FORMAT
from documents.embedding import get_embedder
from documents.models import SEARCH_CONFIG, Chunk, Collection, Document

# Words, and dotted names (str.join, os.path) that PostgreSQL's parser keeps whole.
SEARCH_TERM = re.compile(r"\w+(?:\.\w+)+|\w+")
MAX_SEARCH_TERMS = 32
COMMON_TERM_SHARE = 0.1
MATCH_BUDGET = 1000  # chunks the full-text side ranks, at most (but for the rarest word)


def collections_readable_by(*, user: AbstractUser | AnonymousUser) -> QuerySet[Collection]:
    if getattr(user, "is_staff", False):
        return Collection.objects.order_by("name")
    readable = Q(is_public=True)
    if user.is_authenticated:
        readable |= Q(reader_groups__in=user.groups.all())
    return Collection.objects.filter(readable).distinct().order_by("name")


@contextmanager
def one_snapshot() -> Iterator[None]:
    """The statements inside read one snapshot of the database: a search of several
    statements (candidates, full text, the chunks themselves) never mixes rows from before
    and after an ingestion that commits meanwhile, which could drop its document entirely.
    Inside a transaction already, that transaction decides."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def chunks_searched(scope: Mapping[str, Sequence[int]]) -> QuerySet[Chunk]:
    """The chunks retrieval searches in `scope` (each embedding space, and the collections
    searched in it: collections_by_space): each collection's in its space. While a model of
    another space embeds a collection again, its new chunks wait beside. The spaces are
    named, not joined from the collections: the join cost 4 to 7% of a hybrid search."""
    condition = Q()
    for space, collection_ids in scope.items():
        condition |= Q(embedding_space=space, document__collection_id__in=collection_ids)
    return Chunk.objects.filter(condition) if condition else Chunk.objects.none()


def collections_by_space(collection_ids: Sequence[int]) -> dict[str, list[int]]:
    """The collections of `collection_ids` by the embedding space they are searched in (one,
    but while a model change is under way); a collection not yet ingested is in none."""
    spaces: dict[str, list[int]] = {}
    rows = Collection.objects.filter(pk__in=collection_ids).exclude(embedding_space="").order_by("pk")
    for space, collection_id in rows.values_list("embedding_space", "pk"):
        spaces.setdefault(space, []).append(collection_id)
    return spaces


def chunks_nearest(
    *, embedding: Sequence[float] | np.ndarray, space: str, collection_ids: Sequence[int], limit: int = 5
) -> list[Chunk]:
    """The `limit` chunks closest to `embedding` by cosine distance, closest first.

    The HNSW index gives the RETRIEVAL_ANN_CANDIDATES nearest chunks of the whole corpus,
    and the collections' are picked out of them: pgvector 0.6 cannot filter inside the
    index, and a query that joins the collections in misleads the planner into reading
    every chunk they hold. When that leaves fewer than `limit` (the collections are a
    small part of the corpus), their chunks are compared one by one: few, so quick.
    """
    distance = CosineDistance("embedding", embedding)
    scoped = (
        chunks_searched({space: collection_ids})
        .select_related("document")
        .defer("embedding", "search_vector", "document__source", "document__text")  # large, and not needed here
        .annotate(distance=distance)
        .order_by("distance")
    )
    count = max(limit, settings.RETRIEVAL_ANN_CANDIDATES)
    candidates = list(chunks_nearest_candidates(embedding=embedding, count=count))
    found = list(scoped.filter(pk__in=candidates)[:limit])
    # Fewer candidates than asked for: the corpus is small, or the index scan ran short
    # (dead rows not yet vacuumed crowd its search); either way they are not the nearest.
    if len(found) == limit and len(candidates) == count:
        return found  # type: ignore[return-value]
    # Compared one by one: ordered by the bare distance, the planner may walk the HNSW index
    # again and filter what it returns, which can leave nothing (the index holds dead rows).
    exact = scoped.annotate(exact_distance=F("distance") + 0).order_by("exact_distance")
    return list(exact[:limit])  # type: ignore[return-value]


def chunks_nearest_candidates(*, embedding: Sequence[float] | np.ndarray, count: int) -> QuerySet[Chunk, int]:
    """Ids of the `count` chunks nearest to `embedding` in the whole corpus, from the HNSW index."""
    return Chunk.objects.order_by(CosineDistance("embedding", embedding)).values_list("id", flat=True)[:count]


def chunks_full_text(*, text: str, scope: Mapping[str, Sequence[int]], limit: int = 5) -> QuerySet[Chunk]:
    """Chunks matching any of the distinctive words of `text`, best first.

    The terms are ORed: a long question ANDed would match almost nothing. PostgreSQL's
    rank knows nothing of how common a word is, so words found in more than
    COMMON_TERM_SHARE of all chunks are left out, unless nothing else is left: a
    function name then decides the ranking, not "list" or "use".
    """
    terms = search_terms_distinctive(text)
    if not terms:
        return Chunk.objects.none()
    query = SearchQuery(" | ".join(terms), search_type="raw", config=SEARCH_CONFIG)
    chunks = (
        chunks_searched(scope)
        .select_related("document")
        .defer("embedding", "search_vector", "document__source", "document__text")
        .filter(search_vector=query)
    )
    rank = SearchRank(F("search_vector"), query, cover_density=True)
    return chunks.annotate(rank=rank).order_by("-rank", "id")[:limit]


def search_terms_distinctive(text: str) -> list[str]:
    """The words of `text` worth searching for: those in at most COMMON_TERM_SHARE of the
    chunks (all of them, if none is), rarest first, within MATCH_BUDGET matching chunks.
    Their counts come from documents_termfrequency,
    which the chunk table's triggers keep: an index lookup per word, not a count over
    the table. A word of several lexemes counts as its rarest."""
    terms = list(dict.fromkeys(term.lower() for term in SEARCH_TERM.findall(text)))[:MAX_SEARCH_TERMS]
    if not terms:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.term, min(coalesce(tf.chunks, 0)), "
            "(SELECT chunks FROM documents_termfrequency WHERE lexeme = '') "
            "FROM unnest(%s::text[]) WITH ORDINALITY AS t(term, position) "
            "CROSS JOIN LATERAL unnest(tsvector_to_array(to_tsvector(%s::regconfig, t.term))) AS l(lexeme) "
            "LEFT JOIN documents_termfrequency tf ON tf.lexeme = l.lexeme "
            "GROUP BY t.term, t.position ORDER BY t.position",
            [terms, SEARCH_CONFIG],
        )
        rows = cursor.fetchall()
    total = (rows[0][2] if rows else 0) or 0
    present = [(term, count) for term, count, _ in rows if count]
    distinctive = [(term, count) for term, count in present if count <= max(COMMON_TERM_SHARE * total, 1)]
    # Ranking reads every chunk that matches: the rarest words first, up to MATCH_BUDGET
    # chunks in all (the rarest always), so the cost stays flat as the corpus grows.
    chosen: set[str] = set()
    matched = 0
    for term, count in sorted(distinctive or present, key=lambda pair: pair[1]):
        if chosen and matched + count > MATCH_BUDGET:
            break
        chosen.add(term)
        matched += count
    return [term for term, _ in present if term in chosen]


def chunk_distances(*, ids: Sequence[int], embedding: Sequence[float] | np.ndarray) -> dict[int, float]:
    """The cosine distance of each chunk of `ids` to `embedding`. Apart from the full-text
    search, whose ranking reads hundreds of rows, so that only the few it contributes pay."""
    if not ids:
        return {}
    distances = Chunk.objects.filter(pk__in=ids).annotate(distance=CosineDistance("embedding", embedding))
    return dict(distances.values_list("pk", "distance"))


def chunks_by_ids(*, ids: Sequence[int]) -> list[Chunk]:
    """The chunks, with their documents and collections, in the order of `ids`."""
    by_id = {
        c.pk: c
        for c in Chunk.objects.select_related("document__collection")
        .defer("embedding", "search_vector", "document__source", "document__text")
        .filter(pk__in=ids)
    }
    return [by_id[i] for i in ids if i in by_id]


def collection_generations(collection_ids: Sequence[int] | None) -> dict[int, int]:
    """The speed layer's generation loader (RAGCACHE["GENERATION_LOADER"])."""
    collections = (
        Collection.objects.all() if collection_ids is None else Collection.objects.filter(pk__in=collection_ids)
    )
    return dict(collections.values_list("id", "generation"))


def collection_catalog() -> tuple[int, list[tuple[int, str, bool]]]:
    """The speed layer's catalog loader (RAGCACHE["CATALOG_LOADER"]): the version and every
    collection's id, name and public flag, read in one statement so they agree."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT catalog.version, c.id, c.name, c.is_public FROM documents_catalog catalog "
            "LEFT JOIN documents_collection c ON TRUE WHERE catalog.id = 1 ORDER BY c.id"
        )
        rows = cursor.fetchall()
    if not rows:  # the row is made by the migrations and by the first bump
        return 0, list(Collection.objects.order_by("id").values_list("id", "name", "is_public"))
    return int(rows[0][0]), [(cid, name, public) for _, cid, name, public in rows if cid is not None]


def documents_with_chunk_counts() -> QuerySet[Document]:
    return Document.objects.defer("source", "text").annotate(chunk_count=Count("chunks"))


def documents_by_status() -> dict[str, int]:
    """How many documents are in each ingestion status (every status, zeros included)."""
    counts = dict(Document.objects.values_list("status").annotate(count=Count("pk")).order_by())
    return {status: int(counts.get(status, 0)) for status in Document.Status.values}


def documents_outdated(*, collections: QuerySet[Collection] | None = None) -> QuerySet[Document]:
    """Ready documents whose chunks an ingestion today would make otherwise: chunked by an
    older chunker, or embedded (any chunk of them) by another model than the configured one."""
    embedder = get_embedder()
    # Chunks of other spaces beside the model's own are a change under way, not outdated.
    other_model = Chunk.objects.filter(document=OuterRef("pk"), embedding_space=embedder.space).exclude(
        embedding_model=embedder.model_name
    )
    own = Chunk.objects.filter(document=OuterRef("pk"), embedding_model=embedder.model_name)
    documents = Document.objects.filter(status=Document.Status.READY)
    if collections is not None:
        documents = documents.filter(collection__in=collections)
    chunked = Chunk.objects.filter(document=OuterRef("pk"))
    outdated = Q(chunk_format__lt=CHUNK_FORMAT) | Q(Exists(other_model)) | (Q(Exists(chunked)) & ~Q(Exists(own)))
    return documents.filter(outdated).order_by("pk")
