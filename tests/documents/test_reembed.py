"""A change of the embedding model: `manage.py reembed`, and `manage.py ingest` of the same
files (what `make run` does with the demo), embed again what another model embedded."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from chat.pipeline import answer
from documents.embedding import get_embedder
from documents.models import Chunk, Collection, Document
from documents.selectors import chunks_searched
from documents.services import document_ingest, document_replace_source

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


# A model of another space: the openai provider's vectors, then the onnx model's.


def on_the_onnx_model(settings) -> None:
    settings.EMBEDDING_PROVIDER = "onnx"
    get_embedder.cache_clear()


def hashed_collection(tmp_path) -> tuple[Collection, Document, Document]:
    """The drinks, embedded by the openai provider (the test server's hashed vectors)."""
    tea, coffee = drinks(tmp_path)
    collection = tea.collection
    collection.refresh_from_db()
    assert collection.embedding_space == get_embedder().space == get_embedder().model_name
    return collection, tea, coffee


def spaces(document: Document) -> set[str]:
    return set(document.chunks.values_list("embedding_space", flat=True))


def test_a_model_of_another_space_embeds_beside_the_old_vectors_until_every_document_has_its_own(
    tmp_path, settings, openai_embeddings
):
    collection, tea, coffee = hashed_collection(tmp_path)
    hashed = collection.embedding_space
    on_the_onnx_model(settings)
    generation = Collection.objects.get(pk=collection.pk).generation

    assert document_ingest(document_id=tea.pk) is not None  # the first of the two, as reembed goes
    assert spaces(tea) == {hashed, "all-MiniLM-L6-v2"}
    collection.refresh_from_db()
    assert collection.embedding_space == hashed  # it still answers from the old vectors...
    searched = chunks_searched({hashed: [collection.pk], "all-MiniLM-L6-v2": []}).filter(document=tea)
    assert set(searched.values_list("embedding_space", flat=True)) == {hashed}
    found = answer(question="How hot should green tea be brewed?", collection_ids=[collection.pk])
    assert found.citations and found.citations[0]["title"] == "Tea"  # ...with questions embedded in its space
    assert openai_embeddings.calls["/v1/embeddings"] > 0

    assert document_ingest(document_id=coffee.pk) is not None  # the last: the collection switches
    collection.refresh_from_db()
    assert collection.embedding_space == "all-MiniLM-L6-v2" and collection.generation > generation
    assert spaces(tea) == spaces(coffee) == {"all-MiniLM-L6-v2"}  # the old vectors are gone
    calls = openai_embeddings.calls["/v1/embeddings"]
    found = answer(question="How coarse should coffee be ground for a French press?", collection_ids=[collection.pk])
    assert found.citations[0]["title"] == "Coffee"
    assert openai_embeddings.calls["/v1/embeddings"] == calls  # the old model is no longer asked


def test_reembed_switches_the_collection_and_says_so(tmp_path, settings, openai_embeddings, capsys):
    collection, tea, coffee = hashed_collection(tmp_path)
    on_the_onnx_model(settings)
    capsys.readouterr()
    call_command("reembed")
    out = capsys.readouterr().out
    assert "2 document(s) to embed again" in out
    assert "Drinks: now searched with all-MiniLM-L6-v2-onnx-int8 (all-MiniLM-L6-v2)." in out
    assert Collection.objects.get(pk=collection.pk).embedding_space == "all-MiniLM-L6-v2"
    call_command("reembed")
    assert "Every document is embedded by all-MiniLM-L6-v2-onnx-int8 already." in capsys.readouterr().out


def test_a_document_that_fails_to_embed_again_keeps_the_collection_on_its_old_vectors(
    tmp_path, settings, openai_embeddings, capsys
):
    collection, tea, coffee = hashed_collection(tmp_path)
    hashed = collection.embedding_space
    on_the_onnx_model(settings)
    Document.objects.filter(pk=coffee.pk).update(source=b"\xff\xfe\x00\xd8")  # no longer parses
    capsys.readouterr()
    call_command("reembed")
    captured = capsys.readouterr()
    assert "Coffee:" in captured.err and "Drinks: still searched with its previous model" in captured.out
    collection.refresh_from_db()
    assert collection.embedding_space == hashed  # nothing of coffee's is lost
    assert spaces(coffee) == {hashed} and spaces(tea) == {hashed, "all-MiniLM-L6-v2"}
    coffee.delete()  # gone, nothing holds the switch back: the next reembed makes it
    call_command("reembed")
    assert Collection.objects.get(pk=collection.pk).embedding_space == "all-MiniLM-L6-v2"


def test_a_document_changed_while_its_collection_is_embedded_again_is_current_in_both_spaces(
    tmp_path, settings, openai_embeddings
):
    collection, tea, coffee = hashed_collection(tmp_path)
    hashed = collection.embedding_space
    on_the_onnx_model(settings)
    assert document_ingest(document_id=tea.pk) is not None
    document_replace_source(document=tea, filename="tea.md", data=b"# Tea\n\nSteep oolong for three minutes.")
    assert document_ingest(document_id=tea.pk) is not None
    searched = chunks_searched({hashed: [collection.pk]}).filter(document=tea)
    assert [c.embedding_space for c in searched] == [hashed] and "oolong" in searched.get().text
    assert set(tea.chunks.values_list("text", flat=True)) == {searched.get().text}  # no old text anywhere
    found = answer(question="How long does oolong steep?", collection_ids=[collection.pk])
    assert "three minutes" in found.text


def test_a_document_moved_into_a_collection_of_another_space_is_embedded_again_there(
    tmp_path, settings, openai_embeddings, django_capture_on_commit_callbacks
):
    collection, tea, coffee = hashed_collection(tmp_path)
    on_the_onnx_model(settings)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "bike.md").write_text("# Bike\n\nPatch a tyre with a kit.")
    call_command("ingest", str(tmp_path / "other"), "--collection", "Bikes")
    bikes = Collection.objects.get(name="Bikes")
    assert bikes.embedding_space == "all-MiniLM-L6-v2"
    with django_capture_on_commit_callbacks() as queued:
        tea.collection = bikes
        tea.save()
    tea.refresh_from_db()
    assert tea.status == Document.Status.PENDING and len(queued) >= 1  # its ingestion is queued
    assert document_ingest(document_id=tea.pk) is not None
    found = answer(question="How hot should green tea be brewed?", collection_ids=[bikes.pk])
    assert found.citations[0]["title"] == "Tea"
