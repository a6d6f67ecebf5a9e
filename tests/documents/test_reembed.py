"""A change of the embedding model: `manage.py reembed`, and `manage.py ingest` of the same
files (what `make run` does with the demo), embed again what another model embedded."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from documents.embedding import get_embedder
from documents.models import Chunk, Document

pytestmark = pytest.mark.django_db

OLD_MODEL = "an-older-model"


def embedded_by(model: str, document: Document) -> None:
    """As a document looks that another model embedded: its name, and vectors of its own."""
    rng = np.random.default_rng(7)
    for chunk in document.chunks.all():
        vector = rng.standard_normal(384).astype(np.float32)
        Chunk.objects.filter(pk=chunk.pk).update(embedding_model=model, embedding=vector / np.linalg.norm(vector))


def drinks(tmp_path) -> tuple[Document, Document]:
    (tmp_path / "tea.md").write_text("# Tea\n\nBrew green tea at eighty degrees for two minutes.")
    (tmp_path / "coffee.md").write_text("# Coffee\n\nGrind coffee coarsely for a French press.")
    call_command("ingest", str(tmp_path), "--collection", "Drinks")
    return Document.objects.get(original_filename="tea.md"), Document.objects.get(original_filename="coffee.md")


def test_reembed_embeds_again_what_another_model_embedded_and_only_that(tmp_path, capsys):
    tea, coffee = drinks(tmp_path)
    embedded_by(OLD_MODEL, tea)
    untouched = set(coffee.chunks.values_list("pk", flat=True))
    capsys.readouterr()
    call_command("reembed")
    out = capsys.readouterr().out
    assert "1 document(s) to embed again with all-MiniLM-L6-v2-onnx-int8." in out and "[1/1] " in out
    chunk = tea.chunks.get()
    assert chunk.embedding_model == get_embedder().model_name
    expected = get_embedder().embed([f"Tea\n\n{chunk.text}"])[0]
    assert float(np.dot(np.asarray(chunk.embedding), expected)) > 0.999  # the configured model's vector
    assert set(coffee.chunks.values_list("pk", flat=True)) == untouched  # already current: left alone
    call_command("reembed")
    assert "Every document is embedded by all-MiniLM-L6-v2-onnx-int8 already." in capsys.readouterr().out


def test_reembed_of_one_collection_leaves_the_others(tmp_path, capsys):
    tea, _ = drinks(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "bike.md").write_text("# Bike\n\nPatch a tyre with a kit.")
    call_command("ingest", str(tmp_path / "other"), "--collection", "Other")
    bike = Document.objects.get(original_filename="bike.md")
    embedded_by(OLD_MODEL, tea)
    embedded_by(OLD_MODEL, bike)
    call_command("reembed", "--collection", "Drinks")
    assert tea.chunks.get().embedding_model == get_embedder().model_name
    assert bike.chunks.get().embedding_model == OLD_MODEL
    with pytest.raises(CommandError, match="No collection is named 'Tea house'"):
        call_command("reembed", "--collection", "Tea house")


def test_ingest_of_the_same_files_upgrades_what_another_model_embedded(tmp_path, capsys):
    tea, coffee = drinks(tmp_path)
    embedded_by(OLD_MODEL, tea)
    capsys.readouterr()
    call_command("ingest", str(tmp_path), "--collection", "Drinks")
    assert "Drinks: 0 added, 1 already present, 0 failed" in capsys.readouterr().out  # and tea upgraded
    assert tea.chunks.get().embedding_model == get_embedder().model_name
