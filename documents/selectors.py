"""Reads: documents, their progress, and nearest-neighbour search over chunks."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Count, QuerySet
from pgvector.django import CosineDistance

from documents.models import Chunk, Collection, Document


def chunks_nearest(
    *, embedding: Sequence[float], collection_ids: Sequence[int] | None = None, limit: int = 5
) -> QuerySet[Chunk]:
    """The `limit` chunks closest to `embedding` by cosine distance, closest first."""
    chunks = Chunk.objects.select_related("document")
    if collection_ids is not None:
        chunks = chunks.filter(document__collection_id__in=collection_ids)
    return chunks.annotate(distance=CosineDistance("embedding", embedding)).order_by("distance")[:limit]


def documents_with_chunk_counts() -> QuerySet[Document]:
    return Document.objects.defer("source", "text").annotate(chunk_count=Count("chunks"))


def documents_by_ids(*, ids: Sequence[int]) -> list[Document]:
    by_id = {d.pk: d for d in documents_with_chunk_counts().select_related("collection").filter(pk__in=ids)}
    return [by_id[i] for i in ids if i in by_id]


def collections_for_upload() -> QuerySet[Collection]:
    return Collection.objects.order_by("name")
