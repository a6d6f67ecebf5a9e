"""What the panel shows, read from Redis (through ragcache) and PostgreSQL.

The overview reads no key of the cache itself: statistics (one script over the minute
buckets), the last census of keys per layer (one GET; the census runs in the
background), INFO, the generation copies, and the collections' generations (one query).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cachepanel import charts
from documents.models import Chunk, Collection, Document
from ragcache import census, client, generations, popular, stats, switches
from ragcache.browse import KeyDetail, KeyPage, key_detail, keys_page
from ragcache.client import CacheUnavailable
from ragcache.conf import LAYERS, conf
from ragcache.semantic import CHECKS

LAYER_NAMES = {
    "emb": "Query embeddings",
    "ret": "Retrievals",
    "ans": "Answers",
    "sem": "Semantic (similar questions)",
}
CHECK_NAMES = {
    "words": "the words in which the two questions differ",
    "context": "what retrieval finds for each",
}
OTHER_KINDS = {
    "doc": "Document indexes",
    "stats": "Statistics",
    "gen": "Scopes' copies (generations, catalog version, switches)",
    "scopes": "Scopes in use",
    "catalog": "Catalog copy",
    "lock": "Single-flight locks",
    "switches": "Run-time switches",
    "workers": "Worker heartbeats",
}


@dataclass
class Availability:
    """Redis as this web process sees it."""

    reachable: bool
    error: str = ""
    failing_since: float | None = None
    breaker_open_until: float | None = None  # Unix time
    breaker_failures: int = 0
    last_error: str = ""
    last_error_at: float | None = None


@dataclass
class LayerRow:
    name: str
    label: str
    on: bool
    overridden: bool
    keys: int | None
    bytes: int | None
    ratios: dict[str, float | None]
    day: dict[str, float]


@dataclass
class GenerationRow:
    collection_id: int
    name: str
    database: int
    copy: int | None
    state: str  # "in step", "behind", "ahead", "no copy", or "unknown" (Redis unreachable)


@dataclass
class Overview:
    availability: Availability
    layers: list[LayerRow] = field(default_factory=list)
    other_kinds: list[dict[str, Any]] = field(default_factory=list)
    census: dict[str, Any] | None = None
    charts: list[dict[str, Any]] = field(default_factory=list)
    generations: list[GenerationRow] = field(default_factory=list)
    copies_ttl: int | None = None
    server: dict[str, Any] = field(default_factory=dict)
    semantic: dict[str, Any] = field(default_factory=dict)
    warming: dict[str, Any] = field(default_factory=dict)
    totals_day: dict[str, float] = field(default_factory=dict)
    census_max_age: int = field(default_factory=lambda: int(conf()["CENSUS_MAX_AGE"]))

    @property
    def switched(self) -> bool:
        """A layer is on or off by an admin's run-time switch, not by the settings."""
        return any(layer.overridden for layer in self.layers)

    @property
    def behind(self) -> bool:
        """A generation copy is behind the database: a publish was lost."""
        return any(row.state == "behind" for row in self.generations)


def availability_read(error: str = "") -> Availability:
    breaker = client.breaker
    open_until = None
    if breaker.is_open:
        open_until = time.time() + (breaker.open_until - time.monotonic())
    return Availability(
        reachable=not error,
        error=error,
        failing_since=breaker.failing_since,
        breaker_open_until=open_until,
        breaker_failures=breaker.failures,
        last_error=breaker.last_error,
        last_error_at=breaker.last_error_at,
    )


def overview_read() -> Overview:
    collections = list(Collection.objects.order_by("name").values_list("id", "name", "generation"))
    try:
        summary = stats.summary()
        counted = census.latest()
        info = client.run("panel", census.server_info)
        copies, copies_ttl = generations.copies()
        current = switches.current()
        warmed = popular.warming_last()
    except CacheUnavailable as exc:
        overview = Overview(availability=availability_read(str(exc) or "Redis did not answer."))
        overview.generations = _generation_rows(collections, None)
        return overview
    ratios = {window: stats.with_ratios(layers) for window, layers in summary["windows"].items()}
    kinds = (counted or {}).get("kinds", {})
    overview = Overview(availability=availability_read(), census=counted)
    for layer in LAYERS:
        counts = kinds.get(layer, {"keys": 0, "bytes": 0}) if counted else {"keys": None, "bytes": None}
        overview.layers.append(
            LayerRow(
                name=layer, label=LAYER_NAMES[layer], on=current[layer]["on"], overridden=current[layer]["overridden"],
                keys=counts["keys"], bytes=counts["bytes"],
                ratios={window: ratios[window][layer]["ratio"] for window in stats.WINDOWS},
                day=summary["windows"]["1d"][layer],
            )
        )  # fmt: skip
    overview.other_kinds = [
        {"kind": kind, "label": label, **kinds.get(kind, {"keys": 0, "bytes": 0})}
        for kind, label in OTHER_KINDS.items()
    ]
    day = summary["windows"]["1d"]
    overview.totals_day = {
        metric: sum(day[layer][metric] for layer in LAYERS) for metric in ("saved_ms", "saved_tokens", "saved_cost")
    }
    overview.charts = [charts.hits_and_misses(summary["series"], layer, LAYER_NAMES[layer]) for layer in LAYERS]
    overview.generations = _generation_rows(collections, copies)
    overview.copies_ttl = copies_ttl if copies_ttl >= 0 else None
    overview.server = _server(info)
    overview.warming = {"on": bool(conf()["WARMING"]), "questions": conf()["WARMING_QUESTIONS"], "last": warmed}
    threshold = current[switches.THRESHOLD]
    overview.semantic = {
        "on": current["sem"]["on"],
        "threshold": threshold["value"],
        "threshold_overridden": threshold["overridden"],
        "checks": [
            {"name": check, "label": CHECK_NAMES[check], **current[switches.CHECK.format(check)]} for check in CHECKS
        ],
        "day": charts.similarity_histogram(summary["similarity"]["1d"], threshold["value"]),
    }
    return overview


def _generation_rows(collections: list[tuple[int, str, int]], copies: dict[int, int] | None) -> list[GenerationRow]:
    rows = []
    for collection_id, name, generation in collections:
        copy = copies.get(collection_id) if copies is not None else None
        if copies is None:
            state = "unknown"
        elif copy is None:
            state = "no copy"
        elif copy < generation:
            state = "behind"
        elif copy > generation:
            state = "ahead"
        else:
            state = "in step"
        rows.append(GenerationRow(collection_id, name, generation, copy, state))
    return rows


def _server(info: dict[str, Any]) -> dict[str, Any]:
    hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
    return {
        "version": info.get("redis_version"),
        "used_memory": int(info.get("used_memory", 0)),
        "maxmemory": int(info.get("maxmemory", 0)),
        "policy": info.get("maxmemory_policy"),
        "evicted_keys": int(info.get("evicted_keys", 0)),
        "expired_keys": int(info.get("expired_keys", 0)),
        "keyspace_hit_ratio": hits / (hits + misses) if hits + misses else None,
        "connected_clients": int(info.get("connected_clients", 0)),
        "ops_per_sec": int(info.get("instantaneous_ops_per_sec", 0)),
        "uptime_seconds": int(info.get("uptime_in_seconds", 0)),
    }


def key_page_read(*, cursor: str, kind: str, text: str) -> KeyPage:
    return keys_page(cursor=cursor, kind=kind, text=text)


def key_detail_read(key: str) -> KeyDetail | None:
    """The key decoded, with what PostgreSQL knows of what it points to."""
    detail = key_detail(key)
    if detail is None or detail.warning:
        return detail
    if detail.kind == "ret":
        passages = detail.value["passages"]
        present = set(Chunk.objects.filter(pk__in=[p["chunk_id"] for p in passages]).values_list("pk", flat=True))
        for passage in passages:
            passage["chunk_exists"] = passage["chunk_id"] in present
    elif detail.kind == "doc":
        detail.value["document"] = _document(detail.value["document_id"])
    elif detail.kind == "gen":
        names = dict(Collection.objects.filter(pk__in=detail.value["generations"]).values_list("pk", "name"))
        detail.value["rows"] = [
            {"collection_id": cid, "name": names.get(cid, "(deleted)"), "generation": generation}
            for cid, generation in sorted(detail.value["generations"].items())
        ]
    return detail


def document_title(document_id: int) -> str | None:
    return Document.objects.filter(pk=document_id).values_list("title", flat=True).first()


def _document(document_id: int) -> Document | None:
    return Document.objects.filter(pk=document_id).only("id", "title").first()
