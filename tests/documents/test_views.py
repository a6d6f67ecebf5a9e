from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from documents.models import Chunk, Collection, Document
from tests.documents.factories import collection_create, ingestions_queued, make_pdf

pytestmark = pytest.mark.django_db

TEA = b"Green tea should be brewed at eighty degrees for two minutes."
LATIN = "Crème brûlée wants a hot grill.".encode("latin-1")


@pytest.fixture()
def staff_client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def upload(client: Client, collection, *files: SimpleUploadedFile, htmx: bool = True):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(
        reverse("documents:upload"), {"collection": collection.pk, "uploads": list(files)}, headers=headers
    )


def test_the_upload_page_is_for_staff_only(client):
    response = client.get(reverse("documents:upload"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_upload_page_shows_the_form_with_collections(staff_client):
    collection_create("Handbook")
    response = staff_client.get(reverse("documents:upload"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Handbook" in content and 'accept=".txt,.md,.markdown,.html,.htm,.pdf" multiple' in content
    assert 'hx-post="/documents/upload/"' in content


def test_the_upload_page_asks_for_a_collection_first(staff_client):
    assert b"Create a collection" in staff_client.get(reverse("documents:upload")).content


def test_uploading_several_files_queues_each_and_the_rows_follow_them(staff_client, django_capture_on_commit_callbacks):
    collection = collection_create()
    pdf = make_pdf([["Kettles boil water."]])
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = upload(
            staff_client,
            collection,
            SimpleUploadedFile("tea.txt", TEA),
            SimpleUploadedFile("kettle.pdf", pdf),
        )
        assert response.status_code == 200
        content = response.content.decode()
        assert content.count('hx-trigger="every 1s"') == 2  # both rows poll while pending
        assert "<html" not in content  # an HTMX swap gets the partial only
    assert ingestions_queued(queued) == 2  # one ingestion task each, sent after the commit
    # The tests run Celery eagerly, so the queued ingestion has run by now.
    documents = Document.objects.order_by("original_filename")
    assert [(d.original_filename, d.status) for d in documents] == [("kettle.pdf", "ready"), ("tea.txt", "ready")]
    row = staff_client.get(reverse("documents:progress", args=[documents[0].pk])).content.decode()
    assert "Ready" in row and "hx-trigger" not in row and "<td>1</td>" in row


def test_each_bad_file_gets_its_own_message_and_the_good_ones_still_land(
    staff_client, settings, django_capture_on_commit_callbacks
):
    settings.UPLOAD_MAX_BYTES = 100
    collection = collection_create()
    existing = Document.objects.create(
        collection=collection, title="Old", original_filename="old.txt", content_type="text/plain",
        source=b"old", size=3, content_hash="0" * 64, status="ready",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(
            staff_client,
            collection,
            SimpleUploadedFile("empty.txt", b""),
            SimpleUploadedFile("deck.pptx", b"PK"),
            SimpleUploadedFile("huge.txt", b"x" * 101),
            SimpleUploadedFile("tea.txt", TEA),
            SimpleUploadedFile("tea-again.txt", TEA),
            SimpleUploadedFile("latin.txt", "café crème".encode("latin-1")),
            SimpleUploadedFile("broken.pdf", b"%PDF-1.4 nothing else"),
        )
    content = response.content.decode()
    assert "Rejected: empty.txt is empty." in content
    assert "Rejected: deck.pptx: file type .pptx is not supported" in content
    assert "Rejected: huge.txt is 101\xa0bytes; the limit is 100\xa0bytes." in content
    assert "Already uploaded:" in content
    # Files that parse badly are found by the worker; their rows then say why.
    rows = {
        d.original_filename: staff_client.get(reverse("documents:progress", args=[d.pk])).content.decode()
        for d in Document.objects.filter(status="failed")
    }
    assert "Failed: The file is not UTF-8 text" in rows["latin.txt"]
    assert "Failed: The PDF is damaged" in rows["broken.pdf"]
    assert set(Document.objects.values_list("original_filename", "status")) == {
        ("old.txt", "ready"), ("tea.txt", "ready"), ("latin.txt", "failed"), ("broken.pdf", "failed"),
    }  # fmt: skip
    existing.refresh_from_db()
    assert existing.status == "ready" and existing.title == "Old"


def test_a_path_in_an_uploaded_file_name_never_reaches_storage(staff_client):
    collection = collection_create()
    upload(staff_client, collection, SimpleUploadedFile("../../etc/tea.txt", TEA))
    assert Document.objects.get().original_filename == "tea.txt"


def test_posting_no_file_explains_what_is_missing(staff_client):
    collection = collection_create()
    response = staff_client.post(
        reverse("documents:upload"), {"collection": collection.pk}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422  # the status htmx swaps in, so the message shows
    assert "This field is required." in response.content.decode()
    assert not Document.objects.exists()


def test_a_post_without_a_csrf_token_is_refused(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = upload(client, collection_create(), SimpleUploadedFile("tea.txt", TEA))
    assert response.status_code == 403
    assert not Document.objects.exists()


def test_the_progress_row_polls_until_the_document_is_finished(staff_client):
    collection = collection_create()
    document = Document.objects.create(
        collection=collection, title="Tea", original_filename="tea.txt", content_type="text/plain",
        source=TEA, size=len(TEA), content_hash="1" * 64, status="processing", progress=45,
    )  # fmt: skip
    row = staff_client.get(reverse("documents:progress", args=[document.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in row and 'value="45"' in row
    Document.objects.filter(pk=document.pk).update(status="ready")
    row = staff_client.get(reverse("documents:progress", args=[document.pk])).content.decode()
    assert "hx-trigger" not in row and "Ready" in row


def test_the_progress_of_an_unknown_document_is_a_404(staff_client):
    assert staff_client.get(reverse("documents:progress", args=[999999])).status_code == 404


def test_html_in_a_file_name_is_shown_as_text(staff_client):
    response = upload(staff_client, collection_create(), SimpleUploadedFile("<b>x<b>.docx", b"x"))
    assert "<b>x<b>" not in response.content.decode()
    assert "&lt;b&gt;x&lt;b&gt;.docx" in response.content.decode()


@pytest.fixture()
def eager(django_capture_on_commit_callbacks):
    """Requests run their on-commit callbacks, so queued ingestions run (Celery is eager here)."""

    def post(client: Client, url: str, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, **kwargs)

    return post


def upload_eagerly(eager, client: Client, collection, *files: SimpleUploadedFile):
    data = {"collection": collection.pk, "uploads": list(files)}
    return eager(client, reverse("documents:upload"), data=data, headers={"HX-Request": "true"})


def failed_upload(eager, client: Client, collection, filename: str = "latin.txt", data: bytes = LATIN) -> Document:
    upload_eagerly(eager, client, collection, SimpleUploadedFile(filename, data))
    document = Document.objects.get(original_filename=filename)
    assert document.status == "failed"
    return document


def test_the_same_failed_file_again_is_retried_not_called_already_uploaded(staff_client, eager):
    collection = collection_create()
    document = failed_upload(eager, staff_client, collection)
    content = upload_eagerly(eager, staff_client, collection, SimpleUploadedFile("latin.txt", LATIN)).content.decode()
    assert "Already uploaded" not in content
    assert f'id="document-{document.pk}"' in content and "Uploaded again after it failed" in content
    assert Document.objects.count() == 1


def test_a_fixed_file_replaces_its_failed_twin(staff_client, eager):
    collection = collection_create()
    document = failed_upload(eager, staff_client, collection)
    upload_eagerly(eager, staff_client, collection, SimpleUploadedFile("latin.txt", LATIN.decode("latin-1").encode()))
    assert list(Document.objects.values_list("pk", "status")) == [(document.pk, "ready")]


def test_a_duplicate_of_a_document_in_progress_says_so(staff_client):
    collection = collection_create()
    upload(staff_client, collection, SimpleUploadedFile("tea.txt", TEA))  # queued, not run: no on-commit here
    content = upload(staff_client, collection, SimpleUploadedFile("copy.txt", TEA)).content.decode()
    assert "Already uploaded" in content and "(Pending)" in content


def test_a_failed_row_offers_retry_and_delete_and_a_ready_row_does_not(staff_client, eager):
    collection = collection_create()
    document = failed_upload(eager, staff_client, collection)
    row = staff_client.get(reverse("documents:progress", args=[document.pk])).content.decode()
    assert f'hx-post="{reverse("documents:retry", args=[document.pk])}"' in row
    assert f'hx-post="{reverse("documents:delete", args=[document.pk])}"' in row
    assert 'name="csrfmiddlewaretoken"' in row  # the buttons also work as a plain form
    upload_eagerly(eager, staff_client, collection, SimpleUploadedFile("tea.txt", TEA))
    ready = Document.objects.get(original_filename="tea.txt")
    row = staff_client.get(reverse("documents:progress", args=[ready.pk])).content.decode()
    assert "Retry" not in row and "Delete" not in row


def test_retry_queues_a_failed_document_and_its_row_follows_it(staff_client, eager):
    collection = collection_create()
    document = failed_upload(eager, staff_client, collection)
    # Fix what made it fail, so the retried ingestion succeeds.
    Document.objects.filter(pk=document.pk).update(source=LATIN.decode("latin-1").encode())
    response = eager(staff_client, reverse("documents:retry", args=[document.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    row = response.content.decode()
    assert "Queued again" in row and "<html" not in row
    document.refresh_from_db()
    assert document.status == "ready"
    row = staff_client.get(reverse("documents:progress", args=[document.pk]) + "?retried=button").content.decode()
    assert "Queued again" in row and "Ready" in row


def test_delete_removes_a_failed_document_through_the_model(staff_client, eager):
    collection = collection_create()
    document = failed_upload(eager, staff_client, collection)
    generation = Collection.objects.get(pk=collection.pk).generation
    response = eager(staff_client, reverse("documents:delete", args=[document.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Deleted “latin” (latin.txt)." in response.content.decode()
    assert f'id="document-{document.pk}"' in response.content.decode()  # it takes the row's place
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert Collection.objects.get(pk=collection.pk).generation > generation  # signals ran: caches move on


def test_retry_and_delete_refuse_a_document_that_has_not_failed(staff_client):
    document = Document.objects.create(
        collection=collection_create(), title="Tea", original_filename="tea.txt", content_type="text/plain",
        source=TEA, size=len(TEA), content_hash="1" * 64, status="ready",
    )  # fmt: skip
    for name, verb in [("documents:retry", "retry"), ("documents:delete", "delete")]:
        response = staff_client.post(reverse(name, args=[document.pk]), headers={"HX-Request": "true"})
        assert response.status_code == 422
        assert f"“Tea” has not failed (it is ready); there is nothing to {verb}." in response.content.decode()
    document.refresh_from_db()
    assert document.status == "ready"


def test_retry_and_delete_are_staff_only_post_only_and_csrf_checked(admin_user, django_user_model):
    document = Document.objects.create(
        collection=collection_create(), title="Tea", original_filename="tea.txt", content_type="text/plain",
        source=TEA, size=len(TEA), content_hash="1" * 64, status="failed", failure_reason="Broken.",
    )  # fmt: skip
    reader = django_user_model.objects.create_user(username="reader", password="pw-reader-123")
    for name in ["documents:retry", "documents:delete"]:
        url = reverse(name, args=[document.pk])
        assert Client().post(url).status_code == 302  # to the admin's login
        client = Client()
        client.force_login(reader)
        assert client.post(url).status_code == 302
        client.force_login(admin_user)
        assert client.get(url).status_code == 405
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(admin_user)
        assert strict.post(url).status_code == 403
        assert client.post(reverse(name, args=[999999])).status_code == 404
    document.refresh_from_db()
    assert document.status == "failed"


def test_without_htmx_retry_and_delete_come_back_to_the_upload_page_with_a_message(
    staff_client, django_capture_on_commit_callbacks
):
    collection = collection_create()
    document = Document.objects.create(
        collection=collection, title="Tea", original_filename="tea.txt", content_type="text/plain",
        source=LATIN, size=len(LATIN), content_hash="1" * 64, status="failed", failure_reason="Broken.",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False):
        response = staff_client.post(reverse("documents:retry", args=[document.pk]), follow=True)
    assert response.redirect_chain == [(reverse("documents:upload"), 302)]
    assert "“Tea” is queued for ingestion again." in response.content.decode()
    Document.objects.filter(pk=document.pk).update(status="failed")
    response = staff_client.post(reverse("documents:delete", args=[document.pk]), follow=True)
    assert "Deleted “Tea” (tea.txt)." in response.content.decode()
    assert not Document.objects.exists()


def test_retry_and_delete_need_the_admins_change_and_delete_permissions(django_user_model):
    from django.contrib.auth.models import Permission

    document = Document.objects.create(
        collection=collection_create(), title="Tea", original_filename="tea.txt", content_type="text/plain",
        source=TEA, size=len(TEA), content_hash="2" * 64, status="failed", failure_reason="Broken.",
    )  # fmt: skip
    clerk = django_user_model.objects.create_user(username="clerk", password="pw-clerk-123", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="add_document"))  # may upload, no more
    client = Client()
    client.force_login(clerk)
    assert client.post(reverse("documents:retry", args=[document.pk])).status_code == 403
    assert client.post(reverse("documents:delete", args=[document.pk])).status_code == 403
    assert Document.objects.get(pk=document.pk).status == "failed"
