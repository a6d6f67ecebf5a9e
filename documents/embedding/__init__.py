"""Embedding providers: one small interface, one module per implementation.

`settings.EMBEDDING_PROVIDER` names the provider; each process builds it once.
"""

from __future__ import annotations

import functools
import threading

from django.conf import settings
from django.utils.module_loading import import_string

from documents.embedding.base import Embedder, EmbeddingError

__all__ = ["LOCAL_PROVIDERS", "Embedder", "EmbeddingError", "get_embedder", "warm_up"]
LOCAL_PROVIDERS = ("onnx", "torch", "local")  # models that run in the process, from files installed with it


@functools.cache
def get_embedder() -> Embedder:
    path = settings.EMBEDDING_PROVIDERS[settings.EMBEDDING_PROVIDER]
    embedder: Embedder = import_string(path)()
    return embedder


def warm_up() -> None:
    """Load a local model in the background at process start, not on the first question."""
    if settings.EMBEDDING_PROVIDER in LOCAL_PROVIDERS:
        module = settings.EMBEDDING_PROVIDERS[settings.EMBEDDING_PROVIDER].rpartition(".")[0]
        load_model = import_string(f"{module}.load_model")
        threading.Thread(target=load_model, name="embedding-warm-up", daemon=True).start()
