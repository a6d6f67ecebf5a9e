"""Writes: accepting uploads and ingesting documents into chunks and embeddings."""

from __future__ import annotations

import functools
import hashlib
import logging
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.dispatch import Signal
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from documents.chunking import FORMAT as CHUNK_FORMAT
from documents.chunking import TextChunk, chunk_document
from documents.embedding import Embedder, EmbeddingError, embedder_for_space, get_embedder
from documents.models import Catalog, Chunk, Collection, Document
from documents.parsing import SUPPORTED_EXTENSIONS, ParseError, content_type_for, parse_document
from ragcache import catalog, generations
from ragsite import metrics

logger = logging.getLogger(__name__)
EMBED_CALL_TEXTS = 256  # at least, per call to the embedder (a few seconds of work)
PROGRESS_STEPS = 10  # calls to the embedder per document, at most, to move its progress bar


class UploadError(Exception):
    """An upload refused before a document exists; the message is shown to the uploader."""


class DuplicateDocumentError(UploadError):
    def __init__(self, existing: Document) -> None:
        self.existing = existing
        message = f"Identical content is already in {existing.collection} as “{existing.title}”."
        if existing.status == Document.Status.FAILED:
            reason = existing.failure_reason or "no reason was recorded."
            message = f"{message[:-1]}, but its ingestion failed: {reason} Retry or delete it first."
        super().__init__(message)


class DocumentNotFailedError(Exception):
    """Retry and delete on the upload page are for failed documents; the message says why not."""

    def __init__(self, document: Document, verb: str) -> None:
        super().__init__(f"“{document.title}” has not failed (it is {document.status}); there is nothing to {verb}.")


@dataclass(frozen=True)
class IngestSupersededError(Exception):
    """The document got new content mid-ingestion; the ingestion queued for it will finish."""


@dataclass(frozen=True)
class IngestResult:
    chunks: int
    embedded: int  # chunks whose text was new and went to the embedder
    reused: int  # chunks whose embedding was kept from the previous ingestion


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


FILENAME_MAX_LENGTH = Document._meta.get_field("original_filename").max_length or 255
# Control characters (PostgreSQL cannot store NUL), line separators and lone surrogates,
# and the bidirectional controls that make "report\u202efdp.txt" read as "reporttxt.pdf".
FILENAME_FORBIDDEN_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _filename_char_forbidden(char: str) -> bool:
    return char in BIDI_CONTROLS or unicodedata.category(char) in FILENAME_FORBIDDEN_CATEGORIES


def upload_validate(*, filename: str, size: int) -> str:
    """The upload's content type, or UploadError saying what is wrong with it."""
    if not filename or "/" in filename or "\\" in filename or filename in {".", ".."}:
        raise UploadError(f"The file name {filename!r} is not a plain file name (no folders or path separators).")
    if any(_filename_char_forbidden(char) for char in filename):
        shown = "".join(
            char.encode("unicode_escape", "backslashreplace").decode() if _filename_char_forbidden(char) else char
            for char in filename
        )
        raise UploadError(
            f"The file name '{shown}' has invisible or control characters; rename the file and upload it again."
        )
    if len(filename) > FILENAME_MAX_LENGTH:
        raise UploadError(
            f"The file name is {len(filename)} characters long; the limit is {FILENAME_MAX_LENGTH}. "
            "Rename the file and upload it again."
        )
    content_type = content_type_for(filename)
    if content_type is None:
        suffix = PurePath(filename).suffix or "(none)"
        raise UploadError(f"{filename}: file type {suffix} is not supported; upload {SUPPORTED_EXTENSIONS}.")
    if size == 0:
        raise UploadError(f"{filename} is empty.")
    if size > settings.UPLOAD_MAX_BYTES:
        shown, limit = sizes_distinct(size, settings.UPLOAD_MAX_BYTES)
        raise UploadError(f"{filename} is {shown}; the limit is {limit}.")
    return content_type


def sizes_distinct(*sizes: int) -> list[str]:
    """The sizes for people (2.0 KB), or in exact bytes when rounding would make unequal sizes read alike."""
    rounded = [filesizeformat(size) for size in sizes]
    if len(set(rounded)) == len(set(sizes)):
        return rounded
    return [f"{size:,}\xa0bytes" for size in sizes]


@dataclass(frozen=True)
class Accepted:
    document: Document
    retried: bool  # the upload went to a document whose ingestion had failed, not a new one


def document_accept(
    *, collection: Collection, filename: str, data: bytes, title: str = "", queue: bool = True
) -> Accepted:
    """A new document for the upload, unless a failed document of the collection has the same
    bytes or the same file name: a failed document does not count as present, so the upload
    takes its place (and is ingested again) instead of being refused or landing beside it."""
    upload_validate(filename=filename, size=len(data))
    existing = Document.objects.filter(collection=collection, content_hash=sha256(data)).first()
    if existing is None:  # a failed twin by name, if it has nothing searchable left to lose
        existing = (
            Document.objects.filter(collection=collection, original_filename=filename, status=Document.Status.FAILED)
            .filter(chunks__isnull=True)
            .order_by("-updated_at")
            .first()
        )
    elif existing.status != Document.Status.FAILED:
        raise DuplicateDocumentError(existing)
    if existing is not None:
        document = document_replace_source(document=existing, filename=filename, data=data, title=title, queue=queue)
        return Accepted(document=document, retried=True)
    return Accepted(
        document=_document_insert(collection=collection, filename=filename, data=data, title=title, queue=queue),
        retried=False,
    )


def document_create(
    *, collection: Collection, filename: str, data: bytes, title: str = "", queue: bool = True
) -> Document:
    return document_accept(collection=collection, filename=filename, data=data, title=title, queue=queue).document


def _document_insert(*, collection: Collection, filename: str, data: bytes, title: str, queue: bool) -> Document:
    content_type = upload_validate(filename=filename, size=len(data))
    content_hash = sha256(data)
    try:
        with transaction.atomic():
            document = Document.objects.create(
                collection=collection,
                title=title or PurePath(filename).stem,
                original_filename=filename,
                content_type=content_type,
                source=data,
                size=len(data),
                content_hash=content_hash,
            )
    except IntegrityError:  # the same content arrived concurrently
        raise DuplicateDocumentError(Document.objects.get(collection=collection, content_hash=content_hash)) from None
    if queue:
        _queue_ingest(document.pk)
    return document


@dataclass(frozen=True)
class UploadOutcome:
    filename: str
    document: Document | None = None
    error: str = ""
    duplicate_of: Document | None = None
    retried: bool = False


def documents_upload(*, collection: Collection, files: Sequence[UploadedFile]) -> list[UploadOutcome]:
    """Accept each file on its own: one bad file does not stop the others."""
    outcomes = []
    for upload in files:
        filename = upload.name or ""
        try:
            # Check the size before reading, so an oversized file is never held in memory.
            upload_validate(filename=filename, size=upload.size or 0)
            accepted = document_accept(collection=collection, filename=filename, data=upload.read())
            outcomes.append(UploadOutcome(filename=filename, document=accepted.document, retried=accepted.retried))
        except DuplicateDocumentError as exc:
            outcomes.append(UploadOutcome(filename=filename, error=str(exc), duplicate_of=exc.existing))
        except UploadError as exc:
            outcomes.append(UploadOutcome(filename=filename, error=str(exc)))
    return outcomes


def document_replace_source(
    *, document: Document, filename: str, data: bytes, title: str = "", queue: bool = True
) -> Document:
    """Give a document new content; ingestion re-embeds only the chunks that changed."""
    content_type = upload_validate(filename=filename, size=len(data))
    content_hash = sha256(data)
    existing = (
        Document.objects.filter(collection=document.collection, content_hash=content_hash)
        .exclude(pk=document.pk)
        .first()
    )
    if existing is not None:
        raise DuplicateDocumentError(existing)
    if title:
        document.title = title
    elif document.title == PurePath(document.original_filename).stem:  # a title taken from the old name
        document.title = PurePath(filename).stem
    document.original_filename = filename
    document.content_type = content_type
    document.source = data
    document.size = len(data)
    document.content_hash = content_hash
    document.status = Document.Status.PENDING
    document.progress = 0
    document.failure_reason = ""
    try:
        with transaction.atomic():
            document.save()
    except IntegrityError:  # the same content arrived concurrently
        raise DuplicateDocumentError(
            Document.objects.get(collection=document.collection, content_hash=content_hash)
        ) from None
    if queue:
        _queue_ingest(document.pk)
    return document


def document_retry(*, document_id: int) -> Document:
    """Queue a failed document for ingestion again; DocumentNotFailedError for any other."""
    # One conditional UPDATE, so two retries at once queue one ingestion.
    retried = Document.objects.filter(pk=document_id, status=Document.Status.FAILED).update(
        status=Document.Status.PENDING, progress=0, failure_reason="", updated_at=timezone.now()
    )
    document = Document.objects.defer("source", "text").get(pk=document_id)
    if not retried:
        raise DocumentNotFailedError(document, "retry")
    _queue_ingest(document_id)
    return document


def document_delete(*, document_id: int) -> Document:
    """Delete a failed document (others are deleted in the admin, after its confirmation page);
    DocumentNotFailedError for any other. Through the model, so its signals move the cache on."""
    with transaction.atomic():
        document = Document.objects.select_for_update().defer("source", "text").get(pk=document_id)
        if document.status != Document.Status.FAILED:
            raise DocumentNotFailedError(document, "delete")
        document.delete()
    return document


def document_reingest(*, document_id: int) -> None:
    Document.objects.filter(pk=document_id).update(
        status=Document.Status.PENDING, progress=0, failure_reason="", updated_at=timezone.now()
    )
    _queue_ingest(document_id)


def _queue_ingest(document_id: int) -> None:
    from documents.tasks import ingest_document

    Document.objects.filter(pk=document_id).update(ingest_attempts=0)
    transaction.on_commit(functools.partial(ingest_document.delay, document_id))


def document_ingest_attempt(*, document_id: int) -> bool:
    """Count a delivery of the ingestion task; False, with the document failed, when it
    came too often (each worker that took it died mid-way: the next would likely too)."""
    with transaction.atomic():
        Document.objects.filter(pk=document_id).update(ingest_attempts=F("ingest_attempts") + 1)
        attempts = Document.objects.filter(pk=document_id).values_list("ingest_attempts", flat=True).first()
    if attempts is None:  # deleted meanwhile
        return False
    if attempts <= settings.INGEST_MAX_ATTEMPTS:
        return True
    reason = f"Ingestion was interrupted {attempts - 1} times (the worker stopped mid-way). Re-ingest to try again."
    Document.objects.filter(pk=document_id).update(status=Document.Status.FAILED, failure_reason=reason)
    logger.error("Document %s: %s", document_id, reason)
    return False


def document_ingest(*, document_id: int) -> IngestResult | None:
    """Parse, chunk and embed one document; None when it failed (the reason is on the document).

    The chunks are replaced in one transaction at the end, so until then, and after
    any failure, the previous chunks stay searchable.
    """
    document = Document.objects.get(pk=document_id)
    _set_status(document, Document.Status.PROCESSING)
    try:
        return _ingest(document)
    except IngestSupersededError:
        logger.info("Ingestion of document %s superseded by newer content", document_id)
        return None
    except (ParseError, EmbeddingError) as exc:
        _set_status(document, Document.Status.FAILED, reason=str(exc))
        logger.warning("Ingestion of document %s failed: %s", document_id, exc)
        return None
    except Exception as exc:
        _set_status(document, Document.Status.FAILED, reason=f"Ingestion failed unexpectedly ({type(exc).__name__}).")
        logger.exception("Ingestion of document %s failed", document_id)
        return None


def documents_ingest(*, document_ids: Iterable[int]) -> Iterator[tuple[int, IngestResult | None]]:
    """document_ingest of each document, INGEST_CONCURRENCY at once, each id with its result
    as it ends: while one is parsed or stored, on one core, another's chunks keep every core
    embedding. The ids are read as room frees, so that no more documents wait half-done
    than are ingested at once. Inside a transaction they go one by one, here, where its
    rows are seen."""
    concurrency = max(1, settings.INGEST_CONCURRENCY)
    if concurrency == 1 or connection.in_atomic_block:
        yield from ((document_id, document_ingest(document_id=document_id)) for document_id in document_ids)
        return
    with ThreadPoolExecutor(concurrency, thread_name_prefix="ingest") as pool:
        running: dict[Future[IngestResult | None], int] = {}
        for document_id in document_ids:
            running[pool.submit(_document_ingest_in_thread, document_id)] = document_id
            if len(running) == concurrency:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                yield from ((running.pop(future), future.result()) for future in done)
        for future in as_completed(running):
            yield running[future], future.result()


def _document_ingest_in_thread(document_id: int) -> IngestResult | None:
    try:
        return document_ingest(document_id=document_id)
    finally:
        connection.close()  # the thread's own, which nothing else would close


def _ingest(document: Document) -> IngestResult:
    embedder = get_embedder()
    parsed = parse_document(
        filename=document.original_filename, content_type=document.content_type, data=bytes(document.source)
    )
    size = min(settings.CHUNK_SIZE_TOKENS, embedder.max_input_tokens - embedder.special_tokens)
    overlap = min(settings.CHUNK_OVERLAP_TOKENS, size // 2)
    title = document.title if document.title and document.title != PurePath(document.original_filename).stem else ""
    pieces = chunk_document(
        parsed.text, title=title or parsed.title, count_tokens=embedder.count_tokens, size=size, overlap=overlap
    )
    hashes = [sha256(piece.embedded_text) for piece in pieces]
    # The space retrieval searches, when a model of another is embedding the collection again
    # (documents.embedding): a document new or changed meanwhile is embedded in it too, by
    # the model of that space, so that it is searchable and current either side of the switch.
    searched = Collection.objects.values_list("embedding_space", flat=True).get(pk=document.collection_id)
    embedders = [embedder]
    if searched and searched != embedder.space:
        current = set(document.chunks.filter(embedding_space=searched).values_list("content_hash", flat=True))
        previous_model = embedder_for_space(searched)
        if current != set(hashes) and previous_model is not None:
            embedders.append(previous_model)
    share = 90 // len(embedders)  # of the progress bar, for each model's embedding
    embedded = [
        (model, *_embeddings(document, model, pieces, hashes, progress=(share * n, share * (n + 1))))
        for n, model in enumerate(embedders)
    ]

    with transaction.atomic():
        locked = Document.objects.select_for_update().defer("source", "text").get(pk=document.pk)
        if locked.content_hash != document.content_hash:
            raise IngestSupersededError
        collection = Collection.objects.select_for_update().get(pk=locked.collection_id)
        searched = collection.embedding_space or embedder.space
        stored = [(model, vectors) for model, vectors, _ in embedded if model.space in {embedder.space, searched}]
        if any(model.space == searched for model, _ in stored):
            locked.chunks.all().delete()
        else:  # the searched space's chunks answer until the switch; they hold this very text
            locked.chunks.filter(embedding_space=embedder.space).delete()
        Chunk.objects.bulk_create(
            Chunk(
                document=locked,
                ordinal=ordinal,
                text=piece.text,
                section=piece.section,
                content_hash=content_hash,
                token_count=piece.token_count + model.special_tokens,
                embedding=vectors[content_hash],
                embedding_model=model.model_name,
                embedding_space=model.space,
            )
            for model, vectors in stored
            for ordinal, (piece, content_hash) in enumerate(zip(pieces, hashes, strict=True))
        )
        locked.text = parsed.text
        if not locked.title or locked.title == PurePath(locked.original_filename).stem:
            locked.title = parsed.title
        locked.status = Document.Status.READY
        locked.failure_reason = ""
        locked.progress = 100
        locked.ingested_at = timezone.now()
        locked.chunk_format = CHUNK_FORMAT
        locked.save(
            update_fields=[
                "text", "title", "status", "failure_reason", "progress", "ingested_at", "chunk_format", "updated_at",
            ]
        )  # fmt: skip
        if collection.embedding_space != embedder.space:
            collection_space_switch(collection=collection, space=embedder.space)
    new = embedded[0][2]
    return IngestResult(chunks=len(pieces), embedded=new, reused=len(pieces) - new)


def _embeddings(
    document: Document,
    embedder: Embedder,
    pieces: Sequence[TextChunk],
    hashes: Sequence[str],
    *,
    progress: tuple[int, int],
) -> tuple[dict[str, Any], int]:
    """The vector of each chunk by its hash (those the document has from this model are
    kept), and how many were embedded."""
    embeddings = dict(
        document.chunks.filter(embedding_model=embedder.model_name, content_hash__in=hashes).values_list(
            "content_hash", "embedding"
        )
    )
    new_pieces = {h: piece for h, piece in zip(hashes, pieces, strict=True) if h not in embeddings}
    # Shortest first: a batch pads its texts to its longest, and a page's chunks vary.
    todo = [(h, piece.embedded_text) for h, piece in sorted(new_pieces.items(), key=lambda item: item[1].token_count)]
    # Few calls: each ends waiting for its slowest batch, while the other cores idle.
    per_call = max(EMBED_CALL_TEXTS, -(-len(todo) // PROGRESS_STEPS))
    start_percent, end_percent = progress
    for start in range(0, len(todo), per_call):
        batch = todo[start : start + per_call]
        vectors = embedder.embed([text for _, text in batch])
        metrics.chunks_embedded.inc(len(batch))
        embeddings.update(zip((h for h, _ in batch), vectors, strict=True))
        if start + per_call < len(todo):  # after the last call, storing the chunks says 100%
            done = (start + len(batch)) / len(todo)
            _set_progress(document, percent=round(start_percent + (end_percent - start_percent) * done))
    return embeddings, len(new_pieces)


def document_moved(*, document_id: int, collection_id: int) -> None:
    """A document moved into a collection (in the caller's transaction): searched there if
    its chunks are in the collection's space, which a collection searched in none yet takes
    from them; else queued to be embedded again, in that space too."""
    spaces = set(Chunk.objects.filter(document_id=document_id).values_list("embedding_space", flat=True))
    if not spaces:
        return
    collection = Collection.objects.select_for_update().get(pk=collection_id)
    if not collection.embedding_space:
        space = get_embedder().space if get_embedder().space in spaces else min(spaces)
        Collection.objects.filter(pk=collection_id).update(embedding_space=space)
    elif collection.embedding_space not in spaces:
        document_reingest(document_id=document_id)


def collection_space_settle(*, collection_id: int) -> bool:
    """Switch the collection to the configured model's space if nothing holds it back (a
    document not embedded in it yet); True when it is searched in that space."""
    space = get_embedder().space
    with transaction.atomic():
        collection = Collection.objects.select_for_update().get(pk=collection_id)
        return collection.embedding_space == space or collection_space_switch(collection=collection, space=space)


def collection_space_switch(*, collection: Collection, space: str) -> bool:
    """Search the collection in `space` from now on, if every document of it that has chunks
    has them in `space`; its chunks of other spaces go. In the caller's transaction, with
    the collection's row locked."""
    in_space = Chunk.objects.filter(document=OuterRef("pk"), embedding_space=space)
    behind = Document.objects.filter(collection=collection, chunks__isnull=False).exclude(Exists(in_space))
    if behind.exists():
        return False
    Collection.objects.filter(pk=collection.pk).update(embedding_space=space)
    Chunk.objects.filter(document__collection=collection).exclude(embedding_space=space).delete()
    collections_bump(collection_ids={collection.pk})
    logger.info("Collection %s now searched in embedding space %s", collection.pk, space)
    return True


# Sent once new generations reached Redis: older cache entries of these collections are
# now unreachable (chat warms their popular questions again, when warming is on).
generations_published = Signal()


def collections_bump(*, collection_ids: set[int]) -> None:
    """Bump generations in the current transaction; publish them to Redis once it commits."""
    if not collection_ids:
        return
    with transaction.atomic():
        Collection.objects.filter(pk__in=collection_ids).update(generation=F("generation") + 1)
        bumped = dict(Collection.objects.filter(pk__in=collection_ids).values_list("id", "generation"))
    # robust: a cache that fails must not stop the callbacks after it (ingestion tasks).
    transaction.on_commit(lambda: generations_publish(bumped), robust=True)


def catalog_bump() -> None:
    """In the transaction of the change; the new catalog is published once it commits."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Catalog._meta.db_table} (id, version) VALUES (1, 1) "
            f"ON CONFLICT (id) DO UPDATE SET version = {Catalog._meta.db_table}.version + 1"
        )
    transaction.on_commit(catalog_publish, robust=True)


def generations_publish(bumped: Mapping[int, int]) -> int:
    """Publish committed generations to Redis, then mark them published; how many reached
    Redis. What did not is left behind its mark for the sweep (unpublished_publish)."""
    if not bumped or not generations.publish(bumped):
        return 0
    for collection_id, generation in bumped.items():  # never lower a mark a later publish set
        Collection.objects.filter(pk=collection_id, published_generation__lt=generation).update(
            published_generation=generation
        )
    generations_published.send(sender=Collection, collection_ids=sorted(bumped))
    return len(bumped)


def catalog_publish() -> int:
    """Publish the catalog as committed, then mark its version published; 1 when it reached Redis."""
    version = catalog.publish_from_database()
    if version is None:
        return 0
    Catalog.objects.filter(pk=1, published_version__lt=version).update(published_version=version)
    return 1


def unpublished_publish() -> int:
    """Publish the generations and the catalog that were committed but never reached Redis
    (a publish lost on commit, in a process that may be gone); how many it published.
    ragsite.sweeper runs it every few seconds in each web and worker process."""
    behind = dict(Collection.objects.filter(published_generation__lt=F("generation")).values_list("id", "generation"))
    published = generations_publish(behind)
    if Catalog.objects.filter(pk=1, published_version__lt=F("version")).exists():
        published += catalog_publish()
    return published


def _set_status(document: Document, status: str, *, reason: str = "") -> None:
    document.status = status
    document.failure_reason = reason
    document.progress = 0 if status == Document.Status.PROCESSING else document.progress
    document.save(update_fields=["status", "failure_reason", "progress", "updated_at"])


def _set_progress(document: Document, *, percent: int) -> None:
    document.progress = percent
    document.save(update_fields=["progress", "updated_at"])
