from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class EmbeddingError(Exception):
    """The provider failed to embed (unreachable, timed out, answered wrongly)."""


class Embedder:
    model_name: str
    # Vectors of embedders of one space compare (a model, and its quantized export): a
    # collection embedded in a space is searched with a question embedded in it.
    space: str
    dimensions: int
    # What one input may hold, special tokens included; longer input is cut off unseen.
    max_input_tokens: int
    special_tokens: int = 0

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit-length vectors, one row per text."""
        raise NotImplementedError

    def available(self) -> bool:
        """Whether this process can run it (its packages are installed)."""
        return True

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, without the special tokens."""
        raise NotImplementedError
