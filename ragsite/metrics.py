"""Prometheus metrics, at /metrics for staff or with METRICS_TOKEN.

Counted where they happen, in every process: requests and their latency (the middleware),
each cache layer's outcomes and time per ask (chat.pipeline), chunks embedded (ingestion).
With several processes, set PROMETHEUS_MULTIPROC_DIR to a directory they share and that is
emptied at start (`make run` does both): each process writes its own file there and a
scrape sums them. Read at scrape time: the queues' lengths, documents by status, and this
process's circuit breaker.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from django.db import DatabaseError
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

# Cache layers answer in well under a millisecond to a few; an ask takes up to seconds.
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

requests = Counter("ragsite_http_requests", "HTTP requests answered.", ["method", "status"])
request_seconds = Histogram("ragsite_http_request_seconds", "Time to answer a request (to its headers when streamed).",
                            ["method"], buckets=REQUEST_BUCKETS)  # fmt: skip
cache_lookups = Counter("ragsite_cache_lookups", "Cache layer lookups by outcome.", ["layer", "outcome"])
cache_seconds = Histogram("ragsite_cache_lookup_seconds", "Time of a cache layer's lookup.", ["layer"],
                          buckets=FAST_BUCKETS)  # fmt: skip
chunks_embedded = Counter("ragsite_chunks_embedded", "Chunks embedded by ingestion.")


def cache_observe(trace: Mapping[str, Mapping[str, Any]]) -> None:
    """An ask's cache outcomes, as its trace holds them ({layer: {"outcome", "ms"}})."""
    for layer, found in trace.items():
        cache_lookups.labels(layer, str(found.get("outcome"))).inc()
        if found.get("ms") is not None:
            cache_seconds.labels(layer).observe(float(found["ms"]) / 1000)


def exposition() -> bytes:
    """Every metric, in Prometheus's text format."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    registry_with_state = CollectorRegistry()
    registry_with_state.register(_StateCollector())
    return generate_latest(registry) + generate_latest(registry_with_state)


class _StateCollector(Collector):
    """What is read when scraped rather than counted."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from documents.models import Chunk
        from documents.selectors import documents_by_status
        from ragcache.client import CacheUnavailable, breaker
        from ragsite.celery import queue_lengths

        # Without the database, these gauges are left out; the counters still come.
        with contextlib.suppress(DatabaseError):
            documents = GaugeMetricFamily("ragsite_documents", "Documents by ingestion status.", labels=["status"])
            for status, count in documents_by_status().items():
                documents.add_metric([status], count)
            yield documents
            # Its rate is ingestion's throughput wherever the workers run (their own counter,
            # ragsite_chunks_embedded, reaches /metrics only from processes on this host).
            chunks = Chunk.objects.count()
            yield GaugeMetricFamily("ragsite_chunks", "Chunks searchable, every collection.", value=chunks)
        breaker_help = "1 while this process's circuit breaker skips Redis."
        yield GaugeMetricFamily("ragsite_cache_breaker_open", breaker_help, value=int(breaker.is_open))
        queues = GaugeMetricFamily("ragsite_queue_length", "Tasks waiting in each Celery queue.", labels=["queue"])
        with contextlib.suppress(CacheUnavailable):  # the broker is away: no figure rather than a wrong one
            for queue, length in queue_lengths().items():
                queues.add_metric([queue], length)
        yield queues
