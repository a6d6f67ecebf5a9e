"""How retrievals and answers are stored: a header line that the lookup script reads
without parsing JSON, then the entry as JSON.

    ret   "r3 {scope digest} {context digest} {ms}\n{json}"
    ans   "a2 {context digest} {ms} {tokens} {cost}\n{json}"
    sem   "s1 {json}\n{the question's embedding, float16}"  (a field of the scope's sem hash)

The first word names the kind and the version of the format. A value of any other
format is a miss (the lookup script deletes it and counts it as corrupt), so changing
the format, or a damaged value, is never an error and never trips the circuit breaker.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

RETRIEVAL = "r3"  # r3: the header names the scope digest (its generations) it was retrieved for
ANSWER = "a2"  # a2: the header names the context digest it was generated from
SEMANTIC = "s1"


def encode_retrieval(entry: dict[str, Any], *, scope: str) -> bytes:
    return _encode(f"{RETRIEVAL} {scope} {entry['ctx']} {_number(entry.get('ms'))}", entry)


def encode_answer(value: dict[str, Any], *, context: str) -> bytes:
    tokens = (value.get("prompt_tokens") or 0) + (value.get("completion_tokens") or 0)
    header = f"{answer_start(context)}{_number(value.get('ms'))} {_number(tokens)} {_number(value.get('cost_usd'))}"
    return _encode(header, value)


def answer_start(context: str) -> str:
    """What every answer generated from this context starts with (ragcache.layers' claims)."""
    return f"{ANSWER} {context} "


def decode(raw: bytes, kind: str) -> dict[str, Any] | None:
    """The entry, or None when `raw` is not a `kind` value of this format."""
    header, newline, body = raw.partition(b"\n")
    if not newline or header.split(b" ", 1)[0] != kind.encode():
        return None
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def encode_semantic(
    *, answer_key: str, answer_context: str, question: str, vector: np.ndarray, context: list[str]
) -> bytes:
    """Half precision: 768 bytes a question instead of 8 KB of JSON numbers; similarities
    move by less than 0.001, far below any threshold's meaning. `answer_context`: the
    context digest of the answer meant (the key may hold another by the time it is read);
    `context`: the content hashes of the passages it was written from, in rank order."""
    reference = json.dumps({"a": answer_key, "x": answer_context, "q": question, "c": context}, separators=(",", ":"))
    return f"{SEMANTIC} {reference}\n".encode() + np.asarray(vector, dtype=np.float16).tobytes()


def decode_embedding(raw: bytes, dimensions: int) -> np.ndarray | None:
    """The vector, or None when `raw` is not `dimensions` finite float32 values."""
    if len(raw) != dimensions * 4:
        return None
    vector = np.frombuffer(raw, dtype=np.float32)
    return vector if bool(np.isfinite(vector).all()) else None


def decode_semantic(raw: bytes) -> tuple[dict[str, Any], np.ndarray] | None:
    """(the answer key, question and context, the embedding), or None for a value of another format."""
    header, newline, vector = raw.partition(b"\n")
    kind, _, reference = header.partition(b" ")
    if not newline or kind != SEMANTIC.encode() or not vector or len(vector) % 2:
        return None
    try:
        entry = json.loads(reference)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("a"), str) or not isinstance(entry.get("x"), str):
        return None
    values = np.frombuffer(vector, dtype=np.float16).astype(np.float32)
    return (entry, values) if bool(np.isfinite(values).all()) else None


def _encode(header: str, entry: dict[str, Any]) -> bytes:
    return header.encode() + b"\n" + json.dumps(entry, separators=(",", ":")).encode()


def _number(value: Any) -> str:
    return repr(float(value or 0))
