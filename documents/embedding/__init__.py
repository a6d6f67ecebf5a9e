"""Embedding providers: one small interface, one module per implementation.

`settings.EMBEDDING_PROVIDER` names the provider; each process builds it once.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.utils.module_loading import import_string

from documents.embedding.base import Embedder, EmbeddingError

__all__ = ["Embedder", "EmbeddingError", "get_embedder"]


@functools.cache
def get_embedder() -> Embedder:
    path = settings.EMBEDDING_PROVIDERS[settings.EMBEDDING_PROVIDER]
    embedder: Embedder = import_string(path)()
    return embedder
