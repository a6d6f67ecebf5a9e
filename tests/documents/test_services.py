from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from documents.embedding import get_embedder
from documents.models import Chunk, Document
from documents.selectors import chunks_nearest, chunks_nearest_candidates
from documents.services import (
    DuplicateDocumentError,
    UploadError,
    document_create,
    document_ingest,
    document_reingest,
    document_replace_source,
)
from tests.documents.factories import collection_create, make_pdf

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
    assert chunk.text.startswith("# Tea\n\nGreen tea")
    assert chunk.embedding_model == "all-MiniLM-L6-v2"
    assert len(chunk.embedding) == 384
    assert chunk.token_count == len(get_embedder().model.tokenizer(chunk.text)["input_ids"])


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
    settings.EMBEDDING_BATCH_SIZE = 2
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
    assert chunks_nearest(embedding=query, collection_ids=[collection.pk], limit=1)[0].document == document


def test_nearest_neighbour_search_finds_the_chunk_that_answers(embedder):
    collection = collection_create()
    for name, text in [("tea", TEA), ("bike", BIKE), ("taxes", TAXES), ("stars", STARS)]:
        document = document_create(collection=collection, filename=f"{name}.txt", data=text.encode(), queue=False)
        document_ingest(document_id=document.pk)
    elsewhere = collection_create("Elsewhere")
    other = document_create(collection=elsewhere, filename="tea2.txt", data=f"Tea tea tea. {TEA}".encode(), queue=False)
    document_ingest(document_id=other.pk)

    query = embedder.embed(["How hot should the water be for green tea?"])[0]
    found = list(chunks_nearest(embedding=query, collection_ids=[collection.pk], limit=4))
    assert found[0].document.original_filename == "tea.txt"
    assert [c.distance for c in found] == sorted(c.distance for c in found)
    query = embedder.embed(["my bike has a puncture"])[0]
    assert chunks_nearest(embedding=query, collection_ids=[collection.pk], limit=1)[0].document.title == "bike"


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
        found = chunks_nearest(embedding=query, collection_ids=[small.pk], limit=3)
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
