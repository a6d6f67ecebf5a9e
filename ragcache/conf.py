"""The speed layer's settings: RAGCACHE in Django settings, over these defaults."""

from __future__ import annotations

import functools
import random
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

LAYERS = ("emb", "ret", "ans", "sem")

DEFAULTS: dict[str, Any] = {
    "PREFIX": "rc",
    "CACHE_ALIAS": "default",
    # Seconds each layer's entries live. Embeddings never go stale (model + text);
    # retrievals are cut off by generations anyway; answers are content-addressed.
    "TTL": {"emb": 30 * 86400, "ret": 6 * 3600, "ans": 7 * 86400, "sem": 7 * 86400},
    "TTL_JITTER": 0.1,  # +-10%, so entries written together do not expire together
    # Defaults of the run-time switches (ragcache.switches): False bypasses the layer.
    "ENABLED": {"emb": True, "ret": True, "ans": True, "sem": True},
    "SEM_THRESHOLD": 0.7,  # cosine similarity for a similar question (chosen by `make eval`)
    # Checks a question above the threshold must also pass (ragcache.semantic), each a
    # run-time switch too.
    "SEM_CHECKS": {"words": True, "context": False},
    "SEM_CANDIDATES": 5,  # earlier questions above the threshold tried, the most similar first
    # After a collection changes, answer again in the background its most asked questions
    # of today and yesterday, at most WARMING_QUESTIONS of them (chat.tasks).
    "WARMING": False,
    "WARMING_QUESTIONS": 20,
    "WARMING_DELAY": 5,  # seconds from a change to its warming: one upload's changes come as a burst
    "SEM_MAX_ENTRIES": 500,  # questions remembered per scope, generation and generator
    "GENERATIONS_TTL": 300,  # the Redis copy of the generations is re-read from PostgreSQL this often
    "GENERATION_LOADER": "documents.selectors.collection_generations",
    "CATALOG_LOADER": "documents.selectors.collection_catalog",  # () -> (version, [(id, name, public)])
    "STATS_TTL": 2 * 86400,
    # Single-flight locks: a holder that dies frees its lock after LOCK_TTL seconds; a live
    # answer holder renews its lock while it generates (ragcache.leases), for LOCK_WAIT at
    # most. Waiters wait LOCK_WAIT at most, then compute for themselves.
    "LOCK_TTL": {"emb": 5, "ret": 5, "ans": 10},
    "LOCK_WAIT": {"emb": 5, "ret": 10, "ans": 30},
    "LOCK_POLL_SECONDS": 0.02,
    "BREAKER_FAILURES": 3,  # consecutive Redis errors that open the circuit ...
    "BREAKER_OPEN_SECONDS": 5.0,  # ... for this long: every cache call is then an instant miss
    "CENSUS_MAX_AGE": 15,  # seconds a count of the keys per layer is shown before it is taken again
}


@functools.cache
def conf() -> dict[str, Any]:
    overrides = getattr(settings, "RAGCACHE", {})
    merged = {**DEFAULTS, **overrides}
    for nested in ("TTL", "ENABLED", "SEM_CHECKS", "LOCK_TTL", "LOCK_WAIT"):
        merged[nested] = {**DEFAULTS[nested], **overrides.get(nested, {})}
    return merged


def ttl(layer: str) -> int:
    """The layer's TTL with jitter."""
    settings_ = conf()
    base = settings_["TTL"][layer]
    jitter = settings_["TTL_JITTER"]
    return max(1, int(base * random.uniform(1 - jitter, 1 + jitter)))  # noqa: S311 (not for secrets)


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting == "RAGCACHE":
        conf.cache_clear()
