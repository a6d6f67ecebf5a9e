"""Hostile and broken files through every way in: the upload page, the admin's add form and
its change form. Each gets a 4xx or a message the uploader can act on, never a 500; a file
that cannot be parsed becomes a failed document with a readable reason."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader, PdfWriter

from documents.models import Document
from tests.documents.factories import collection_create, make_pdf

pytestmark = pytest.mark.django_db

TEA = b"Green tea should be brewed at eighty degrees for two minutes."
PDF = make_pdf([["Kettles boil water quickly."], ["Teapots keep it warm."]])
LIMIT = 1024 * 1024  # a limit whose neighbours round to the same "1.0 MB"


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(PDF)))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@dataclass(frozen=True)
class Case:
    filename: str
    data: bytes
    message: str  # shown on the upload page (in the result or, after ingestion, the row)
    stored: tuple[str, str] | None  # (original_filename, status) of the document, or None: nothing stored
    admin_message: str = ""  # the admin's form error when the file is refused, if it differs


CASES = {
    "empty": Case("empty.txt", b"", "empty.txt is empty.", None, "The submitted file is empty."),
    "huge": Case(
        "huge.txt", b"x" * (LIMIT + 1), "huge.txt is 1,048,577\xa0bytes; the limit is 1,048,576\xa0bytes.", None
    ),
    "binary as .txt": Case("photo.txt", bytes(range(256)) * 4, "The file is not UTF-8 text", ("photo.txt", "failed")),
    "bad UTF-16": Case("odd.txt", b"\xff\xfe\x00\xd8", "The file is not UTF-16 text", ("odd.txt", "failed")),
    "NUL-only text": Case("nul.txt", b"\x00" * 64, "The file contains no text to index.", ("nul.txt", "failed")),
    "malformed PDF": Case("broken.pdf", b"%PDF-1.4\n1 0 obj garbage", "The PDF is damaged", ("broken.pdf", "failed")),
    "truncated PDF": Case("cut.pdf", PDF[: len(PDF) // 2], "The PDF is damaged", ("cut.pdf", "failed")),
    "encrypted PDF": Case("locked.pdf", encrypted_pdf(), "The PDF is encrypted", ("locked.pdf", "failed")),
    "text as .pdf": Case("fake.pdf", TEA, "The file is not a PDF", ("fake.pdf", "failed")),
    "HTML with a script": Case(
        "page.html",
        b"<html><body><script>alert('x')</script><p>Tea is brewed hot.</p></body></html>",
        "Ready",
        ("page.html", "ready"),
    ),
    "HTML that is only a script": Case(
        "script.html", b"<script>alert('x')</script>", "The file contains no text to index.", ("script.html", "failed")
    ),
    "path traversal": Case("../../etc/passwd.txt", TEA, "Ready", ("passwd.txt", "ready")),
    "right-to-left override": Case("report\u202efdp.txt", TEA, "Ready", ("reportfdp.txt", "ready")),
    "NUL in the name": Case("te\x00a.txt", TEA, "Ready", ("tea.txt", "ready")),
    # Django shortens a long name to 255 characters, keeping its extension.
    "name over 255 characters": Case("a" * 300 + ".txt", TEA, "Ready", ("a" * 251 + ".txt", "ready")),
    "NUL in a Markdown heading": Case("nul.md", b"# Te\x00a\n\nTea is brewed hot.", "Ready", ("nul.md", "ready")),
    "name of only invisible characters": Case("\u202e\x00", TEA, "This field is required.", None),
}


@pytest.fixture()
def collection():
    return collection_create()


def upload_page(client: Client, collection, upload: SimpleUploadedFile):
    return client.post(
        reverse("documents:upload"), {"collection": collection.pk, "uploads": [upload]}, headers={"HX-Request": "true"}
    )


def stored() -> tuple[str, str] | None:
    document = Document.objects.first()
    return (document.original_filename, document.status) if document else None


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_upload_page_answers_every_bad_file_with_a_message(
    admin_client, collection, settings, django_capture_on_commit_callbacks, case
):
    settings.UPLOAD_MAX_BYTES = LIMIT
    with django_capture_on_commit_callbacks(execute=True):
        response = upload_page(admin_client, collection, SimpleUploadedFile(case.filename, case.data))
    assert response.status_code in {200, 422}
    content = response.content.decode()
    if (document := Document.objects.first()) is not None:  # the row, once ingestion has run
        content = admin_client.get(reverse("documents:progress", args=[document.pk])).content.decode()
    assert case.message in content.replace("&#x27;", "'")
    assert stored() == case.stored


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_admin_add_form_answers_every_bad_file_with_a_message(
    admin_client, collection, settings, django_capture_on_commit_callbacks, case
):
    settings.UPLOAD_MAX_BYTES = LIMIT
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:documents_document_add"),
            {"collection": collection.pk, "title": "", "upload": SimpleUploadedFile(case.filename, case.data)},
        )
    if case.stored is None:
        assert response.status_code == 200  # the form again, with the error
        message = case.admin_message or case.message
        if message == "This field is required.":
            message = "Choose a file to upload."
        assert message in response.content.decode()
    else:
        assert response.status_code == 302
        changelist = admin_client.get(reverse("admin:documents_document_changelist")).content.decode()
        assert case.message in changelist.replace("&#x27;", "'")
    assert stored() == case.stored


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_admin_change_form_answers_every_bad_file_with_a_message(
    admin_client, collection, settings, django_capture_on_commit_callbacks, case
):
    settings.UPLOAD_MAX_BYTES = LIMIT
    document = Document.objects.create(
        collection=collection, title="Coffee", original_filename="coffee.txt", content_type="text/plain",
        source=b"Coffee.", size=7, content_hash="0" * 64, status="ready", text="Coffee.",
    )  # fmt: skip
    url = reverse("admin:documents_document_change", args=[document.pk])
    form = {"chunks-TOTAL_FORMS": 0, "chunks-INITIAL_FORMS": 0, "collection": collection.pk, "title": "Coffee"}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {**form, "upload": SimpleUploadedFile(case.filename, case.data)})
    document.refresh_from_db()
    if case.stored is None:
        if case.message == "This field is required.":  # no file arrived: the title alone is saved
            assert response.status_code == 302 and bytes(document.source) == b"Coffee."
            return
        assert response.status_code == 200
        assert (case.admin_message or case.message) in response.content.decode()
        assert (document.original_filename, bytes(document.source)) == ("coffee.txt", b"Coffee.")
    else:
        assert response.status_code == 302
        assert (document.original_filename, document.status) == case.stored
        assert (
            case.message in admin_client.get(url).content.decode().replace("&#x27;", "'") or case.stored[1] == "ready"
        )


def test_the_same_file_twice_in_one_upload_lands_once(admin_client, collection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("documents:upload"),
            {
                "collection": collection.pk,
                "uploads": [SimpleUploadedFile("tea.txt", TEA), SimpleUploadedFile("tea.txt", TEA)],
            },
            headers={"HX-Request": "true"},
        )
    assert response.status_code == 200 and "Already uploaded" in response.content.decode()
    assert Document.objects.count() == 1
