"""Embedding providers: one small interface, one module per implementation.

`settings.EMBEDDING_PROVIDER` names the provider; each process builds it once.
"""

from __future__ import annotations

import functools
import logging
import threading

from django.conf import settings
from django.utils.module_loading import import_string

from documents.embedding.base import Embedder, EmbeddingError

__all__ = ["LOCAL_PROVIDERS", "Embedder", "EmbeddingError", "embedder_for_space", "get_embedder", "warm_up"]
logger = logging.getLogger(__name__)
LOCAL_PROVIDERS = ("onnx", "torch", "local")  # models that run in the process, from files installed with it


@functools.cache
def get_embedder() -> Embedder:
    path = settings.EMBEDDING_PROVIDERS[settings.EMBEDDING_PROVIDER]
    embedder: Embedder = import_string(path)()
    return embedder


def embedder_for_space(space: str) -> Embedder | None:
    """An embedder of `space`, to embed questions for a collection whose chunks are in it:
    the configured one, else the first provider of that space that this process can run
    (the one the collection was embedded by, while another model embeds it again)."""
    configured = get_embedder()
    return configured if configured.space == space else _embedder_of(space, configured=settings.EMBEDDING_PROVIDER)


@functools.cache
def _embedder_of(space: str, *, configured: str) -> Embedder | None:
    for name, path in settings.EMBEDDING_PROVIDERS.items():
        embedder: Embedder = import_string(path)()
        if name != configured and embedder.space == space and embedder.available():
            return embedder
    logger.warning("No embedding provider of space %r here: its collections are searched by their words alone", space)
    return None


def warm_up() -> None:
    """Load a local model in the background at process start, not on the first question."""
    if settings.EMBEDDING_PROVIDER in LOCAL_PROVIDERS:
        module = settings.EMBEDDING_PROVIDERS[settings.EMBEDDING_PROVIDER].rpartition(".")[0]
        load_model = import_string(f"{module}.load_model")
        threading.Thread(target=load_model, name="embedding-warm-up", daemon=True).start()
