"""The optional torch provider (requirements-torch.txt), the fp32 reference of the default
onnx one: `make test-torch` installs it and runs this file; without it, it is skipped."""

from __future__ import annotations

import pytest

pytest.importorskip("sentence_transformers", reason="the torch extra is not installed: make test-torch runs this")

from documents.embedding.local import LocalEmbedder  # noqa: E402  (after the skip: it needs the extra)

TEXTS = [
    "How do I sort a list in reverse order?",
    "Green tea should be brewed at 80 degrees for two minutes.",
    "def fib(n):\n    a, b = 0, 1\n    while a < n:\n        a, b = b, a + b",
    "",
    "A long passage about dictionaries and the keys they map to values. " * 12,
]


def test_the_onnx_provider_agrees_with_the_torch_reference(embedder):
    reference = LocalEmbedder()
    ours, theirs = embedder.embed(TEXTS), reference.embed(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert float((ours * theirs).sum(axis=1).min()) > 0.99  # int8 weights: 0.9995 typically
    assert embedder.count_tokens(TEXTS) == reference.count_tokens(TEXTS)
