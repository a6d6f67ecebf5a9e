"""Any OpenAI-compatible /v1/embeddings endpoint, asked for the column's dimensions."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import openai
from django.conf import settings

from documents.embedding.base import Embedder, EmbeddingError, Vectors

# No tokenizer of the remote model is at hand offline; this count of words and
# punctuation marks runs a little above the BPE count for English prose.
APPROXIMATE_TOKEN = re.compile(r"\w+|[^\w\s]")


class OpenAIEmbedder(Embedder):
    max_input_tokens = 8191

    def __init__(self) -> None:
        self.model_name = self.space = settings.OPENAI_EMBEDDING_MODEL
        self.dimensions = settings.EMBEDDING_DIMENSIONS
        self.client = openai.OpenAI(
            api_key=settings.OPENAI_API_KEY or "not-set",
            base_url=settings.OPENAI_BASE_URL,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
            max_retries=settings.OPENAI_MAX_RETRIES,
        )

    def embed(self, texts: Sequence[str]) -> Vectors:
        size = max(1, settings.OPENAI_EMBEDDING_BATCH_SIZE)
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = np.vstack([self._request(texts[start : start + size]) for start in range(0, len(texts), size)])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)

    def _request(self, texts: Sequence[str]) -> Vectors:
        try:
            response = self.client.embeddings.create(
                model=self.model_name, input=list(texts), dimensions=self.dimensions
            )
        except openai.OpenAIError as exc:
            raise EmbeddingError(f"The embedding endpoint failed: {exc}") from exc
        rows = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        vectors = np.asarray(rows, dtype=np.float32)
        if vectors.shape != (len(texts), self.dimensions):
            raise EmbeddingError(
                f"The embedding endpoint returned shape {vectors.shape}, expected ({len(texts)}, {self.dimensions})."
            )
        return vectors

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(APPROXIMATE_TOKEN.findall(text)) for text in texts]
