"""Reads: documents, their progress, and nearest-neighbour search over chunks."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import Count, F, Q, QuerySet
from pgvector.django import CosineDistance

from documents.models import SEARCH_CONFIG, Chunk, Collection, Document

# Words, and dotted names (str.join, os.path) that PostgreSQL's parser keeps whole.
SEARCH_TERM = re.compile(r"\w+(?:\.\w+)+|\w+")
MAX_SEARCH_TERMS = 32
COMMON_TERM_SHARE = 0.1


def collections_readable_by(*, user: AbstractUser | AnonymousUser) -> QuerySet[Collection]:
    if getattr(user, "is_staff", False):
        return Collection.objects.order_by("name")
    readable = Q(is_public=True)
    if user.is_authenticated:
        readable |= Q(reader_groups__in=user.groups.all())
    return Collection.objects.filter(readable).distinct().order_by("name")


def chunks_nearest(
    *, embedding: Sequence[float] | np.ndarray, collection_ids: Sequence[int] | None = None, limit: int = 5
) -> QuerySet[Chunk]:
    """The `limit` chunks closest to `embedding` by cosine distance, closest first."""
    chunks = Chunk.objects.select_related("document")
    if collection_ids is not None:
        chunks = chunks.filter(document__collection_id__in=collection_ids)
    return chunks.annotate(distance=CosineDistance("embedding", embedding)).order_by("distance")[:limit]


def chunks_full_text(*, text: str, collection_ids: Sequence[int] | None = None, limit: int = 5) -> QuerySet[Chunk]:
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
    chunks = Chunk.objects.select_related("document").filter(search_vector=query)
    if collection_ids is not None:
        chunks = chunks.filter(document__collection_id__in=collection_ids)
    rank = SearchRank(F("search_vector"), query, cover_density=True)
    return chunks.annotate(rank=rank).order_by("-rank", "id")[:limit]


def search_terms_distinctive(text: str) -> list[str]:
    """The words of `text` worth searching for: those in at most COMMON_TERM_SHARE of the
    chunks (all of them, if none is). Their counts come from documents_termfrequency,
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
    distinctive = [term for term, count in present if count <= max(COMMON_TERM_SHARE * total, 1)]
    return distinctive or [term for term, _ in present]


def chunks_by_ids(*, ids: Sequence[int]) -> list[Chunk]:
    """The chunks, with their documents and collections, in the order of `ids`."""
    by_id = {
        c.pk: c
        for c in Chunk.objects.select_related("document__collection")
        .defer("embedding", "document__source", "document__text")
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
