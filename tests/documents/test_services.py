from __future__ import annotations

import hashlib
import threading
import time

import pytest
from django.db import connection

from documents.embedding import get_embedder
from documents.models import Chunk, Document
from documents.selectors import chunks_nearest, chunks_nearest_candidates
from documents.services import (
    DocumentNotFailedError,
    DuplicateDocumentError,
    UploadError,
    document_accept,
    document_create,
    document_delete,
    document_ingest,
    document_reingest,
    document_replace_source,
    document_retry,
    upload_validate,
)
from tests.documents.factories import collection_create, ingestions_queued, make_pdf
from tests.documents.test_chunking import tokens_with_specials

pytestmark = pytest.mark.django_db

TEA = "Green tea should be brewed at eighty degrees for two minutes. Boiling water makes it bitter."
BIKE = "To fix a flat bicycle tyre, remove the wheel, find the puncture and apply a rubber patch."
TAXES = "The annual tax return is due on the last day of April; late filing incurs a penalty."
STARS = "Neutron stars are the collapsed cores of massive stars, denser than any atomic nucleus."


def paragraphs(*numbers: int, variant: str = "") -> bytes:
    """Paragraphs long enough to each fill a chunk of their own."""
    blocks = [" ".join(f"Paragraph {n}{variant} sentence {i} about topic {n}." for i in range(25)) for n in numbers]
    return "\n\n".join(blocks).encode()


def test_identical_content_is_not_stored_twice_in_a_collection():
    handbook, other = collection_create("Handbook"), collection_create("Other")
    first = document_create(collection=handbook, filename="tea.txt", data=TEA.encode(), queue=False)
    with pytest.raises(DuplicateDocumentError) as error:
        document_create(collection=handbook, filename="copy-of-tea.txt", data=TEA.encode(), queue=False)
    assert error.value.existing == first
    assert "already in Handbook as “tea”" in str(error.value)
    document_create(collection=other, filename="tea.txt", data=TEA.encode(), queue=False)
    assert Document.objects.filter(collection=handbook).count() == 1
    assert Document.objects.count() == 2


def test_ingestion_moves_pending_to_ready_and_stores_embedded_chunks():
    document = document_create(
        collection=collection_create(), filename="tea.md", data=f"# Tea\n\n{TEA}".encode(), queue=False
    )
    assert document.status == Document.Status.PENDING
    result = document_ingest(document_id=document.pk)
    document.refresh_from_db()
    assert result is not None and result.chunks == 1 and result.embedded == 1
    assert document.status == Document.Status.READY
    assert document.progress == 100 and document.ingested_at is not None
    assert document.title == "Tea"
    chunk = document.chunks.get()
    # The heading is the chunk's section, embedded with it, not a sentence of its text.
    assert chunk.section == "Tea" and chunk.text.startswith("Green tea")
    assert chunk.embedding_model == "all-MiniLM-L6-v2-onnx-int8"  # the default provider's model
    assert len(chunk.embedding) == 384
    embedded = f"Tea\n\n{chunk.text}"
    assert chunk.token_count == tokens_with_specials(embedded)
    assert chunk.content_hash == hashlib.sha256(embedded.encode()).hexdigest()


def test_a_failed_parse_marks_the_document_failed_with_the_reason():
    document = document_create(
        collection=collection_create(), filename="broken.pdf", data=b"%PDF-1.7 truncated", queue=False
    )
    assert document_ingest(document_id=document.pk) is None
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "PDF is damaged" in document.failure_reason
    assert not document.chunks.exists()


def test_non_utf8_text_fails_with_a_clear_reason():
    document = document_create(
        collection=collection_create(), filename="latin.txt", data="crème brûlée".encode("latin-1"), queue=False
    )
    document_ingest(document_id=document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "not UTF-8" in document.failure_reason


def test_reingesting_changed_content_embeds_only_the_changed_chunks():
    collection = collection_create()
    document = document_create(collection=collection, filename="guide.txt", data=paragraphs(1, 2, 3, 4), queue=False)
    first = document_ingest(document_id=document.pk)
    assert first is not None and first.chunks >= 4 and first.reused == 0
    before = dict(document.chunks.values_list("content_hash", "id"))

    changed = paragraphs(1, 2, 4) + b"\n\n" + paragraphs(3, variant="b")  # paragraph 3 rewritten, moved last
    document_replace_source(document=document, filename="guide.txt", data=changed)
    second = document_ingest(document_id=document.pk)

    assert second is not None
    assert second.embedded > 0 and second.reused > 0
    assert second.embedded + second.reused == second.chunks
    new_hashes = set(document.chunks.values_list("content_hash", flat=True))
    assert second.reused == len(new_hashes & set(before))
    assert second.embedded == len(new_hashes - set(before))
    assert "Paragraph 3b" in "".join(document.chunks.values_list("text", flat=True))


def test_reingesting_unchanged_content_embeds_nothing_through_the_openai_provider(openai_embeddings):
    document = document_create(collection=collection_create(), filename="g.txt", data=paragraphs(1, 2, 3), queue=False)
    first = document_ingest(document_id=document.pk)
    assert first is not None
    assert openai_embeddings.inputs_embedded == first.chunks
    assert openai_embeddings.last_request["dimensions"] == 384  # the column's size
    assert openai_embeddings.last_request["model"] == "text-embedding-3-small"
    assert {c.embedding_model for c in document.chunks.all()} == {"text-embedding-3-small"}

    document_reingest(document_id=document.pk)
    again = document_ingest(document_id=document.pk)
    assert again is not None and again.embedded == 0 and again.reused == first.chunks
    assert openai_embeddings.inputs_embedded == first.chunks  # the server saw no new input


def test_a_reingestion_that_fails_half_way_keeps_the_previous_chunks_searchable(openai_embeddings, settings):
    settings.OPENAI_EMBEDDING_BATCH_SIZE = 2
    collection = collection_create()
    document = document_create(collection=collection, filename="g.txt", data=paragraphs(1, 2), queue=False)
    assert document_ingest(document_id=document.pk) is not None
    old_chunks = list(document.chunks.values_list("id", "text"))

    document_replace_source(document=document, filename="g.txt", data=paragraphs(5, 6, 7, 8, 9))
    calls_before = openai_embeddings.calls["/v1/embeddings"]
    openai_embeddings.fail_after(1)  # the first batch embeds, the second fails
    assert document_ingest(document_id=document.pk) is None

    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "embedding endpoint failed" in document.failure_reason
    assert openai_embeddings.calls["/v1/embeddings"] - calls_before == 2
    assert list(document.chunks.values_list("id", "text")) == old_chunks
    openai_embeddings.reset()  # the endpoint recovers
    query = get_embedder().embed(["Paragraph 1 sentence 3 about topic 1."])[0]
    nearest = chunks_nearest(embedding=query, space=get_embedder().space, collection_ids=[collection.pk], limit=1)
    assert nearest[0].document == document


SPACE = "all-MiniLM-L6-v2"  # the onnx provider's, the default


def test_nearest_neighbour_search_finds_the_chunk_that_answers(embedder):
    collection = collection_create()
    for name, text in [("tea", TEA), ("bike", BIKE), ("taxes", TAXES), ("stars", STARS)]:
        document = document_create(collection=collection, filename=f"{name}.txt", data=text.encode(), queue=False)
        document_ingest(document_id=document.pk)
    elsewhere = collection_create("Elsewhere")
    other = document_create(collection=elsewhere, filename="tea2.txt", data=f"Tea tea tea. {TEA}".encode(), queue=False)
    document_ingest(document_id=other.pk)

    query = embedder.embed(["How hot should the water be for green tea?"])[0]
    found = list(chunks_nearest(embedding=query, space=SPACE, collection_ids=[collection.pk], limit=4))
    assert found[0].document.original_filename == "tea.txt"
    assert [c.distance for c in found] == sorted(c.distance for c in found)
    query = embedder.embed(["my bike has a puncture"])[0]
    assert (
        chunks_nearest(embedding=query, space=SPACE, collection_ids=[collection.pk], limit=1)[0].document.title
        == "bike"
    )


def test_nearest_neighbour_search_uses_the_hnsw_index(embedder):
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a tiny test table makes any plan cheap
        query = embedder.embed(["tea"])[0]
        sql, params = chunks_nearest_candidates(embedding=query, count=100).query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "Index Scan using chunk_embedding_hnsw" in plan


def test_a_small_collection_among_closer_chunks_still_gets_its_nearest_exactly(embedder):
    small, large = collection_create("Small"), collection_create("Large")
    for number, text in enumerate(["Kettles boil water.", "Teapots hold leaves.", "Cups hold tea."]):
        document_ingest(document_id=document_create(collection=small, filename=f"s{number}.txt", data=text.encode(),
                                                    queue=False).pk)  # fmt: skip
    for number in range(12):
        text = f"Green tea number {number} is brewed at eighty degrees."
        document_ingest(document_id=document_create(collection=large, filename=f"l{number}.txt", data=text.encode(),
                                                    queue=False).pk)  # fmt: skip
    query = embedder.embed(["How hot should the water be for green tea?"])[0]
    with connection.cursor() as cursor:
        cursor.execute("SET hnsw.ef_search = 2")  # the index's candidates: the large collection's only
        found = chunks_nearest(embedding=query, space=SPACE, collection_ids=[small.pk], limit=3)
        cursor.execute("RESET hnsw.ef_search")
    assert sorted(c.document.collection_id for c in found) == [small.pk] * 3
    assert [c.distance for c in found] == sorted(c.distance for c in found)


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("empty.txt", b"", "empty.txt is empty"),
        ("slides.pptx", b"PK\x03\x04", "file type .pptx is not supported"),
        ("no-extension", b"text", r"file type \(none\) is not supported"),
        ("../../etc/passwd.txt", b"root", "not a plain file name"),
        ("folder\\evil.txt", b"root", "not a plain file name"),
    ],
)
def test_bad_uploads_are_refused_before_anything_is_stored(filename, data, message):
    collection = collection_create()
    with pytest.raises(UploadError, match=message):
        document_create(collection=collection, filename=filename, data=data, queue=False)
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("a" * 252 + ".txt", "The file name is 256 characters long; the limit is 255."),
        ("te\x00a.txt", "The file name 'te\\x00a.txt' has invisible or control characters"),
        ("report\u202efdp.txt", "The file name 'report\\u202efdp.txt' has invisible or control characters"),
        ("tea\ud800.txt", "has invisible or control characters"),
    ],
)
def test_file_names_the_database_cannot_hold_or_that_mislead_are_refused(filename, message):
    with pytest.raises(UploadError) as error:
        document_create(collection=collection_create(), filename=filename, data=b"Tea.", queue=False)
    assert message in str(error.value)
    assert not Document.objects.exists()


def test_a_name_of_255_characters_is_accepted():
    document = document_create(collection=collection_create(), filename="a" * 251 + ".txt", data=b"Tea.", queue=False)
    assert len(document.original_filename) == 255


@pytest.mark.parametrize(
    ("size", "limit", "message"),
    [
        (21_000_000, 20 * 1024 * 1024, "big.txt is 21,000,000\xa0bytes; the limit is 20,971,520\xa0bytes."),
        (2048, 1024, "big.txt is 2.0\xa0KB; the limit is 1.0\xa0KB."),
        (101, 100, "big.txt is 101\xa0bytes; the limit is 100\xa0bytes."),
    ],
)
def test_the_size_message_shows_sizes_that_differ(settings, size, limit, message):
    settings.UPLOAD_MAX_BYTES = limit
    with pytest.raises(UploadError) as error:
        upload_validate(filename="big.txt", size=size)
    assert str(error.value) == message


def failed(collection, filename: str, data: bytes) -> Document:
    document = document_create(collection=collection, filename=filename, data=data, queue=False)
    document_ingest(document_id=document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    return document


def test_the_same_bytes_as_a_failed_document_retry_it_under_the_new_name(django_capture_on_commit_callbacks):
    collection = collection_create()
    page = b"<p>Green tea is brewed at eighty degrees.</p>"
    document = failed(collection, "tea.pdf", page)  # an HTML page saved with the wrong extension
    with django_capture_on_commit_callbacks(execute=True):
        accepted = document_accept(collection=collection, filename="tea.html", data=page)
    assert accepted.retried and accepted.document.pk == document.pk
    document.refresh_from_db()
    assert (document.original_filename, document.content_type, document.status) == ("tea.html", "text/html", "ready")
    assert (document.failure_reason, document.title) == ("", "tea")
    assert Document.objects.count() == 1


def test_the_same_bytes_again_retry_a_failed_document(django_capture_on_commit_callbacks):
    collection = collection_create()
    document = failed(collection, "latin.txt", "crème".encode("latin-1"))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        again = document_create(collection=collection, filename="latin.txt", data="crème".encode("latin-1"))
    assert again.pk == document.pk and ingestions_queued(queued) == 1
    document.refresh_from_db()
    assert (document.status, document.failure_reason) == ("pending", "")


def test_a_fixed_file_of_the_same_name_replaces_its_failed_twin(django_capture_on_commit_callbacks):
    collection, other = collection_create("Handbook"), collection_create("Other")
    document = failed(collection, "latin.txt", "crème brûlée".encode("latin-1"))
    elsewhere = failed(other, "latin.txt", "crème brûlée".encode("latin-1"))
    with django_capture_on_commit_callbacks(execute=True):
        accepted = document_accept(collection=collection, filename="latin.txt", data="crème brûlée".encode())
    assert accepted.retried and accepted.document.pk == document.pk
    document.refresh_from_db()
    assert (document.status, bytes(document.source).decode(), document.text) == (
        "ready",
        "crème brûlée",
        "crème brûlée",
    )
    assert Document.objects.filter(collection=collection).count() == 1
    elsewhere.refresh_from_db()
    assert elsewhere.status == "failed"  # another collection's document is its own


def test_a_ready_document_of_the_same_name_is_not_replaced():
    collection = collection_create()
    document = document_create(collection=collection, filename="tea.txt", data=TEA.encode(), queue=False)
    document_ingest(document_id=document.pk)
    accepted = document_accept(collection=collection, filename="tea.txt", data=BIKE.encode(), queue=False)
    assert not accepted.retried and accepted.document.pk != document.pk


def test_a_failed_document_still_blocks_its_bytes_from_another_documents_replacement():
    collection = collection_create()
    broken = failed(collection, "latin.txt", "crème".encode("latin-1"))
    other = document_create(collection=collection, filename="tea.txt", data=TEA.encode(), queue=False)
    with pytest.raises(DuplicateDocumentError) as error:
        document_replace_source(document=other, filename="latin.txt", data="crème".encode("latin-1"))
    assert error.value.existing == broken
    assert "its ingestion failed: The file is not UTF-8 text" in str(error.value)


def test_retrying_queues_a_failed_document_and_refuses_any_other(django_capture_on_commit_callbacks):
    collection = collection_create()
    document = failed(collection, "latin.txt", "crème".encode("latin-1"))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        document_retry(document_id=document.pk)
    assert ingestions_queued(queued) == 1
    document.refresh_from_db()
    assert (document.status, document.failure_reason) == ("pending", "")
    with pytest.raises(DocumentNotFailedError, match="“latin” has not failed \\(it is pending\\)"):
        document_retry(document_id=document.pk)


def test_deleting_takes_failed_documents_only_and_moves_the_generation(django_capture_on_commit_callbacks):
    collection = collection_create()
    ready = document_create(collection=collection, filename="tea.txt", data=TEA.encode(), queue=False)
    document_ingest(document_id=ready.pk)
    document = failed(collection, "latin.txt", "crème".encode("latin-1"))
    generation = type(collection).objects.get(pk=collection.pk).generation
    with pytest.raises(DocumentNotFailedError, match="“tea” has not failed"):
        document_delete(document_id=ready.pk)
    with django_capture_on_commit_callbacks(execute=True):
        deleted = document_delete(document_id=document.pk)
    assert deleted.title == "latin"
    assert list(Document.objects.all()) == [ready]
    assert type(collection).objects.get(pk=collection.pk).generation > generation  # the model's delete signal ran


def test_a_file_over_the_size_limit_is_refused(settings):
    settings.UPLOAD_MAX_BYTES = 1024
    with pytest.raises(UploadError, match=r"big.txt is 2.0\sKB; the limit is 1.0\sKB"):
        document_create(collection=collection_create(), filename="big.txt", data=b"x" * 2048, queue=False)
    assert not Document.objects.exists()


def test_a_pdf_ingests_from_its_text(embedder):
    pdf = make_pdf([["Kettles boil water quickly."], ["Teapots keep it warm."]])
    document = document_create(collection=collection_create(), filename="kitchen.pdf", data=pdf, queue=False)
    assert document_ingest(document_id=document.pk) is not None
    assert "Teapots keep it warm." in Chunk.objects.get(document=document).text


@pytest.mark.django_db(transaction=True)
def test_status_is_processing_while_the_embedder_works(openai_embeddings):
    document = document_create(collection=collection_create(), filename="g.txt", data=paragraphs(1), queue=False)
    openai_embeddings.latency = 1.0
    seen: list[str] = []

    def ingest() -> None:
        try:
            document_ingest(document_id=document.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=ingest)
    try:
        worker.start()
        deadline = time.monotonic() + 30
        while worker.is_alive() and time.monotonic() < deadline:
            seen.append(Document.objects.values_list("status", flat=True).get(pk=document.pk))
            time.sleep(0.05)
        worker.join(30)
    finally:
        openai_embeddings.latency = 0.0
    seen.append(Document.objects.values_list("status", flat=True).get(pk=document.pk))
    assert seen[0] in {"pending", "processing"}
    assert "processing" in seen
    assert seen[-1] == "ready"
    assert seen.index("processing") < seen.index("ready")


def test_a_failed_document_that_still_answers_is_not_replaced_by_another_file_of_its_name():
    collection = collection_create()
    document = document_create(collection=collection, filename="tea.txt", data=TEA.encode(), queue=False)
    document_ingest(document_id=document.pk)
    Document.objects.filter(pk=document.pk).update(status="failed", failure_reason="A later re-ingestion failed.")
    accepted = document_accept(collection=collection, filename="tea.txt", data=BIKE.encode(), queue=False)
    assert not accepted.retried and accepted.document.pk != document.pk
    document.refresh_from_db()
    assert bytes(document.source).decode() == TEA and document.chunks.exists()  # its answers stay
