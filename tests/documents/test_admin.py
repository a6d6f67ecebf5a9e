from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_redis import get_redis_connection

from chat.pipeline import answer
from documents.models import Chunk, Document
from documents.services import document_create, document_ingest
from ragcache import keys
from tests.documents.factories import collection_create, ingestions_queued

pytestmark = pytest.mark.django_db

TEA = b"Green tea should be brewed at eighty degrees for two minutes."
COFFEE = b"Coffee wants water just off the boil and a coarse grind for the press."


def add_document(client: Client, collection, upload: SimpleUploadedFile, title: str = ""):
    return client.post(
        reverse("admin:documents_document_add"), {"collection": collection.pk, "title": title, "upload": upload}
    )


def ingested(collection, filename: str, data: bytes) -> Document:
    document = document_create(collection=collection, filename=filename, data=data, queue=False)
    document_ingest(document_id=document.pk)
    document.refresh_from_db()
    return document


def change_form_data(document: Document, **fields) -> dict:
    """What the browser posts: the fields plus the chunk inline's management form."""
    count = document.chunks.count()
    return {"chunks-TOTAL_FORMS": count, "chunks-INITIAL_FORMS": count, "collection": document.collection_id, **fields}


def test_the_admin_is_for_staff_only(client, django_user_model):
    assert client.get(reverse("admin:documents_document_changelist")).status_code == 302
    django_user_model.objects.create_user(username="reader", password="pw-reader-123")
    client.login(username="reader", password="pw-reader-123")
    assert client.get(reverse("admin:documents_document_changelist")).status_code == 302


def test_adding_a_document_uploads_and_queues_its_ingestion(admin_client, django_capture_on_commit_callbacks):
    collection = collection_create()
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = add_document(admin_client, collection, SimpleUploadedFile("tea.txt", TEA), title="Tea notes")
    assert response.status_code == 302
    assert ingestions_queued(queued) == 1
    document = Document.objects.get()
    assert (document.title, document.original_filename, document.size) == ("Tea notes", "tea.txt", len(TEA))
    assert document.status == "ready" and document.chunks.count() == 1


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("empty.txt", b"", "The submitted file is empty."),
        ("deck.pptx", b"PK", "file type .pptx is not supported"),
        ("huge.txt", b"x" * 2048, "huge.txt is 2.0\xa0KB; the limit is 1.0\xa0KB."),
    ],
)
def test_a_bad_upload_is_refused_with_a_message_and_nothing_is_stored(admin_client, settings, filename, data, message):
    settings.UPLOAD_MAX_BYTES = 1024
    response = add_document(admin_client, collection_create(), SimpleUploadedFile(filename, data))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Document.objects.exists()


def test_a_file_that_fails_to_parse_shows_the_reason_in_the_list(admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        add_document(admin_client, collection_create(), SimpleUploadedFile("broken.pdf", b"%PDF-1.4 oops"))
    assert Document.objects.get().status == "failed"
    content = admin_client.get(reverse("admin:documents_document_changelist")).content.decode()
    assert "<strong>Failed</strong>: The PDF is damaged" in content


def test_a_duplicate_upload_is_refused(admin_client):
    collection = collection_create()
    ingested(collection, "tea.txt", TEA)
    response = add_document(admin_client, collection, SimpleUploadedFile("again.txt", TEA))
    assert "Identical content is already in Handbook as “tea”." in response.content.decode()
    assert Document.objects.count() == 1


def test_the_list_shows_status_chunks_and_size_without_a_query_per_row(admin_client, django_assert_max_num_queries):
    collection = collection_create()
    ingested(collection, "tea.txt", TEA)
    url = reverse("admin:documents_document_changelist")
    admin_client.get(url)
    with CaptureQueriesContext(connection) as queries:
        content = admin_client.get(url).content.decode()
    one_row = len(queries)  # read now: the next request clears the log
    assert "Ready" in content and "61\xa0bytes" in content
    for n in range(5):
        ingested(collection, f"more-{n}.txt", COFFEE + str(n).encode())
    with django_assert_max_num_queries(one_row):
        admin_client.get(url)


def test_the_change_page_shows_chunks_read_only(admin_client):
    document = ingested(collection_create(), "tea.txt", TEA)
    content = admin_client.get(reverse("admin:documents_document_change", args=[document.pk])).content.decode()
    assert "Green tea should be brewed" in content
    assert 'name="chunks-0-text"' not in content  # shown, not editable
    assert "all-MiniLM-L6-v2" in content


def test_uploading_new_content_to_a_document_reingests_it(admin_client, django_capture_on_commit_callbacks):
    collection = collection_create()
    document = ingested(collection, "tea.txt", TEA)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:documents_document_change", args=[document.pk]),
            change_form_data(document, title="Drinks", upload=SimpleUploadedFile("coffee.txt", COFFEE)),
        )
    assert response.status_code == 302
    document.refresh_from_db()
    assert (document.title, document.original_filename, document.status) == ("Drinks", "coffee.txt", "ready")
    assert document.chunks.get().text == COFFEE.decode()


def test_editing_the_title_alone_keeps_the_content(admin_client):
    collection = collection_create()
    document = ingested(collection, "tea.txt", TEA)
    response = admin_client.post(
        reverse("admin:documents_document_change", args=[document.pk]), change_form_data(document, title="Tea")
    )
    assert response.status_code == 302
    document.refresh_from_db()
    assert document.title == "Tea" and bytes(document.source) == TEA and document.chunks.count() == 1


def test_the_reingest_action_queues_every_selected_document(admin_client, django_capture_on_commit_callbacks):
    collection = collection_create()
    documents = [ingested(collection, "tea.txt", TEA), ingested(collection, "coffee.txt", COFFEE)]
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = admin_client.post(
            reverse("admin:documents_document_changelist"),
            {"action": "reingest", "_selected_action": [d.pk for d in documents]},
            follow=True,
        )
    assert "Queued 2 document(s) for re-ingestion." in response.content.decode()
    assert ingestions_queued(queued) == 2
    assert set(Document.objects.values_list("status", flat=True)) == {"pending"}


def test_collections_list_their_document_counts(admin_client):
    collection = collection_create("Handbook")
    ingested(collection, "tea.txt", TEA)
    content = admin_client.get(reverse("admin:documents_collection_changelist")).content.decode()
    assert "Handbook" in content and '<td class="field-document_count">1</td>' in content


def test_deleting_documents_removes_their_chunks(admin_client):
    collection = collection_create()
    keep, drop = ingested(collection, "tea.txt", TEA), ingested(collection, "coffee.txt", COFFEE)
    response = admin_client.post(
        reverse("admin:documents_document_changelist"),
        {"action": "delete_selected", "_selected_action": [drop.pk], "post": "yes"},
        follow=True,
    )
    assert "Successfully deleted 1 document." in response.content.decode()
    assert list(Document.objects.all()) == [keep]
    assert set(Chunk.objects.values_list("document_id", flat=True)) == {keep.pk}


def test_the_flush_cache_action_deletes_the_entries_that_cite_a_document(admin_client, settings):

    settings.RETRIEVAL_TOP_K = 1
    collection = collection_create()
    tea = ingested(collection, "tea.txt", TEA)
    answer(question="How long should green tea brew?", collection_ids=[collection.pk])
    index = keys.document_index(keys.scope_tag([collection.pk]), tea.pk)
    assert get_redis_connection().scard(index) == 2  # its retrieval and its answer
    response = admin_client.post(
        reverse("admin:documents_document_changelist"),
        {"action": "flush_cache", "_selected_action": [tea.pk]},
        follow=True,
    )
    assert "Deleted 2 cache entries." in response.content.decode()
    assert not list(get_redis_connection().scan_iter(match="rc:ans:*"))
    entry = LogEntry.objects.get()
    assert entry.object_id == str(tea.pk) and "2 keys touched" in entry.get_change_message()


@pytest.mark.slow
def test_the_flush_cache_action_says_so_when_redis_is_down(admin_client, redis_server):
    if redis_server is None:
        pytest.skip("stopping Redis needs the suite's own redis-server (TEST_REDIS_URL is set)")
    tea = ingested(collection_create(), "tea.txt", TEA)
    redis_server.stop()
    try:
        response = admin_client.post(
            reverse("admin:documents_document_changelist"),
            {"action": "flush_cache", "_selected_action": [tea.pk]},
            follow=True,
        )
    finally:
        redis_server.start()
    assert "Redis is unreachable: nothing was flushed." in response.content.decode()
    assert not LogEntry.objects.exists()


def test_chunks_are_read_only_in_the_admin_and_deleted_with_their_document_only(admin_client):
    document = ingested(collection_create(), "tea.txt", TEA)
    chunk = document.chunks.get()
    page = admin_client.get(reverse("admin:documents_chunk_change", args=[chunk.pk]))
    assert page.status_code == 200 and "Green tea" in page.content.decode()
    assert b'class="deletelink"' not in page.content
    assert (
        admin_client.post(reverse("admin:documents_chunk_delete", args=[chunk.pk]), {"post": "yes"}).status_code == 403
    )
    changelist = admin_client.get(reverse("admin:documents_chunk_changelist"))
    assert b"delete_selected" not in changelist.content
    assert Chunk.objects.filter(pk=chunk.pk).exists()


LATIN = "Crème brûlée wants a hot grill.".encode("latin-1")


def failed(collection, filename: str, data: bytes) -> Document:
    document = ingested(collection, filename, data)
    assert document.status == "failed"
    return document


def test_adding_the_bytes_of_a_failed_document_retries_it(admin_client, django_capture_on_commit_callbacks):
    collection = collection_create()
    document = failed(collection, "latin.txt", LATIN)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = add_document(admin_client, collection, SimpleUploadedFile("latin.txt", LATIN))
    assert response.status_code == 302 and ingestions_queued(queued) == 1
    assert list(Document.objects.values_list("pk", "status")) == [(document.pk, "pending")]
    page = admin_client.get(response["Location"]).content.decode()
    assert "“latin” had failed; it has this file now and its ingestion is queued again." in page


def test_adding_a_fixed_file_of_a_failed_documents_name_replaces_it(admin_client, django_capture_on_commit_callbacks):
    collection = collection_create()
    document = failed(collection, "latin.txt", LATIN)
    with django_capture_on_commit_callbacks(execute=True):
        response = add_document(
            admin_client, collection, SimpleUploadedFile("latin.txt", LATIN.decode("latin-1").encode())
        )
    assert response.status_code == 302
    assert list(Document.objects.values_list("pk", "status")) == [(document.pk, "ready")]


def test_a_failed_document_named_as_the_duplicate_says_it_failed(admin_client):
    collection = collection_create()
    failed(collection, "latin.txt", LATIN)
    other = ingested(collection, "tea.txt", TEA)
    response = admin_client.post(
        reverse("admin:documents_document_change", args=[other.pk]),
        change_form_data(other, title="tea", upload=SimpleUploadedFile("latin.txt", LATIN)),
    )
    assert response.status_code == 200
    assert "as “latin”, but its ingestion failed: The file is not UTF-8 text" in response.content.decode()
