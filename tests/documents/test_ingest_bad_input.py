"""`manage.py ingest` with paths that are missing, unreadable or hold nothing usable: a
clear message and the rest imported, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from documents.models import Document

pytestmark = pytest.mark.django_db


def ingest(*paths: Path | str) -> None:
    call_command("ingest", *map(str, paths), "--collection", "Imports")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.txt", "does not exist"),
        (lambda d: d / "empty-folder", "No .txt, .md, .markdown, .html, .htm, .pdf files under"),
        (lambda d: d / "only-images", "No .txt, .md, .markdown, .html, .htm, .pdf files under"),
        (lambda d: d / "broken-link.txt", "does not exist"),
    ],
    ids=["a missing path", "an empty folder", "a folder with nothing usable", "a broken link"],
)
def test_nothing_to_import_is_a_clear_error(tmp_path, make, message):
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "only-images").mkdir()
    (tmp_path / "only-images" / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / "broken-link.txt").symlink_to(tmp_path / "gone.txt")
    with pytest.raises(CommandError, match=message):
        ingest(make(tmp_path))
    assert not Document.objects.exists()


def test_a_file_that_cannot_be_read_is_reported_and_the_others_are_imported(tmp_path, capsys):
    good = tmp_path / "good.txt"
    good.write_text("Green tea wants water at eighty degrees.")
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)  # not a regular file: reading it would wait for a writer forever
    ingest(good, "/proc/self/mem", fifo)  # /proc/self/mem refuses to be read, even by root
    captured = capsys.readouterr()
    assert "/proc/self/mem: could not be read" in captured.err
    assert "pipe.txt: not a regular file" in captured.err
    assert "1 added, 0 already present, 2 failed" in captured.out
    assert Document.objects.get().original_filename == "good.txt"
