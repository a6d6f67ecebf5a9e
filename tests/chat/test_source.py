from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from documents.models import Collection, Document
from tests.chat.factories import TEA, document_ingested

pytestmark = pytest.mark.django_db


@pytest.fixture()
def collection() -> Collection:
    return Collection.objects.create(name="Handbook")


@pytest.fixture()
def staff_client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def page(client: Client, document: Document, query: str = ""):
    return client.get(reverse("chat:source", args=[document.pk]) + query)


def unfinished(collection: Collection, status: str, **fields) -> Document:
    return Document.objects.create(
        collection=collection, title="Broken", original_filename="broken.pdf", content_type="application/pdf",
        source=b"%PDF-1.4", size=8, content_hash="1" * 64, status=status, **fields,
    )  # fmt: skip


def test_a_page_asked_for_without_a_passage_says_nothing_of_one(collection):
    document = document_ingested(collection, "tea.txt", TEA)
    content = page(Client(), document).content.decode()
    assert "Green tea should be brewed" in content
    assert "no longer in this document" not in content and "<mark" not in content


def test_a_passage_that_is_gone_is_still_said_to_be_gone(collection):
    document = document_ingested(collection, "tea.txt", TEA)
    content = page(Client(), document, "?passage=deadbeef").content.decode()
    assert "The cited passage is no longer in this document" in content


def test_a_passage_that_is_there_is_marked(collection):
    document = document_ingested(collection, "tea.txt", TEA)
    passage = document.chunks.get().content_hash
    assert '<mark id="passage">Green tea' in page(Client(), document, f"?passage={passage}").content.decode()


GUIDE = (
    "# Loops\n\n## Counting\n\nTo count to three, loop over a range:\n\n"
    "```\nfor i in range(3):\n    print(i)\n```\n\nThe loop ends after the last number. "
    + " ".join(f"Sentence {n} says more about loops." for n in range(60))
    + "\n\n## Stopping\n\nA break statement leaves the loop early."
)


def test_a_page_shows_headings_as_headings_and_code_as_code_with_its_lines(collection):
    document = document_ingested(collection, "loops.md", GUIDE)
    content = page(Client(), document).content.decode()
    assert "<h2>Loops</h2>" in content and "<h3>Counting</h3>" in content
    assert "<pre><code>for i in range(3):\n    print(i)</code></pre>" in content
    assert "```" not in content


def test_a_passage_that_spans_prose_and_code_is_marked_in_each_block(collection):
    document = document_ingested(collection, "loops.md", GUIDE)
    chunk = document.chunks.order_by("ordinal").first()
    assert chunk.section == "Loops › Counting" and "```" in chunk.text
    content = page(Client(), document, f"?passage={chunk.content_hash}").content.decode()
    assert '<p><mark id="passage">To count to three, loop over a range:</mark></p>' in content
    assert "<pre><code><mark>for i in range(3):\n    print(i)</mark></code></pre>" in content
    assert content.count('id="passage"') == 1
    assert "<p>A break statement leaves the loop early.</p>" in content  # another section: not marked


def test_a_passage_under_a_deep_heading_is_still_found(collection):
    document = document_ingested(collection, "deep.md", "# A\n\nPara one is here.\n\n##### Deep\n\nPara two is here.")
    chunk = document.chunks.get()
    content = page(Client(), document, f"?passage={chunk.content_hash}").content.decode()
    assert "no longer in this document" not in content and '<mark id="passage">' in content


@pytest.mark.parametrize("status", ["failed", "pending", "processing"])
def test_a_document_without_text_is_not_found_but_by_staff(collection, django_user_model, status):
    document = unfinished(collection, status, failure_reason="The PDF is damaged." if status == "failed" else "")
    assert page(Client(), document).status_code == 404
    assert page(Client(), document, "?passage=deadbeef").status_code == 404
    reader = Client()
    reader.force_login(django_user_model.objects.create_user(username="reader", password="pw-reader-123"))
    assert page(reader, document).status_code == 404


def test_staff_see_why_a_failed_document_has_no_text(collection, staff_client):
    document = unfinished(collection, "failed", failure_reason="The PDF is damaged (PdfReadError).")
    response = page(staff_client, document, "?passage=deadbeef")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Ingestion failed:</strong> The PDF is damaged (PdfReadError)." in content
    assert "There is no text to show until an ingestion succeeds." in content
    assert "no longer in this document" not in content
    assert reverse("admin:documents_document_change", args=[document.pk]) in content


@pytest.mark.parametrize("status", ["pending", "processing"])
def test_staff_see_that_a_document_is_still_being_ingested(collection, staff_client, status):
    document = unfinished(collection, status, progress=40)
    content = page(staff_client, document).content.decode()
    assert "Not ingested yet</strong>" in content and "its text appears here when it is ready" in content


def test_a_failed_reingestion_keeps_the_previous_text_readable_and_tells_staff_only(collection, staff_client):
    # Its previous chunks stay searchable (and cited), so its page stays too.
    document = document_ingested(collection, "tea.txt", TEA)
    Document.objects.filter(pk=document.pk).update(status="failed", failure_reason="The PDF is damaged.")
    anonymous = page(Client(), document).content.decode()
    assert "Green tea should be brewed" in anonymous and "damaged" not in anonymous
    staff = page(staff_client, document).content.decode()
    assert "Green tea should be brewed" in staff
    assert (
        "Ingestion failed:</strong> The PDF is damaged." in staff and "from the last ingestion that succeeded" in staff
    )


def test_a_failure_reason_is_shown_as_text(collection, staff_client):
    document = unfinished(collection, "failed", failure_reason="<script>alert(1)</script>")
    content = page(staff_client, document).content.decode()
    assert "<script>alert(1)" not in content and "&lt;script&gt;alert(1)" in content
