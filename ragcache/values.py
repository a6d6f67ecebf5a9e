"""How retrievals and answers are stored: a header line that the lookup script reads
without parsing JSON, then the entry as JSON.

    ret   "r1 {context digest} {ms}\n{json}"
    ans   "a1 {ms} {tokens} {cost}\n{json}"

The first word names the kind and the version of the format. A value of any other
format is a miss (the lookup script deletes it and counts it as corrupt), so changing
the format, or a damaged value, is never an error and never trips the circuit breaker.
"""

from __future__ import annotations

import json
from typing import Any

RETRIEVAL = "r1"
ANSWER = "a1"


def encode_retrieval(entry: dict[str, Any]) -> bytes:
    return _encode(f"{RETRIEVAL} {entry['ctx']} {_number(entry.get('ms'))}", entry)


def encode_answer(value: dict[str, Any]) -> bytes:
    tokens = (value.get("prompt_tokens") or 0) + (value.get("completion_tokens") or 0)
    header = f"{ANSWER} {_number(value.get('ms'))} {_number(tokens)} {_number(value.get('cost_usd'))}"
    return _encode(header, value)


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


def _encode(header: str, entry: dict[str, Any]) -> bytes:
    return header.encode() + b"\n" + json.dumps(entry, separators=(",", ":")).encode()


def _number(value: Any) -> str:
    return repr(float(value or 0))
