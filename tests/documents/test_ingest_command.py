from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from documents.models import Collection, Document
from tests.documents.factories import ingestions_queued

pytestmark = pytest.mark.django_db


def test_ingest_imports_a_folder_once_and_reports_the_rate(tmp_path, capsys):
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "tea.md").write_text("# Tea\n\nBrew green tea at eighty degrees.")
    (tmp_path / "guide" / "coffee.html").write_text("<html><body><p>Grind coffee coarsely.</p></body></html>")
    (tmp_path / "guide" / "image.png").write_bytes(b"\x89PNG")
    call_command("ingest", str(tmp_path / "guide"), "--collection", "Drinks")
    out = capsys.readouterr().out
    assert "Created collection Drinks." in out
    assert "Drinks: 2 added, 0 already present, 0 failed; 2 chunks in" in out and "chunks/s" in out
    assert set(Document.objects.values_list("title", "status")) == {("Tea", "ready"), ("coffee", "ready")}

    call_command("ingest", str(tmp_path / "guide"), "--collection", "Drinks")
    assert "Drinks: 0 added, 2 already present, 0 failed." in capsys.readouterr().out
    assert Document.objects.count() == 2 and Collection.objects.count() == 1


def test_ingest_again_upgrades_documents_chunked_by_an_older_chunker(tmp_path, capsys):
    from documents.chunking import FORMAT
    from documents.models import Chunk

    (tmp_path / "tea.md").write_text("# Tea\n\n## Green\n\nBrew green tea at eighty degrees.")
    (tmp_path / "coffee.md").write_text("# Coffee\n\nGrind coffee coarsely.")
    call_command("ingest", str(tmp_path), "--collection", "Drinks")
    capsys.readouterr()
    tea = Document.objects.get(original_filename="tea.md")
    assert tea.chunk_format == FORMAT and tea.chunks.get().section == "Tea › Green"
    # As a document ingested before sections were known looks: its heading in its text.
    Document.objects.filter(pk=tea.pk).update(chunk_format=0)
    Chunk.objects.filter(document=tea).update(section="", text="# Tea\n\n## Green\n\nBrew green tea at eighty degrees.")

    call_command("ingest", str(tmp_path), "--collection", "Drinks")
    out = capsys.readouterr().out
    assert "Drinks: 0 added, 1 already present, 0 failed, 1 re-ingested to the current chunk format; 1 chunks" in out
    tea.refresh_from_db()
    assert tea.chunk_format == FORMAT and Document.objects.count() == 2
    assert list(tea.chunks.values_list("section", "text")) == [("Tea › Green", "Brew green tea at eighty degrees.")]


def test_ingest_with_queue_hands_an_outdated_document_to_the_workers(
    tmp_path, capsys, django_capture_on_commit_callbacks
):
    (tmp_path / "tea.md").write_text("# Tea\n\nBrew green tea at eighty degrees.")
    call_command("ingest", str(tmp_path), "--collection", "Drinks")
    Document.objects.update(chunk_format=0)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        call_command("ingest", str(tmp_path), "--collection", "Drinks", "--queue")
    assert ingestions_queued(queued) == 1 and Document.objects.get().status == "pending"
    assert "1 re-ingested to the current chunk format; ingestion queued" in capsys.readouterr().out


def test_ingest_reports_bad_files_and_goes_on(tmp_path, capsys):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin.txt").write_bytes("crème".encode("latin-1"))
    (tmp_path / "ok.txt").write_text("Fine text.")
    call_command("ingest", str(tmp_path), "--collection", "Mixed")
    captured = capsys.readouterr()
    assert "empty.txt is empty." in captured.err
    assert "not UTF-8 text" in captured.err
    assert "Mixed: 2 added, 0 already present, 2 failed" in captured.out
    assert Document.objects.get(original_filename="ok.txt").status == "ready"


def test_ingest_with_queue_leaves_the_work_to_the_workers(tmp_path, capsys, django_capture_on_commit_callbacks):
    (tmp_path / "tea.txt").write_text("Tea.")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        call_command("ingest", str(tmp_path / "tea.txt"), "--collection", "Q", "--queue")
    assert ingestions_queued(queued) == 1
    assert Document.objects.get().status == "pending"
    assert "ingestion queued for the workers" in capsys.readouterr().out


def test_ingest_refuses_a_missing_path(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("ingest", str(tmp_path / "nowhere"), "--collection", "X")


def test_ingest_again_finishes_documents_an_interrupted_run_left_unfinished(tmp_path, capsys):
    from documents.models import Chunk

    (tmp_path / "tea.md").write_text("# Tea\n\nBrew green tea at eighty degrees.")
    (tmp_path / "coffee.md").write_text("# Coffee\n\nGrind coffee coarsely.")
    (tmp_path / "cocoa.md").write_text("# Cocoa\n\nWhisk cocoa into warm milk.")
    call_command("ingest", str(tmp_path), "--collection", "Drinks")
    capsys.readouterr()
    # As a run stopped mid-way leaves them: one taken up, one not yet, none with its
    # chunks; and one failed (an embedding endpoint that was down, say).
    for filename, status in (("tea.md", "processing"), ("coffee.md", "pending"), ("cocoa.md", "failed")):
        Document.objects.filter(original_filename=filename).update(status=status)
    Chunk.objects.all().delete()

    call_command("ingest", str(tmp_path), "--collection", "Drinks")
    out = capsys.readouterr().out
    assert "Drinks: 1 added, 0 already present, 0 failed, 2 left unfinished before and ingested now; 3 chunks" in out
    assert set(Document.objects.values_list("status", flat=True)) == {"ready"} and Chunk.objects.count() == 3
    assert Document.objects.count() == 3
