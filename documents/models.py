from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

# Full-text search reads English; the configuration is fixed so the column can be generated.
SEARCH_CONFIG = "english"


class Collection(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    is_public = models.BooleanField(default=True, help_text="Anyone, signed in or not, may ask questions of it.")
    reader_groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="readable_collections",
        help_text="Who else may read a collection that is not public (staff read every collection).",
    )
    # Bumped, in the same transaction, by every change to the collection's documents or
    # chunks; the speed layer keys retrievals by it (see ragcache.keys).
    generation = models.PositiveBigIntegerField(default=1, editable=False)
    # The generation last known to have reached Redis; a sweep publishes any that is behind
    # (a publish lost on commit), see documents.services.unpublished_publish.
    published_generation = models.PositiveBigIntegerField(db_default=0, editable=False)
    # Retrieval searches the chunks embedded in this space; a model of another space embeds
    # beside them (manage.py reembed), and the collection switches once every document has
    # its new chunks. Empty until the first ingestion.
    embedding_space = models.CharField(
        max_length=200, blank=True, db_default="", editable=False,
        help_text="The embedding space retrieval searches in this collection.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Only the database moves the generation and its mark (UPDATE ... + 1): a save of an
        # instance read before a bump must not write the old value back, or a later bump
        # would reuse a generation that cached entries were already keyed by.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in {"generation", "published_generation", "embedding_space"}
            ]  # fmt: skip
        super().save(*args, **kwargs)


class Catalog(models.Model):
    """One row: the version of the catalog of collections (which exist, their names, which are
    public), bumped in the transaction of every change to a collection. The speed layer keeps
    a copy of the catalog and checks it against this version (see ragcache.catalog)."""

    version = models.PositiveBigIntegerField(default=1)
    published_version = models.PositiveBigIntegerField(db_default=0)  # the last to reach Redis

    def __str__(self) -> str:
        return f"catalog v{self.version}"


class Document(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=300)
    original_filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    # The uploaded bytes, kept in PostgreSQL so any worker can re-ingest them.
    source = models.BinaryField(editable=False)
    # Deliveries of the ingestion task since the document was last queued: a worker killed
    # mid-ingestion gets its task again (acks_late), INGEST_MAX_ATTEMPTS times at most.
    ingest_attempts = models.PositiveSmallIntegerField(db_default=0, editable=False)
    chunk_format = models.PositiveSmallIntegerField(
        db_default=0, editable=False, help_text="The chunker's format of the chunks (documents.chunking.FORMAT)."
    )
    size = models.PositiveBigIntegerField(help_text="Size of the uploaded file in bytes.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the uploaded bytes.")
    text = models.TextField(blank=True, help_text="Text extracted at the last successful ingestion.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.TextField(blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent of the current ingestion done.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ingested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["collection", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "content_hash"], name="document_unique_content_per_collection"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.READY, self.Status.FAILED}


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of what is embedded: section label and text.")
    token_count = models.PositiveIntegerField(help_text="Length in the embedder's tokens, special tokens included.")
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS)
    embedding_model = models.CharField(max_length=200)
    embedding_space = models.CharField(
        max_length=200, db_default="", help_text="Vectors of one space compare: the models that embed alike."
    )
    section = models.TextField(
        blank=True, db_default="", help_text="The section the chunk is from: page title and heading path."
    )
    # The section's words weigh above the body's (A against B) in the full-text rank.
    search_vector = models.GeneratedField(
        expression=SearchVector("section", config=SEARCH_CONFIG, weight="A")
        + SearchVector("text", config=SEARCH_CONFIG, weight="B"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [
            # A document holds a second set while another space's model embeds it again.
            models.UniqueConstraint(fields=["document", "embedding_space", "ordinal"], name="chunk_unique_ordinal"),
        ]
        indexes = [
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(name="chunk_search_vector_gin", fields=["search_vector"]),
        ]

    def __str__(self) -> str:
        return f"{self.document} #{self.ordinal}"


class TermFrequency(models.Model):
    """How many chunks hold each lexeme of the full-text search, kept by triggers on the
    chunk table (migration 0005) as chunks come and go; the row with the empty lexeme
    holds the number of chunks. Retrieval reads it to leave out common words at the cost
    of an index lookup per word, however many chunks there are."""

    lexeme = models.TextField(primary_key=True)
    chunks = models.BigIntegerField()

    class Meta:
        verbose_name_plural = "term frequencies"

    def __str__(self) -> str:
        return f"{self.lexeme or '(all chunks)'}: {self.chunks}"
