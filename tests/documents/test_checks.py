from __future__ import annotations

import importlib.util

from documents.checks import embedding_settings


def ids(settings) -> set[str | None]:
    return {message.id for message in embedding_settings(None)}


def test_default_settings_pass(settings):
    assert ids(settings) == set()


def test_an_unknown_provider_is_an_error(settings):
    settings.EMBEDDING_PROVIDER = "word2vec"
    assert ids(settings) == {"documents.E001"}


def test_overlap_must_stay_below_the_chunk_size(settings):
    settings.CHUNK_OVERLAP_TOKENS = settings.CHUNK_SIZE_TOKENS
    assert ids(settings) == {"documents.E002"}


def test_the_local_model_cannot_fill_another_column_size(settings):
    settings.EMBEDDING_DIMENSIONS = 768
    assert ids(settings) == {"documents.E003"}
    settings.EMBEDDING_PROVIDER = "openai"
    assert ids(settings) == set()


def test_the_former_name_of_the_local_model_still_configures_it(settings):
    from documents.embedding import get_embedder

    settings.EMBEDDING_PROVIDER = "local"
    get_embedder.cache_clear()
    try:
        assert ids(settings) == set() and get_embedder().model_name == settings.ONNX_EMBEDDING_MODEL
    finally:
        get_embedder.cache_clear()


def test_the_torch_provider_needs_its_extra_installed(settings):
    settings.EMBEDDING_PROVIDER = "torch"
    installed = importlib.util.find_spec("sentence_transformers") is not None
    assert ids(settings) == (set() if installed else {"documents.E004"})
