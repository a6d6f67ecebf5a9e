"""Reading the speed layer's keys as an admin: pages of keys, and one key decoded.

A page is one round trip: a script SCANs from a cursor (never KEYS) until it has enough
rows, and reads each row's type, TTL, idle time and memory on the way. A key's detail is
one round trip too, and its value is decoded by what its layer stores; a value that is
not what its layer expects is returned raw, with a warning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from redis import Redis

from ragcache import client, keys, values
from ragcache.scripts import evaluate, evaluate_on, primaries

PAGE_ROWS = 50
SERVER_SPAN = 2**64  # a page's cursor: the server's place in primaries() times this, plus its SCAN cursor
MAX_SERVERS = 1024
MAX_STRING_BYTES = 256 * 1024  # of a value shown in the detail pane
MAX_MEMBERS = 200  # of a hash or set shown in the detail pane
SCAN_BUDGET_MS = 10  # per page: a filter that matches little must not hold Redis long
SEARCH_COUNT = 2000  # SCAN's COUNT when filtering: most keys are passed over in Redis's C code

# ARGV: cursor, COUNT, rows wanted, the most milliseconds to scan, the text every key
# listed starts with, then one or more MATCH patterns. Each stretch of the keyspace is
# scanned once per pattern from the same cursor (the cursor is a place in the table,
# whatever the pattern), so a key matching any pattern is listed, once.
# Returns {next cursor, {{key, type, pttl, idle seconds, bytes}...}}.
PAGE = """
local function now_us()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local cursor, count, wanted, stem = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[5]
local deadline = now_us() + tonumber(ARGV[4]) * 1000
local rows, listed = {}, {}
repeat
  local next_cursor = cursor
  for p = 6, #ARGV do
    local reply = redis.call('SCAN', cursor, 'MATCH', ARGV[p], 'COUNT', count)
    next_cursor = reply[1]
    for _, key in ipairs(reply[2]) do
      if not listed[key] and string.sub(key, 1, #stem) == stem then
        listed[key] = true
        -- Idle time first: nothing here resets it, but reading a value would.
        local idle = redis.pcall('OBJECT', 'IDLETIME', key)
        local kind = redis.call('TYPE', key)['ok']
        if kind ~= 'none' then
          if type(idle) ~= 'number' then idle = -1 end
          rows[#rows + 1] = {key, kind, redis.call('PTTL', key), idle, redis.call('MEMORY', 'USAGE', key) or 0}
        end
      end
    end
  end
  cursor = next_cursor
until cursor == '0' or #rows >= wanted or now_us() > deadline
return {cursor, rows}
"""

# KEYS: the key. ARGV: most bytes of a string, most fields or members of a hash or set.
# Returns {"none"} or {type, pttl, idle seconds, bytes, size, value}: a string's value is
# {bytes}, a hash's a flat list of fields and values, a set's its members.
DETAIL = """
local idle = redis.pcall('OBJECT', 'IDLETIME', KEYS[1])
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {'none'} end
if type(idle) ~= 'number' then idle = -1 end
local most = tonumber(ARGV[2])
local size, value = 0, {}
if kind == 'string' then
  size = redis.call('STRLEN', KEYS[1])
  value = {redis.call('GETRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)}
elseif kind == 'hash' then
  size = redis.call('HLEN', KEYS[1])
  if size <= most then value = redis.call('HGETALL', KEYS[1])
  else value = redis.call('HSCAN', KEYS[1], 0, 'COUNT', most)[2] end
elseif kind == 'set' then
  size = redis.call('SCARD', KEYS[1])
  if size <= most then value = redis.call('SMEMBERS', KEYS[1])
  else value = redis.call('SRANDMEMBER', KEYS[1], most) end
elseif kind == 'list' then
  size = redis.call('LLEN', KEYS[1])
  value = redis.call('LRANGE', KEYS[1], 0, most - 1)
elseif kind == 'zset' then
  size = redis.call('ZCARD', KEYS[1])
  value = redis.call('ZRANGE', KEYS[1], 0, most - 1)
end
return {kind, redis.call('PTTL', KEYS[1]), idle, redis.call('MEMORY', 'USAGE', KEYS[1]) or 0, size, value}
"""

# What each kind of key should hold, as Redis types it.
EXPECTED_TYPE = {
    "emb": "string", "ret": "string", "ans": "string", "sem": "hash", "doc": "set", "gen": "hash",
    "stats": "hash", "lock": "string", "switches": "hash", "census": "string", "catalog": "hash", "scopes": "hash",
}  # fmt: skip
KINDS = tuple(EXPECTED_TYPE)


@dataclass(frozen=True)
class KeyRow:
    key: str
    kind: str
    type: str
    ttl_ms: int  # -1: no TTL
    idle_seconds: int | None
    bytes: int


@dataclass(frozen=True)
class KeyPage:
    rows: list[KeyRow]
    cursor: str  # where the next page starts; "0" when the scan is complete


@dataclass
class KeyDetail:
    key: str
    kind: str
    type: str
    ttl_ms: int
    idle_seconds: int | None
    bytes: int
    size: int  # a string's length, a hash's fields, a set's members
    value: dict[str, Any] = field(default_factory=dict)  # decoded by kind
    warning: str = ""  # the value is not what its layer stores: shown raw
    raw: str = ""
    truncated: bool = False


def is_cursor(text: str) -> bool:
    """A page's cursor: which server, and the place in its keyspace (SERVER_SPAN)."""
    return text.isascii() and text.isdecimal() and int(text) < SERVER_SPAN * MAX_SERVERS


def question_needle(text: str) -> str:
    """The part of a key that stands for this question (as the pipeline normalizes it)."""
    return keys.question_hash(keys.cache_question(text))


def keys_page(*, cursor: str = "0", kind: str = "", text: str = "", rows: int = PAGE_ROWS) -> KeyPage:
    """A page of the app's keys: of one kind (or all), containing `text` literally or
    belonging to the question `text`."""
    if kind and kind not in KINDS:
        raise ValueError(f"Unknown kind of key {kind!r}.")
    if not is_cursor(cursor):
        raise ValueError("The cursor is a number from the previous page.")
    # Filtering is SCAN's own MATCH, in Redis's C code: the text, taken literally
    # (escaped), or the question's hash, which every key of that question holds.
    stem = keys.prefix() + kind
    if text.strip():
        patterns, count = [f"*{keys.glob_escape(text)}*", f"*{question_needle(text)}*"], SEARCH_COUNT
    else:
        patterns, count = [keys.glob_escape(stem) + "*"], rows

    def read(redis: Redis) -> tuple[int, list[Any]]:
        servers = primaries(redis)
        server, place = divmod(int(cursor), SERVER_SPAN)
        found: list[Any] = []
        while server < len(servers):  # a cursor of a larger cluster than this one: the end
            after, more = evaluate_on(redis, servers[server], PAGE, place, count, rows - len(found), SCAN_BUDGET_MS,
                                      stem, *patterns)  # fmt: skip
            found += more
            if int(after):
                return server * SERVER_SPAN + int(after), found
            # This server's keys are all listed: the next server's from its start (a Cluster).
            server, place = server + 1, 0
            if len(found) >= rows and server < len(servers):
                return server * SERVER_SPAN, found
        return 0, found

    next_cursor, found = client.run("panel", read)
    return KeyPage(
        rows=[
            KeyRow(
                key=_text(key),
                kind=keys.kind(_text(key)),
                type=_text(kind_),
                ttl_ms=int(pttl),
                idle_seconds=None if int(idle) < 0 else int(idle),
                bytes=int(size),
            )
            for key, kind_, pttl, idle, size in found
        ],  # fmt: skip
        cursor=str(next_cursor),
    )


def key_detail(key: str) -> KeyDetail | None:
    """The key with its value decoded, or None when it does not exist."""
    if not keys.kind(key):
        raise ValueError(f"{key!r} is not a key of this app.")
    reply = client.run("panel", lambda redis: evaluate(redis, DETAIL, 1, key, MAX_STRING_BYTES, MAX_MEMBERS))
    if reply[0] == b"none":
        return None
    type_, pttl, idle, size, length, value = reply
    detail = KeyDetail(
        key=key, kind=keys.kind(key), type=_text(type_), ttl_ms=int(pttl),
        idle_seconds=None if int(idle) < 0 else int(idle), bytes=int(size), size=int(length),
    )  # fmt: skip
    decode(detail, list(value))
    return detail


def decode(detail: KeyDetail, value: list[bytes]) -> None:
    """Fill detail.value by what the key's kind stores; detail.warning and .raw if the
    value is not that."""
    expected = EXPECTED_TYPE.get(detail.kind)
    if detail.kind == "stats" and detail.key.startswith(f"{keys.prefix()}stats:sums:"):
        expected = "string"
    if detail.type == "string":
        detail.truncated = detail.size > MAX_STRING_BYTES
    if expected != detail.type:
        detail.warning = f"A {detail.kind} key should hold a {expected}, not a {detail.type}."
        detail.raw = _raw(detail.type, value)
        return
    try:
        if detail.type == "string":
            if detail.truncated:
                raise ValueError(f"the value is {detail.size:,} bytes long, too long for an entry of this layer")
            detail.value = DECODERS[detail.kind](detail.key, value[0])
        elif detail.type == "hash":
            fields = {_text(name): raw for name, raw in zip(value[::2], value[1::2], strict=True)}
            detail.value = DECODERS[detail.kind](detail.key, fields)
        else:
            detail.value = DECODERS[detail.kind](detail.key, sorted(_text(member) for member in value))
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as exc:
        detail.warning = f"This value is not what a {detail.kind} entry holds ({exc}). It is shown raw."
        detail.raw = _raw(detail.type, value)


# -- one decoder per kind of key -----------------------------------------------------


def _embedding(key: str, raw: bytes) -> dict[str, Any]:
    if not raw or len(raw) % 4:
        raise ValueError(f"{len(raw)} bytes is not a whole number of float32 values")
    vector = np.frombuffer(raw, dtype=np.float32)
    if not np.all(np.isfinite(vector)):
        raise ValueError("the vector holds values that are not finite numbers")
    _tag, _, rest = key[len(keys.prefix()) + len("emb:") :].partition(":")
    model, _, question = rest.rpartition(":")
    return {
        "model": model,
        "question_hash": question,
        "dimensions": int(vector.size),
        "norm": float(np.linalg.norm(vector)),
        "first": [round(float(x), 4) for x in vector[:8]],
    }


def _retrieval(key: str, raw: bytes) -> dict[str, Any]:
    entry = _entry(raw, values.RETRIEVAL)
    passages = [
        {"chunk_id": int(cid), "document_id": int(did), "title": str(title), "content_hash": str(chash),
         "score": float(score), "section": str(section), "similarity": similarity}
        for cid, did, title, chash, score, section, similarity in entry["passages"]
    ]  # fmt: skip
    _tag, _, rest = key[len(keys.prefix()) + len("ret:") :].partition(":")
    *model, mode, k, question = rest.split(":")
    scope = raw.partition(b"\n")[0].split(b" ")[1].decode()  # the header: r3 {scope} {context} {ms}
    return {
        "question": entry.get("q"),
        "passages": passages,
        "context": str(entry["ctx"]),
        "saved_ms": float(entry.get("ms") or 0),
        "scope": scope,
        "model": ":".join(model),
        "mode": mode,
        "k": k,
        "question_hash": question,
    }


def _answer(key: str, raw: bytes) -> dict[str, Any]:
    entry = _entry(raw, values.ANSWER)
    if not isinstance(entry["text"], str) or not isinstance(entry["citations"], list):
        raise ValueError("an answer has a text and a list of citations")
    _tag, _, rest = key[len(keys.prefix()) + len("ans:") :].partition(":")
    *generator, prompt_version, question = rest.split(":")
    context = raw.partition(b"\n")[0].split(b" ")[1].decode()  # the header: a2 {context} ...
    citations = [
        {"number": int(c["number"]), "title": str(c["title"]), "url": str(c.get("url") or ""),
         "document_id": c.get("document_id")}
        for c in entry["citations"]
    ]  # fmt: skip
    return {
        "question": entry.get("q"),
        "text": entry["text"],
        "citations": citations,
        "prompt_tokens": entry.get("prompt_tokens") if entry.get("has_usage") else None,
        "completion_tokens": entry.get("completion_tokens") if entry.get("has_usage") else None,
        "cost_usd": entry.get("cost_usd") if entry.get("has_cost") else None,
        "usage_estimated": bool(entry.get("usage_estimated")),
        "generate_ms": float(entry.get("ms") or 0),
        "generator": ":".join(generator),
        "prompt_version": prompt_version,
        "question_hash": question,
        "context": context,
    }


def _semantic(key: str, fields: dict[str, bytes]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for question_hash, raw in fields.items():
        if question_hash == "scope":  # the scope digest whose questions these are
            continue
        decoded = values.decode_semantic(raw)
        if decoded is None:
            raise ValueError("not a semantic entry of this format")
        entry, vector = decoded
        entries.append({"question_hash": question_hash, "question": entry.get("q"), "answer_key": str(entry["a"]),
                        "vector": vector})  # fmt: skip
    if entries:
        matrix = np.stack([e["vector"] for e in entries])
        norms = np.linalg.norm(matrix, axis=1)
        similarity = (matrix @ matrix.T) / np.maximum(np.outer(norms, norms), 1e-12)
        for i, entry in enumerate(entries):
            others = [(float(similarity[i, j]), j) for j in range(len(entries)) if j != i]
            best = max(others, default=None)
            entry["nearest"] = (
                {"similarity": round(best[0], 4), "question": entries[best[1]]["question"]} if best else None
            )
            entry["similarities"] = [round(float(s), 3) for s in similarity[i]]
    for entry in entries:
        del entry["vector"]
    return {"entries": entries}


def _document_index(key: str, members: list[str]) -> dict[str, Any]:
    return {"document_id": int(key.rsplit(":", 1)[1]), "members": members}


def _generations(key: str, fields: dict[str, bytes]) -> dict[str, Any]:
    """A scope's copies: its collections' generations, the catalog version, the switches."""
    return {
        "generations": {int(cid): int(gen) for cid, gen in fields.items() if cid.isdigit()},
        "catalog": int(fields["catalog"]) if "catalog" in fields else None,
        "switches": _json_object(fields["switches"]) if "switches" in fields else None,
    }


def _scopes(key: str, fields: dict[str, bytes]) -> dict[str, Any]:
    return {"scopes": {tag: _text(ids) for tag, ids in sorted(fields.items())}}


def _statistics(key: str, value: dict[str, bytes] | bytes) -> dict[str, Any]:
    minute = int(key.rsplit(":", 1)[1])
    if isinstance(value, bytes):  # the sums of the minutes before this one
        return {"minute": minute * 60, "sums": _json_object(value)}
    return {"minute": minute * 60, "fields": {name: float(count) for name, count in sorted(value.items())}}


def _lock(key: str, raw: bytes) -> dict[str, Any]:
    return {"locks": key[len(keys.prefix()) + len("lock:") :], "holder": raw.decode()}


def _switches(key: str, fields: dict[str, bytes]) -> dict[str, Any]:
    return {"fields": {name: value.decode() for name, value in sorted(fields.items())}}


def _catalog(key: str, fields: dict[str, bytes]) -> dict[str, Any]:
    rows = json.loads(fields["entries"])
    return {"version": int(fields["v"]), "collections": [{"id": c, "name": n, "public": p} for c, n, p in rows]}


def _census(key: str, raw: bytes) -> dict[str, Any]:
    return {"census": _json_object(raw)}


DECODERS: dict[str, Any] = {
    "emb": _embedding, "ret": _retrieval, "ans": _answer, "sem": _semantic, "doc": _document_index,
    "gen": _generations, "stats": _statistics, "lock": _lock, "switches": _switches, "census": _census,
    "catalog": _catalog, "scopes": _scopes,
}  # fmt: skip


def _entry(raw: bytes, kind: str) -> dict[str, Any]:
    header = raw.partition(b"\n")[0]
    if not header.startswith(kind.encode() + b" "):
        raise ValueError(f"no {kind!r} header: {header[:40]!r}")
    entry = values.decode(raw, kind)
    if entry is None:
        raise ValueError("the JSON after the header is damaged")
    return entry


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at character {exc.pos}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"JSON {type(value).__name__}, not an object")
    return value


def _raw(type_: str, value: list[bytes]) -> str:
    if type_ == "string":
        data = value[0] if value else b""
        text = data.decode("utf-8", errors="replace")
        printable = sum(ch.isprintable() or ch in "\n\t" for ch in text)
        return text if printable >= 0.9 * max(len(text), 1) else data[:4096].hex(" ", 4)
    return "\n".join(_text(item) for item in value)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
