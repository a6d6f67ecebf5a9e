"""Bulk ingestion, several documents at once (INGEST_CONCURRENCY): the same chunks and
vectors as one by one, failures reported as before, and no more documents taken on than
are being ingested."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.db.models.signals import post_save

from documents.models import Chunk, Collection, Document
from documents.services import document_create, documents_ingest
from tests.documents.factories import collection_create

pytestmark = pytest.mark.django_db(transaction=True)

PAGES: dict[str, str | bytes] = {
    "tea.md": "# Tea\n\n## Green\n\nBrew green tea at eighty degrees.\n\n## Black\n\nBlack tea takes boiling water.",
    "coffee.html": "<html><body><h1>Coffee</h1><p>Grind coffee coarsely for a French press.</p></body></html>",
    "bikes.txt": "\n\n".join(f"Paragraph {n}: a bicycle chain wants oil every {n} weeks." for n in range(60)),
    "kettles.txt": "Kettles boil water quickly.",
    "latin.txt": "crème brûlée".encode("latin-1"),
}


def write_pages(folder: Path) -> Path:
    folder.mkdir()
    for name, content in PAGES.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def chunks_by_file(collection: str) -> dict[str, list[tuple[str, str, list[float]]]]:
    found: dict[str, list[tuple[str, str, list[float]]]] = {}
    rows = Chunk.objects.filter(document__collection__name=collection)
    rows = rows.order_by("document__original_filename", "ordinal")
    for name, section, text, vector in rows.values_list("document__original_filename", "section", "text", "embedding"):
        found.setdefault(name, []).append((section, text, vector))
    return found


def test_documents_ingested_at_once_are_those_ingested_one_by_one(tmp_path, settings, capsys):
    ready_on: set[str] = set()

    def record(sender: type[Document], instance: Document, **kwargs: object) -> None:
        if instance.status == Document.Status.READY:
            ready_on.add(threading.current_thread().name)

    settings.INGEST_CONCURRENCY = 1
    call_command("ingest", str(write_pages(tmp_path / "one")), "--collection", "One by one")
    settings.INGEST_CONCURRENCY = 2
    post_save.connect(record, sender=Document)
    try:
        call_command("ingest", str(write_pages(tmp_path / "two")), "--collection", "Two at once")
    finally:
        post_save.disconnect(record, sender=Document)

    out, err = capsys.readouterr()
    assert ready_on and all(name.startswith("ingest") for name in ready_on) and len(ready_on) == 2
    assert out.count("Two at once: 5 added, 0 already present, 1 failed; ") == 1
    assert err.count("latin.txt") == 2 and "not UTF-8 text" in err  # once for each collection
    one, two = chunks_by_file("One by one"), chunks_by_file("Two at once")
    assert set(two) == {"tea.md", "coffee.html", "bikes.txt", "kettles.txt"} and len(two["bikes.txt"]) > 1
    for name, chunks in one.items():
        assert [c[:2] for c in two[name]] == [c[:2] for c in chunks]
        np.testing.assert_allclose([c[2] for c in two[name]], [c[2] for c in chunks], atol=1e-5)
    statuses = dict(Document.objects.filter(collection__name="Two at once").values_list("original_filename", "status"))
    assert statuses == {"tea.md": "ready", "coffee.html": "ready", "bikes.txt": "ready", "kettles.txt": "ready",
                        "latin.txt": "failed"}  # fmt: skip


def test_documents_are_taken_on_only_as_ingestion_makes_room(settings):
    settings.INGEST_CONCURRENCY = 2
    collection = collection_create()
    ids = [
        document_create(collection=collection, filename=f"{n}.txt", data=f"Note {n} on tea.".encode(), queue=False).pk
        for n in range(6)
    ]
    read: list[int] = []

    def ids_read() -> Iterator[int]:
        for document_id in ids:
            read.append(document_id)
            yield document_id

    taken_when_ended: list[int] = []
    ended: list[int] = []
    for document_id, result in documents_ingest(document_ids=ids_read()):
        assert result is not None and result.chunks == 1
        taken_when_ended.append(len(read))
        ended.append(document_id)
    assert sorted(ended) == ids
    assert taken_when_ended[0] <= 2  # two taken on, and the first to end reported before a third
    assert all(taken <= done + 2 for done, taken in enumerate(taken_when_ended))


def test_reembed_at_once_switches_the_collection_when_its_last_document_is_in(
    tmp_path, settings, openai_embeddings, capsys
):
    from documents.embedding import get_embedder

    folder = write_pages(tmp_path / "drinks")
    (folder / "latin.txt").unlink()
    call_command("ingest", str(folder), "--collection", "Drinks")  # by the openai provider
    collection = Collection.objects.get(name="Drinks")
    assert collection.embedding_space == "text-embedding-3-small"
    settings.EMBEDDING_PROVIDER, settings.INGEST_CONCURRENCY = "onnx", 2
    get_embedder.cache_clear()
    capsys.readouterr()
    call_command("reembed")
    out = capsys.readouterr().out
    assert "4 document(s) to embed again" in out and "[4/4] " in out
    assert "Drinks: now searched with all-MiniLM-L6-v2-onnx-int8 (all-MiniLM-L6-v2)." in out
    collection.refresh_from_db()
    assert collection.embedding_space == "all-MiniLM-L6-v2"
    assert set(Chunk.objects.filter(document__collection=collection).values_list("embedding_space", flat=True)) == {
        "all-MiniLM-L6-v2"
    }


def test_the_same_content_twice_in_one_run_is_ingested_once(tmp_path, capsys):
    # The second copy is met while the first is still being ingested, on another thread.
    for folder in ("a", "b", "c"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "bikes.txt").write_text(str(PAGES["bikes.txt"]))
    call_command("ingest", str(tmp_path), "--collection", "Twice")
    out = capsys.readouterr().out
    assert "Twice: 1 added, 2 already present, 0 failed;" in out and out.count("bikes.txt:") == 1
    document = Document.objects.get(collection__name="Twice")
    assert document.status == "ready" and f"bikes.txt: {document.chunks.count()} chunks" in out
