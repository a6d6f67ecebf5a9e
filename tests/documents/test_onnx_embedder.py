from __future__ import annotations

import numpy as np

TEXTS = [
    "Brew green tea at 80 degrees.",
    "A kettle boils water; a long sentence about kettles, " + "steam and whistles, " * 30,
    "Cups.",
    "Black tea steeps for four minutes in water just off the boil.",
    "Oolong " * 50,
    "Store leaves away from light.",
    "",
]


def test_many_texts_shared_among_threads_embed_as_each_alone(embedder, settings):
    settings.EMBEDDING_BATCH_SIZE = 2  # four batches: the threads' path
    together = embedder.embed(TEXTS)
    alone = np.vstack([embedder.embed([text]) for text in TEXTS])
    assert together.shape == (len(TEXTS), 384)
    assert np.allclose(together, alone, atol=1e-4)  # the same rows, in the order given
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_one_thread_embeds_the_same(embedder, settings):
    settings.EMBEDDING_BATCH_SIZE = 2
    settings.EMBEDDING_THREADS = 1
    assert np.allclose(
        embedder.embed(TEXTS), embedder.embed(TEXTS[:3]).tolist() + embedder.embed(TEXTS[3:]).tolist(), atol=1e-4
    )
